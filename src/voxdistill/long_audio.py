"""Audio longer than a model's window, transcribed whole: chunks cut at pauses, overlapping where
there is no pause, and their transcripts merged where they agree.

Whisper sees a fixed window (30 s for the teachers, less for students with a shorter window). Cutting
a long recording into consecutive windows breaks the words at each seam, a model decoding a window
that ends mid-word tends to garble it or loop on it, and one that starts mid-sentence may skip what
follows. So:

1. **Plan** (`plan_chunks`): each chunk is at most one window long and ends in the middle of the latest
   pause in the second half of its window; the next chunk starts there. Where there is no pause (fast speech,
   loud noise), a chunk ends at its quietest moment and the next one starts a few seconds earlier, so
   the two share some speech. Every sample is in some chunk.
2. **Merge** (`merge_transcripts`): the words spoken in a shared stretch appear at the end of one
   transcript and at the start of the next. The longest run of words the two agree on there marks the
   seam: words before its middle come from the earlier chunk (for which they are far from the edge),
   words after it from the later one.

This is the chunked form of long-form decoding rather than Whisper's timestamp seeking: it needs no
timestamp tokens, which students distilled on transcripts without timestamps may no longer predict
well, so teacher and student go through the same decoding code.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxdistill.audio import SAMPLE_RATE

FRAME = SAMPLE_RATE // 100  # 10 ms energy frames
SMOOTH_FRAMES = 10  # energy averaged over 100 ms
PAUSE_DB = -20.0  # quiet enough to cut without overlap: this far below the loud (90th percentile) frames
PAUSE_FRAMES = 15  # ... for 150 ms: longer than the closure of a stop consonant
MAX_OVERLAP_SECONDS = 3.0  # audio shared by chunks cut where there is no pause: ~10 words, enough to find the seam


@dataclass(frozen=True)
class Chunk:
    start: int  # first sample
    end: int  # one past the last sample
    overlaps_previous: bool  # starts before the previous chunk's end; its transcript is merged at a seam


def overlap_seconds(window_seconds: float) -> float:
    """Audio shared by chunks of a model with this window cut without a pause: 3 s, or a quarter of a
    short window."""
    return min(MAX_OVERLAP_SECONDS, window_seconds / 4)


def _frame_energy(audio: np.ndarray) -> np.ndarray:
    """Mean power of each 10 ms frame, averaged over the 100 ms around it."""
    n = math.ceil(len(audio) / FRAME)
    padded = np.zeros(n * FRAME, dtype=np.float64)
    padded[: len(audio)] = audio
    power = (padded.reshape(n, FRAME) ** 2).mean(axis=1)
    return np.convolve(power, np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES, mode="same")


def _last_pause(quiet: np.ndarray) -> int | None:
    """Middle frame of the last run of at least PAUSE_FRAMES quiet frames, or None. The middle: a
    pause's edges may hold a soft onset or a fading word."""
    run_end = None
    for i in range(len(quiet) - 1, -1, -1):
        if quiet[i] and run_end is None:
            run_end = i
        elif not quiet[i] and run_end is not None:
            if run_end - i >= PAUSE_FRAMES:
                return (i + 1 + run_end) // 2
            run_end = None
    if run_end is not None and run_end + 1 >= PAUSE_FRAMES:
        return run_end // 2
    return None


def pause_level(energy: np.ndarray) -> float:
    """Frame energy below which a frame counts as quiet: PAUSE_DB under the loud (90th percentile) frames."""
    return float(np.percentile(energy, 90) * 10 ** (PAUSE_DB / 10))


def sounding_spans(audio: np.ndarray, min_pause_frames: int = PAUSE_FRAMES) -> list[tuple[int, int]]:
    """(start, end) samples of each stretch of sound between pauses of at least ``min_pause_frames``
    quiet frames; each span reaches halfway into the pauses around it, so no onset or fading word
    is cut."""
    energy = _frame_energy(audio)
    if not len(energy):
        return []
    quiet = energy <= pause_level(energy)
    cuts, run_start = [0], None
    for i, q in enumerate(quiet):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start >= min_pause_frames and run_start > 0:
                cuts.append((run_start + i) // 2)
            run_start = None
    spans = [(a * FRAME, min(b * FRAME, len(audio))) for a, b in zip(cuts, cuts[1:] + [len(quiet)])]
    return [(a, b) for a, b in spans if b > a and not quiet[a // FRAME : -(-b // FRAME)].all()]


def plan_chunks(audio: np.ndarray, window_samples: int) -> list[Chunk]:
    """Chunks covering ``audio``, each at most ``window_samples`` long. A chunk ends in the middle of the
    latest pause in the second half of its window and the next starts there; where that half holds no pause (fast
    speech, loud noise), the chunk ends at its quietest moment and the next one starts
    `overlap_seconds` earlier, at the quietest moment of the second before. A signal that fits the
    window is one chunk (none if it is empty)."""
    if window_samples <= 0:
        raise ValueError(f"window_samples must be positive, got {window_samples}")
    total = len(audio)
    if total <= window_samples:
        return [Chunk(0, total, False)] if total else []
    overlap = int(overlap_seconds(window_samples / SAMPLE_RATE) * SAMPLE_RATE)
    energy = _frame_energy(audio)
    level = pause_level(energy)
    chunks: list[Chunk] = []
    start, overlapping = 0, False
    while start + window_samples < total:
        first, last = (start + window_samples // 2) // FRAME, (start + window_samples) // FRAME
        pause = _last_pause(energy[first:last] <= level)
        if pause is not None:
            end = (first + pause) * FRAME
            chunks.append(Chunk(start, end, overlapping))
            start, overlapping = end, False
            continue
        end = (first + int(np.argmin(energy[first:last]))) * FRAME
        chunks.append(Chunk(start, end, overlapping))
        target = end - overlap
        lo = max(start + window_samples // 4, target - SAMPLE_RATE) // FRAME  # always advance
        start = (lo + int(np.argmin(energy[lo : max(lo + 1, target // FRAME)]))) * FRAME
        overlapping = True
    chunks.append(Chunk(start, total, overlapping))
    return chunks


_WORD = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    """A word as compared across chunks: case and punctuation do not matter."""
    return _WORD.sub("", word.lower())


def _seam(tail: list[str], head: list[str]) -> tuple[int, int, int] | None:
    """Where ``head`` (the next piece's first words) continues ``tail`` (the last words so far): the
    longest run of words both hold, as (position in tail, position in head, length). A single shared
    word counts only right at the seam (at most two words of either piece beside it), because a common
    word such as "the" also matches by chance. None: nothing shared, as after a silent overlap."""
    match = difflib.SequenceMatcher(None, tail, head, autojunk=False).find_longest_match(0, len(tail), 0, len(head))
    if match.size >= 2 or (match.size == 1 and len(tail) - match.a - 1 + match.b <= 2):
        return match.a, match.b, match.size
    return None


def merge_transcripts(pieces: Sequence[str], chunks: Sequence[Chunk], seam_words: int = 15) -> str:
    """One transcript from those of consecutive chunks. A piece whose chunk overlaps the previous one
    joins it at the seam (`_seam` between the last ``seam_words`` words so far and the piece's first
    ``seam_words``): words before the middle of the shared run come from the earlier piece, the rest
    from the later one. Other pieces, and pieces with nothing shared, are appended."""
    if len(pieces) != len(chunks):
        raise ValueError(f"{len(pieces)} transcripts for {len(chunks)} chunks")
    if len(pieces) == 1:
        return pieces[0]
    words: list[str] = []
    for piece, chunk in zip(pieces, chunks):
        new = piece.split()
        tail_start = max(0, len(words) - seam_words)
        seam = chunk.overlaps_previous and _seam([_key(w) for w in words[tail_start:]],
                                                 [_key(w) for w in new[:seam_words]])
        if not seam:
            words += new
            continue
        a, b, size = seam
        keep = size // 2
        words = words[: tail_start + a + keep] + new[b + keep :]
    return " ".join(words)
