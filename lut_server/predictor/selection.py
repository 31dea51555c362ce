"""Which ops to measure: a seeded random share, optionally with a space's fixed ops always included.

A space's fixed ops (stem, head, decoder) sit in every network, and are often the only op of
their family (a segmentation decoder): predicted, one op's error moves every network's sum.
Measuring them costs one to four jobs, so ``random_with`` takes them first and fills the rest
of the share at random.
"""

from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np

from lut_server.predictor.model import PredictorError


def share_count(n: int, share: float) -> int:
    if not 0.0 < share < 1.0:
        raise PredictorError(f"train share {share}: must lie strictly between 0 and 1")
    return min(max(int(round(share * n)), 1), n - 1)


def random_share(n: int, share: float, seed: int) -> List[int]:
    """``share`` of ``range(n)`` (rounded, at least one left on each side), seeded."""
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[:share_count(n, share)])


def random_with(keys: Sequence[str], first: Iterable[str], share: float, seed: int) -> List[int]:
    """The indices of ``first`` (those present in ``keys``), then random others up to ``share`` of ``keys``."""
    n = len(keys)
    want = share_count(n, share)
    firsts = set(first)
    chosen = [i for i, k in enumerate(keys) if k in firsts][:want]
    rest = [i for i in np.random.default_rng(seed).permutation(n).tolist() if i not in set(chosen)]
    return sorted(chosen + rest[:want - len(chosen)])
