"""Do the reference-free pseudo-label filters drop bad labels and keep good ones? For a
pseudo-label folder (`voxdistill pseudo-label`) and a manifest of references for the same ids, each
filter alone and all together: the utterances it drops, and the WER against the references of the
labels it keeps and of those it drops. The filters are applied afresh from the values every record
holds, at the thresholds given here (those of ``voxdistill pseudo-label``, Whisper's by default), to
every record, referenced or not: no relabelling to compare settings.

    .venv/bin/python benchmarks/label_filters.py runs/pseudo references.jsonl [--logprob-threshold -0.8 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from voxdistill.cli.options import filter_arguments, label_filters
from voxdistill.data.manifest import read_manifest
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.teacher.filters import REASONS, SIGNALS

from _common import Column, Table, run


def pseudo_labels(folder: Path) -> list[dict]:
    """Every labelled record of the folder, kept and dropped."""
    records = [json.loads(line) for name in ("pseudo_labels.jsonl", "dropped.jsonl")
               for line in (folder / name).read_text().splitlines()]
    if records and not set(SIGNALS) <= set(records[0]):
        raise SystemExit(f"{folder}: its records lack {', '.join(SIGNALS)} (an older voxdistill); label again")
    return records


def wer(rows: list[tuple[str, str]]) -> float | None:
    return word_error_rate(*zip(*rows)) if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a pseudo-label output folder")
    parser.add_argument("references", type=Path, help="manifest with the reference text of the same ids")
    filter_arguments(parser)
    args = parser.parse_args()
    filters = label_filters(args)
    references = {u.id: u.text for u in read_manifest(args.references) if u.text is not None}
    # The labels that have a reference elsewhere (e.g. the pipeline's real pool among its synthetic
    # clips, packed clips and pieces); the others cannot be scored.
    records = [r for r in pseudo_labels(args.folder) if r["id"] in references]
    if not records:
        raise SystemExit(f"{args.references} has reference text for none of the labels in {args.folder}")
    labelled = [(filters.reasons(r), (references[r["id"]], r["text"])) for r in records]
    rules = {reason: (lambda reasons, reason=reason: reason in reasons) for reason in REASONS}
    rules["all"] = bool
    print(f"{len(records)} labels, WER {wer([pair for _, pair in labelled]):.1%}; filters {filters}")
    table = Table(Column("filter", width=18, left=True), Column("dropped", "d", 8), Column("share", ".1%", 6),
                  Column("WER kept", ".1%"), Column("WER dropped", ".1%"))
    rows = []
    for name, drops in rules.items():
        dropped = [pair for reasons, pair in labelled if drops(reasons)]
        kept = [pair for reasons, pair in labelled if not drops(reasons)]
        rows.append((name, len(dropped), len(dropped) / len(records), wer(kept), wer(dropped)))
    print(table.format(rows))


if __name__ == "__main__":
    run(main)
