"""Where a model's batch-1 time goes in a runtime: its encoder, and its decoding (per step too),
for a teacher and students in one process, interleaved clip by clip, through the same recogniser
interface `evaluate` uses (so a student with a shorter window is fed its own features).

    .venv/bin/python benchmarks/time_split.py --runtime ct2 --compute-type int8 \\
        --model bundled:whisper-tiny.en --model STUDENT --manifest demo-out/corpus/test-ood-voice.jsonl

``--runtime torch --compile-decoder both`` loads each model twice, eager and with its decoder
compiled (``evaluate --compile-decoder``), all interleaved: what compiling buys, in one process.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE
from voxdistill.console import quiet_transformers
from voxdistill.decoding import DecodingOptions
from voxdistill.evaluation.speed import set_threads
from voxdistill.families import load_recogniser
from voxdistill.runtime import Runtime

from _common import Column, Stopwatch, Table, first_clips, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="first the teacher, then students")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--runtime", default="torch", choices=["torch", "ct2"])
    parser.add_argument("--compute-type", default=None)
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile-decoder", choices=["no", "yes", "both"], default="no",
                        help="torch: decode through torch.compile; both: each model eager and compiled, interleaved")
    args = parser.parse_args()
    quiet_transformers()
    threads = set_threads(args.threads)
    runtime = Runtime.of(args.runtime, args.compute_type)
    clips = first_clips(args.manifest, args.clips)
    recognisers = {}
    for m in args.model:
        for compiled in {"no": [False], "yes": [True], "both": [False, True]}[args.compile_decoder]:
            recognisers[m + (" (compiled)" if compiled else "")] = r = load_recogniser(m, runtime, threads)
            if compiled:
                r.whisper.compile_decoder()
    options = DecodingOptions(batch_size=1)
    times = {name: {"encoder": [], "decoding": [], "steps": []} for name in recognisers}
    for r in recognisers.values():
        for clip in clips[: args.warmup]:
            r.decode(r.encode([clip]), options, len(clip) / SAMPLE_RATE)
    for clip in clips:
        for name, r in recognisers.items():
            watch = Stopwatch()
            encoded = r.encode([clip])
            times[name]["encoder"].append(watch.lap() * 1e3)
            tokens = r.decode(encoded, options, len(clip) / SAMPLE_RATE)
            times[name]["decoding"].append(watch.lap() * 1e3)
            times[name]["steps"].append(len(tokens[0]) + 1)  # the text tokens and the end-of-text
    print(f"{runtime}, {threads} threads, batch 1, {len(clips)} clips of {args.manifest.name} (medians)")
    def ms(value: float) -> str:
        return f"{value:.1f}ms"

    table = Table(Column("model", left=True), Column("encoder", ms, 9), Column("decoding", ms, 9),
                  Column("total", ms, 9), Column("steps", ".1f", 6), Column("ms/step", ".2f", 8))
    print(table.format((name, statistics.median(t["encoder"]), statistics.median(t["decoding"]),
                        statistics.median(e + d for e, d in zip(t["encoder"], t["decoding"])),
                        statistics.median(t["steps"]),
                        statistics.median(d / s for d, s in zip(t["decoding"], t["steps"])))
                       for name, t in times.items()))


if __name__ == "__main__":
    run(main)
