"""Word and character error rates.

Error rates are corpus-level: total edits over total reference units, not a mean of per-utterance
rates (which over-weights short utterances).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voxdistill.evaluation.normalize import normalize_english

_PUNCTUATION = re.compile(r"[^\w\s']|_")


def basic_normalize(text: str) -> str:
    """Lower case, punctuation removed (apostrophes kept inside words), whitespace collapsed."""
    text = _PUNCTUATION.sub(" ", text.lower())
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class EditCounts:
    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.reference_length + other.reference_length)


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> EditCounts:
    """Minimum-edit alignment of two token sequences, with its errors split into S, D and I."""
    # cost[j] = (errors, subs, dels, ins) aligning reference[:i] with hypothesis[:j]
    prev = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_token in enumerate(reference, start=1):
        cur = [(i, 0, i, 0)]
        for j, hyp_token in enumerate(hypothesis, start=1):
            diag = prev[j - 1]
            if ref_token == hyp_token:
                best = diag
            else:
                best = min(
                    (diag[0] + 1, diag[1] + 1, diag[2], diag[3]),
                    (prev[j][0] + 1, prev[j][1], prev[j][2] + 1, prev[j][3]),
                    (cur[j - 1][0] + 1, cur[j - 1][1], cur[j - 1][2], cur[j - 1][3] + 1),
                )
            cur.append(best)
        prev = cur
    _, subs, dels, ins = prev[-1]
    return EditCounts(subs, dels, ins, len(reference))


def word_edits(references: Sequence[str], hypotheses: Sequence[str], normalize=normalize_english) -> EditCounts:
    """Summed word-level edits of normalised transcripts."""
    return _total(references, hypotheses, lambda s: normalize(s).split())


def char_edits(references: Sequence[str], hypotheses: Sequence[str], normalize=normalize_english) -> EditCounts:
    """Summed character-level edits of normalised transcripts (spaces count as characters)."""
    return _total(references, hypotheses, lambda s: list(normalize(s)))


def error_rate(counts: EditCounts) -> float:
    return counts.errors / max(counts.reference_length, 1)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], normalize=normalize_english) -> float:
    return error_rate(word_edits(references, hypotheses, normalize))


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str], normalize=normalize_english) -> float:
    return error_rate(char_edits(references, hypotheses, normalize))


def repeated_ngrams(words: Sequence[str], n: int = 3) -> int:
    """Occurrences of word n-grams beyond their first: 0 for ordinary speech, large for a decoder
    stuck in a loop ("the the the the" has 1 for n = 3)."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) - len(set(grams))


def loops(reference: str, hypothesis: str, n: int = 3, normalize=normalize_english) -> bool:
    """Hallucination signal: the transcript repeats some word n-gram more than its reference does."""
    return repeated_ngrams(normalize(hypothesis).split(), n) > repeated_ngrams(normalize(reference).split(), n)


def _total(references: Sequence[str], hypotheses: Sequence[str], units) -> EditCounts:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    total = EditCounts(0, 0, 0, 0)
    for ref, hyp in zip(references, hypotheses):
        total = total + edit_counts(units(ref), units(hyp))
    return total
