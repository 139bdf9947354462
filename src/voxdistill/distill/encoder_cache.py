"""A frozen student encoder's output, computed once per utterance and read back in later epochs.

When the encoder does not train (``optim.freeze_encoder``) and the audio is not augmented, an
utterance's encoder states are the same in every epoch; recomputing them (and decoding the audio
and its log-mel features) is most of a step's cost on a CPU. The first epoch stores each
utterance's states (float32, so a cached step computes exactly what an uncached one would) in one
safetensors file per utterance; later batches whose utterances are all stored skip the audio.

The folder is named after a hash of the encoder's weights and the feature extractor's settings,
so states of another encoder or preprocessing are never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from voxdistill.data.manifest import Utterance
from voxdistill.files import file_written_atomically
from voxdistill.models.fingerprint import preprocessing_config, weights_sha256


class EncoderStateCache:
    def __init__(self, root: Path, encoder: torch.nn.Module, feature_extractor):
        identity = weights_sha256(encoder) + json.dumps(preprocessing_config(feature_extractor), sort_keys=True)
        self.folder = Path(root) / hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, utterance_id: str) -> Path:
        return self.folder / f"{hashlib.sha1(utterance_id.encode()).hexdigest()}.safetensors"

    def has(self, utterance: Utterance) -> bool:
        return self._path(utterance.id).is_file()

    def load(self, utterances: Sequence[Utterance]) -> torch.Tensor:
        """(B, positions, d_model) stored states, in the order given."""
        return torch.stack([load_file(str(self._path(u.id)))["states"] for u in utterances])

    def store(self, utterances: Sequence[Utterance], states: torch.Tensor) -> None:
        """Keep ``states`` (B, positions, d_model) of ``utterances``, each file written atomically."""
        for utt, row in zip(utterances, states.detach().cpu()):
            path = self._path(utt.id)
            with file_written_atomically(path) as tmp:
                save_file({"states": row.contiguous()}, str(tmp))
