"""The op spec: everything that determines an op's latency, and nothing else.

A spec is a frozen, validated dataclass. Its canonical key is a readable string
built only from integers and short names, so it is identical on every machine
and Python version; two layers with equal specs share one key and one LUT entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from lutcore.errors import SpecError

ACTIVATIONS = ("relu", "relu6", "swish", "hswish", "none")
KERNELS = (1, 3, 5, 7)
STRIDES = (1, 2)

S = TypeVar("S", bound="OpSpec")
Dims = Sequence[int]


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
    def input_shapes(self) -> List[Tuple[int, ...]]:
        """The shape of each input tensor (as many as the family's registered ``inputs``)."""
        return [self.in_shape]

    @property
    def out_hw(self) -> Tuple[int, int]:
        return conv_out(self.h, 3, self.stride), conv_out(self.w, 3, self.stride)

    @property
    def out_shape(self) -> Tuple[int, ...]:
        """(batch, c_out, h, w) for feature maps; a classifier's is (batch, classes)."""
        ho, wo = self.out_hw
        return (self.batch, self.c_out, ho, wo)

    @classmethod
    def from_entry(
        cls: Type[S], entry: Mapping[str, Any], shape: Dims, batch: int = 1, low: Optional[Dims] = None
    ) -> S:
        """The spec of a space-definition entry (``{op: ..., fields}``) fed a (c, h, w) tensor.

        ``low`` is the second input of two-input families (decoders); ``c_out`` defaults to the
        input's channels.
        """
        params = cls.entry_fields(entry, shape, low)
        c_in, h, w = shape
        params.setdefault("c_out", c_in)
        return cls(c_in=c_in, h=h, w=w, batch=batch, **params)

    @classmethod
    def entry_fields(cls, entry: Mapping[str, Any], shape: Dims, low: Optional[Dims]) -> Dict[str, Any]:
        """The spec fields an entry gives (lists become tuples); families with their own entry words
        (``classes``, a decoder's low-level input) translate them here."""
        return {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k != "op"}

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
