"""The op spec: everything that determines an op's latency, and nothing else.

A spec is a frozen, validated dataclass. Its canonical key is a readable string
built only from integers and short names, so it is identical on every machine
and Python version; two layers with equal specs share one key and one LUT entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, ClassVar, Dict, Iterable, List, Tuple, Type, TypeVar

from lutcore.errors import SpecError, UnknownNameError

ACTIVATIONS = ("relu", "relu6", "swish", "hswish", "none")
KERNELS = (1, 3, 5, 7)
STRIDES = (1, 2)

_FAMILIES: Dict[str, Type[OpSpec]] = {}
S = TypeVar("S", bound="OpSpec")


def register_family(name: str):
    """Class decorator: make an op family known to ``spec_from_dict`` and the torch builder."""

    def deco(cls: Type[S]) -> Type[S]:
        if name in _FAMILIES:
            raise ValueError(f"op family {name!r} registered twice")
        cls.family = name
        _FAMILIES[name] = cls
        return cls

    return deco


def families() -> List[str]:
    return sorted(_FAMILIES)


def family_class(name: str) -> Type[OpSpec]:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UnknownNameError("op family", name, list(_FAMILIES)) from None


def conv_out(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Output length of a conv padded with ``dilation*(kernel-1)//2`` ("same" for stride 1)."""
    pad = dilation * (kernel - 1) // 2
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def fmt_num(x: float) -> str:
    """A number as the key writes it: 6 -> '6', 0.5 -> '0.5' (repr-stable across versions)."""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """Common fields: input tensor (batch, c_in, h, w), output channels, stride."""

    family: ClassVar[str] = ""

    c_in: int
    h: int
    w: int
    c_out: int
    stride: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        self._check_int("c_in", positive=True)
        self._check_int("h", positive=True)
        self._check_int("w", positive=True)
        self._check_int("c_out", positive=True)
        self._check_int("batch", positive=True)
        self._check_choice("stride", STRIDES)
        self.validate()

    # -- validation helpers -------------------------------------------------
    def _fail(self, field: str, reason: str) -> None:
        raise SpecError(self.family, field, getattr(self, field, None), reason)

    def _check_int(self, field: str, positive: bool = False) -> None:
        v = getattr(self, field)
        if isinstance(v, bool) or not isinstance(v, int):
            self._fail(field, "must be an integer")
        if positive and v <= 0:
            self._fail(field, "must be a positive integer")

    def _check_choice(self, field: str, choices: Iterable[Any]) -> None:
        choices = tuple(choices)
        v = getattr(self, field)
        if isinstance(v, bool) or v not in choices:
            self._fail(field, f"must be one of {', '.join(map(str, choices))}")

    def _check_divides(self, field: str, *channels: Tuple[str, int]) -> None:
        g = getattr(self, field)
        for name, c in channels:
            if c % g:
                self._fail(field, f"does not divide {name}={c}")

    def validate(self) -> None:
        """Family-specific checks; raise SpecError naming the field."""

    # -- shape, cost, identity -------------------------------------------------
    @property
    def in_shape(self) -> Tuple[int, int, int, int]:
        return (self.batch, self.c_in, self.h, self.w)

    @property
    def out_hw(self) -> Tuple[int, int]:
        return conv_out(self.h, 3, self.stride), conv_out(self.w, 3, self.stride)

    @property
    def out_shape(self) -> Tuple[int, int, int, int]:
        ho, wo = self.out_hw
        return (self.batch, self.c_out, ho, wo)

    def macs(self) -> int:
        """Multiply-accumulates of convolutions and linear layers (what FLOP counters count / 2)."""
        raise NotImplementedError

    def params(self) -> int:
        """Learnable parameters, batch-norm affine weights included."""
        raise NotImplementedError

    @property
    def is_identity(self) -> bool:
        """True for an op that deploys as nothing (a skip at the same shape)."""
        return False

    def _tag(self) -> str:
        """Family parameters, e.g. ``k3_d2_e6_g1``."""
        raise NotImplementedError

    def _shape_part(self) -> str:
        return f"c{self.c_in}x{self.h}x{self.w}->c{self.c_out}"

    def _key_parts(self) -> List[str]:
        return [self.family, self._tag(), self._shape_part(), f"s{self.stride}"]

    @property
    def key(self) -> str:
        """Canonical, human-readable key, e.g. ``ir:k3_d2_e6_g1:c48x128x256->c96:s1:relu``."""
        parts = self._key_parts()
        if self.batch != 1:
            parts.append(f"b{self.batch}")
        return ":".join(parts)

    @property
    def digest(self) -> str:
        """Short stable digest of the key (12 hex digits of SHA-256)."""
        return hashlib.sha256(self.key.encode("utf-8")).hexdigest()[:12]

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"family": self.family}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)


def spec_from_dict(data: Dict[str, Any]) -> OpSpec:
    """Rebuild a spec from ``to_dict`` output (or a user's dict); errors name the field."""
    if not isinstance(data, dict):
        raise SpecError("op", "spec", data, "must be an object")
    d = dict(data)
    fam = d.pop("family", None)
    if fam is None:
        raise SpecError("op", "family", None, "is required")
    cls = _FAMILIES.get(fam)
    if cls is None:
        raise SpecError("op", "family", fam, f"unknown op family; known: {', '.join(families())}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k in d:
        if k not in names:
            raise SpecError(fam, k, d[k], "unknown field")
    for k, v in list(d.items()):
        if isinstance(v, list):
            d[k] = tuple(v)
    try:
        return cls(**d)
    except TypeError as e:
        missing = [n for n, f in names.items() if n not in d and f.default is dataclasses.MISSING]
        if missing:
            raise SpecError(fam, missing[0], None, "is required") from e
        raise SpecError(fam, "spec", data, str(e)) from e
