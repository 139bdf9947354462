"""Is a WER change real? The same model's transcripts from two evaluations of the same sets (e.g.
float32 and int8), compared utterance by utterance: the WER difference per set and over all sets,
with a 95% interval from a paired bootstrap over utterances (utterances resampled with
replacement, both sides together, 2,000 times).

    .venv/bin/python benchmarks/paired_wer.py eval-float32/metrics.transcripts.jsonl \\
        eval-int8/metrics.transcripts.jsonl --model askd [--other-model askd]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from voxdistill.scoring.metrics import word_edits

from _common import Column, Table, run


def utterance_edits(path: Path, model: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(set, id) -> (word errors, reference words) of ``model``'s transcript."""
    edits = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        counts = word_edits([row["reference"]], [row["hypotheses"][model]])
        edits[(row["set"], row["id"])] = (counts.errors, counts.reference_length)
    return edits


def interval(a: np.ndarray, b: np.ndarray, words: np.ndarray, rng: np.random.Generator, rounds: int = 2000):
    """WER(b) − WER(a) on the utterances given, and its 2.5th and 97.5th bootstrap percentiles."""
    picks = rng.integers(0, len(words), size=(rounds, len(words)))
    deltas = (b[picks].sum(1) - a[picks].sum(1)) / np.maximum(words[picks].sum(1), 1)
    return (b.sum() - a.sum()) / max(words.sum(), 1), *np.percentile(deltas, [2.5, 97.5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the transcripts file of the first evaluation (METRICS.transcripts.jsonl)")
    parser.add_argument("after", type=Path, help="transcripts.jsonl of the second")
    parser.add_argument("--model", required=True, help="the model's label in the first evaluation")
    parser.add_argument("--other-model", default=None, help="its label in the second (default: the same)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    before = utterance_edits(args.before, args.model)
    after = utterance_edits(args.after, args.other_model or args.model)
    keys = sorted(set(before) & set(after))
    if not keys:
        raise SystemExit("the two evaluations share no utterances")
    rng = np.random.default_rng(args.seed)
    groups = {name: [k for k in keys if k[0] == name] for name in dict.fromkeys(k[0] for k in keys)}
    groups["all"] = keys
    table = Table(Column("set", width=16, left=True), Column("utts", "d", 5), Column("WER before", ".1%"),
                  Column("after", ".1%", 7), Column("change", "+.1f", 7), Column("95% interval", left=True))
    rows = []
    for name, group in groups.items():
        a = np.array([before[k][0] for k in group])
        b = np.array([after[k][0] for k in group])
        words = np.array([before[k][1] for k in group])
        delta, low, high = interval(a, b, words, rng)
        rows.append((name, len(group), a.sum() / words.sum(), b.sum() / words.sum(), delta * 100,
                     f"[{low * 100:+.1f}, {high * 100:+.1f}] points"))
    print(table.format(rows))


if __name__ == "__main__":
    run(main)
