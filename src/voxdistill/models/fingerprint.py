"""Teacher fingerprints: what must be identical for pseudo-labels and KL targets to agree.

A fingerprint hashes the weights (every tensor of the state dict, by name, dtype, shape and bytes)
and the preprocessing that turns audio into the model's input (sample rate, mel bins, FFT, hop,
padding). Two processes that load the same model compute the same fingerprint.

It also names the runtime that executes the model (backend and compute type): the same weights run
in CTranslate2 int8, or even float32, give other logits than in PyTorch float32, so they are another
teacher. The weights hash is always that of the float32 values as PyTorch holds them (a CTranslate2
folder is hashed through its conversion), so `model_digest` says whether two fingerprints are the
same model in different runtimes. The reference runtime, PyTorch float32, adds nothing to the
digest: digests recorded before runtimes were named stay valid.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import torch
from transformers import WhisperFeatureExtractor

from voxdistill.data.dataset import clip_pad_step, clip_trailing_samples


REFERENCE_RUNTIME = {"backend": "torch", "compute_type": "float32"}


@dataclass(frozen=True)
class Fingerprint:
    weights: str  # sha256 of the state dict (float32, as PyTorch holds it)
    preprocessing: dict  # the feature-extraction settings that change the model's input
    runtime: dict = field(default_factory=lambda: dict(REFERENCE_RUNTIME))  # backend and compute type

    @property
    def digest(self) -> str:
        """One short id for all parts, e.g. ``"3f9c0a1b7d2e4c55"``."""
        blob = self.weights + json.dumps(self.preprocessing, sort_keys=True)
        if self.runtime != REFERENCE_RUNTIME:
            blob += json.dumps(self.runtime, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def model_digest(self) -> str:
        """The digest of the same weights and preprocessing run in the reference runtime."""
        return Fingerprint(self.weights, self.preprocessing).digest

    def to_dict(self) -> dict:
        return {"digest": self.digest, "weights": self.weights, "preprocessing": self.preprocessing,
                "runtime": self.runtime}

    @classmethod
    def from_dict(cls, record: dict) -> "Fingerprint":
        """A fingerprint as ``to_dict`` wrote it (records from before runtimes were named have none:
        they were made in the reference runtime)."""
        return cls(record["weights"], record["preprocessing"], record.get("runtime", dict(REFERENCE_RUNTIME)))


def weights_sha256(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def preprocessing_config(feature_extractor: WhisperFeatureExtractor) -> dict:
    fe = feature_extractor
    step, trailing = clip_pad_step(fe), clip_trailing_samples(fe)
    return {
        "sampling_rate": fe.sampling_rate,
        "n_mels": fe.feature_size,
        "n_fft": fe.n_fft,
        "hop_length": fe.hop_length,
        "chunk_seconds": fe.chunk_length,  # inputs are zero-padded to this many seconds
        "padding_value": fe.padding_value,
        "dither": float(getattr(fe, "dither", 0.0)),
    } | ({} if step is None else {"clip_pad_step_samples": step}) \
      | ({"clip_trailing_samples": trailing} if trailing else {})


def fingerprint(model: torch.nn.Module, feature_extractor: WhisperFeatureExtractor,
                runtime: dict | None = None) -> Fingerprint:
    return Fingerprint(weights=weights_sha256(model), preprocessing=preprocessing_config(feature_extractor),
                       runtime=dict(runtime or REFERENCE_RUNTIME))
