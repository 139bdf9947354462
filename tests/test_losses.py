"""The distillation losses against plain reference computations and their edge cases, on seeded tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from voxdistill.distill.losses import (
    IGNORE_INDEX,
    LossParts,
    LossWeights,
    distillation_loss,
    kl_full,
    kl_topk,
    paired_states,
    token_cross_entropy,
)


def random_batch(seed: int, B: int = 3, T: int = 5, V: int = 11):
    """Student and teacher logits (B, T, V) and labels (B, T) with a few ignored positions."""
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(B, T, V, generator=g) * 2
    teacher = torch.randn(B, T, V, generator=g) * 3
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[0, :2] = IGNORE_INDEX  # a prompt
    labels[-1, -1] = IGNORE_INDEX  # padding
    return student, teacher, labels


def reference_kl(student, teacher, mask, temperature):
    """T² · mean over masked positions of KL(p_t^T ‖ p_s^T), via torch's own kl_div."""
    per_entry = F.kl_div(F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1),
                         log_target=True, reduction="none")  # (B, T, V)
    return temperature**2 * per_entry.sum(-1)[mask].mean()


def full_topk(teacher, k):
    """The teacher's top-k ids and full-vocabulary log-probabilities (T = 1), as the cache stores them."""
    log_probs, ids = F.log_softmax(teacher, -1).topk(k, dim=-1)
    return ids.to(torch.int32), log_probs


# --- cross-entropy ---------------------------------------------------------------------------------

def test_token_cross_entropy_by_hand():
    logits = torch.tensor([[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [9.0, 9.0, 9.0]]])  # (1, 3, 3)
    labels = torch.tensor([[1, 0, IGNORE_INDEX]])
    expected = 0.0
    for row, label in ((logits[0, 0].tolist(), 1), (logits[0, 1].tolist(), 0)):
        expected += math.log(sum(math.exp(x) for x in row)) - row[label]
    assert token_cross_entropy(logits, labels).item() == pytest.approx(expected / 2, rel=1e-6)


def test_token_cross_entropy_matches_torch_with_ignore_index():
    student, _, labels = random_batch(0)
    reference = F.cross_entropy(student.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(token_cross_entropy(student, labels), reference)


# --- full-vocabulary KL ----------------------------------------------------------------------------

def test_kl_full_by_hand():
    s, t, temperature = [1.0, 2.0, 3.0], [3.0, 0.0, 1.0], 2.0
    p_s = [math.exp(x / temperature) / sum(math.exp(y / temperature) for y in s) for x in s]
    p_t = [math.exp(x / temperature) / sum(math.exp(y / temperature) for y in t) for x in t]
    expected = temperature**2 * sum(q * math.log(q / p) for q, p in zip(p_t, p_s))
    loss = kl_full(torch.tensor([[s]]), torch.tensor([[t]]), torch.tensor([[True]]), temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_kl_full_matches_reference(temperature):
    student, teacher, labels = random_batch(1)
    mask = labels != IGNORE_INDEX
    torch.testing.assert_close(kl_full(student, teacher, mask, temperature),
                               reference_kl(student, teacher, mask, temperature))


def test_temperature_scales_by_t_squared():
    student, teacher, labels = random_batch(2)
    mask, temperature = labels != IGNORE_INDEX, 3.0
    unscaled = reference_kl(student, teacher, mask, temperature) / temperature**2  # KL of the softened pair
    torch.testing.assert_close(kl_full(student, teacher, mask, temperature), temperature**2 * unscaled)
    torch.testing.assert_close(kl_full(student, teacher, mask, temperature),
                               temperature**2 * kl_full(student / temperature, teacher / temperature, mask, 1.0))


def test_kl_full_gradient_is_analytic():
    student, teacher, labels = random_batch(3, B=2, T=3, V=7)
    mask, temperature = labels != IGNORE_INDEX, 2.0
    student.requires_grad_(True)
    kl_full(student, teacher, mask, temperature).backward()
    p_s = F.softmax(student.detach() / temperature, -1)
    p_t = F.softmax(teacher / temperature, -1)
    expected = (p_s - p_t) * temperature / mask.sum() * mask[..., None]  # (B, T, V), 0 where masked out
    torch.testing.assert_close(student.grad, expected)


def test_teacher_gets_no_gradient():
    student, teacher, labels = random_batch(4)
    teacher.requires_grad_(True)
    assert not kl_full(student, teacher, labels != IGNORE_INDEX, 2.0).requires_grad


def test_teacher_minus_inf_logits_are_finite():
    student, teacher, labels = random_batch(5)
    mask = labels != IGNORE_INDEX
    suppressed = teacher.clone()
    suppressed[..., [0, 4, 7]] = -math.inf  # tokens the teacher never emits
    student.requires_grad_(True)
    loss = kl_full(student, suppressed, mask, 2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    # A very negative finite logit has probability exactly 0 in float32, so it is the same loss.
    stand_in = teacher.clone()
    stand_in[..., [0, 4, 7]] = -1e4
    torch.testing.assert_close(loss, reference_kl(student, stand_in, mask, 2.0))


def test_student_minus_inf_where_teacher_is_zero_is_finite():
    student, teacher, labels = random_batch(6)
    mask = labels != IGNORE_INDEX
    teacher[..., [1, 2]] = -math.inf
    student = student.clone()
    student[..., [1, 2]] = -math.inf
    student.requires_grad_(True)
    loss = kl_full(student, teacher, mask, 2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert (student.grad[..., [1, 2]] == 0).all()


def test_nan_teacher_is_not_hidden():
    student, teacher, labels = random_batch(21)
    teacher[1, 2, 3] = math.nan  # e.g. an fp16 overflow in the teacher
    assert torch.isnan(kl_full(student, teacher, labels != IGNORE_INDEX, 2.0))


def test_all_masked_batch_is_a_connected_zero():
    student, teacher, labels = random_batch(7)
    labels[:] = IGNORE_INDEX
    mask = labels != IGNORE_INDEX
    student[0, 0] = -math.inf  # garbage in a padded row must not leak in
    ids, log_probs = full_topk(teacher, 4)
    student.requires_grad_(True)
    for loss in (token_cross_entropy(student, labels), kl_full(student, teacher, mask, 2.0),
                 kl_topk(student, ids, log_probs, mask, 2.0),
                 distillation_loss(student, labels, LossWeights(), teacher_logits=teacher).total):
        assert loss.item() == 0.0
        student.grad = None
        loss.backward()
        assert (student.grad == 0).all()


def test_masked_positions_may_hold_anything():
    student, teacher, labels = random_batch(8)
    mask = labels != IGNORE_INDEX
    expected = kl_full(student, teacher, mask, 2.0)
    teacher[~mask] = -math.inf  # an all -inf row would be NaN if it were softmaxed
    student[~mask] = math.nan
    torch.testing.assert_close(kl_full(student, teacher, mask, 2.0), expected)


def test_bf16_student_gives_float32_loss():
    student, teacher, labels = random_batch(9)
    mask = labels != IGNORE_INDEX
    low = student.bfloat16()
    for loss, reference in ((kl_full(low, teacher, mask, 2.0), kl_full(student, teacher, mask, 2.0)),
                            (token_cross_entropy(low, labels), token_cross_entropy(student, labels))):
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, reference, rtol=2e-2, atol=1e-3)


# --- top-k KL (offline) ----------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kl_topk_with_whole_vocabulary_equals_kl_full(temperature):
    student, teacher, labels = random_batch(10)
    mask = labels != IGNORE_INDEX
    ids, log_probs = full_topk(teacher, teacher.shape[-1])
    torch.testing.assert_close(kl_topk(student, ids, log_probs, mask, temperature),
                               kl_full(student, teacher, mask, temperature))


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_kl_topk_equals_kl_full_when_teacher_has_no_mass_outside_top_k(temperature):
    student, teacher, labels = random_batch(11)
    mask, k = labels != IGNORE_INDEX, 3
    ids, _ = full_topk(teacher, k)
    truncated = torch.full_like(teacher, -math.inf).scatter(-1, ids.long(), teacher.gather(-1, ids.long()))
    _, log_probs = full_topk(truncated, k)
    torch.testing.assert_close(kl_topk(student, ids, log_probs, mask, temperature),
                               kl_full(student, truncated, mask, temperature))


@pytest.mark.parametrize("seed", range(5))
def test_kl_topk_is_at_least_minus_log_student_mass_on_top_k(seed):
    student, teacher, labels = random_batch(20 + seed)
    mask, temperature = labels != IGNORE_INDEX, 2.0
    ids, log_probs = full_topk(teacher, 3)
    mass = F.softmax(student / temperature, -1).gather(-1, ids.long()).sum(-1)  # (B, T) P ≤ 1
    bound = temperature**2 * (-mass.log())[mask].mean()
    loss = kl_topk(student, ids, log_probs, mask, temperature)
    assert loss >= bound >= 0


def test_kl_topk_is_close_when_top_k_holds_nearly_all_mass():
    g = torch.Generator().manual_seed(12)
    B, T, V, k = 2, 4, 200, 8
    head = 0.999 * F.softmax(torch.randn(B, T, k, generator=g), -1)  # 99.9 % on k tokens
    tail = 0.001 * F.softmax(torch.randn(B, T, V - k, generator=g), -1)
    teacher = torch.cat([head, tail], -1).log()[..., torch.randperm(V, generator=g)]  # (B, T, V)
    student = teacher + torch.randn(B, T, V, generator=g)  # a student near the teacher
    mask = torch.ones(B, T, dtype=torch.bool)
    ids, log_probs = full_topk(teacher, k)
    full = kl_full(student, teacher, mask, 1.0)
    assert kl_topk(student, ids, log_probs, mask, 1.0).item() == pytest.approx(full.item(), abs=3e-3)
    # Softening fattens the tail (here 13 % of the mass at T = 2), so the approximation loosens with T.
    assert kl_topk(student, ids, log_probs, mask, 2.0) > 1.5 * kl_full(student, teacher, mask, 2.0)


def test_kl_topk_ignores_k_padding():
    student, teacher, labels = random_batch(13)
    mask = labels != IGNORE_INDEX
    ids, log_probs = full_topk(teacher, 4)
    padded_ids = torch.cat([ids, torch.zeros_like(ids[..., :2])], -1)  # (B, T, 6)
    padded_log_probs = torch.cat([log_probs, torch.full_like(log_probs[..., :2], -math.inf)], -1)
    student.requires_grad_(True)
    loss = kl_topk(student, padded_ids, padded_log_probs.half(), mask, 2.0)  # float16, as cached
    loss.backward()
    assert torch.isfinite(student.grad).all()
    torch.testing.assert_close(loss, kl_topk(student, ids, log_probs.half(), mask, 2.0))


# --- weights and the combined loss -----------------------------------------------------------------

@pytest.mark.parametrize("fields", [{"ce_weight": -0.1}, {"kd_weight": -1.0}, {"temperature": 0.0},
                                    {"temperature": -2.0}, {"kd_weight": math.nan}])
def test_loss_weights_are_validated(fields):
    with pytest.raises(ValueError):
        LossWeights(**fields)


def test_each_weight_multiplies_only_its_own_term():
    student, teacher, labels = random_batch(14)
    script = LossWeights(ce_weight=0.8, kd_weight=1.0, temperature=2.0)
    parts = distillation_loss(student, labels, script, teacher_logits=teacher)
    torch.testing.assert_close(parts.ce, token_cross_entropy(student, labels))
    torch.testing.assert_close(parts.kd, kl_full(student, teacher, labels != IGNORE_INDEX, 2.0))
    torch.testing.assert_close(parts.total, 0.8 * parts.ce + 1.0 * parts.kd)
    paper = distillation_loss(student, labels, LossWeights(ce_weight=1.0, kd_weight=0.8), teacher_logits=teacher)
    torch.testing.assert_close(paper.total, parts.ce + 0.8 * parts.kd)


def test_zero_kd_weight_skips_the_kl():
    student, teacher, labels = random_batch(15)
    poisoned = torch.full_like(teacher, math.nan)  # any KL against it would be NaN
    parts = distillation_loss(student, labels, LossWeights(ce_weight=0.7, kd_weight=0.0), teacher_logits=poisoned)
    assert parts.kd.item() == 0.0
    torch.testing.assert_close(parts.total, 0.7 * parts.ce)


def test_without_teacher_the_loss_is_weighted_cross_entropy():
    student, _, labels = random_batch(16)
    parts = distillation_loss(student, labels, LossWeights(ce_weight=0.5))
    assert parts.kd.item() == 0.0
    torch.testing.assert_close(parts.total, 0.5 * token_cross_entropy(student, labels))


def test_offline_teacher_uses_kl_topk():
    student, teacher, labels = random_batch(17)
    ids, log_probs = full_topk(teacher, 5)
    parts = distillation_loss(student, labels, LossWeights(temperature=1.5), teacher_topk=(ids, log_probs))
    torch.testing.assert_close(parts.kd, kl_topk(student, ids, log_probs, labels != IGNORE_INDEX, 1.5))


def test_both_teachers_is_an_error():
    student, teacher, labels = random_batch(18)
    with pytest.raises(ValueError, match="not both"):
        distillation_loss(student, labels, LossWeights(), teacher_logits=teacher,
                          teacher_topk=full_topk(teacher, 2))


def test_as_floats_for_logging():
    student, teacher, labels = random_batch(19)
    parts = distillation_loss(student.requires_grad_(True), labels, LossWeights(), teacher_logits=teacher)
    assert isinstance(parts, LossParts)
    logged = parts.as_floats()
    assert set(logged) == {"total", "ce", "kd"} and all(isinstance(v, float) for v in logged.values())
    assert logged["total"] == pytest.approx(logged["ce"] + logged["kd"], rel=1e-6)


def test_paired_states_keep_each_rows_window_or_its_clip():
    d = 3
    teacher = torch.randn(3, 10, d)
    # Rows 0 and 2 encoded together at 6 positions, row 1 alone at 8; the term compares up to 7.
    groups = [([0, 2], torch.randn(2, 6, d)), ([1], torch.randn(1, 8, d))]
    student, target = paired_states(groups, teacher, positions=7)
    assert torch.equal(student, torch.cat([groups[0][1][0], groups[0][1][1], groups[1][1][0, :7]]))
    assert torch.equal(target, torch.cat([teacher[0, :6], teacher[2, :6], teacher[1, :7]]))
    # Clip positions per batch row: only the positions holding each clip.
    student, target = paired_states(groups, teacher, positions=7, clip_positions=[2, 9, 4])
    assert torch.equal(student, torch.cat([groups[0][1][0, :2], groups[0][1][1, :4], groups[1][1][0, :7]]))
    assert torch.equal(target, torch.cat([teacher[0, :2], teacher[2, :4], teacher[1, :7]]))
