"""Training speed on this machine: steps/s and utterances/s of a student of the bundled base
teacher (its 6 encoder layers + 2 of its 6 decoder layers) with online KD (teacher forward in the
loop), offline KD (top-k cache, no teacher in memory) and cross-entropy only.

    .venv/bin/python benchmarks/distill.py [--corpus DIR] [--utterances 48] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from itertools import islice
from pathlib import Path
from statistics import median

import torch

from voxdistill.config import from_dict
from voxdistill.console import quiet_transformers
from voxdistill.data.corpus import PRESETS, build_corpus
from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.decoding import DecodingOptions
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.trainer import Trainer
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student
from voxdistill.paths import cache_dir
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

TEACHER = "bundled:whisper-base"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus" / "demo")
    parser.add_argument("--utterances", type=int, default=48)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per mode (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    quiet_transformers()
    build_corpus(PRESETS["demo"], args.corpus, seed=0, progress=False)
    work = Path(tempfile.mkdtemp(prefix="voxdistill-distill-bench-"))
    utts = [u for u in islice(read_manifest(args.corpus / "train.jsonl"), args.utterances)]
    manifest = work / "subset.jsonl"
    write_manifest(manifest, [u.resolved(args.corpus) for u in utts])
    run_pseudo_label(PseudoLabelConfig(TEACHER, manifest, work / "pseudo", DecodingOptions(batch_size=8)), progress=False)

    teacher = load_whisper(TEACHER)
    student, provenance = build_student(teacher.model, StudentSpec(tuple(range(6)), (0, 5)))
    save_student(student, teacher.processor, provenance, TEACHER, teacher.fingerprint.digest, work / "student")
    del teacher, student

    print(f"student of {TEACHER}: encoder 6/6, decoder 2/6 layers; batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, float32, {args.steps} timed steps per mode")
    print(f"{'mode':10} {'s/step':>7} {'steps/s':>8} {'utt/s':>6}")
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
        print(f"{mode:10} {seconds[mode]:7.2f} {1 / seconds[mode]:8.3f} {args.batch_size / seconds[mode]:6.2f}")
    print(f"offline KD is {seconds['online'] / seconds['offline']:.2f}x faster than online KD "
          f"(cross-entropy alone: {seconds['online'] / seconds['none']:.2f}x)")


if __name__ == "__main__":
    main()
