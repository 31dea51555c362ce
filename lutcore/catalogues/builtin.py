"""The built-in candidate catalogues of SqueezeNAS, FBNet, TF-NAS, MobileNetV2/ProxylessNAS and OFA."""

from __future__ import annotations

from lutcore.catalogues.base import Catalogue, ir, register_catalogue, skip


@register_catalogue("squeezenas")
def squeezenas() -> Catalogue:
    """13 candidates: groups on both 1x1 convs, no shuffle, expansion conv kept at e=1."""
    cands = []
    for k, d in ((3, 1), (3, 2), (5, 1)):
        for e, g in ((1, 2), (1, 1), (3, 1), (6, 1)):
            cands.append(ir(f"k{k}_d{d}_e{e}_g{g}", k, e, dilation=d, groups=g))
    return Catalogue("squeezenas", tuple(cands) + (skip(),), "squeezenas", "SqueezeNAS (Shaw et al. 2019), 13 blocks")


@register_catalogue("fbnet")
def fbnet() -> Catalogue:
    """9 candidates: k3/k5 x e1/e3/e6, grouped (g2) e1 variants with channel shuffle, skip."""
    cands = [
        ir("k3_e1", 3, 1),
        ir("k3_e1_g2", 3, 1, groups=2, shuffle=True),
        ir("k3_e3", 3, 3),
        ir("k3_e6", 3, 6),
        ir("k5_e1", 5, 1),
        ir("k5_e1_g2", 5, 1, groups=2, shuffle=True),
        ir("k5_e3", 5, 3),
        ir("k5_e6", 5, 6),
        skip(),
    ]
    return Catalogue("fbnet", tuple(cands), "fbnet", "FBNet (Wu et al. 2019), 9 blocks")


@register_catalogue("tfnas")
def tfnas() -> Catalogue:
    """8 candidates: k3/k5 x e3/e6 x without/with SE (SE width 1x c_in for e3, 2x for e6)."""
    cands = []
    for e, se in ((3, 1), (6, 2)):
        for k in (3, 5):
            cands.append(ir(f"k{k}_e{e}", k, e))
            cands.append(ir(f"k{k}_e{e}_se", k, e, se=se))
    return Catalogue("tfnas", tuple(cands), "identity", "TF-NAS (Hu et al. 2020) Table 1, 8 blocks")


@register_catalogue("proxyless")
def proxyless() -> Catalogue:
    """MobileNetV2/ProxylessNAS: k3/k5/k7 x e3/e6 and skip (only where the shape is kept)."""
    cands = [ir(f"k{k}_e{e}", k, e) for e in (3, 6) for k in (3, 5, 7)]
    return Catalogue("proxyless", tuple(cands) + (skip(),), "identity", "ProxylessNAS / MobileNetV2, 7 blocks")


@register_catalogue("ofa-mbv3")
def ofa_mbv3() -> Catalogue:
    """Once-for-All MobileNetV3: k3/k5/k7 x e3/e4/e6 and skip (elastic depth: the stage's last blocks)."""
    cands = [ir(f"k{k}_e{e}", k, e) for e in (3, 4, 6) for k in (3, 5, 7)]
    return Catalogue("ofa-mbv3", tuple(cands) + (skip(),), "identity", "Once-for-All MobileNetV3, 10 blocks")
