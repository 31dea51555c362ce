"""Width-elastic catalogues: each candidate block also chooses its expanded (mid) width.

TF-NAS's elasticity scaling (Hu et al. 2020, ``fit_mc_num_by_latency`` in ``train_search.py``) keeps
every block's mid channels between half and all of its mask width, ``4 c_in`` for the e3 candidates and
``8 c_in`` for the e6 ones, starting from ``3 c_in`` / ``6 c_in``. The widths here -- the one place this
choice is made -- are ``WIDTHS``: five levels over that range in eighths of the mask width, each rounded
to a multiple of 8 (``make_divisible``, FBNetV2's and OFA's channel grid). Every channel in steps of 8
would give ~2,800 block ops for ``tfnas-elastic`` at 224 (TF-NAS's own tables hold every width, ~31,000);
five levels give ~420 and one column per (block, width), so the chain cost matrix stays
layers x candidates with no invalid cells, and the starting widths are the ``tfnas`` space's own ops
(same keys, same LUT entries). A column is named ``k3_e6_x5``: the ``tfnas`` block ``k3_e6`` at
``mid = make_divisible(5 c_in)``.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple, Union

from lutcore.catalogues.base import Candidate, Catalogue, Invalid, LayerSlot, get_catalogue, register_catalogue
from lutcore.ops import OpSpec
from lutcore.ops.base import fmt_num
from lutcore.ops.blocks import make_divisible

# mid width in multiples of c_in, per TF-NAS expansion: half to all of the mask width (4x / 8x c_in)
WIDTHS = {3: (2, 2.5, 3, 3.5, 4), 6: (4, 5, 6, 7, 8)}


def mid_width(c_in: int, times: float) -> int:
    """The mid channels of a width level at a layer: ``times * c_in`` on the grid of multiples of 8."""
    return make_divisible(c_in * times, 8)


@dataclasses.dataclass(frozen=True)
class WidthCandidate(Candidate):
    """A block recipe at one width level: its mid channels follow the layer's ``c_in``."""

    times: float = 1

    def place(self, slot: LayerSlot, skip_policy: str) -> Union[OpSpec, Invalid]:
        fixed = Candidate(self.name, self.family, self.params + (("mid", mid_width(slot.c_in, self.times)),))
        return fixed.place(slot, skip_policy)


def widths_of(base: Candidate, levels: Tuple[float, ...]) -> Tuple[WidthCandidate, ...]:
    """``base`` at each width level (its own expansion dropped: the width replaces it)."""
    params = tuple((k, v) for k, v in base.params if k != "expansion")
    return tuple(WidthCandidate(f"{base.name}_x{fmt_num(t)}", base.family, params, t) for t in levels)


@register_catalogue("tfnas-elastic")
def tfnas_elastic() -> Catalogue:
    """TF-NAS's 8 blocks (k3/k5 x e3/e6 x SE) x 5 mid widths each (``WIDTHS``): 40 candidates."""
    cands: Tuple[WidthCandidate, ...] = ()
    for c in get_catalogue("tfnas").candidates:
        cands += widths_of(c, WIDTHS[dict(c.params)["expansion"]])
    return Catalogue("tfnas-elastic", cands, "identity", "TF-NAS's 8 blocks, each at 5 mid widths (elasticity)")
