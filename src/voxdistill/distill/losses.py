"""Distillation losses: token cross-entropy on the labels plus a temperature-scaled KL to the teacher.

Shapes: B utterances, T decoder positions, V vocabulary, K cached teacher entries per position.
``logits[:, t]`` predicts ``labels[:, t]`` (labels already shifted); ``IGNORE_INDEX`` marks
positions that are not trained on (prompt tokens, padding). Every loss is a mean over the
masked-in positions, computed in float32 whatever the logits' dtype, and an all-masked batch gives
a zero that is still part of the graph (backward runs and adds nothing).

Only masked-in positions are selected before any softmax, so padded rows may hold anything
(even all -inf) without turning the loss or its gradient into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # the label of positions that carry no loss (Hugging Face's convention)


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, T, V) against ``labels`` (B, T) over labelled positions."""
    keep = labels != IGNORE_INDEX  # (B, T)
    selected = logits[keep].float()  # (N, V)
    total = F.cross_entropy(selected, labels[keep], reduction="sum")  # ()  0 when N == 0
    return total / max(selected.shape[0], 1)


def _kl_terms(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """Σ q (log q − log p) over the last dim, with 0 · log 0 = 0: entries the target gives no mass
    add nothing, even where either side is -inf (which would otherwise give 0 · inf = NaN).
    Tested as `q == 0`, not `q > 0`, so a NaN from the teacher still shows in the loss."""
    q = log_q.exp()
    terms = torch.where(q == 0, 0.0, q * (log_q - log_p))  # (N, ·)
    return terms.sum(-1)  # (N,)


def kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """``T² · mean over positions of KL(p_teacher^T ‖ p_student^T)``, ``p^T = softmax(logits / T)``.

    ``student_logits`` and ``teacher_logits`` are (B, T, V); ``mask`` (B, T) is a bool tensor, True
    where the position counts. The T² keeps the gradient's size independent of T (Hinton et al.).
    The teacher is detached. Teacher -inf logits (suppressed tokens) contribute 0; student -inf is
    fine wherever the teacher's probability is 0 (elsewhere the KL is genuinely infinite).
    """
    student = student_logits[mask].float() / temperature  # (N, V)
    teacher = teacher_logits.detach()[mask].float() / temperature  # (N, V)
    per_position = _kl_terms(F.log_softmax(teacher, dim=-1), F.log_softmax(student, dim=-1))  # (N,)
    return temperature**2 * per_position.sum() / max(student.shape[0], 1)


def kl_topk(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_log_probs: torch.Tensor,
            mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Offline KD: the KL to a teacher known only through its top-k entries per position.

    ``student_logits`` (B, T, V); ``teacher_ids`` (B, T, K) token ids (any integer dtype, e.g. the
    cache's int32); ``teacher_log_probs`` (B, T, K) the teacher's log-probabilities under its full
    vocabulary softmax at temperature 1 (K-padding entries: -inf, with any valid id); ``mask``
    (B, T) bool.

    Teacher: the K entries renormalised at temperature T, ``q = softmax(teacher_log_probs / T)``
    over K. Student: its full-vocabulary ``log p = log_softmax(student_logits / T)`` gathered at the
    teacher's ids, *not* renormalised over K. Loss: ``T² · mean_positions Σ_k q_k (log q_k − log p_k)``.

    Properties, with ``P = Σ_k p_k`` the student's mass on the teacher's top-k set:
    - it is ≥ 0: it equals ``KL(q ‖ p / P) + log(1 / P)`` and ``P ≤ 1``;
    - it equals ``kl_full`` exactly when the teacher's mass outside its top-k is zero (then q *is*
      the teacher's full distribution at temperature T);
    - the ``log(1 / P)`` part pushes student mass into the teacher's top-k set, where renormalising
      the student over K would not. Note the teacher's tail grows with T: top-k covering 99.9 % of
      the mass at T = 1 covers less at T = 2, so the approximation is looser at higher T.
    """
    student = student_logits[mask].float() / temperature  # (N, V)
    ids = teacher_ids[mask].long()  # (N, K)  gather needs int64
    teacher = teacher_log_probs.detach()[mask].float() / temperature  # (N, K)
    log_p = F.log_softmax(student, dim=-1).gather(-1, ids)  # (N, K)
    per_position = _kl_terms(F.log_softmax(teacher, dim=-1), log_p)  # (N,)
    return temperature**2 * per_position.sum() / max(student.shape[0], 1)


@dataclass(frozen=True)
class LossWeights:
    """How the two terms of the distillation loss are weighted.

        total = ce_weight · CE(student, labels) + kd_weight · T² · KL(p_teacher^T ‖ p_student^T)

    Each weight multiplies only its own named term; nothing is implied (kd_weight is not
    ``1 − ce_weight``). The best-known public Whisper distillation script multiplies its fixed 0.8
    into the cross-entropy term, while its paper describes the 0.8 on the KL term:
    ``ce_weight=0.8, kd_weight=1.0`` reproduces the script, ``ce_weight=1.0, kd_weight=0.8`` the paper.
    """

    ce_weight: float = 1.0  # on the cross-entropy against the labels (pseudo-labels or references)
    kd_weight: float = 1.0  # on T² · KL to the teacher; 0 = plain fine-tuning, the KL is not computed
    temperature: float = 2.0  # T, softens both distributions in the KL term only (not the CE)

    def __post_init__(self):
        if not (math.isfinite(self.ce_weight) and self.ce_weight >= 0):
            raise ValueError(f"ce_weight must be a finite number >= 0, got {self.ce_weight}")
        if not (math.isfinite(self.kd_weight) and self.kd_weight >= 0):
            raise ValueError(f"kd_weight must be a finite number >= 0, got {self.kd_weight}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")


def encoder_state_loss(student_states: torch.Tensor, teacher_states: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between encoder states (B, P, d), divided by the mean square of the
    teacher's, so the term reads as a relative error (1.0 = as far as predicting zeros) whatever the
    model's scale. The teacher is detached."""
    teacher = teacher_states.detach().float()  # (B, P, d)
    return (student_states.float() - teacher).pow(2).mean() / teacher.pow(2).mean().clamp_min(1e-12)


def paired_states(groups: list[tuple[list[int], torch.Tensor]], teacher_states: torch.Tensor, positions: int,
                  clip_positions: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's encoder states and the teacher's at the same positions, as two (N, d) tensors
    for `encoder_state_loss`. ``groups``: (rows of the batch, the student's states for them, (len(rows),
    P, d)); ``teacher_states`` (B, ≥ positions, d). Each row keeps its first min(positions, P)
    positions, or, with ``clip_positions`` (per row of the batch), only those holding its clip."""
    student_rows, teacher_rows = [], []
    for rows, states in groups:
        for j, i in enumerate(rows):
            n = min(positions, states.shape[1])
            if clip_positions is not None:
                n = min(n, clip_positions[i])
            student_rows.append(states[j, :n])
            teacher_rows.append(teacher_states[i, :n])
    return torch.cat(student_rows), torch.cat(teacher_rows)


@dataclass
class LossParts:
    total: torch.Tensor  # () the loss to backpropagate
    ce: torch.Tensor  # () unweighted token cross-entropy
    kd: torch.Tensor  # () unweighted T² · KL; a zero tensor when there is no teacher term
    encoder: torch.Tensor | None = None  # () unweighted encoder_state_loss, when that term is on
    anchor: torch.Tensor | None = None  # () unweighted anchor_distance, when that term is on

    def add_encoder_term(self, loss: torch.Tensor, weight: float) -> None:
        self.encoder = loss
        self.total = self.total + weight * loss

    def add_anchor_term(self, distance: torch.Tensor, weight: float) -> None:
        self.anchor = distance
        self.total = self.total + weight * distance

    def as_floats(self) -> dict[str, float]:
        floats = {"total": self.total.item(), "ce": self.ce.item(), "kd": self.kd.item()}
        return floats | {key: term.item() for key, term in (("encoder", self.encoder), ("anchor", self.anchor))
                         if term is not None}


def anchor_distance(parameters: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """() Σ (θ − θ₀)² over the named ``parameters`` that ``anchor`` holds a starting value θ₀ of."""
    return sum(((parameters[name] - start) ** 2).sum() for name, start in anchor.items())


def distillation_loss(student_logits: torch.Tensor, labels: torch.Tensor, weights: LossWeights,
                      teacher_logits: torch.Tensor | None = None,
                      teacher_topk: tuple[torch.Tensor, torch.Tensor] | None = None) -> LossParts:
    """The weighted loss of one batch: online KD with ``teacher_logits`` (B, T, V), offline KD with
    ``teacher_topk = (ids, log_probs)`` (B, T, K) each, or plain cross-entropy with neither.
    The KL is taken over the same positions as the cross-entropy (labels != IGNORE_INDEX)."""
    if teacher_logits is not None and teacher_topk is not None:
        raise ValueError("pass teacher_logits (online KD) or teacher_topk (offline KD), not both")
    ce = token_cross_entropy(student_logits, labels)  # ()
    total = weights.ce_weight * ce
    kd = torch.zeros((), device=student_logits.device)
    has_teacher = teacher_logits is not None or teacher_topk is not None
    if has_teacher and weights.kd_weight > 0:
        mask = labels != IGNORE_INDEX  # (B, T)
        if teacher_logits is not None:
            kd = kl_full(student_logits, teacher_logits, mask, weights.temperature)
        else:
            kd = kl_topk(student_logits, *teacher_topk, mask, weights.temperature)
        total = total + weights.kd_weight * kd
    return LossParts(total=total, ce=ce, kd=kd)
