"""PyTorch-side int8 for CPU inference: the decoder's linear layers and the output projection as
dynamically quantised int8 (per-channel weights, activations quantised per call), the encoder left in
float32.

Why this split, measured on this project's demo (tiny.en and its 3-decoder-layer student, 20
test-clean clips, batch 1, greedy):

- At batch 1 each decoding step multiplies one vector by every weight matrix, so the decoder is
  bound by memory traffic, and the output projection (vocabulary x d_model, 80 MB in float32 for
  tiny.en) dominates it. int8 weights move a quarter of the bytes: the student's decoding fell from
  282 to 119 ms per clip, the teacher's from 337 to 172 ms, with WER unchanged (13.9 -> 13.2% and
  15.7 -> 15.3% on those clips).
- The encoder multiplies whole matrices (compute-bound), gains less, and is sensitive: quantising it
  too cost the teacher 4 WER points (15.7 -> 19.6%) for the speed it gave.

A quantised model is for inference only (transcribe, evaluate); training and the teacher of
distillation stay in float32.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from voxdistill.models.loading import Whisper


def quantize_decoder_int8(whisper: Whisper) -> Whisper:
    """``whisper`` with its decoder's linear layers and output projection in dynamic int8, in place
    (returned for chaining). The output projection is tied to the token embedding, which the decoder
    still needs in float32, so it gets an untied quantised copy."""
    model = whisper.model
    qconfig = {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
    projection = nn.Linear(model.proj_out.in_features, model.proj_out.out_features, bias=False)
    projection.weight = nn.Parameter(model.proj_out.weight.detach().clone(), requires_grad=False)
    with warnings.catch_warnings():
        # PyTorch deprecates eager-mode quantisation and quantised tensors in favour of torchao; in
        # the pinned torch they are what runs the fbgemm int8 kernels on a CPU, so they are used
        # until that changes (torch is pinned in constraints.txt).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*(torchao|deprecated).*")
        model.proj_out = torch.ao.quantization.quantize_dynamic(nn.Sequential(projection), qconfig_spec=qconfig)[0]
        model.model.decoder = torch.ao.quantization.quantize_dynamic(model.model.decoder, qconfig_spec=qconfig)
    model.eval()
    return whisper


# -- quantisation-aware training -------------------------------------------------------------------
#
# CTranslate2 at int8 on a CPU stores each linear layer's weight as int8 with one scale per output
# row (symmetric, round to nearest) and quantises each input vector of a matrix product the same way
# when it is computed. `add_fake_int8` makes a PyTorch model compute exactly those rounded values in
# its forward pass (weights and inputs of every nn.Linear) while gradients pass straight through the
# rounding, so distillation can train a student to be accurate *after* int8 rounding.
# `remove_fake_int8` takes the rounding out again; the float weights it leaves are the ones to export.


def int8_rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to int8 with one symmetric scale per row (last dimension), back in float."""
    scale = t.detach().abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.clamp(torch.round(t / scale), -127, 127) * scale


def _straight_through(t: torch.Tensor) -> torch.Tensor:
    return t + (int8_rows(t) - t).detach()


class _FakeInt8Weight(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return _straight_through(weight)


def _fake_int8_input(module: nn.Module, args: tuple) -> tuple:
    return (_straight_through(args[0]), *args[1:])


def add_fake_int8(model: nn.Module) -> nn.Module:
    """Every nn.Linear of ``model`` computes with int8-rounded weights and inputs (in place; returned).
    A weight shared by two modules (Whisper's output projection and token embedding) is rounded where
    the linear layer uses it; the embedding lookup stays float, as a lookup needs no product."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if isinstance(module, nn.Linear) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(module, "weight", _FakeInt8Weight(), unsafe=True)
            module.register_forward_pre_hook(_fake_int8_input)
    return model


def remove_fake_int8(model: nn.Module) -> nn.Module:
    """Undo `add_fake_int8` (in place; returned): plain float weights, as trained."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if isinstance(module, nn.Linear) and parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            # By identity, not through handles: a deep copy of the model (a checkpoint's or the
            # self-teacher's) has its own hook dictionaries, which old handles would not reach.
            for key in [k for k, hook in module._forward_pre_hooks.items() if hook is _fake_int8_input]:
                del module._forward_pre_hooks[key]
    return model
