"""The PyTorch runtime: a transformers Whisper in float32 (or with its decoder in dynamic int8),
decoded by `voxdistill.decoding` (greedy: the lean loop `greedy_decode`; beam search: ``generate``),
unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput

from voxdistill.decoding import (
    Decoded, DecodingOptions, decode_scored, decode_tokens, encode, log_mel, prompt_tokens,
)
from voxdistill.models.fingerprint import Fingerprint
from voxdistill.models.loading import Whisper, load_whisper
from voxdistill.models.quantize import quantize_decoder_int8
from voxdistill.runtime import Runtime, TopK


class TorchRecogniser:
    """A loaded `Whisper` behind the `Recogniser` interface. Encoded values are (B, positions,
    d_model) tensors. At compute type int8 the decoder and output projection run in dynamic int8
    (`models.quantize`); the fingerprint and parameter count are those of the float32 weights, the
    fingerprint naming the runtime."""

    scores_transcripts = True

    def __init__(self, whisper: Whisper, compute_type: str = "float32"):
        self.runtime = Runtime("torch", compute_type)
        self._parameters = sum(p.numel() for p in whisper.model.parameters())
        self._fingerprint: Fingerprint | None = None  # hashed when first asked for, in float32
        if compute_type == "int8":
            reference = whisper.fingerprint  # of the float32 weights, before they are quantised
            self._fingerprint = Fingerprint(reference.weights, reference.preprocessing, self.runtime.to_dict())
            quantize_decoder_int8(whisper)
        self.whisper = whisper
        self.source = whisper.source
        self.folder: Path | None = whisper.folder
        self.feature_extractor = whisper.processor.feature_extractor
        self.tokenizer = whisper.processor.tokenizer

    @property
    def multilingual(self) -> bool:
        return self.whisper.multilingual

    @property
    def vocab_size(self) -> int:
        return self.whisper.model.config.vocab_size

    @property
    def max_target_positions(self) -> int:
        return self.whisper.model.config.max_target_positions

    @property
    def parameters(self) -> int:
        return self._parameters

    @property
    def fingerprint(self) -> Fingerprint:
        return self._fingerprint or self.whisper.fingerprint

    def prompt(self, language: str = "en") -> list[int]:
        return prompt_tokens(self.whisper, language)

    def encode(self, audios: Sequence[np.ndarray]) -> torch.Tensor:
        return encode(self.whisper, log_mel(self.whisper, audios)).last_hidden_state

    def decode(self, encoded: torch.Tensor, options: DecodingOptions, audio_seconds: float) -> list[list[int]]:
        return decode_tokens(self.whisper, BaseModelOutput(last_hidden_state=encoded), options, audio_seconds)

    def decode_scored(self, encoded: torch.Tensor, options: DecodingOptions, audio_seconds: float) -> list[Decoded]:
        return decode_scored(self.whisper, encoded, options, audio_seconds)

    @torch.inference_mode()
    def teacher_forced_topk(self, encoded: torch.Tensor, sequences: list[list[int] | None], top_k: int,
                            language: str = "en") -> list[TopK | None]:
        chosen = [i for i, t in enumerate(sequences) if t is not None]
        prompt = self.prompt(language)
        eot = self.whisper.model.generation_config.eos_token_id
        full = [prompt + sequences[i] + [eot] for i in chosen]
        width = max(len(s) for s in full)
        # Right padding is safe: the decoder is causal, so padding never changes earlier positions.
        decoder_input_ids = torch.tensor([s + [eot] * (width - len(s)) for s in full])
        logits = self.whisper.model(encoder_outputs=(encoded[chosen],), decoder_input_ids=decoder_input_ids).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B', width, vocab)
        start = len(prompt) - 1  # the position after the last prompt token predicts the first label
        kept: list[TopK | None] = [None] * len(sequences)
        for i, row in zip(chosen, log_probs):
            values, ids = row[start : start + len(sequences[i]) + 1].topk(top_k, dim=-1)
            kept[i] = TopK(ids=ids.to(torch.int32), log_probs=values)
        return kept

    def encoder_states(self, encoded: torch.Tensor, positions: int) -> torch.Tensor:
        return encoded[:, :positions].clone()


def load_torch_recogniser(model: str, compute_type: str = "float32") -> TorchRecogniser:
    return TorchRecogniser(load_whisper(model), compute_type)
