"""Errors raised by the shared core.

Every error names the place (a field, a layer, a path in a file) and the value
at fault, so that a user reading it knows what to change without reading code.
"""

from __future__ import annotations

from typing import Any


class LutError(Exception):
    """Base class of every error the core raises on bad input."""


class SpecError(LutError, ValueError):
    """An op spec field holds a value the op family does not allow."""

    def __init__(self, family: str, field: str, value: Any, reason: str) -> None:
        self.family = family
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{family}.{field}={value!r}: {reason}")


class SpaceError(LutError, ValueError):
    """A search-space definition is malformed; ``path`` points at the offending field."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


class UnknownNameError(LutError, KeyError):
    """A name (space, catalogue, architecture, op family) is not registered."""

    def __init__(self, kind: str, name: str, known: list) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.name!r}; known: {', '.join(self.known)}"


class FormatError(LutError, ValueError):
    """A LUT cannot be written in (or read from) another tool's format; the message says which op and why."""
