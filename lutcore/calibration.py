"""How well a LUT predicts whole networks, and the calibration that corrects what remains.

The LUT predicts a network as the sum of its ops' latencies. What the sum misses is mostly
systematic: a per-call overhead paid once per op in isolation but amortised in the network,
and a scale from cache and frequency behaviour. ``Calibration`` fits
``measured = a * lut_sum + b + c * n_ops`` by least squares on one set of architectures and is
scored on others. Pure Python so the agent (3.8), the server (no torch) and the client share it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

FEATURES = ("scale", "offset", "per_op")
# Candidate models for ``Calibration.select``, simplest first (ties go to the simpler one).
MODELS: Dict[str, Tuple[str, ...]] = {
    "identity": (),
    "scale": ("scale",),
    "affine": ("scale", "offset"),
    "affine+per_op": ("scale", "offset", "per_op"),
}
# Validations a model needs before ``select`` lets it compete: three per fitted coefficient. With
# fewer, the leave-one-out error on the fitting set is too noisy to choose by (a six-architecture
# fit on the 2-core test VM chose an affine model that doubled the held-out error).
PER_COEFFICIENT = 3


def min_validations(model: str) -> int:
    return max(3, PER_COEFFICIENT * len(MODELS[model]))


@dataclasses.dataclass(frozen=True)
class Validation:
    """One architecture timed end to end beside its LUT prediction."""

    arch: str
    predicted_ms: float
    measured_ms: float
    n_ops: int = 0

    @property
    def error(self) -> float:
        """Signed relative error of the prediction: (predicted - measured) / measured."""
        return (self.predicted_ms - self.measured_ms) / self.measured_ms


def summarize(errors: Sequence[float]) -> Dict[str, Any]:
    """Median and max |error|, and the share within +-5% and +-10%."""
    if not errors:
        return {"n": 0, "median_abs_error": None, "max_abs_error": None, "within_5pct": None, "within_10pct": None}
    a = sorted(abs(e) for e in errors)
    return {
        "n": len(a),
        "median_abs_error": _median(a),
        "max_abs_error": a[-1],
        "mean_error": sum(errors) / len(errors),
        "within_5pct": sum(e <= 0.05 for e in a) / len(a),
        "within_10pct": sum(e <= 0.10 for e in a) / len(a),
    }


def fit_split(names: Sequence[str], fit_share: float, seed: int, minimum: int = 3) -> List[str]:
    """The architectures a calibration is fitted on: a seeded share of ``names`` (the rest score it).

    One rule for the agent's local fit and the server's, so the same seed fits the same set.
    """
    if not 0 < fit_share <= 1:
        raise ValueError(f"fit_share={fit_share} must be in (0, 1]")
    order = sorted(set(names))
    random.Random(seed).shuffle(order)
    return order[: min(len(order), max(minimum, round(fit_share * len(order))))]


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


@dataclasses.dataclass(frozen=True)
class Calibration:
    """``measured ~= a * lut_sum + b + c * n_ops``; the identity calibration is a=1, b=c=0."""

    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    n_fit: int = 0
    fit_error: Optional[Dict[str, Any]] = None
    model: str = ""  # which of MODELS, when chosen by ``select``
    cv_error: Optional[Dict[str, float]] = None  # leave-one-out RMS relative error per candidate
    skipped: Optional[Dict[str, str]] = None  # candidates ``select`` left out, and why

    def apply(self, lut_sum_ms: float, n_ops: int = 0) -> float:
        return self.a * lut_sum_ms + self.b + self.c * n_ops

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> Calibration:
        if not d:
            return cls()
        return cls(
            a=float(d.get("a", 1.0)),
            b=float(d.get("b", 0.0)),
            c=float(d.get("c", 0.0)),
            n_fit=int(d.get("n_fit", 0)),
            fit_error=d.get("fit_error"),
            model=str(d.get("model", "")),
            cv_error=d.get("cv_error"),
            skipped=d.get("skipped"),
        )

    @classmethod
    def fit(cls, validations: Sequence[Validation], features: Sequence[str] = ("scale", "offset")) -> Calibration:
        """Least squares in relative terms (each row weighted by 1/measured), so small and large
        networks count alike and the fit minimises relative error, which is what is reported."""
        for f in features:
            if f not in FEATURES:
                raise ValueError(f"unknown calibration feature {f!r}; known: {', '.join(FEATURES)}")
        if "scale" not in features:
            raise ValueError("a calibration needs the 'scale' feature")
        vs = list(validations)
        if len(vs) < len(features) + 1:
            raise ValueError(f"need at least {len(features) + 1} validations to fit {list(features)}, got {len(vs)}")
        rows: List[List[float]] = []
        ys: List[float] = []
        for v in vs:
            w = 1.0 / v.measured_ms
            row = [v.predicted_ms * w]
            if "offset" in features:
                row.append(w)
            if "per_op" in features:
                row.append(v.n_ops * w)
            rows.append(row)
            ys.append(1.0)
        coef = _lstsq(rows, ys)
        it = iter(coef)
        a = next(it)
        b = next(it) if "offset" in features else 0.0
        c = next(it) if "per_op" in features else 0.0
        fitted = cls(a, b, c, len(vs))
        return dataclasses.replace(fitted, fit_error=summarize([fitted.error(v) for v in vs]))

    @classmethod
    def select(cls, validations: Sequence[Validation], models: Sequence[str] = tuple(MODELS)) -> Calibration:
        """Fit the candidate with the smallest leave-one-out error; the identity competes too.

        With ten or twenty validations a richer model can fit the noise: on a noisy machine the
        affine fit made held-out errors worse than no calibration at all. Cross-validation on
        the fitting set alone picks the model, so the held-out architectures stay untouched.
        """
        vs = list(validations)
        unknown = [m for m in models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown calibration model(s) {unknown}; known: {', '.join(MODELS)}")
        if len(vs) < 3:
            raise ValueError(f"need at least 3 validations to choose a calibration, got {len(vs)}")
        cv: Dict[str, float] = {}
        skipped: Dict[str, str] = {}
        for name in models:
            feats = MODELS[name]
            if len(vs) < min_validations(name):
                skipped[name] = f"needs {min_validations(name)} validations, has {len(vs)}"
                continue
            sq: List[float] = []
            for i in range(len(vs)):
                rest = vs[:i] + vs[i + 1:]
                try:
                    cal = cls.fit(rest, feats) if feats else cls()
                except ValueError:
                    sq = []
                    break
                sq.append(cal.error(vs[i]) ** 2)
            if sq:
                cv[name] = math.sqrt(sum(sq) / len(sq))
        if not cv:
            raise ValueError(f"{len(vs)} validations are too few for leave-one-out on {list(models)}")
        least = min(cv.values())
        best = next(m for m in cv if cv[m] <= least * (1 + 1e-9) + 1e-12)  # ties go to the simplest
        return dataclasses.replace(cls.fit_model(vs, best), cv_error=cv, skipped=skipped or None)

    def describe(self) -> str:
        """One line for people: the model, its coefficients, and the candidates too few validations kept out."""
        text = f"{self.model or 'fixed'}: a={self.a:.4f}, b={self.b:.4f} ms"
        text += (f", c={self.c:.4f} ms/op" if self.c else "") + f" (fitted on {self.n_fit})"
        if self.skipped:
            text += "; not tried: " + "; ".join(f"{m} ({why})" for m, why in self.skipped.items())
            text += ". Validate more architectures (random:N) to let them compete."
        return text

    @classmethod
    def fit_model(cls, validations: Sequence[Validation], model: str) -> Calibration:
        """Fit one of ``MODELS`` by name (``identity`` fits nothing but is still scored)."""
        if model not in MODELS:
            raise ValueError(f"unknown calibration model {model!r}; known: {', '.join(MODELS)}")
        vs = list(validations)
        if MODELS[model]:
            return dataclasses.replace(cls.fit(vs, MODELS[model]), model=model)
        ident = cls(n_fit=len(vs), model=model)
        return dataclasses.replace(ident, fit_error=summarize([ident.error(v) for v in vs]))

    def error(self, v: Validation) -> float:
        return (self.apply(v.predicted_ms, v.n_ops) - v.measured_ms) / v.measured_ms


def _lstsq(rows: List[List[float]], ys: List[float]) -> List[float]:
    """Solve the normal equations (few features, so Gaussian elimination with pivoting is enough)."""
    k = len(rows[0])
    ata = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    aty = [sum(r[i] * y for r, y in zip(rows, ys)) for i in range(k)]
    m = [ata[i] + [aty[i]] for i in range(k)]
    scale = max(abs(x) for row in ata for x in row) or 1.0
    for col in range(k):
        piv = max(range(col, k), key=lambda r: abs(m[r][col]))
        if abs(m[piv][col]) < 1e-9 * scale or not math.isfinite(m[piv][col]):
            raise ValueError("calibration is degenerate: the validations do not vary enough to fit")
        m[col], m[piv] = m[piv], m[col]
        for r in range(k):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    return [m[i][k] / m[i][i] for i in range(k)]
