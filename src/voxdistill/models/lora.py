"""Low-rank adapters (LoRA): train a rank-r update to each linear weight instead of the weight.

A linear layer's weight ``W`` (out x in) becomes ``W + (alpha / r) * up @ down`` with ``down`` (r x in)
drawn as nn.Linear draws its weights and ``up`` (out x r) zero, so training starts from the loaded
model exactly. ``W`` itself and every other weight stay as loaded: what the model knew can move only
within r directions per layer, a guard against forgetting on little data (one of the methods the
field uses, measured in docs/measurements.md).

The update is a torch parametrization of the weight, as `quantize.add_fake_int8`'s rounding is, and
not a replacement module (as the `peft` library injects): the model keeps its structure and module
names, so everything that addresses its parts (the trainer's encoder, Whisper's generation, the
checkpoint's safetensors file) works unchanged, and `merge_lora` folds the update into a plain
weight for export, leaving a model of the original shape that any runtime loads. A weight shared by
two modules (Whisper's output projection, tied to its token embeddings) gets no adapter and stays
frozen.
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn
from torch.nn.utils import parametrize


class _LowRankUpdate(nn.Module):
    def __init__(self, weight: torch.Tensor, rank: int, alpha: float):
        super().__init__()
        out_features, in_features = weight.shape
        self.down = nn.Parameter(torch.empty(rank, in_features, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.up = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype, device=weight.device))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.up @ self.down) * self.scale


def _shared_weights(model: nn.Module) -> set[int]:
    """The ids of the parameters that more than one module holds (tied weights)."""
    owners = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    return {pid for pid, n in owners.items() if n > 1}


def add_lora(model: nn.Module, rank: int, alpha: float) -> list[str]:
    """Put a rank-``rank`` adapter on every linear layer of ``model`` whose weight trains and is not
    shared, then freeze every weight but the adapters' (in place). Returns the adapted layers' names;
    none is an error, since nothing would train."""
    if rank < 1:
        raise ValueError(f"a LoRA rank must be >= 1, got {rank}")
    shared = _shared_weights(model)
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and m.weight.requires_grad and id(m.weight) not in shared
               and not parametrize.is_parametrized(m, "weight")]
    if not targets:
        raise ValueError("no linear layer of the model trains: there is nothing to put an adapter on")
    model.requires_grad_(False)
    for _, module in targets:
        parametrize.register_parametrization(module, "weight", _LowRankUpdate(module.weight, rank, alpha))
    return [name for name, _ in targets]


def lora_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if parametrize.is_parametrized(m, "weight")
            and any(isinstance(p, _LowRankUpdate) for p in m.parametrizations["weight"])]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter of ``model`` into its layer's weight (in place; returned): a plain model of
    the original shape, computing what the adapted one computed."""
    for module in lora_layers(model):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
