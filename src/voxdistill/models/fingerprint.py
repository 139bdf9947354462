"""Teacher fingerprints: what must be identical for pseudo-labels and KL targets to agree.

A fingerprint hashes the weights (every tensor of the state dict, by name, dtype, shape and bytes)
and the preprocessing that turns audio into the model's input (sample rate, mel bins, FFT, hop,
padding). Two processes that load the same model compute the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch
from transformers import WhisperFeatureExtractor


@dataclass(frozen=True)
class Fingerprint:
    weights: str  # sha256 of the state dict
    preprocessing: dict  # the feature-extraction settings that change the model's input

    @property
    def digest(self) -> str:
        """One short id for both parts, e.g. ``"3f9c0a1b7d2e4c55"``."""
        blob = self.weights + json.dumps(self.preprocessing, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"digest": self.digest, "weights": self.weights, "preprocessing": self.preprocessing}


def weights_sha256(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def preprocessing_config(feature_extractor: WhisperFeatureExtractor) -> dict:
    fe = feature_extractor
    return {
        "sampling_rate": fe.sampling_rate,
        "n_mels": fe.feature_size,
        "n_fft": fe.n_fft,
        "hop_length": fe.hop_length,
        "chunk_seconds": fe.chunk_length,  # inputs are zero-padded to this many seconds
        "padding_value": fe.padding_value,
        "dither": float(getattr(fe, "dither", 0.0)),
    }


def fingerprint(model: torch.nn.Module, feature_extractor: WhisperFeatureExtractor) -> Fingerprint:
    return Fingerprint(weights=weights_sha256(model), preprocessing=preprocessing_config(feature_extractor))
