"""Word and character error rates.

Error rates are corpus-level: total edits over total reference units, not a mean of per-utterance
rates (which over-weights short utterances). Alignments are jiwer's (one implementation for the
scores and the report's marked transcripts).
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

import jiwer

from voxdistill.scoring.normalize import RULES_VERSION, british_to_american, normalize_english

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


AlignedPair = tuple[str, str | None, str | None]  # (op, reference token, hypothesis token)


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> list[AlignedPair]:
    """jiwer's minimum-edit alignment of two token sequences (words or characters), as (op,
    reference token, hypothesis token) in order; op is "ok", "sub", "del" (a reference token
    missing) or "ins" (a hypothesis token extra). Among equally cheap alignments jiwer takes
    substitutions, so an insertion is a word the model added, not half of a substitution."""
    if not reference or not hypothesis:
        return [("del", r, None) for r in reference] + [("ins", None, h) for h in hypothesis]
    # jiwer aligns whitespace-separated words; any token (a space, a character) becomes one.
    names: dict[str, str] = {}

    def spelled(tokens: Sequence[str]) -> str:
        return " ".join(names.setdefault(t, f"t{len(names)}") for t in tokens)

    output = jiwer.process_words(spelled(reference), spelled(hypothesis))
    pairs: list[AlignedPair] = []
    for chunk in output.alignments[0]:
        ref = reference[chunk.ref_start_idx : chunk.ref_end_idx]
        hyp = hypothesis[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type in ("equal", "substitute"):
            pairs += [("ok" if chunk.type == "equal" else "sub", r, h) for r, h in zip(ref, hyp)]
        elif chunk.type == "delete":
            pairs += [("del", r, None) for r in ref]
        else:
            pairs += [("ins", None, h) for h in hyp]
    return pairs


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> EditCounts:
    """The errors of `align`, split into S, D and I."""
    ops = Counter(op for op, _, _ in align(reference, hypothesis))
    return EditCounts(ops["sub"], ops["del"], ops["ins"], len(reference))


def scoring_identity() -> dict:
    """What scores depend on besides the transcripts: the aligner's and the normaliser's versions and
    the spelling table, so that a stored evaluation is redone when any of them changes."""
    table = json.dumps(british_to_american(), sort_keys=True).encode()
    return {"jiwer": metadata.version("jiwer"), "transformers": metadata.version("transformers"),
            "spelling_table_sha256": hashlib.sha256(table).hexdigest(), "normalizer_rules": RULES_VERSION}


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


def compression_ratio(text: str) -> float:
    """UTF-8 bytes of ``text`` over bytes of their zlib compression, as Whisper computes it: a
    transcript stuck in a loop compresses well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def repeated_ngrams(words: Sequence[str], n: int = 3) -> int:
    """Occurrences of word n-grams beyond their first: 0 for ordinary speech, large for a decoder
    stuck in a loop ("the the the the" has 1 for n = 3)."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) - len(set(grams))


def text_repeats(text: str, n: int = 3, normalize=normalize_english) -> int:
    """`repeated_ngrams` of a transcript's normalised words: the looping signal that needs no
    reference (the pseudo-label filters and the checks on every decoded window read it)."""
    return repeated_ngrams(normalize(text).split(), n)


def loops(reference: str, hypothesis: str, n: int = 3, normalize=normalize_english) -> bool:
    """Hallucination signal: the transcript repeats some word n-gram more than its reference does."""
    return text_repeats(hypothesis, n, normalize) > text_repeats(reference, n, normalize)


def _total(references: Sequence[str], hypotheses: Sequence[str], units) -> EditCounts:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    total = EditCounts(0, 0, 0, 0)
    for ref, hyp in zip(references, hypotheses):
        total = total + edit_counts(units(ref), units(hyp))
    return total
