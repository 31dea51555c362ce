"""Resource-aware losses over the cost matrix, as nn.Modules.

Both take per-layer candidate weights ``p`` of shape [..., layers, candidates]: probabilities
(softmax), or soft or hard (straight-through) Gumbel-softmax samples; or raw logits with
``from_logits=True``.

Masked (invalid) candidates never contribute cost:
- from logits, the mask is applied to the logits (-inf) before the softmax, so their probability is 0;
- from probabilities/samples, masked entries are zeroed and each layer's weights are renormalised over
  its valid candidates. A one-hot sample on an invalid candidate is an invalid architecture and raises
  (``strict=True``; sample with ``search_client.gumbel_softmax(logits, mask)`` to never draw one).
Renormalising leaves softmax/Gumbel gradients w.r.t. the logits unchanged when p already sums to 1 over
the valid candidates.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import nn

from search_client.matrix import CostMatrix


def _fixed_value(fixed: Union[None, float, torch.Tensor]) -> float:
    if fixed is None:
        return 0.0
    return float(fixed)


class ExpectedCostLoss(nn.Module):
    """E[cost] = sum_ij p_ij C_ij (+ fixed): SqueezeNAS eq. 3, FBNet's expected latency.

    ``C`` [layers, candidates]; ``mask`` True where a candidate is invalid; ``fixed`` the cost every
    architecture pays (stem, head, decoder), added when given. Returns the cost in C's unit (ms for a LUT).
    """

    C: torch.Tensor  # buffers (register_buffer), typed for the checker
    mask: torch.Tensor

    def __init__(
        self,
        C: Union[torch.Tensor, CostMatrix],
        mask: Optional[torch.Tensor] = None,
        fixed: Union[None, float, torch.Tensor] = None,
        *,
        from_logits: bool = False,
        strict: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(C, CostMatrix):
            mask = C.mask if mask is None else mask
            C = C.C
        if C.dim() != 2:
            raise ValueError(f"C must be [layers, candidates], got shape {tuple(C.shape)}")
        if mask is None:
            mask = torch.zeros(C.shape, dtype=torch.bool, device=C.device)
        mask = mask.to(device=C.device, dtype=torch.bool)
        if mask.shape != C.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} differs from C's {tuple(C.shape)}")
        if bool(mask.all(dim=1).any()):
            layers = mask.all(dim=1).nonzero().flatten().tolist()
            raise ValueError(f"layers {layers} have no valid candidate")
        bad = torch.isnan(C) & ~mask
        if bool(bad.any()):
            cells = bad.nonzero().tolist()[:10]
            raise ValueError(
                f"C has {int(bad.sum())} unmeasured (NaN) entries at valid candidates, e.g. (layer, candidate) "
                f"{cells}; measure them (cost_matrix(..., missing='wait')) or mask them"
            )
        fixed_v = _fixed_value(fixed)
        if math.isnan(fixed_v):
            raise ValueError("the fixed cost is NaN (a stem/head/decoder op is unmeasured)")
        self.register_buffer("C", C.masked_fill(mask, 0.0))
        self.register_buffer("mask", mask)
        self.fixed = fixed_v
        self.from_logits = from_logits
        self.strict = strict
        self.any_masked = bool(mask.any())  # without masked cells the hot path skips masking entirely

    def _check(self, p: torch.Tensor) -> None:
        if p.shape[-2:] != self.C.shape:
            raise ValueError(f"weights of shape {tuple(p.shape)} do not end in C's shape {tuple(self.C.shape)}")

    def weights(self, p: torch.Tensor) -> torch.Tensor:
        """Per-layer weights over the valid candidates (masked entries 0, each layer summing to 1)."""
        self._check(p)
        if self.from_logits:
            return torch.softmax(p.masked_fill(self.mask, float("-inf")) if self.any_masked else p, dim=-1)
        if not self.any_masked:
            return p
        w = p.masked_fill(self.mask, 0.0)
        return w / self._valid_mass(w)

    def _valid_mass(self, w: torch.Tensor) -> torch.Tensor:
        total = w.sum(dim=-1, keepdim=True)
        if self.strict and bool((total <= 0).any()):
            layers = (total <= 0).flatten().nonzero().flatten().tolist()
            raise ValueError(
                f"layers {layers} put all their weight on invalid candidates; apply the mask to the logits "
                "before sampling (search_client.gumbel_softmax(logits, mask))"
            )
        return total.clamp_min(torch.finfo(w.dtype).tiny)

    def layer_costs(self, p: torch.Tensor) -> torch.Tensor:
        """Expected cost of each layer, [..., layers]."""
        return (self.weights(p) * self.C.to(p.dtype)).sum(dim=-1)

    def expected_cost(self, p: torch.Tensor) -> torch.Tensor:
        """sum_ij p_ij C_ij (+ fixed), with as few kernels as possible: it runs every search step."""
        C = self.C if self.C.dtype == p.dtype else self.C.to(p.dtype)
        if self.from_logits or not self.any_masked:
            w = self.weights(p)  # checks the shape
            return (w * C).sum(dim=(-2, -1)) + self.fixed
        self._check(p)
        w = p.masked_fill(self.mask, 0.0)
        return ((w * C).sum(dim=-1, keepdim=True) / self._valid_mass(w)).sum(dim=(-2, -1)) + self.fixed

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.expected_cost(p)


class TargetLatencyLoss(ExpectedCostLoss):
    """TF-NAS eq. 9: lambda * |LAT(alpha) / T - 1|, LAT the expected latency (fixed cost included).

    As in the TF-NAS code (``torch.abs(lat / target_lat - 1.) * lambda_lat``, lambda 0.1 by default), it
    pulls the expected latency towards the target from both sides, so the search neither overshoots nor
    wastes a latency budget the accuracy could use. ``latency(p)`` gives LAT itself for logging.
    The TF-NAS code computes LAT with soft Gumbel-softmax weights plus its LUT's ``base`` (our fixed
    cost): pass ``gumbel_softmax(alpha, mask, tau)`` to reproduce that, or softmax probabilities for the
    deterministic expectation.
    """

    def __init__(
        self,
        C: Union[torch.Tensor, CostMatrix],
        mask: Optional[torch.Tensor] = None,
        fixed: Union[None, float, torch.Tensor] = None,
        *,
        target: float,
        weight: float = 0.1,
        from_logits: bool = False,
        strict: bool = True,
    ) -> None:
        if isinstance(C, CostMatrix) and fixed is None:
            fixed = C.fixed
        super().__init__(C, mask, fixed, from_logits=from_logits, strict=strict)
        if not target > 0:
            raise ValueError(f"target latency {target} must be positive")
        self.target = float(target)
        self.weight = float(weight)

    def latency(self, p: torch.Tensor) -> torch.Tensor:
        return self.expected_cost(p)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.abs(self.latency(p) / self.target - 1.0)
