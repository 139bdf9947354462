"""Transcription by any recogniser: audio of any length in, text out, in batches; long audio in
chunks cut at pauses (`long_audio`). Decoding itself is the recogniser's (`runtime`; for Whisper in
PyTorch, `decoding`), with the same `DecodingOptions` for teacher and student.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from voxdistill.audio import load_audio
from voxdistill.data.manifest import Utterance, read_manifest
from voxdistill.decoding import DecodingOptions
from voxdistill.long_audio import merge_transcripts, plan_chunks
from voxdistill.models.loading import Whisper
from voxdistill.runtime import Recogniser, text_of, window_samples
from voxdistill.runtime.checks import decode_checked
from voxdistill.runtime.loading import as_recogniser


@dataclass(frozen=True)
class Transcript:
    """One signal's transcript and, for each window it was decoded in, how the checks decided it
    (`runtime.checks.DECISIONS`)."""

    text: str
    decisions: list[str]


def transcribe_checked(
    model: Whisper | Recogniser, audios: Sequence[np.ndarray], options: DecodingOptions = DecodingOptions(),
    progress: bool = False,
) -> list[Transcript]:
    """One transcript per 16 kHz mono signal, by a loaded Whisper or a recogniser of any runtime, each
    window decoded under ``options.checks`` (`runtime.checks`). Signals longer than the model's window
    (30 s for Whisper, shorter for some students) are transcribed whole, in chunks cut at pauses
    (overlapping where there is none) whose transcripts are merged at the seams
    (`voxdistill.long_audio`)."""
    recogniser = as_recogniser(model)
    plans = [plan_chunks(audio, window_samples(recogniser)) for audio in audios]
    chunks = [(i, audio[c.start : c.end]) for i, (audio, plan) in enumerate(zip(audios, plans)) for c in plan]
    pieces: list[list[str]] = [[] for _ in audios]
    decisions: list[list[str]] = [[] for _ in audios]
    batches = range(0, len(chunks), options.batch_size)
    for start in tqdm(batches, desc="transcribe", unit="batch", disable=not progress):
        batch = chunks[start : start + options.batch_size]
        for (i, _), checked in zip(batch, decode_checked(recogniser, [c for _, c in batch], options)):
            pieces[i].append(text_of(recogniser, checked.tokens))
            decisions[i].append(checked.decision)
    return [Transcript(merge_transcripts(parts, plan), decided)
            for parts, plan, decided in zip(pieces, plans, decisions)]


def transcribe_audio(
    model: Whisper | Recogniser, audios: Sequence[np.ndarray], options: DecodingOptions = DecodingOptions(),
    progress: bool = False,
) -> list[str]:
    """The texts of `transcribe_checked`."""
    return [t.text for t in transcribe_checked(model, audios, options, progress)]


def transcribe_manifest(
    whisper: Whisper | Recogniser, manifest: str | Path, options: DecodingOptions = DecodingOptions(),
    progress: bool = False,
) -> Iterator[tuple[Utterance, str]]:
    """(utterance, transcript) for every line of a manifest, streamed in batches of
    ``options.batch_size`` utterances (memory does not grow with the manifest)."""
    manifest = Path(manifest)
    utterances = read_manifest(manifest)
    bar = tqdm(desc=f"transcribe {manifest.name}", unit="utt", disable=not progress)
    while batch := list(islice(utterances, options.batch_size)):
        audios = [load_audio(u.audio_path(manifest.parent), long_audio="split") for u in batch]
        yield from zip(batch, transcribe_audio(whisper, audios, options))
        bar.update(len(batch))
    bar.close()
