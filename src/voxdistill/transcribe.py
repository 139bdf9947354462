"""Transcription by any recogniser: audio of any length in, text out, in batches; long audio in
chunks cut at pauses (`long_audio`). Decoding itself is the recogniser's (`runtime`; for Whisper in
PyTorch, `decoding`), with the same `DecodingOptions` for teacher and student.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from voxdistill.audio import load_audio
from voxdistill.data.manifest import Utterance, read_manifest
from voxdistill.decoding import DecodingOptions
from voxdistill.long_audio import merge_transcripts, plan_chunks
from voxdistill.models.loading import Whisper
from voxdistill.runtime import Recogniser, generate_tokens, text_of, window_samples
from voxdistill.runtime.loading import as_recogniser


def transcribe_audio(
    model: Whisper | Recogniser, audios: Sequence[np.ndarray], options: DecodingOptions = DecodingOptions(),
    progress: bool = False,
) -> list[str]:
    """One transcript per 16 kHz mono signal, by a loaded Whisper or a recogniser of any runtime.
    Signals longer than the model's window (30 s for Whisper, shorter for some students) are
    transcribed whole, in chunks cut at pauses (overlapping where there is none) whose transcripts
    are merged at the seams (`voxdistill.long_audio`)."""
    recogniser = as_recogniser(model)
    plans = [plan_chunks(audio, window_samples(recogniser)) for audio in audios]
    chunks = [(i, audio[c.start : c.end]) for i, (audio, plan) in enumerate(zip(audios, plans)) for c in plan]
    pieces: list[list[str]] = [[] for _ in audios]
    batches = range(0, len(chunks), options.batch_size)
    for start in tqdm(batches, desc="transcribe", unit="batch", disable=not progress):
        batch = chunks[start : start + options.batch_size]
        tokens = generate_tokens(recogniser, [c for _, c in batch], options)
        for (i, _), ids in zip(batch, tokens):
            pieces[i].append(text_of(recogniser, ids))
    return [merge_transcripts(parts, plan) for parts, plan in zip(pieces, plans)]


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
