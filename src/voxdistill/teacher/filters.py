"""Reference-free pseudo-label filters: whether to trust a teacher's transcript of audio that has no
reference to score it against.

Every pseudo-label record holds four signals (`SIGNALS`): the teacher's ``avg_logprob`` and
``no_speech_prob`` (measured while it decodes, `decoding.Decoded`), the transcript's
``compression_ratio`` and its ``repeated_ngrams`` (the looping signal of `scoring.metrics`).
`LabelFilters` turns them into drop reasons with the rules and defaults of Whisper's own
transcriber (``whisper.transcribe``), where a window that fails them is decoded again at a higher
temperature or, for the no-speech rule, skipped as silence; a pseudo-labeller has no second try, so
it drops the utterance. They read only the record, so other thresholds need no relabelling, with one
exception: the labeller asks Silero VAD about a clip only when its no-speech probability is above the
no-speech threshold of the labelling run (the record's ``vad_speech``), so a lower threshold later
finds no VAD verdict on the clips between the two and judges them by Whisper's rule alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxdistill.errors import VoxdistillError
from voxdistill.scoring.metrics import basic_normalize, compression_ratio, text_repeats

SIGNALS = ("avg_logprob", "no_speech_prob", "compression_ratio", "repeated_ngrams")
REASONS = ("empty", "compression_ratio", "repeated_ngrams", "avg_logprob", "no_speech")  # in the order checked


class LabelFilterError(VoxdistillError):
    """A filter threshold outside the range of its signal."""


def label_signals(text: str, avg_logprob: float, no_speech_prob: float) -> dict:
    """The `SIGNALS` of one pseudo-label, as its record stores them."""
    return {"avg_logprob": round(avg_logprob, 4), "no_speech_prob": round(no_speech_prob, 4),
            "compression_ratio": round(compression_ratio(text), 4),
            "repeated_ngrams": text_repeats(text)}


@dataclass(frozen=True)
class LabelFilters:
    """When to drop a pseudo-label without a reference; None turns a rule off."""

    compression_ratio_threshold: float | None = 2.4  # above: a loop (Whisper's default)
    logprob_threshold: float | None = -1.0  # avg_logprob below: the teacher unsure of it (Whisper's default)
    # no_speech_prob above, and avg_logprob not above logprob_threshold (alone when that is None): no
    # speech, Whisper's silence rule and default. Above it and confident: no speech when Silero VAD,
    # which the labeller runs on such clips (the record's ``vad_speech``), heard none.
    no_speech_threshold: float | None = 0.6
    # The no-speech rule without its log-probability condition: also drops what the teacher hears in
    # silence with confidence (tiny.en: "you" at avg_logprob -0.4 on digital silence).
    no_speech_alone: bool = False
    # Word 3-grams repeated beyond their first, above: looping too short for the compression ratio to
    # see ("thank you" four times has 4). Real sentences reach 3 ("the size of the drops" twice).
    repeated_ngram_threshold: int | None = 3
    drop_empty: bool = True  # a transcript without words: "", "...", "♪"

    def __post_init__(self):
        problems = [f"{name} {value}" for name, value, ok in (
            ("compression_ratio_threshold", self.compression_ratio_threshold, lambda v: v > 0),
            ("logprob_threshold", self.logprob_threshold, lambda v: v <= 0),
            ("no_speech_threshold", self.no_speech_threshold, lambda v: 0 <= v <= 1),
            ("repeated_ngram_threshold", self.repeated_ngram_threshold, lambda v: v >= 0),
        ) if value is not None and not ok(value)]
        if problems:
            raise LabelFilterError(f"{', '.join(problems)}: a compression ratio threshold is > 0, a log-probability "
                                   f"one <= 0, a no-speech probability one in [0, 1], a repeated n-gram count >= 0")

    def reasons(self, record: dict) -> list[str]:
        """The rules that ``record`` (its ``text`` and `SIGNALS`) fails, in `REASONS` order; [] keeps it."""
        failed = []
        if self.drop_empty and not basic_normalize(record["text"]):
            failed.append("empty")
        if self.compression_ratio_threshold is not None and record["compression_ratio"] > self.compression_ratio_threshold:
            failed.append("compression_ratio")
        if self.repeated_ngram_threshold is not None and record["repeated_ngrams"] > self.repeated_ngram_threshold:
            failed.append("repeated_ngrams")
        confident = (not self.no_speech_alone and self.logprob_threshold is not None
                     and record["avg_logprob"] > self.logprob_threshold)
        if self.logprob_threshold is not None and record["avg_logprob"] < self.logprob_threshold:
            failed.append("avg_logprob")
        doubted = self.no_speech_threshold is not None and record["no_speech_prob"] > self.no_speech_threshold
        if doubted and (not confident or record.get("vad_speech") is False):
            failed.append("no_speech")
        return failed
