"""CTC students (`models.ctc`) behind the `Recogniser` interface, in two runtimes:

- ``torch``: the PyTorch `CTCStudent` in float32, under ``torch.inference_mode``;
- ``onnx``: onnxruntime on the folder's ``model.onnx``. A folder saved without one is exported into
  the cache first (``CACHE/onnx/``), once per content of its files (`formats.onnx.onnx_folder_for`).

Encoding runs the whole model (encoder and CTC head); decoding is greedy best-path CTC over the
frames each clip covers (`models.ctc.greedy_ctc`): no decoder loop, no prompt, no beam search.
A CTC student has no distribution over a Whisper vocabulary, so it cannot be a pseudo-labelling
teacher: `teacher_forced_topk` and `encoder_states` refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from voxdistill.data.dataset import log_mel
from voxdistill.decoding import Decoded
from voxdistill.errors import VoxdistillError
from voxdistill.formats import EXPORT_RECORD
from voxdistill.formats.onnx import onnx_folder_for
from voxdistill.models.ctc import (
    ONNX_FILE, Alphabet, CTCConfig, CTCLoadError, CTCStudent, frames_of_samples, greedy_ctc, load_ctc_student,
    read_ctc_folder, read_record,
)
from voxdistill.models.fingerprint import Fingerprint, preprocessing_config, weights_sha256
from voxdistill.runtime import CTC_BACKENDS, Runtime, RuntimeConfigError, TopK


class CTCUnsupportedError(VoxdistillError):
    """Something a CTC student cannot do: beam search, or serving as a pseudo-labelling teacher."""


class CTCEncoded(NamedTuple):
    logits: torch.Tensor | np.ndarray  # (B, T, n_labels): a tensor from torch, an array from onnx
    lengths: torch.Tensor  # (B,) frames each clip covers


class CTCRecogniser:
    """What both runtimes share. A runtime supplies `_logits` and ``_reference``: (sha256 of the
    float32 weights, parameter count)."""

    scores_transcripts = False  # characters from one forward pass: no no-speech token, no loop to fall back from

    def __init__(self, folder: Path | None, source: str, runtime: Runtime, config: CTCConfig, feature_extractor):
        self.folder: Path | None = folder
        self.source = source
        self.runtime = runtime
        self.config = config
        self.feature_extractor = feature_extractor
        self.tokenizer = Alphabet(config.alphabet)

    @property
    def multilingual(self) -> bool:
        return False

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def max_target_positions(self) -> int:
        return self.config.frames

    @property
    def parameters(self) -> int:
        return self._reference[1]

    @cached_property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self._reference[0], preprocessing_config(self.feature_extractor), self.runtime.to_dict())

    def _logits(self, features: torch.Tensor) -> torch.Tensor | np.ndarray:
        """(B, T, n_labels) logits of (B, n_mels, frames) features."""
        raise NotImplementedError

    def prompt(self, language: str = "en") -> list[int]:
        return []

    def encode(self, audios: Sequence[np.ndarray]) -> CTCEncoded:
        lengths = frames_of_samples([len(audio) for audio in audios], self.config.frames)
        return CTCEncoded(self._logits(log_mel(self.feature_extractor, audios)), lengths)

    def decode(self, encoded: CTCEncoded, options, audio_seconds: float) -> list[list[int]]:
        if options.num_beams > 1:
            raise CTCUnsupportedError(f"num_beams={options.num_beams}: a CTC student decodes greedily (the best "
                                      f"label of each frame); decode it with 1 beam")
        return greedy_ctc(encoded.logits, encoded.lengths)

    def decode_scored(self, encoded: CTCEncoded, options, audio_seconds: float) -> list[Decoded]:
        raise self._not_a_teacher()

    def teacher_forced_topk(self, encoded: CTCEncoded, sequences: list[list[int] | None], top_k: int,
                            language: str = "en") -> list[TopK | None]:
        raise self._not_a_teacher()

    def _not_a_teacher(self) -> CTCUnsupportedError:
        return CTCUnsupportedError(f"{self.source}: a CTC student has no distribution over a Whisper vocabulary, "
                                   f"so it cannot be a pseudo-labelling teacher; use a Whisper teacher")

    def encoder_states(self, encoded: CTCEncoded, positions: int) -> torch.Tensor:
        raise CTCUnsupportedError(f"{self.source}: a CTC student cannot serve as a teacher's encoder states; "
                                  f"use a Whisper teacher")


class TorchCTCRecogniser(CTCRecogniser):
    """A `CTCStudent` in PyTorch, float32, as it is (a loaded folder, or a student in training whose
    caller puts it in eval mode; the fingerprint hashes its weights when first asked for)."""

    def __init__(self, model: CTCStudent, feature_extractor, source: str, folder: Path | None = None):
        super().__init__(folder, source, Runtime("torch", "float32"), model.config, feature_extractor)
        self.model = model

    @cached_property
    def _reference(self) -> tuple[str, int]:
        return weights_sha256(self.model), sum(p.numel() for p in self.model.parameters())

    @torch.inference_mode()
    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        return self.model(features.to(device)).logits.float().cpu()


class OnnxCTCRecogniser(CTCRecogniser):
    """An exported CTC student (``model.onnx``) in onnxruntime on the CPU, float32. Its fingerprint
    and parameter count are those of the weights it was exported from (its export record)."""

    def __init__(self, folder: Path, source: str, threads: int):
        import onnxruntime

        config, feature_extractor = read_ctc_folder(folder)
        super().__init__(Path(folder), source, Runtime("onnx", "float32"), config, feature_extractor)
        record = read_record(self.folder / EXPORT_RECORD)
        try:
            self._reference = (record["source_fingerprint"]["weights"], record["parameters"])
        except (KeyError, TypeError):
            raise CTCLoadError(f"{self.folder / EXPORT_RECORD}: lacks source_fingerprint.weights or parameters; "
                               f"export the model again") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(self.folder / ONNX_FILE), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's errors share no base class more precise than this
            raise CTCLoadError(f"{self.folder / ONNX_FILE}: onnxruntime cannot load it ({err}); export the "
                               f"model again") from None

    def _logits(self, features: torch.Tensor) -> np.ndarray:
        return self.session.run(["logits"], {"input_features": features.numpy()})[0]


def load_ctc_recogniser(folder: str | Path, backend: str = "torch", threads: int | None = None) -> CTCRecogniser:
    """The CTC student ``folder`` in ``backend`` (torch or onnx). ``threads``: onnxruntime's intra-op
    threads (None: torch's current setting); the torch runtime uses torch's own setting."""
    if backend == "torch":
        model, feature_extractor, _ = load_ctc_student(folder)
        return TorchCTCRecogniser(model, feature_extractor, str(folder), Path(folder).expanduser())
    if backend == "onnx":
        return OnnxCTCRecogniser(onnx_folder_for(folder), str(folder), threads or torch.get_num_threads())
    raise RuntimeConfigError(f"--runtime {backend}: a CTC student runs in {' or '.join(CTC_BACKENDS)}")
