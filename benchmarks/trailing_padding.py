"""How much trailing silence Whisper's encoder needs to keep what it knows when each clip is encoded
at its own length: the teacher's own weights, untrained, in a clip-length folder (padded to the next
1 s), with at least M seconds of zeros after every clip, WER per real set in CTranslate2 int8.

    .venv/bin/python benchmarks/trailing_padding.py OUT [--minimum 0 2 4 8] [--teacher bundled:whisper-tiny.en]

OUT receives the real-speech manifests of the demo preset, the clip-length copy of the teacher and
one evaluation per M. The minimum is not yet a setting of a student (clips are padded only to the
next step), so this measurement widens the padding rule of `data.dataset` for its own process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data import dataset
from voxdistill.data.real_speech import REAL_PRESETS, build_real_speech
from voxdistill.evaluation.evaluate import EvalSettings, evaluate
from voxdistill.runtime import Runtime

from _common import Column, Table, run

SETS = ("real-dev", "test-real-read", "test-real-spontaneous", "test-real-words")


def padding_rule(minimum_seconds: float):
    """`dataset.padded_samples` with at least ``minimum_seconds`` of zeros after each clip."""
    extra = round(minimum_seconds * SAMPLE_RATE)

    def padded_samples(feature_extractor, samples: int) -> int:
        step = dataset.clip_pad_step(feature_extractor)
        if step is None:
            return feature_extractor.n_samples
        return min(max(-(-(samples + extra) // step), 1) * step, feature_extractor.n_samples)
    return padded_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minimum", type=float, nargs="+", default=[0, 2, 4, 8], help="seconds of trailing zeros")
    parser.add_argument("--teacher", default="bundled:whisper-tiny.en", help="a 4-layer Whisper (tiny.en)")
    args = parser.parse_args()
    corpus, copy = args.out / "corpus", args.out / "clip-length-teacher"
    if not (corpus / "real-dev.jsonl").is_file():
        build_real_speech(corpus, REAL_PRESETS["demo"])
    if not (copy / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "voxdistill.cli", "student", "init", "--teacher", args.teacher,
                        "--encoder-layers", "4", "--decoder-layers", "4", "--pad-step", "1", "--out", str(copy)],
                       check=True, stdout=subprocess.DEVNULL)
    rows = []
    for minimum in args.minimum:
        dataset.padded_samples = padding_rule(minimum)
        result = evaluate([str(copy)], [corpus / f"{name}.jsonl" for name in SETS],
                          args.out / f"minimum-{minimum:g}s" / "metrics.json",
                          EvalSettings(latency_clips=0, runtime=Runtime.of("ct2", "int8")), progress=False)
        sets = result["models"][0]["sets"]
        rows.append((minimum, *(sets[name]["wer"] for name in SETS)))
    print(f"{args.teacher}'s own weights, each clip padded to the next 1 s after at least M s of zeros, "
          f"CTranslate2 int8, WER:")
    table = Table(Column("M (s)", "g", 6, left=True), *(Column(name, ".1%", 22) for name in SETS))
    print(table.format(rows))


if __name__ == "__main__":
    run(main)
