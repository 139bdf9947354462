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
import time
from itertools import islice
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.console import quiet_transformers
from voxdistill.data.manifest import read_manifest
from voxdistill.decoding import DecodingOptions
from voxdistill.evaluation.speed import set_threads
from voxdistill.families import load_recogniser
from voxdistill.runtime import Runtime


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
    clips = [load_audio(u.audio_path(args.manifest.parent)) for u in islice(read_manifest(args.manifest), args.clips)]
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
            start = time.perf_counter()
            encoded = r.encode([clip])
            encoded_at = time.perf_counter()
            tokens = r.decode(encoded, options, len(clip) / SAMPLE_RATE)
            done = time.perf_counter()
            times[name]["encoder"].append((encoded_at - start) * 1e3)
            times[name]["decoding"].append((done - encoded_at) * 1e3)
            times[name]["steps"].append(len(tokens[0]) + 1)  # the text tokens and the end-of-text
    print(f"{runtime}, {threads} threads, batch 1, {len(clips)} clips of {args.manifest.name} (medians)")
    print(f"{'model':44} {'encoder':>9} {'decoding':>9} {'total':>9} {'steps':>6} {'ms/step':>8}")
    for name, t in times.items():
        per_step = statistics.median(d / s for d, s in zip(t["decoding"], t["steps"]))
        total = statistics.median(e + d for e, d in zip(t["encoder"], t["decoding"]))
        print(f"{name[-44:]:44} {statistics.median(t['encoder']):7.1f}ms {statistics.median(t['decoding']):7.1f}ms "
              f"{total:7.1f}ms {statistics.median(t['steps']):6.1f} {per_step:8.2f}")


if __name__ == "__main__":
    main()
