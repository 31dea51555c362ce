"""Reading small text files under a root directory (``/`` on the device, a fixture tree in tests)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

PathLike = Union[str, Path]


def under(root: PathLike, path: str) -> Path:
    """``path`` (absolute, as on the device) resolved under ``root``."""
    return Path(root) / path.lstrip("/")


def read_text(root: PathLike, path: str) -> Optional[str]:
    """Stripped file content (device-tree NULs removed), or None if missing or unreadable."""
    try:
        data = under(root, path).read_bytes()
    except OSError:
        return None
    return data.replace(b"\x00", b"\n").decode("utf-8", "replace").strip()


def read_int(root: PathLike, path: str) -> Optional[int]:
    text = read_text(root, path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def glob(root: PathLike, pattern: str) -> List[Path]:
    """Sorted matches of an absolute glob pattern under ``root``."""
    return sorted(Path(root).glob(pattern.lstrip("/")))
