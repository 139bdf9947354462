"""ASKD curricula: each schedule's values, the phase switch, the EMA update."""

import math

import pytest
import torch

from voxdistill.distill.curriculum import (
    PHASE_DISTILL, PHASE_SELF, KDDecay, SelfDistillConfig, ema_update, kd_weight_at, phase_at,
)


@pytest.mark.parametrize("kind, expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [1.0, 0.775, 0.55, 0.325, 0.1]),
    ("cosine", [1.0, 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 0.55, 0.1 + 0.9 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.1]),
    ("exponential", [1.0, 0.1 + 0.9 * 0.01**0.25, 0.1 + 0.9 * 0.1, 0.1 + 0.9 * 0.01**0.75, 0.1]),
    ("step", [1.0, 0.775, 0.55, 0.325, 0.1]),
])
def test_schedule_values_at_chosen_steps(kind, expected):
    decay = KDDecay(kind=kind, floor=0.1, decay_steps=100, drops=4)
    assert [kd_weight_at(1.0, decay, s) for s in (0, 25, 50, 75, 100)] == pytest.approx(expected)
    assert kd_weight_at(1.0, decay, 10_000) == pytest.approx(expected[-1])  # the floor holds after the decay


def test_step_schedule_is_piecewise_constant():
    decay = KDDecay(kind="step", floor=0.0, decay_steps=100, drops=4)
    assert [kd_weight_at(2.0, decay, s) for s in (0, 24, 25, 49, 50, 99, 100)] == [2.0, 2.0, 1.5, 1.5, 1.0, 0.5, 0.0]


def test_no_decay_steps_means_constant():
    assert kd_weight_at(0.7, KDDecay(kind="cosine", decay_steps=0), 50) == 0.7


def test_floor_never_exceeds_the_start():
    assert kd_weight_at(0.2, KDDecay(kind="linear", floor=0.5, decay_steps=10), 5) == pytest.approx(0.2)


def test_phase_switch_at_the_configured_step():
    config = SelfDistillConfig(start_step=30)
    assert [phase_at(config, s) for s in (0, 29, 30, 31)] == [PHASE_DISTILL, PHASE_DISTILL, PHASE_SELF, PHASE_SELF]
    assert phase_at(SelfDistillConfig(), 10**6) == PHASE_DISTILL


def test_ema_update_equals_hand_computation():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = {name: torch.zeros_like(p) + 1.0 for name, p in model.named_parameters()}
    ema_update(ema, model, decay=0.9)
    for name, p in model.named_parameters():
        assert torch.allclose(ema[name], 0.9 * 1.0 + 0.1 * p.detach())
    before = {k: v.clone() for k, v in ema.items()}
    ema_update(ema, model, decay=0.5)
    for name, p in model.named_parameters():
        assert torch.allclose(ema[name], 0.5 * before[name] + 0.5 * p.detach())


@pytest.mark.parametrize("kwargs", [dict(start_step=0), dict(ema_decay=1.0), dict(ema_decay=0.0), dict(kd_weight=-1)])
def test_self_distill_validation(kwargs):
    with pytest.raises(ValueError):
        SelfDistillConfig(**kwargs)
