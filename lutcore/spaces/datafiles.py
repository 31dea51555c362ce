"""Where the built-in space data lives (``data/*.yaml``, ``data/cells.json``, architectures)."""

from pathlib import Path

DATA = Path(__file__).with_name("data")
