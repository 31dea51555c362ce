"""Which ops to measure: a seeded random share, the space's fixed ops first, or the planner's choice.

A space's fixed ops (stem, head, decoder) sit in every network, and are often the only op of
their family (a segmentation decoder): predicted, one op's error moves every network's sum.
Measuring them costs one to four jobs, so ``random_with`` takes them first and fills the rest
of the share at random. ``random+family`` is the same idea without the space: a random share
stratified so that every op family (a skip's mode its own) has at least one measured member, as
no model can price a family's kernels from measurements of none of them.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from lut_server.predictor.errors import PredictorError
from lut_server.predictor.model import Predictor
from lut_server.predictor.names import BLEND, CHOICES
from lut_server.predictor.planner import plan, space_weights
from lutcore.ops import OpSpec


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


def one_per_family(specs: Sequence[OpSpec], seed: int) -> List[str]:
    """One seeded random key per op family (``features.family_of``), in the order families first appear."""
    from lut_server.predictor.features import family_of

    picked: dict = {}
    for i in np.random.default_rng(seed).permutation(len(specs)).tolist():
        picked.setdefault(family_of(specs[i]), specs[i].key)
    return list(picked.values())


def choose(entries: Sequence[Tuple[OpSpec, float]], how: str, share: float, seed: int, space: Optional[Any] = None,
           learner: str = BLEND) -> List[int]:
    """Indices of ``entries`` to train on, chosen ``how`` (``CHOICES``); the planner "measures" by
    looking the value up in ``entries`` (a fully measured LUT), as a bench or an evaluation does."""
    if how not in CHOICES:
        raise PredictorError(f"choice {how!r}: must be one of {', '.join(CHOICES)}")
    if how == "random":
        return random_share(len(entries), share, seed)
    if how == "random+family":
        specs = [s for s, _ in entries]
        return random_with([s.key for s in specs], one_per_family(specs, seed + 1), share, seed)
    if space is None:
        raise PredictorError(f"choosing by {how} needs the space (its fixed ops, its networks)")
    keys = [s.key for s, _ in entries]
    if how == "random+fixed":
        return random_with(keys, [f.spec.key for f in getattr(space, "fixed", [])], share, seed)
    truth, index = {s.key: v for s, v in entries}, {k: i for i, k in enumerate(keys)}
    done = plan([s for s, _ in entries], space_weights(space), share_count(len(entries), share),
                lambda specs: [truth[s.key] for s in specs], lambda: Predictor(learner, seed=seed), seed=seed)
    return sorted(index[s.key] for s, _ in done)
