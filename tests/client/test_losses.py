"""Losses: value, gradient against finite differences, masking, Gumbel samples."""

from __future__ import annotations

import pytest
import torch

from search_client import (
    ExpectedCostLoss,
    TargetLatencyLoss,
    gumbel_softmax,
    mac_matrix,
    masked_softmax,
)

# float() of a loss that carries a graph is fine here: the values are read, the graphs dropped
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")


def _problem(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    C = torch.rand(5, 4, generator=g, dtype=dtype) * 3 + 0.1
    mask = torch.zeros(5, 4, dtype=torch.bool)
    mask[0, 3] = mask[2, 1] = mask[4, 0] = True
    C = C.masked_fill(mask, 0.0)
    alpha = torch.randn(5, 4, generator=g, dtype=dtype, requires_grad=True)
    return C, mask, alpha


def test_expected_cost_value_matches_explicit_sum():
    C, mask, alpha = _problem()
    p = masked_softmax(alpha.detach(), mask)
    loss = ExpectedCostLoss(C, mask, fixed=1.5)
    expect = sum(float(p[i, j] * C[i, j]) for i in range(5) for j in range(4)) + 1.5
    assert float(loss(p)) == pytest.approx(expect, rel=1e-12)
    assert float(ExpectedCostLoss(C, mask)(p)) == pytest.approx(expect - 1.5, rel=1e-12)


def test_gradcheck_probabilities_and_logits():
    C, mask, alpha = _problem()
    probs_loss = ExpectedCostLoss(C, mask, fixed=2.0)
    logit_loss = ExpectedCostLoss(C, mask, fixed=2.0, from_logits=True)
    target_loss = TargetLatencyLoss(C, mask, fixed=2.0, target=3.0, weight=0.1)
    assert torch.autograd.gradcheck(lambda a: probs_loss(masked_softmax(a, mask)), (alpha,))
    assert torch.autograd.gradcheck(lambda a: logit_loss(a), (alpha,))
    assert torch.autograd.gradcheck(lambda a: target_loss(masked_softmax(a, mask)), (alpha,))
    # probabilities that leak mass onto masked candidates: renormalisation is differentiable too
    assert torch.autograd.gradcheck(lambda a: probs_loss(torch.softmax(a, -1)), (alpha,))


def test_masked_candidates_get_no_cost_and_no_gradient():
    C, mask, alpha = _problem()
    huge = C.masked_fill(mask, 1e6)  # a value in a masked cell must never count
    loss = ExpectedCostLoss(huge, mask, from_logits=True)
    ref = ExpectedCostLoss(C, mask, from_logits=True)
    assert loss(alpha).item() == pytest.approx(ref(alpha).item())
    loss(alpha).backward()
    assert torch.all(alpha.grad[mask] == 0)
    assert torch.any(alpha.grad[~mask] != 0)


def test_renormalised_over_valid_candidates():
    C, mask, _ = _problem()
    loss = ExpectedCostLoss(C, mask)
    uniform = torch.full((5, 4), 0.25, dtype=C.dtype)  # puts 1/4 on the masked cells too
    valid = (~mask).to(C.dtype)
    expect = float(((C * valid).sum(1) / valid.sum(1)).sum())
    assert float(loss(uniform)) == pytest.approx(expect)


def test_target_latency_loss_is_tf_nas_eq9():
    C, mask, alpha = _problem()
    p = masked_softmax(alpha.detach(), mask)
    lat = float(ExpectedCostLoss(C, mask, fixed=0.7)(p))
    for target in (lat * 0.5, lat * 2):
        loss = TargetLatencyLoss(C, mask, fixed=0.7, target=target, weight=0.1)
        assert float(loss.latency(p)) == pytest.approx(lat)
        assert float(loss(p)) == pytest.approx(0.1 * abs(lat / target - 1))
    # gradient pushes the latency towards the target from both sides
    over = TargetLatencyLoss(C, mask, fixed=0.7, target=lat * 0.5)
    under = TargetLatencyLoss(C, mask, fixed=0.7, target=lat * 2)
    g_over = torch.autograd.grad(over(masked_softmax(alpha, mask)), alpha)[0]
    g_under = torch.autograd.grad(under(masked_softmax(alpha, mask)), alpha)[0]
    assert torch.allclose(g_over / 0.1 * (lat * 0.5), -g_under / 0.1 * (lat * 2))


def test_gumbel_samples_hard_and_soft():
    C, mask, alpha = _problem()
    g = torch.Generator().manual_seed(1)
    loss = ExpectedCostLoss(C, mask)
    for _ in range(20):
        hard = gumbel_softmax(alpha, mask, tau=1.0, hard=True, generator=g)
        assert torch.all(hard[mask] == 0)
        assert torch.allclose(hard.sum(-1), torch.ones(5, dtype=C.dtype))
        chosen = hard.argmax(-1)
        assert float(loss(hard)) == pytest.approx(float(C[torch.arange(5), chosen].sum()))
        soft = gumbel_softmax(alpha, mask, tau=2.0, generator=g)
        assert torch.all(soft[mask] == 0)
        assert float(loss(soft)) == pytest.approx(float((soft * C).sum()))
    # straight-through: the hard sample's gradient is the soft sample's
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    gh = torch.autograd.grad(loss(gumbel_softmax(alpha, mask, 1.0, True, g1)), alpha)[0]
    gs = torch.autograd.grad((gumbel_softmax(alpha, mask, 1.0, False, g2) * C).sum(), alpha)[0]
    assert torch.allclose(gh, gs)
    # soft Gumbel sample gradient against finite differences (fixed noise)
    u = torch.rand(5, 4, generator=g, dtype=C.dtype)
    noise = -torch.log(-torch.log(u))

    def soft_loss(a):
        return loss(masked_softmax((a + noise) / 0.5, mask))

    assert torch.autograd.gradcheck(soft_loss, (alpha,))


def test_hard_sample_on_invalid_candidate_raises():
    C, mask, _ = _problem()
    p = torch.zeros(5, 4, dtype=C.dtype)
    p[:, 2] = 1.0
    p[0] = 0
    p[0, 3] = 1.0  # layer 0 picks its masked candidate
    with pytest.raises(ValueError, match=r"layers \[0\] put all their weight on invalid"):
        ExpectedCostLoss(C, mask)(p)


def test_bad_inputs_are_named():
    C, mask, _ = _problem()
    Cn = C.clone()
    Cn[1, 1] = float("nan")
    with pytest.raises(ValueError, match="unmeasured"):
        ExpectedCostLoss(Cn, mask)
    Cn[1, 1] = 0
    Cn[0, 3] = float("nan")  # NaN in a masked cell is fine
    ExpectedCostLoss(Cn, mask)
    with pytest.raises(ValueError, match="shape"):
        ExpectedCostLoss(C, mask)(torch.zeros(5, 3, dtype=C.dtype))
    with pytest.raises(ValueError, match="target latency"):
        TargetLatencyLoss(C, mask, target=0)


def test_batched_weights_and_cost_matrix_input():
    cm = mac_matrix("fbnet", "64x64", dtype=torch.float64)
    loss = TargetLatencyLoss(cm, target=50.0)
    assert loss.fixed == pytest.approx(cm.fixed)
    alpha = torch.zeros(3, *cm.C.shape, dtype=torch.float64)
    out = loss(masked_softmax(alpha, cm.mask))
    assert out.shape == (3,)
    assert torch.allclose(out, out[0].expand(3))


def test_module_moves_with_to():
    C, mask, _ = _problem(torch.float32)
    loss = ExpectedCostLoss(C, mask).to(torch.float64)
    assert loss.C.dtype == torch.float64 and loss.mask.dtype == torch.bool
