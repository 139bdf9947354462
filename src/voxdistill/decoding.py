"""Decoding a loaded Whisper model in PyTorch: prompt, log-mel, encoder, and the decoding loops
(greedy in voxdistill's lean loop, beam search in transformers' ``generate``), with the confidence
signals Whisper's transcriber filters on. Functions that take a model, as openai/whisper's
``decoding.py``; `runtime.torch_backend` runs them behind the recogniser interface, and
`transcribe` drives any recogniser over audio of any length.

Decoding settings live in one frozen dataclass so that teacher and student are always decoded the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from voxdistill.data.dataset import log_mel as features_of
from voxdistill.errors import VoxdistillError
from voxdistill.models.loading import Whisper

NO_SPEECH_TOKENS = ("<|nospeech|>", "<|nocaptions|>")  # its name in newer and older Whisper vocabularies
# Every sampled decoding in PyTorch starts its draws from this seed; in CTranslate2 only a worker
# thread's first draw does (docs/pipeline.md, checks on every window).
SAMPLING_SEED = 0


@dataclass(frozen=True)
class Decoded:
    """One clip's transcript with the decoder's confidence in it: the signals Whisper's transcriber
    filters its windows on (`teacher.filters`)."""

    tokens: list[int]  # text token ids (prompt, end-of-text and timestamps removed)
    # Mean log-probability of the tokens the decoder emitted, end-of-text included (when it came within
    # the token budget), each under the distribution it was chosen from (after token suppression).
    avg_logprob: float
    no_speech_prob: float  # probability of the no-speech token at the start-of-transcript position


def no_speech_token(tokenizer) -> int:
    """The id of the no-speech token in a Whisper tokenizer's vocabulary."""
    vocabulary = tokenizer.get_vocab()
    for token in NO_SPEECH_TOKENS:
        if token in vocabulary:
            return vocabulary[token]
    raise VoxdistillError(f"the tokenizer has none of {', '.join(NO_SPEECH_TOKENS)}: not a Whisper vocabulary, "
                          f"so there is no no-speech probability to measure")


@dataclass(frozen=True)
class SpeechChecks:
    """Whisper's transcriber's safeguards around each decoded window (`runtime.checks`), with its
    defaults; None turns a rule off.

    A window whose no-speech probability is above ``no_speech_threshold`` while its mean
    log-probability is below ``logprob_threshold`` is silence: an empty transcript. A window whose
    transcript compresses by more than ``compression_ratio_threshold`` or repeats word 3-grams more
    than ``repeated_ngram_threshold`` times beyond their first (a loop; the second catches loops too
    short to compress, "9. 9. 9. 9. 9. 9. 9. 9" for a spoken "nine", with pseudo-label's filters'
    count) or whose mean log-probability is below ``logprob_threshold`` is decoded again by sampling
    at each of ``temperatures`` in turn until one passes. ``vad``: a window the model still doubts (no-speech
    probability above the threshold, or no temperature passed) is given to Silero VAD (the one
    faster-whisper ships) and has an empty transcript when it holds no speech: a model can be sure of
    a word in silence (tiny.en says "you" at mean log-probability -0.4)."""

    no_speech_threshold: float | None = 0.6
    logprob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    repeated_ngram_threshold: int | None = 3
    temperatures: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)  # the fallback; () decodes once
    vad: bool = True
    vad_threshold: float = 0.5  # Silero's speech probability above which a 32 ms frame is speech

    def __post_init__(self):
        problems = [f"{name} {value}" for name, value, ok in (
            ("no_speech_threshold", self.no_speech_threshold, lambda v: 0 <= v <= 1),
            ("logprob_threshold", self.logprob_threshold, lambda v: v <= 0),
            ("compression_ratio_threshold", self.compression_ratio_threshold, lambda v: v > 0),
            ("repeated_ngram_threshold", self.repeated_ngram_threshold, lambda v: v >= 0),
            ("vad_threshold", self.vad_threshold, lambda v: 0 < v < 1),
        ) if value is not None and not ok(value)]
        problems += [f"temperature {t}" for t in self.temperatures if not 0 < t <= 2]
        if problems:
            raise VoxdistillError(f"{', '.join(problems)}: a no-speech threshold is in [0, 1], a log-probability one "
                                  f"<= 0, a compression ratio one > 0, a repeated n-gram count >= 0, the VAD "
                                  f"threshold in (0, 1) and each fallback temperature in (0, 2]")


NO_CHECKS = SpeechChecks(no_speech_threshold=None, logprob_threshold=None, compression_ratio_threshold=None,
                         repeated_ngram_threshold=None, temperatures=(), vad=False)  # each window decoded once, its transcript kept as it is


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
    # Above 0: sample each token at this temperature (one candidate; beam search is then off), as
    # Whisper's fallback does; the draws are seeded, so a run repeats (in CTranslate2 the seed holds per
    # model, not per call: docs/pipeline.md, checks on every window).
    temperature: float = 0.0
    checks: SpeechChecks = SpeechChecks()

    def token_budget(self, audio_seconds: float) -> int:
        """Decoding steps allowed for a batch whose longest clip lasts ``audio_seconds``."""
        if self.max_tokens_per_second is None:
            return self.max_new_tokens
        return min(self.max_new_tokens, math.ceil(audio_seconds * self.max_tokens_per_second) + 10)

    def __post_init__(self):
        if self.num_beams < 1 or self.batch_size < 1 or self.max_new_tokens < 1 or self.temperature < 0:
            raise ValueError(f"decoding options must be positive: {self}")

    @property
    def sampling(self) -> bool:
        return self.temperature > 0


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
    if options.num_beams == 1 or options.sampling:
        out = greedy_decode(whisper, encoder_outputs.last_hidden_state, prompt_tokens(whisper, options.language),
                            max_new_tokens, options.temperature)
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
    return _text_only(whisper, out)


def _text_only(whisper: Whisper, rows: list[list[int]]) -> list[list[int]]:
    """Decoded rows without end-of-text, timestamps and other special tokens."""
    eot = whisper.model.generation_config.eos_token_id
    special_start = whisper.model.generation_config.decoder_start_token_id
    return [[t for t in row if t != eot and t < special_start] for row in rows]


def decode_scored(whisper: Whisper, encoder_states: torch.Tensor, options: DecodingOptions,
                  audio_seconds: float) -> list[Decoded]:
    """`decode_tokens` with each transcript's average log-probability and no-speech probability
    (`Decoded`): greedy decoding measures them as it goes (`greedy_decode_scored`), beam
    search in one teacher-forced pass along the tokens it chose (`score_tokens`)."""
    prompt = prompt_tokens(whisper, options.language)
    no_speech = no_speech_token(whisper.processor.tokenizer)
    if options.num_beams == 1 or options.sampling:
        rows, avg_logprobs, no_speech_probs = greedy_decode_scored(
            whisper, encoder_states, prompt, options.token_budget(audio_seconds), no_speech, options.temperature)
        tokens = _text_only(whisper, rows)
    else:
        tokens = decode_tokens(whisper, BaseModelOutput(last_hidden_state=encoder_states), options, audio_seconds)
        avg_logprobs, no_speech_probs = score_tokens(whisper, encoder_states, prompt, tokens, no_speech)
    return [Decoded(*scored) for scored in zip(tokens, avg_logprobs, no_speech_probs)]


def _suppressed(whisper: Whisper, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens suppressed at every step, tokens suppressed at the first) by the model's generation config."""
    gen = whisper.model.generation_config
    return (torch.tensor(list(gen.suppress_tokens or []), dtype=torch.long, device=device),
            torch.tensor(list(gen.begin_suppress_tokens or []), dtype=torch.long, device=device))


@torch.inference_mode()
def greedy_decode(whisper: Whisper, encoder_states: torch.Tensor, prompt: Sequence[int],
                  max_new_tokens: int, temperature: float = 0.0) -> list[list[int]]:
    """Greedy decoding after ``prompt`` for a batch of encoder states (B, positions, d_model): the
    tokens up to and including end-of-text, or ``max_new_tokens`` of them.

    The same tokens as ``generate(num_beams=1)`` with the model's generation config (its suppressed
    tokens at every step and, at the first, its begin-suppressed ones; tested), without its per-step
    machinery: on a CPU, the logits processors, stopping criteria and bookkeeping of ``generate`` cost
    about as much per token as a small decoder's layers, and they cost the teacher and a student
    alike, which hides what a shallower decoder saves. Here each step is the decoder with its
    key-value cache, the output projection of the last position only, and an argmax (or, at a
    ``temperature`` above 0, a seeded draw)."""
    steps = [tokens for _, _, tokens, _ in _greedy_steps(whisper, encoder_states, prompt, max_new_tokens, temperature)]
    return torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(encoder_states.shape[0])]


@torch.inference_mode()
def greedy_decode_scored(whisper: Whisper, encoder_states: torch.Tensor, prompt: Sequence[int], max_new_tokens: int,
                         no_speech: int, temperature: float = 0.0) -> tuple[list[list[int]], list[float], list[float]]:
    """`greedy_decode`, and per clip Whisper's ``avg_logprob`` (the mean log-probability of the tokens
    emitted, end-of-text included, under the suppressed distribution each was chosen from) and
    ``no_speech_prob`` (the probability of token ``no_speech`` at the start-of-transcript position,
    from the raw logits there). The latter reads the prompt's decoder states that the first step
    computes anyway: one more row of the output projection per clip."""
    steps, logprob_sum, emitted = [], torch.zeros(()), torch.zeros(())
    for hidden, logits, tokens, decoding in _greedy_steps(whisper, encoder_states, prompt, max_new_tokens,
                                                          temperature):
        if not steps:  # the first step fed the prompt, which starts with <|startoftranscript|>
            no_speech_probs = whisper.model.proj_out(hidden[:, 0]).float().softmax(dim=-1)[:, no_speech]
        chosen = torch.log_softmax(logits.float(), dim=-1).gather(1, tokens[:, None])[:, 0]  # (B,)
        logprob_sum = logprob_sum + torch.where(decoding, chosen, 0.0)
        emitted = emitted + decoding
        steps.append(tokens)
    return torch.stack(steps, dim=1).tolist(), (logprob_sum / emitted).tolist(), no_speech_probs.tolist()


def _greedy_steps(whisper: Whisper, encoder_states: torch.Tensor, prompt: Sequence[int], max_new_tokens: int,
                  temperature: float = 0.0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Greedy decoding one step at a time, yielding the decoder states of the positions fed (B, fed,
    d_model), the logits after suppression (B, vocab), the tokens chosen (B,) and which clips were
    still decoding (B,) bool; a finished clip is given end-of-text. At a ``temperature`` above 0 each
    token is drawn from the softmax of the logits over it, from a generator seeded with `SAMPLING_SEED`."""
    model = whisper.model
    batch, device = encoder_states.shape[0], encoder_states.device
    suppress, begin_suppress = _suppressed(whisper, device)
    eot = model.generation_config.eos_token_id
    step_ids = torch.tensor([list(prompt)] * batch, dtype=torch.long, device=device)
    decoder = model.model.decoder if whisper.decoder_call is None else whisper.decoder_call
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    generator = torch.Generator(device).manual_seed(SAMPLING_SEED) if temperature > 0 else None
    for step in range(max_new_tokens):
        hidden = decoder(input_ids=step_ids, encoder_hidden_states=encoder_states,
                         cache=cache, use_cache=True).last_hidden_state
        logits = model.proj_out(hidden[:, -1])
        logits[:, suppress] = -math.inf
        if step == 0:
            logits[:, begin_suppress] = -math.inf
        chosen = (logits.argmax(dim=-1) if generator is None else
                  torch.multinomial((logits.float() / temperature).softmax(dim=-1), 1, generator=generator)[:, 0])
        tokens = torch.where(finished, eot, chosen)
        yield hidden, logits, tokens, ~finished
        finished |= tokens == eot
        if bool(finished.all()):
            break
        step_ids = tokens[:, None]


@torch.inference_mode()
def score_tokens(whisper: Whisper, encoder_states: torch.Tensor, prompt: Sequence[int], sequences: list[list[int]],
                 no_speech: int) -> tuple[list[float], list[float]]:
    """What `greedy_decode_scored` measures, for given transcripts (text tokens, end-of-text appended)
    in one teacher-forced decoder pass with the same token suppression: for transcripts that beam
    search chose."""
    eot = whisper.model.generation_config.eos_token_id
    full = [list(prompt) + s + [eot] for s in sequences]
    width = max(len(s) for s in full)
    # Right padding is safe: the decoder is causal, so padding never changes earlier positions.
    ids = torch.tensor([s + [eot] * (width - len(s)) for s in full], device=encoder_states.device)
    hidden = whisper.model.model.decoder(input_ids=ids, encoder_hidden_states=encoder_states).last_hidden_state
    logits = whisper.model.proj_out(hidden).float()  # (B, width, vocab)
    no_speech_probs = logits[:, 0].softmax(dim=-1)[:, no_speech]
    suppress, begin_suppress = _suppressed(whisper, logits.device)
    first = len(prompt) - 1  # the position after the last prompt token predicts the first text token
    predicting = logits[:, first:-1]  # (B, width - len(prompt), vocab)
    predicting[:, :, suppress] = -math.inf
    predicting[:, 0, begin_suppress] = -math.inf
    log_probs = torch.log_softmax(predicting, dim=-1).gather(2, ids[:, first + 1 :, None])[..., 0]
    lengths = torch.tensor([len(s) + 1 for s in sequences], device=logits.device)
    emitted = torch.arange(log_probs.shape[1], device=logits.device) < lengths[:, None]
    return (torch.where(emitted, log_probs, 0.0).sum(1) / lengths).tolist(), no_speech_probs.tolist()
