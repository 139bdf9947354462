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

from voxdistill.cli import filter_arguments, label_filters
from voxdistill.data.manifest import read_manifest
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.teacher.filters import REASONS, SIGNALS


def pseudo_labels(folder: Path) -> list[dict]:
    """Every labelled record of the folder, kept and dropped."""
    records = [json.loads(line) for name in ("pseudo_labels.jsonl", "dropped.jsonl")
               for line in (folder / name).read_text().splitlines()]
    if records and not set(SIGNALS) <= set(records[0]):
        raise SystemExit(f"{folder}: its records lack {', '.join(SIGNALS)} (an older voxdistill); label again")
    return records


def wer(rows: list[tuple[str, str]]) -> str:
    return f"{word_error_rate(*zip(*rows)):.1%}" if rows else "-"


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
    print(f"{len(records)} labels, WER {wer([pair for _, pair in labelled])}; filters {filters}")
    print(f"{'filter':18} {'dropped':>8} {'share':>6} {'WER kept':>9} {'WER dropped':>12}")
    for name, drops in rules.items():
        dropped = [pair for reasons, pair in labelled if drops(reasons)]
        kept = [pair for reasons, pair in labelled if not drops(reasons)]
        print(f"{name:18} {len(dropped):8} {len(dropped) / max(len(records), 1):6.1%} {wer(kept):>9} {wer(dropped):>12}")


if __name__ == "__main__":
    main()
