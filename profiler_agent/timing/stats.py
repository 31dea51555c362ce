"""Order statistics of timing samples: quantiles, the median's distribution-free CI, Tukey outliers."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

from lutcore.records import TimingStats

Z95 = 1.959963984540054


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted data."""
    n = len(sorted_xs)
    if n == 0:
        raise ValueError("quantile of no samples")
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * frac


def _binom_half_cdf(n: int) -> List[float]:
    """P(X <= k) for X ~ Binomial(n, 1/2), k = 0..n (log-space, stable for large n)."""
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2) for k in range(n + 1)]
    out, acc = [], 0.0
    for lp in logs:
        acc += math.exp(lp)
        out.append(acc)
    return out


_RANK_CACHE: Dict[Tuple[int, float], Optional[Tuple[int, int]]] = {}


def median_ci_ranks(n: int, level: float = 0.95) -> Optional[Tuple[int, int]]:
    """0-based order-statistic ranks (lo, hi) bracketing the median with >= ``level`` coverage.

    Distribution-free: [x_(j), x_(n-j+1)] covers the median with probability 1 - 2 P(X <= j-1),
    X ~ Bin(n, 1/2). Exact for n <= 2000, normal approximation above. None when n < 6 (no
    interval reaches 95%).
    """
    key = (n, level)
    if key in _RANK_CACHE:
        return _RANK_CACHE[key]
    alpha = (1 - level) / 2
    res: Optional[Tuple[int, int]]
    if n <= 2000:
        cdf = _binom_half_cdf(n)
        j = 0  # largest j (1-based rank) with P(X <= j-1) <= alpha
        while j < n // 2 and cdf[j] <= alpha:
            j += 1
        res = None if j == 0 else (j - 1, n - j)
    else:
        half = Z95 * math.sqrt(n) / 2
        lo = int(math.floor(n / 2 - half))
        hi = int(math.ceil(n / 2 + half))
        res = (max(lo - 1, 0), min(hi, n - 1))
    _RANK_CACHE[key] = res
    return res


def outlier_indices(samples: Sequence[float], k: float = 1.5) -> List[int]:
    """Indices of samples beyond Tukey's fences (Q1 - k*IQR, Q3 + k*IQR)."""
    if len(samples) < 4:
        return []
    xs = sorted(samples)
    q1, q3 = quantile(xs, 0.25), quantile(xs, 0.75)
    iqr = q3 - q1
    lo, hi = q1 - k * iqr, q3 + k * iqr
    return [i for i, x in enumerate(samples) if x < lo or x > hi]


def summarize(samples_ms: Sequence[float], iters_per_sample: int = 1, outlier_iqr: float = 1.5) -> TimingStats:
    """TimingStats of samples in ms: order statistics, moments, median CI, outlier count."""
    if not samples_ms:
        raise ValueError("cannot summarize zero samples")
    xs = sorted(samples_ms)
    n = len(xs)
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    med = quantile(xs, 0.5)
    ranks = median_ci_ranks(n)
    ci_lo = ci_hi = None
    if ranks is not None:
        ci_lo, ci_hi = min(xs[ranks[0]], med), max(xs[ranks[1]], med)
    return TimingStats(
        median_ms=med,
        mean_ms=mean,
        std_ms=std,
        min_ms=xs[0],
        p10_ms=quantile(xs, 0.10),
        p90_ms=quantile(xs, 0.90),
        n=n,
        iters_per_sample=iters_per_sample,
        ci_low_ms=ci_lo,
        ci_high_ms=ci_hi,
        outliers=len(outlier_indices(samples_ms, outlier_iqr)),
    )


def ci_half_width_rel(samples: Sequence[float]) -> Optional[float]:
    """max(median - lo, hi - median) / median of the 95% order-statistic CI; None if n < 6."""
    xs = sorted(samples)
    ranks = median_ci_ranks(len(xs))
    if ranks is None:
        return None
    med = quantile(xs, 0.5)
    if med <= 0:
        return math.inf
    return max(med - xs[ranks[0]], xs[ranks[1]] - med) / med
