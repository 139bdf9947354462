"""Low-rank adapters (optim.lora_rank): the adapted model starts as the loaded one, only the adapters
train, the exported student is a plain model whose weights moved by at most the rank, and a run with
adapters resumes exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tests.test_distill import setup  # noqa: F401  (a fixture)
from tests.test_distill import cli, config_dict, final_checkpoint, write_config
from voxdistill.config import ConfigError, from_dict
from voxdistill.distill.config import DistillConfig
from voxdistill.families import distill
from voxdistill.models.loading import load_whisper
from voxdistill.models.lora import add_lora, lora_layers, merge_lora


def _logits(model, features, tokens):
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=tokens).logits


def test_adapters_start_at_the_loaded_model_and_merge_into_a_plain_one(tiny_random_whisper):
    model = load_whisper(str(tiny_random_whisper), frozen=False).model
    keys = set(model.state_dict())
    frames = 2 * model.config.max_source_positions
    features = torch.randn(1, model.config.num_mel_bins, frames, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[model.config.decoder_start_token_id, 100, 200]])
    before = _logits(model, features, tokens)

    adapted = add_lora(model, rank=2, alpha=4.0)
    assert adapted and "proj_out" not in adapted  # tied to the token embeddings: not adapted
    assert all(name.endswith((".down", ".up")) for name, p in model.named_parameters() if p.requires_grad)
    assert torch.equal(_logits(model, features, tokens), before)  # up starts at zero

    with torch.no_grad():
        for module in lora_layers(model):
            module.parametrizations["weight"][0].up.normal_(0, 0.05)
    moved = _logits(model, features, tokens)
    assert not torch.allclose(moved, before)
    merge_lora(model)
    assert set(model.state_dict()) == keys and not lora_layers(model)
    torch.testing.assert_close(_logits(model, features, tokens), moved, rtol=1e-4, atol=1e-4)


def test_a_distilled_students_weights_move_within_the_rank_and_nothing_else_moves(setup, tmp_path):
    data = config_dict(setup, tmp_path / "lora", optim={"max_steps": 3, "lr": 1e-2, "freeze_decoder": True,
                                                        "lora_rank": 2, "lora_alpha": 4.0})
    distill(from_dict(DistillConfig, data), progress=False)
    before = load_file(str(setup / "student" / "model.safetensors"))
    after = load_file(str(tmp_path / "lora" / "model" / "model.safetensors"))
    assert set(after) == set(before)  # a plain Whisper, no adapter left in it
    linear = [k for k in before if k.startswith("model.encoder.layers.") and k.endswith("proj.weight")
              or k.startswith("model.encoder.layers.") and k.endswith(("fc1.weight", "fc2.weight"))]
    assert linear
    for key in linear:
        delta = (after[key] - before[key]).double()
        assert 0 < torch.linalg.matrix_rank(delta, atol=1e-6) <= 2, key
    unmoved = [k for k in before if k not in linear]
    assert any(k.startswith("model.encoder.") for k in unmoved)  # norms, biases, the stem
    assert all(torch.equal(before[k], after[k]) for k in unmoved)


def test_a_run_with_adapters_resumes_exactly(setup, tmp_path):
    optim = {"lora_rank": 2, "lr": 1e-2}
    straight = write_config(config_dict(setup, tmp_path / "straight", optim=optim), tmp_path / "straight.yaml")
    split = write_config(config_dict(setup, tmp_path / "split", optim=optim), tmp_path / "split.yaml")
    assert cli("distill", "--config", str(straight)).returncode == 0
    first = cli("distill", "--config", str(split), "--steps-this-run", "3")
    assert first.returncode == 0, first.stderr[-2000:]
    assert cli("distill", "--config", str(split)).returncode == 0
    a, b = final_checkpoint(tmp_path / "straight"), final_checkpoint(tmp_path / "split")
    model_a, model_b = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert any(k.endswith(".up") for k in model_a)
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)


def test_adapters_with_quantization_aware_training_are_refused(setup, tmp_path):
    data = config_dict(setup, tmp_path / "both", optim={"lora_rank": 4, "quantization_aware": True})
    with pytest.raises(ConfigError, match="lora_rank and optim.quantization_aware"):
        from_dict(DistillConfig, data)


@pytest.mark.parametrize("sections, reason", [
    ({"loss": {"anchor_weight": 1.0}}, "anchor_weight pulls the trainable weights"),
    ({"self_distill": {"start_step": 3, "teacher": "ema"}}, "teacher=ema averages each trainable weight"),
])
def test_adapters_are_refused_where_a_setting_would_act_on_the_factors(setup, tmp_path, sections, reason):
    data = config_dict(setup, tmp_path / "run", optim={"lora_rank": 4}, **sections)
    with pytest.raises(ConfigError, match=reason):
        from_dict(DistillConfig, data)
    del data["optim"]["lora_rank"]
    from_dict(DistillConfig, data)  # the same setting alone is accepted
