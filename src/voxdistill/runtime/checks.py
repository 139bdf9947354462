"""Whisper's transcriber's safeguards around each decoded window, for every runtime: silence gives
an empty transcript, a loop or a transcript the model doubts is decoded again at a higher
temperature (`decoding.SpeechChecks` holds the rules and their defaults).

Each clip's outcome is one of `DECISIONS`, which ``evaluate`` writes beside every hypothesis:

- ``speech``: the first decoding passed every rule;
- ``fallback``: it failed (a loop: a compression ratio above the threshold or more repeated word
  3-grams than allowed; or a mean log-probability below the threshold) and a decoding sampled at a
  higher temperature passed;
- ``no_speech``: Whisper's silence rule (no-speech probability above its threshold and mean
  log-probability below its own): empty;
- ``no_speech_vad``: the model doubted (a no-speech probability above the threshold, or no
  temperature passed) and Silero VAD found no speech in the clip: empty;
- ``unsure``: no temperature passed and VAD heard speech (or is off): of the decodings that did not
  loop (all of them, if each did), the one of highest mean log-probability is kept, as faster-whisper
  keeps it (openai-whisper keeps the last, sampled at the highest temperature: on a spoken digit the
  teacher doubts, that is invented text);
- ``unchecked``: a model without the confidence signals (a CTC student), decoded once.

A clip that passes at once costs nothing more than its decoding: the signals come with it (one
more row of the output projection), and VAD runs only on the clips a model doubts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from voxdistill.audio import SAMPLE_RATE
from voxdistill.decoding import Decoded, DecodingOptions, SpeechChecks
from voxdistill.runtime import Recogniser, by_padded_length, text_of
from voxdistill.scoring.metrics import basic_normalize, compression_ratio, text_repeats

DECISIONS = ("speech", "fallback", "no_speech", "no_speech_vad", "unsure", "unchecked")
EMPTY_DECISIONS = ("no_speech", "no_speech_vad")


@dataclass(frozen=True)
class Checked:
    """One clip's transcript tokens and how the checks decided them."""

    tokens: list[int]
    decision: str  # one of DECISIONS
    temperature: float  # of the decoding kept
    avg_logprob: float | None = None  # None: a model without confidence signals
    no_speech_prob: float | None = None
    looping: bool = False  # its compression ratio or repeated word 3-grams are above the thresholds


def decode_checked(recogniser: Recogniser, audios: Sequence[np.ndarray], options: DecodingOptions) -> list[Checked]:
    """Each clip (each within the model's window) decoded with ``options`` and its ``checks``."""
    def run(group: list[int]) -> list[Checked]:
        return _checked_group(recogniser, [audios[i] for i in group], options)

    return by_padded_length(recogniser, audios, run)


def _seconds(clips: Sequence[np.ndarray]) -> float:
    return max(len(c) for c in clips) / SAMPLE_RATE


def _checked_group(recogniser: Recogniser, clips: list[np.ndarray], options: DecodingOptions) -> list[Checked]:
    """`decode_checked` for clips the model pads alike."""
    if not recogniser.scores_transcripts:
        return [Checked(tokens, "unchecked", options.temperature)
                for tokens in recogniser.decode(recogniser.encode(clips), options, _seconds(clips))]
    checks = options.checks
    decoded = recogniser.decode_scored(recogniser.encode(clips), options, _seconds(clips))
    results = [_judge(recogniser, checks, d, options.temperature) for d in decoded]
    tried = [[r] for r in results]  # every decoding of each clip, for those no temperature passes
    encoded = {}  # of each clip sampled again, encoded once for all the temperatures it is tried at
    for temperature in checks.temperatures:
        again = [i for i, r in enumerate(results) if r.decision == "unsure"]
        if not again:
            break
        # One clip at a time: a sampled draw then depends on the clip alone, not on which other clips
        # of its batch needed sampling too (the seed is per call; in CTranslate2, per copy of the model
        # loaded for the call), so a clip's transcript is the same at every batch size and beside any
        # other clips. Few clips get here.
        for i in again:
            if i not in encoded:
                encoded[i] = recogniser.encode([clips[i]])
            decoded = recogniser.decode_scored(encoded[i], replace(options, temperature=temperature),
                                               _seconds([clips[i]]))[0]
            results[i] = _judge(recogniser, checks, decoded, temperature)
            tried[i].append(results[i])
    results = [_most_likely(candidates) if r.decision == "unsure" else r for r, candidates in zip(results, tried)]
    return [_confirmed(checks, result, clip) for result, clip in zip(results, clips)]


def _most_likely(candidates: list[Checked]) -> Checked:
    """Of decodings none of which passed, the one of highest mean log-probability among those that do
    not loop (among all, if each does)."""
    return max([c for c in candidates if not c.looping] or candidates, key=lambda c: c.avg_logprob)


def _judge(recogniser: Recogniser, checks: SpeechChecks, decoded: Decoded, temperature: float) -> Checked:
    """Whisper's rules on one decoding: silence, or whether it needs a higher temperature."""
    signals = {"avg_logprob": decoded.avg_logprob, "no_speech_prob": decoded.no_speech_prob}
    unsure_of_it = checks.logprob_threshold is not None and decoded.avg_logprob < checks.logprob_threshold
    if checks.no_speech_threshold is not None and decoded.no_speech_prob > checks.no_speech_threshold and (
            checks.logprob_threshold is None or unsure_of_it):
        return Checked([], "no_speech", temperature, **signals)
    text = text_of(recogniser, decoded.tokens)
    looping = (checks.compression_ratio_threshold is not None
               and compression_ratio(text) > checks.compression_ratio_threshold) or (
        checks.repeated_ngram_threshold is not None and text_repeats(text) > checks.repeated_ngram_threshold)
    decision = "unsure" if looping or unsure_of_it else "speech" if temperature == 0 else "fallback"
    # A transcript without a word (".", "♪") is empty: what a model writes for a sound it cannot name.
    tokens = decoded.tokens if basic_normalize(text) else []
    return Checked(tokens, decision, temperature, **signals, looping=looping)


def _confirmed(checks: SpeechChecks, result: Checked, clip: np.ndarray) -> Checked:
    """``result``, or an empty transcript when the model doubts there is speech and VAD finds none."""
    doubted = result.decision == "unsure" or (
        result.decision in ("speech", "fallback") and checks.no_speech_threshold is not None
        and result.no_speech_prob > checks.no_speech_threshold)
    if checks.vad and doubted and not holds_speech(clip, checks.vad_threshold):
        return replace(result, tokens=[], decision="no_speech_vad")
    return result


def holds_speech(clip: np.ndarray, threshold: float = 0.5) -> bool:
    """Whether Silero VAD (the model faster-whisper ships, run by onnxruntime) finds any speech in a
    16 kHz clip at speech probability ``threshold``; faster-whisper loads the model once a process."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(np.asarray(clip, dtype=np.float32), VadOptions(threshold=threshold)))

