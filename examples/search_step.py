"""A few steps of differentiable, latency-aware architecture search on a tiny supernet.

Every layer of a built-in space holds all its valid candidates (lutcore.torch.build_op); a
hard Gumbel-softmax sample picks one per layer and step (FBNet/TF-NAS single path), and the
architecture parameters are pulled by the task loss (random data here) plus the expected cost
sum_ij p_ij C_ij of the LUT. The expected latency printed each step falls.

    python examples/search_step.py                                  # MACs (no LUT, no server)
    python examples/search_step.py --lut out/quickstart/lut.json    # the quickstart's LUT, offline
    python examples/search_step.py --server http://lut:8000 --target cpu-x86/pytorch-cpu/fp32
    python examples/search_step.py --target-ms 3.0                  # TF-NAS target-latency loss
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from lutcore.errors import LutError
from lutcore.ops import OpSpec
from lutcore.spaces import Space
from lutcore.torch import build_op
from search_client import (
    CostMatrix,
    ExpectedCostLoss,
    LUTClient,
    TargetLatencyLoss,
    gumbel_softmax,
    mac_matrix,
    masked_softmax,
    prune_candidates,
)
from search_client.spaces import resolve_space

QUICKSTART_SPACE = "squeezenas-small"  # what scripts/quickstart.sh measures and exports to out/quickstart/lut.json
DEFAULT_RESOLUTION = {"squeezenas-small": "128x256", "mobilenetv2": "64x64"}


class SuperNet(nn.Module):
    """stem -> per layer, every valid candidate -> head [-> decoder]; weights [layers, candidates] mix them."""

    def __init__(self, space: Space) -> None:
        super().__init__()
        self.stem = nn.Sequential(*[build_op(f.spec) for f in space.stem])
        self.cands = nn.ModuleList(
            nn.ModuleList(build_op(c) if isinstance(c, OpSpec) else nn.Identity() for c in row) for row in space.grid
        )
        self.head = nn.Sequential(*[build_op(f.spec) for f in space.head])
        self.decoder = build_op(space.decoder.spec) if space.decoder else None
        self.low = space.definition.decoder["low_level_layer"] if space.decoder else None

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        low = x
        for i, ops in enumerate(self.cands):
            # only candidates with non-zero weight run: one per layer for a hard sample
            x = sum(w[i, j] * ops[j](x) for j in torch.nonzero(w[i]).flatten().tolist())
            if i == self.low:
                low = x
        x = self.head(x)
        return self.decoder(x, low) if self.decoder is not None else x


def cost_matrix(args: argparse.Namespace, space: Space) -> CostMatrix:
    if args.lut:
        return LUTClient.from_file(args.lut).cost_matrix(space, args.target, missing=args.missing)
    if args.server:
        with LUTClient(args.server, args.token) as client:
            return client.cost_matrix(space, args.target, missing=args.missing, timeout=args.wait_s)
    return mac_matrix(space)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", help="default: the quickstart's squeezenas-small with --lut or --server (the space "
                   "the LUT was measured for), else mobilenetv2")
    p.add_argument("--resolution", help="HxW; default: 128x256 (the quickstart's) for squeezenas-small, 64x64 for "
                   "mobilenetv2")
    p.add_argument("--lut", help="an exported LUT file (GET /export)")
    p.add_argument("--server", help="LUT server URL")
    p.add_argument("--token")
    p.add_argument("--target", help="target id, e.g. cpu-x86/pytorch-cpu/fp32")
    p.add_argument("--missing", default="error", choices=("error", "wait"))
    p.add_argument("--wait-s", type=float, default=600.0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--lam", type=float, default=2.0, help="weight of the (normalised) cost term")
    p.add_argument("--target-ms", type=float, help="use TF-NAS's target-latency loss with this target")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.space is None:
        args.space = QUICKSTART_SPACE if (args.lut or args.server) else "mobilenetv2"
    if args.resolution is None:
        args.resolution = DEFAULT_RESOLUTION.get(args.space)
    try:
        space = resolve_space(args.space, args.resolution)
        cm = cost_matrix(args, space)
    except LutError as e:  # an unknown space, a LUT without these ops, a server that refuses: one line, no traceback
        print(f"search_step: error: {e}", file=sys.stderr)
        if args.lut or args.server:
            res = args.resolution or "its default resolution"
            print(f"search_step: the LUT must hold the ops of {args.space} at {res}; pass the --space and "
                  "--resolution it was measured for", file=sys.stderr)
        return 1
    return search(args, space, cm)


def search(args: argparse.Namespace, space: Space, cm: CostMatrix) -> int:
    unit = "ms" if cm.metric.endswith("_ms") else {"macs": "MMACs", "params": "M params"}[cm.metric]
    print(f"{space.name} at {space.resolution_str}: {cm.C.shape[0]} layers x {cm.C.shape[1]} candidates, "
          f"cost = {cm.metric} ({'LUT ' + str(cm.target) if cm.target else 'local, no server'})")

    net = SuperNet(space)
    alpha = nn.Parameter(torch.zeros(cm.C.shape))
    expected = ExpectedCostLoss(cm.C, cm.mask, cm.fixed)
    if args.target_ms is not None:
        resource: nn.Module = TargetLatencyLoss(cm, target=args.target_ms, weight=args.lam)
    else:
        scale = float(expected(masked_softmax(alpha.detach(), cm.mask)))
        resource = ExpectedCostLoss(cm.C / scale, cm.mask)  # relative cost: lam trades it off against the task
    opt_w = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    opt_a = torch.optim.Adam([alpha], lr=0.2)

    d = space.definition
    x = torch.randn(args.batch, d.input[0], *space.resolution)
    with torch.no_grad():
        out_shape = net(x[:1], torch.nn.functional.one_hot(torch.zeros(cm.C.shape[0], dtype=torch.long),
                                                                 cm.C.shape[1]).float()).shape
    n_classes = out_shape[1]
    y = torch.randint(0, n_classes, (args.batch, *out_shape[2:]))

    tau = 5.0
    for step in range(args.steps):
        w = gumbel_softmax(alpha, cm.mask, tau=tau, hard=True)
        task = F.cross_entropy(net(x, w), y)
        probs = masked_softmax(alpha, cm.mask)
        cost = resource(probs) * (1.0 if args.target_ms is not None else args.lam)
        opt_w.zero_grad()
        opt_a.zero_grad()
        (task + cost).backward()
        opt_w.step()
        opt_a.step()
        tau = max(1.0, tau * 0.9)
        with torch.no_grad():
            lat = float(expected(masked_softmax(alpha, cm.mask)))
        print(f"step {step}: task loss {float(task.detach()):.3f}  expected cost {lat:.4f} {unit}")

    probs = masked_softmax(alpha.detach(), cm.mask)
    pruned = prune_candidates(probs, cm.C, cm.mask, threshold=0.05)
    kept = [len(pruned.kept(i)) for i in range(cm.C.shape[0])]
    n_valid = int((~cm.mask).sum())
    print(f"pruning at p < 0.05 keeps {sum(kept)} of {n_valid} candidates; C is now {tuple(pruned.C.shape)}")
    best = probs.argmax(dim=-1)
    arch_cost = float(cm.C[torch.arange(cm.C.shape[0]), best].sum()) + cm.fixed
    print(f"most likely architecture: {[cm.candidates[j] for j in best.tolist()]}")
    print(f"its cost: {arch_cost:.4f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
