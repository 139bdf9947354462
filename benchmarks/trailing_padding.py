"""How much trailing silence Whisper's encoder needs to keep what it knows when each clip is encoded
at its own length, and what it costs: the teacher beside clip-length copies of its own weights,
untrained (`student init --pad-step 1 --trailing-silence M`), in one CTranslate2 int8 evaluation of
the real sets: WER per set, and p50 latency at batch 1 over the same clips, interleaved.

    .venv/bin/python benchmarks/trailing_padding.py OUT [--minimum 0 2 4 8] [--latency-clips 10]
        [--teacher bundled:whisper-tiny.en]

OUT receives the real-speech manifests of the demo preset, one copy of the teacher per M and the
evaluation (OUT/metrics.json, transcripts beside it). Run again, it reuses what OUT holds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from voxdistill.data.real_speech import REAL_PRESETS, build_real_speech
from voxdistill.evaluation.evaluate import EvalSettings, evaluate
from voxdistill.runtime import Runtime

from _common import Column, Table, run

SETS = ("real-dev", "test-real-read", "test-real-spontaneous", "test-real-words")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minimum", type=float, nargs="+", default=[0, 2, 4, 8], help="seconds of trailing zeros")
    parser.add_argument("--latency-clips", type=int, default=10, metavar="N", help="clips per set timed at batch 1")
    parser.add_argument("--teacher", default="bundled:whisper-tiny.en", help="a 4-layer Whisper (tiny.en)")
    args = parser.parse_args()
    corpus = args.out / "corpus"
    if not (corpus / "real-dev.jsonl").is_file():
        build_real_speech(corpus, REAL_PRESETS["demo"])
    copies = []
    for minimum in args.minimum:
        copy = args.out / f"trailing-{minimum:g}s"
        if not (copy / "config.json").is_file():
            subprocess.run([sys.executable, "-m", "voxdistill.cli", "student", "init", "--teacher", args.teacher,
                            "--encoder-layers", "4", "--decoder-layers", "4", "--pad-step", "1",
                            "--trailing-silence", f"{minimum:g}", "--out", str(copy)],
                           check=True, stdout=subprocess.DEVNULL)
        copies.append(str(copy))
    result = evaluate([args.teacher, *copies], [corpus / f"{name}.jsonl" for name in SETS], args.out / "metrics.json",
                      EvalSettings(latency_clips=args.latency_clips, runtime=Runtime.of("ct2", "int8")),
                      labels=["teacher", *(f"M={m:g}" for m in args.minimum)], progress=False)
    rows = [(record["model"], *(record["sets"][name]["wer"] for name in SETS),
             record["overall"]["latency_ms_p50"]) for record in result["models"]]
    print(f"{args.teacher} (30 s window) and its own weights encoded at each clip's length, padded to the next 1 s "
          f"after at least M s of zeros; CTranslate2 int8, WER and p50 latency at batch 1 "
          f"({args.latency_clips} clips per set):")
    table = Table(Column("model", width=8, left=True), *(Column(name, ".1%", 22) for name in SETS),
                  Column("p50 ms", ".0f", 8))
    print(table.format(rows))


if __name__ == "__main__":
    run(main)
