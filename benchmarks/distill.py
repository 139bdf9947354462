"""Training speed on this machine: steps/s and utterances/s of a student of the bundled base
teacher (its 6 encoder layers + 2 of its 6 decoder layers) with online KD (teacher forward in the
loop), offline KD (top-k cache, no teacher in memory) and cross-entropy only.

    .venv/bin/python benchmarks/distill.py [--corpus DIR] [--utterances 48] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from statistics import median

import torch

from voxdistill.config import from_dict
from voxdistill.console import quiet_transformers
from voxdistill.decoding import DecodingOptions
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.trainer import Trainer
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

from _common import Column, Table, add_demo_corpus_argument, demo_training_subset, run

TEACHER = "bundled:whisper-base"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_demo_corpus_argument(parser)
    parser.add_argument("--utterances", type=int, default=48, help="training utterances labelled (default 48)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    quiet_transformers()
    work = Path(tempfile.mkdtemp(prefix="voxdistill-distill-bench-"))
    _, manifest = demo_training_subset(args.corpus, args.utterances, work)
    run_pseudo_label(PseudoLabelConfig(TEACHER, manifest, work / "pseudo", DecodingOptions(batch_size=8)), progress=False)

    teacher = load_whisper(TEACHER)
    student, provenance = build_student(teacher.model, StudentSpec(tuple(range(6)), (0, 5)))
    save_student(student, teacher.processor, provenance, TEACHER, teacher.fingerprint.digest, work / "student")
    del teacher, student

    print(f"student of {TEACHER}: encoder 6/6, decoder 2/6 layers; batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, float32, {args.steps} timed steps per mode")
    table = Table(Column("mode", width=10, left=True), Column("s/step", ".2f", 7), Column("steps/s", ".3f", 8),
                  Column("utt/s", ".2f", 6))
    print(table.header())
    seconds = {}
    for mode in ("online", "offline", "none"):
        config = from_dict(DistillConfig, {
            "student": str(work / "student"), "out": str(work / f"run-{mode}"),
            "data": {"train_manifest": str(work / "pseudo" / "pseudo_labels.jsonl"), "batch_size": args.batch_size},
            "teacher": {"mode": mode, "model": TEACHER if mode == "online" else None},
            "optim": {"max_steps": args.steps + 1}, "eval": {"every_steps": 0},
        })
        Trainer(config).run(progress=False)
        log = [json.loads(line) for line in (work / f"run-{mode}" / "log.jsonl").read_text().splitlines()]
        seconds[mode] = median(r["seconds"] for r in log[1:])  # step 1 is warm-up
        print(table.row(mode, seconds[mode], 1 / seconds[mode], args.batch_size / seconds[mode]))
    print(f"offline KD is {seconds['online'] / seconds['offline']:.2f}x faster than online KD "
          f"(cross-entropy alone: {seconds['online'] / seconds['none']:.2f}x)")


if __name__ == "__main__":
    run(main)
