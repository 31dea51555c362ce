"""Candidate pruning (SqueezeNAS sec. 4.2): drop candidates whose probability fell below a threshold.

Dropped candidates leave the supernet, which can halve search time. The reduced matrix has as many
columns as the layer keeping the most candidates; shorter layers are padded with masked columns.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch


@dataclasses.dataclass(frozen=True)
class PrunedMatrix:
    """Reduced C [layers, k] with ``index[i, r]`` = original candidate of reduced column r (-1 = padding).

    ``mask`` is True at padding; ``keep`` [layers, candidates] marks the kept original candidates.
    """

    C: torch.Tensor
    mask: torch.Tensor
    index: torch.Tensor
    keep: torch.Tensor

    def reduce(self, x: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Gather a [..., layers, candidates] tensor (logits, probabilities) into the reduced layout."""
        idx = self.index.clamp_min(0).expand(*x.shape[:-2], *self.index.shape)
        out = torch.gather(x, -1, idx)
        return out.masked_fill(self.mask, fill)

    def expand(self, x: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Scatter a reduced [..., layers, k] tensor back to [..., layers, candidates] (dropped -> fill)."""
        shape = (*x.shape[:-1], self.keep.shape[-1] + 1)
        out = torch.full(shape, fill, dtype=x.dtype, device=x.device)
        idx = torch.where(self.index < 0, torch.full_like(self.index, self.keep.shape[-1]), self.index)
        out = out.scatter(-1, idx.expand(*x.shape[:-2], *idx.shape), x)
        return out[..., :-1]

    def kept(self, layer: int) -> list:
        return [int(j) for j in self.index[layer] if j >= 0]


def prune_candidates(
    probs: torch.Tensor,
    C: torch.Tensor,
    mask: Optional[torch.Tensor],
    threshold: float,
) -> PrunedMatrix:
    """Keep, per layer, the valid candidates with probability >= threshold (always the most likely one).

    ``probs`` [layers, candidates] (e.g. the masked softmax of the architecture logits); ``mask`` True at
    invalid candidates, which are always dropped.
    """
    if probs.shape != C.shape:
        raise ValueError(f"probs shape {tuple(probs.shape)} differs from C's {tuple(C.shape)}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold {threshold} must be in [0, 1)")
    probs = probs.detach()
    valid = torch.ones_like(C, dtype=torch.bool) if mask is None else ~mask.to(C.device, torch.bool)
    p = probs.masked_fill(~valid, -1.0)
    best = p.argmax(dim=-1, keepdim=True)
    keep = (p >= threshold) & valid
    keep = keep.scatter(-1, best, True)
    k = int(keep.sum(dim=-1).max())
    # stable order: kept candidates in their original order, left-aligned
    order = torch.argsort((~keep).to(torch.int8), dim=-1, stable=True)[:, :k]
    pad = ~torch.gather(keep, -1, order)
    index = order.masked_fill(pad, -1)
    Cr = torch.gather(C, -1, order).masked_fill(pad, 0.0)
    return PrunedMatrix(C=Cr, mask=pad, index=index, keep=keep)
