"""One recogniser interface for every runtime voxdistill runs a model in.

A *recogniser* is a model loaded in one runtime: clips that fit its window go in, token ids come
out, decoded with the shared `DecodingOptions`. Transcription (long audio included), evaluation and
pseudo-labelling talk to it only through `Recogniser`, so they do not know which backend runs:

- ``torch`` (`runtime.torch_backend`): PyTorch through transformers' Whisper, float32 or with its
  decoder in dynamic int8, greedy decoding in voxdistill's lean loop (`decoding.greedy_decode`),
  beam search in ``generate``;
- ``ct2`` (`runtime.ct2_backend`): CTranslate2 (``ctranslate2.models.Whisper``) with a compute type
  (int8, int8_float32, int16, float32, ... as the CPU supports), fed by the model's own feature
  extractor, so a student with a shorter window runs with it.

CTC students (`models.ctc`) are recognisers too (`runtime.ctc_backend`): their "tokens" are
characters, decoded greedily from one forward pass, in ``torch`` or ``onnx`` (onnxruntime on the
student's ONNX export).

Which backend runs a model is its family's to say (`families.load_recogniser`); this package holds
the interface and the backends, and `runtime.loading` loads a Whisper model (a teacher, or a Whisper
student) into ``torch`` or ``ct2``.

A model in another runtime or precision is numerically another model: its fingerprint names the
runtime (`models.fingerprint`).

A clip-length student pads each clip only to the next multiple of its step (`data.dataset`), so
clips of a batch may need different lengths: `by_padded_length` runs a batch in groups of equal
padded length, and every clip is encoded exactly as it would be alone, in every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.dataset import length_groups
from voxdistill.decoding import Decoded
from voxdistill.errors import VoxdistillError
from voxdistill.models.fingerprint import Fingerprint

BACKENDS = ("torch", "ct2", "onnx")  # onnx: CTC students only
WHISPER_BACKENDS = ("torch", "ct2")
CTC_BACKENDS = ("torch", "onnx")
T = TypeVar("T")
TORCH_COMPUTE_TYPES = ("float32", "int8")  # int8: the decoder in dynamic int8 (models.quantize)


class RuntimeConfigError(VoxdistillError):
    """An unknown runtime, or a compute type the runtime or this CPU cannot run."""


@dataclass(frozen=True)
class TopK:
    """A teacher's k most likely tokens at each position of a transcript (`Recogniser.teacher_forced_topk`),
    as offline distillation caches them (`teacher.topk`)."""

    ids: torch.Tensor  # (positions, k) int32
    log_probs: torch.Tensor  # (positions, k), log-probabilities under the teacher


@dataclass(frozen=True)
class Runtime:
    backend: str = "torch"  # torch | ct2 | onnx
    compute_type: str = "float32"  # torch: float32 or int8; ct2: a CTranslate2 compute type this CPU supports

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise RuntimeConfigError(f"--runtime {self.backend}: unknown runtime; choose from {', '.join(BACKENDS)}")
        supported = compute_types(self.backend)
        if self.compute_type not in supported:
            raise RuntimeConfigError(
                f"--compute-type {self.compute_type}: the {self.backend} runtime on this machine runs "
                f"{', '.join(supported)}")

    @classmethod
    def of(cls, backend: str = "torch", compute_type: str | None = None) -> "Runtime":
        """The runtime ``backend`` at ``compute_type`` (None: float32, the exact one)."""
        return cls(backend, compute_type or "float32")

    def to_dict(self) -> dict:
        return {"backend": self.backend, "compute_type": self.compute_type}

    def __str__(self) -> str:
        return f"{self.backend} {self.compute_type}"


def compute_types(backend: str) -> tuple[str, ...]:
    """Compute types ``backend`` runs on this CPU."""
    if backend == "torch":
        return TORCH_COMPUTE_TYPES
    if backend == "onnx":
        return ("float32",)
    import ctranslate2

    return tuple(sorted(ctranslate2.get_supported_compute_types("cpu")))


class Recogniser(Protocol):
    """A Whisper model loaded in one runtime. ``Encoded`` values are the backend's own encoder
    states; they only travel from `encode` to the other methods of the same recogniser."""

    source: str  # the model argument as given
    runtime: Runtime
    folder: Path | None  # the folder the runtime loaded; its weight files are the model's size on disk
    feature_extractor: Any  # the model's own WhisperFeatureExtractor: its window, its log-mel
    tokenizer: Any  # the model's WhisperTokenizer
    scores_transcripts: bool  # whether `decode_scored` gives Whisper's confidence signals (`runtime.checks`)

    @property
    def multilingual(self) -> bool: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def max_target_positions(self) -> int: ...

    @property
    def parameters(self) -> int: ...

    @property
    def fingerprint(self) -> Fingerprint: ...

    def prompt(self, language: str = "en") -> list[int]:
        """The decoder prompt for plain transcription without timestamps."""

    def encode(self, audios: Sequence[np.ndarray]) -> Any:
        """Encoder states of 16 kHz clips that each fit the window."""

    def decode(self, encoded: Any, options, audio_seconds: float) -> list[list[int]]:
        """Text token ids (prompt, end-of-text and timestamps removed) decoded with ``options`` (a
        `decoding.DecodingOptions`) for clips whose longest lasts ``audio_seconds``."""

    def decode_scored(self, encoded: Any, options, audio_seconds: float) -> list[Decoded]:
        """`decode` with each transcript's average log-probability and no-speech probability, as
        Whisper computes them."""

    def teacher_forced_topk(self, encoded: Any, sequences: list[list[int] | None], top_k: int,
                            language: str = "en") -> list[TopK | None]:
        """Top-k log-probabilities at each position predicting a token of ``sequences[i]`` or the
        final end-of-text (len + 1 rows each), the decoder fed the prompt and ``sequences[i]``;
        None for a clip whose sequence is None (its decoder does not run)."""

    def encoder_states(self, encoded: Any, positions: int) -> torch.Tensor:
        """(B, positions, d_model) float32: the first ``positions`` final encoder states."""


def check_language(recogniser: Recogniser, language: str) -> None:
    """A RuntimeConfigError, before any work, when ``recogniser`` cannot transcribe ``language``
    (a code, e.g. "fr"): an English-only model asked for another, or a multilingual one without the
    language's token. Left alone, the first would transcribe English and the second would fail mid-run."""
    if not recogniser.multilingual:
        if language != "en":
            raise RuntimeConfigError(f"--language {language}: {recogniser.source} is English-only; leave --language "
                                     f"at en, or use a multilingual model")
    elif f"<|{language}|>" not in recogniser.tokenizer.get_vocab():
        raise RuntimeConfigError(f"--language {language}: {recogniser.source} has no token for this language; "
                                 f"give one its vocabulary holds")


def window_samples(recogniser: Recogniser) -> int:
    """Samples of audio the model reads at once (its window)."""
    return recogniser.feature_extractor.n_samples


def window_seconds(recogniser: Recogniser) -> float:
    return window_samples(recogniser) / SAMPLE_RATE


def by_padded_length(recogniser: Recogniser, audios: Sequence[np.ndarray],
                     run: Callable[[list[int]], list[T]]) -> list[T]:
    """``run`` (given the indices of a group of clips, one result per clip) over each group of clips
    the model pads to the same length, the results back in the clips' order: for a clip-length model
    (`data.dataset.length_groups`), every clip is encoded as it would be alone; for a fixed window,
    ``run`` sees the whole batch."""
    results: list = [None] * len(audios)
    for group in length_groups(recogniser.feature_extractor, [len(a) for a in audios]):
        for i, result in zip(group, run(group)):
            results[i] = result
    return results


def generate_tokens(recogniser: Recogniser, audios: Sequence[np.ndarray], options) -> list[list[int]]:
    """Text token ids for each clip (each within the window)."""
    def run(group: list[int]) -> list[list[int]]:
        clips = [audios[i] for i in group]
        return recogniser.decode(recogniser.encode(clips), options, max(len(a) for a in clips) / SAMPLE_RATE)

    return by_padded_length(recogniser, audios, run)


def text_of(recogniser: Recogniser, tokens: list[int]) -> str:
    return recogniser.tokenizer.decode(tokens, skip_special_tokens=True).strip()


def describe(recogniser: Recogniser) -> dict:
    """What a report says about a recogniser besides its scores."""
    return {"runtime": recogniser.runtime.to_dict(), "window_seconds": window_seconds(recogniser),
            "folder": None if recogniser.folder is None else str(recogniser.folder)}
