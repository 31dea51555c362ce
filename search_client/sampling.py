"""Architecture distributions over the valid candidates: masked softmax and Gumbel-softmax.

Masking is applied to the logits (invalid candidates get -inf), so an invalid candidate has
probability exactly 0, is never sampled, and receives no gradient.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def masked_logits(logits: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """``logits`` with invalid candidates (mask True) set to -inf.

    Not checked per call (it runs every step): a layer with every candidate masked gives NaN; the losses
    reject such a mask when they are built.
    """
    if mask is None:
        return logits
    return logits.masked_fill(mask, float("-inf"))


def masked_softmax(logits: torch.Tensor, mask: Optional[torch.Tensor] = None, dim: int = -1) -> torch.Tensor:
    """p(i, j) = softmax over the valid candidates of layer i (SqueezeNAS eq. 2)."""
    return torch.softmax(masked_logits(logits, mask), dim=dim)


def gumbel_softmax(
    logits: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    tau: float = 1.0,
    hard: bool = False,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """A Gumbel-softmax sample per layer over the valid candidates (FBNet, SqueezeNAS sec. 4.1).

    ``hard=True`` returns one-hot samples with the straight-through gradient of the soft sample.
    """
    if tau <= 0:
        raise ValueError(f"tau={tau} must be positive")
    u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device, generator=generator)
    g = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    soft = F.softmax((masked_logits(logits, mask) + g) / tau, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft
