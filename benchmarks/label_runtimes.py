"""Which teacher, in which runtime, should label unlabelled audio: for each (teacher, runtime) pair,
the time `pseudo-label` takes here (top-k rows included, as the pipeline runs it) and the WER of its
labels against references the audio has elsewhere, before and after the reference-free filters.

    .venv/bin/python benchmarks/label_runtimes.py REFERENCES.jsonl [--utterances 64]
        [--pairs bundled:whisper-tiny.en@torch:float32 bundled:whisper-tiny.en@ct2:int8 ...]

REFERENCES is a manifest with ``text`` (e.g. ``demo-out/corpus/real-pool-references.jsonl``); its
first N utterances are labelled without their text, as the pipeline labels its real pool. Every
pair labels the same clips in this one process, one after another, each model converted and
warmed up on two clips first, so that the times compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from itertools import islice
from pathlib import Path

from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.families import load_recogniser
from voxdistill.runtime import Runtime
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.teacher.filters import LabelFilters
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

from _common import Column, Stopwatch, Table, run

DEFAULT_PAIRS = ("bundled:whisper-tiny.en@torch:float32", "bundled:whisper-tiny.en@ct2:int8",
                 "bundled:whisper-base@torch:float32", "bundled:whisper-base@ct2:int8")


def parse_pair(text: str) -> tuple[str, Runtime]:
    teacher, _, runtime = text.partition("@")
    backend, _, compute_type = runtime.partition(":")
    return teacher, Runtime.of(backend or "torch", compute_type or None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references", type=Path)
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), metavar="TEACHER@BACKEND:TYPE")
    parser.add_argument("--filters-no-speech-alone", action="store_true", default=True)
    args = parser.parse_args()

    utterances = [u.resolved(args.references.parent) for u in islice(read_manifest(args.references), args.utterances)]
    references = {u.id: u.text for u in utterances}
    seconds = sum(u.duration for u in utterances)
    filters = LabelFilters(no_speech_alone=args.filters_no_speech_alone)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        unlabelled = Path(tmp) / "unlabelled.jsonl"
        write_manifest(unlabelled, (dataclasses.replace(u, text=None) for u in utterances))
        warm = Path(tmp) / "warm.jsonl"
        write_manifest(warm, (dataclasses.replace(u, text=None) for u in utterances[:2]))
        for index, pair in enumerate(args.pairs):
            teacher, runtime = parse_pair(pair)
            load_recogniser(teacher, runtime)  # converts into the cache once, outside the timing
            run_pseudo_label(PseudoLabelConfig(teacher, warm, Path(tmp) / f"warm-{index}", runtime=runtime),
                             progress=False)
            with Stopwatch() as watch:
                summary = run_pseudo_label(PseudoLabelConfig(teacher, unlabelled, Path(tmp) / f"labels-{index}",
                                                             runtime=runtime, filters=filters), progress=False)
            elapsed = watch.seconds
            folder = Path(tmp) / f"labels-{index}"
            kept = {u.id: u.text for u in read_manifest(folder / "pseudo_labels.jsonl")}
            dropped = {u.id: u.text for u in read_manifest(folder / "dropped.jsonl")} if summary.dropped else {}
            labels = kept | dropped
            ids = list(references)
            rows.append((pair, elapsed, len(ids) / elapsed, elapsed / seconds,
                         word_error_rate([references[i] for i in ids], [labels[i] for i in ids]),
                         word_error_rate([references[i] for i in kept], [kept[i] for i in kept]) if kept else None,
                         summary.dropped))
    print(f"{len(utterances)} utterances, {seconds / 60:.1f} min of audio, labelled with top-16 rows; WER of the labels "
          f"against the references, all and after the filters")
    table = Table(Column("teacher@runtime", width=44, left=True), Column("seconds", ".1f", 8),
                  Column("utt/s", ".2f", 6), Column("RTF", ".3f", 6), Column("WER all", ".1%", 8),
                  Column("WER kept", ".1%", 9), Column("dropped", "d", 8))
    print(table.format(rows))


if __name__ == "__main__":
    run(main)
