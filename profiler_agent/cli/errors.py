"""The CLI's own error: bad options (exit 2)."""

from __future__ import annotations


class UsageError(Exception):
    """A missing or inconsistent option; the message says which one."""
