"""Adaptive self-knowledge distillation (ASKD): the teacher's weight as a pure function of the step,
and the phase in which the student's own past becomes its teacher.

Phase 1 (``distill``): ``kd_weight(t)`` decays from ``start`` to ``floor`` over ``decay_steps``
(constant / linear / cosine / exponential / step), handing weight to the labels, so that the
student stops inheriting the teacher's blind spots.
Phase 2 (``self-distill``, from ``self_distill.start_step``): the KL term's teacher is the student
itself as it was at the phase boundary (``snapshot``) or a float32 exponential moving average of
its weights (``ema``), a regulariser that keeps it near what it already learnt.

Everything here is a pure function of the step: a resumed run recomputes the same weights and
the same phase without saved scheduler state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

PHASE_DISTILL = "distill"
PHASE_SELF = "self-distill"


@dataclass(frozen=True)
class KDDecay:
    """How ``loss.kd_weight`` (the weight at step 0) decays during phase 1."""

    kind: Literal["constant", "linear", "cosine", "exponential", "step"] = "constant"
    floor: float = 0.0  # the weight never goes below this
    decay_steps: int = 0  # steps from the start weight to the floor; 0 = no decay
    drops: int = 4  # kind step: the weight falls in this many equal drops over decay_steps

    def __post_init__(self):
        if self.floor < 0 or self.decay_steps < 0 or self.drops < 1:
            raise ValueError("need floor >= 0, decay_steps >= 0 and drops >= 1")


def kd_weight_at(start: float, decay: KDDecay, step: int) -> float:
    """The teacher's weight at optimizer step ``step`` (0-based), starting from ``start``."""
    if decay.kind == "constant" or decay.decay_steps == 0:
        return start
    floor = min(decay.floor, start)
    progress = min(step / decay.decay_steps, 1.0)  # 0 → 1 over the decay
    if decay.kind == "linear":
        remaining = 1 - progress
    elif decay.kind == "cosine":
        remaining = 0.5 * (1 + math.cos(math.pi * progress))
    elif decay.kind == "exponential":
        # Down to 1% of the range at decay_steps, then the floor.
        remaining = 0.0 if progress >= 1 else 0.01**progress
    else:  # step
        remaining = 1 - math.floor(progress * decay.drops) / decay.drops
    return floor + (start - floor) * remaining


@dataclass(frozen=True)
class SelfDistillConfig:
    start_step: int | None = None  # phase 2 begins before this step; None = no phase 2
    teacher: Literal["snapshot", "ema"] = "ema"  # the student's own past that becomes its teacher
    ema_decay: float = 0.999  # per step, for teacher ema
    kd_weight: float = 0.5  # weight of T² · KL(self-teacher ‖ student) in phase 2

    def __post_init__(self):
        if self.start_step is not None and self.start_step < 1:
            raise ValueError("self_distill.start_step must be >= 1 (phase 1 needs at least one step)")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be within (0, 1), got {self.ema_decay}")
        if self.kd_weight < 0:
            raise ValueError(f"self_distill.kd_weight must be >= 0, got {self.kd_weight}")


def phase_at(config: SelfDistillConfig, step: int) -> str:
    """The phase of optimizer step ``step`` (0-based)."""
    return PHASE_SELF if config.start_step is not None and step >= config.start_step else PHASE_DISTILL


@torch.no_grad()
def ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    """ema ← decay · ema + (1 − decay) · θ for every floating-point parameter, in float32."""
    for name, param in model.named_parameters():
        ema[name].mul_(decay).add_(param.detach().float(), alpha=1 - decay)
