"""Transcription with a loaded Whisper model: audio windows in, text out, in batches.

Decoding settings live in one frozen dataclass so that teacher and student are always decoded the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from voxdistill.audio import load_audio
from voxdistill.data.dataset import log_mel as features_of
from voxdistill.data.manifest import Utterance, read_manifest
from voxdistill.long_audio import merge_transcripts, plan_chunks
from voxdistill.models.loading import Whisper
from voxdistill.runtime import Recogniser, as_recogniser, text_of, window_samples
from voxdistill.runtime import generate_tokens


@dataclass(frozen=True)
class DecodingOptions:
    num_beams: int = 1  # 1 = greedy
    max_new_tokens: int = 224  # per 30 s window; half the decoder's 448 positions, as Whisper does
    language: str = "en"  # used by multilingual models only
    batch_size: int = 8  # windows per forward pass
    # Cap on decoding steps per second of audio (plus a margin of 10): speech runs at 3-5 tokens/s,
    # so this only stops runaway repetition loops, which would otherwise stall a whole batch for
    # max_new_tokens steps. None: max_new_tokens alone.
    max_tokens_per_second: float | None = 8.0

    def token_budget(self, audio_seconds: float) -> int:
        """Decoding steps allowed for a batch whose longest clip lasts ``audio_seconds``."""
        if self.max_tokens_per_second is None:
            return self.max_new_tokens
        return min(self.max_new_tokens, math.ceil(audio_seconds * self.max_tokens_per_second) + 10)

    def __post_init__(self):
        if self.num_beams < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError(f"decoding options must be positive: {self}")


def prompt_tokens(whisper: Whisper, language: str = "en") -> list[int]:
    """The decoder prompt for plain transcription without timestamps."""
    gen = whisper.model.generation_config
    tokens = [gen.decoder_start_token_id]
    if whisper.multilingual:
        tokens += [gen.lang_to_id[f"<|{language}|>"], gen.task_to_id["transcribe"]]
    return tokens + [gen.no_timestamps_token_id]


def text_tokens(tokenizer, text: str) -> list[int]:
    """Token ids of a transcript as Whisper writes it after its prompt: with a space before the first
    word. One function, so that the teacher's cached rows along a reference and the student's labels
    are the same tokens."""
    return tokenizer(" " + text.strip(), add_special_tokens=False).input_ids


def log_mel(whisper: Whisper, windows: Sequence[np.ndarray]) -> torch.Tensor:
    """(B, n_mels, frames) features of ``whisper``'s own feature extractor (its window, or for a clip-length
    student the longest clip's padded length)."""
    return features_of(whisper.processor.feature_extractor, windows)


@torch.inference_mode()
def encode(whisper: Whisper, features: torch.Tensor) -> BaseModelOutput:
    """Encoder states (B, frames/2, d_model) for log-mel ``features`` (B, n_mels, frames)."""
    return whisper.model.model.encoder(features.to(whisper.model.device, whisper.model.dtype))


@torch.inference_mode()
def decode_tokens(whisper: Whisper, encoder_outputs: BaseModelOutput, options: DecodingOptions,
                  audio_seconds: float) -> list[list[int]]:
    """Text token ids (prompt and end-of-text removed) decoded from encoder states of clips whose
    longest lasts ``audio_seconds``. Greedy decoding runs `greedy_decode`; beam search runs
    transformers' ``generate``."""
    max_new_tokens = options.token_budget(audio_seconds)
    if options.num_beams == 1:
        out = greedy_decode(whisper, encoder_outputs.last_hidden_state, prompt_tokens(whisper, options.language),
                            max_new_tokens)
    else:
        kwargs = {"language": options.language, "task": "transcribe"} if whisper.multilingual else {}
        out = whisper.model.generate(
            encoder_outputs=encoder_outputs,
            num_beams=options.num_beams,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            return_timestamps=False,
            # One decoding pass per window. Without this, a transcript that happens to contain two
            # timestamp tokens (an untrained student can emit them) makes transformers seek inside
            # the window and decode again, which fails on encoder states given without features.
            force_unique_generate_call=True,
            **kwargs,
        ).tolist()
    eot = whisper.model.generation_config.eos_token_id
    special_start = whisper.model.generation_config.decoder_start_token_id
    return [[t for t in row if t != eot and t < special_start] for row in out]


@torch.inference_mode()
def greedy_decode(whisper: Whisper, encoder_states: torch.Tensor, prompt: Sequence[int],
                  max_new_tokens: int) -> list[list[int]]:
    """Greedy decoding after ``prompt`` for a batch of encoder states (B, positions, d_model): the
    tokens up to and including end-of-text, or ``max_new_tokens`` of them.

    The same tokens as ``generate(num_beams=1)`` with the model's generation config (its suppressed
    tokens at every step and, at the first, its begin-suppressed ones; tested), without its per-step
    machinery: on a CPU, the logits processors, stopping criteria and bookkeeping of ``generate`` cost
    about as much per token as a small decoder's layers, and they cost the teacher and a student
    alike, which hides what a shallower decoder saves. Here each step is the decoder with its
    key-value cache, the output projection of the last position only, and an argmax."""
    model = whisper.model
    gen = model.generation_config
    batch, device = encoder_states.shape[0], encoder_states.device
    suppress = torch.tensor(list(gen.suppress_tokens or []), dtype=torch.long, device=device)
    begin_suppress = torch.tensor(list(gen.begin_suppress_tokens or []), dtype=torch.long, device=device)
    eot = gen.eos_token_id
    step_ids = torch.tensor([list(prompt)] * batch, dtype=torch.long, device=device)
    decoder = model.model.decoder if whisper.decoder_call is None else whisper.decoder_call
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    steps: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        hidden = decoder(input_ids=step_ids, encoder_hidden_states=encoder_states,
                         cache=cache, use_cache=True).last_hidden_state
        logits = model.proj_out(hidden[:, -1])
        logits[:, suppress] = -math.inf
        if step == 0:
            logits[:, begin_suppress] = -math.inf
        tokens = torch.where(finished, eot, logits.argmax(dim=-1))
        steps.append(tokens)
        finished |= tokens == eot
        if bool(finished.all()):
            break
        step_ids = tokens[:, None]
    return torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(batch)]


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
