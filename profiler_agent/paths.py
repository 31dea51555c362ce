"""Where the agent keeps its own state on a machine (the spool, the speed bases).

Its own module so that every piece of state resolves its place the same way without importing the
spool for it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_path(env_var: str, name: str) -> Path:
    """``$ENV_VAR``, else ``$XDG_CACHE_HOME/profiler-agent/NAME`` (``~/.cache/...``): the agent's own state."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "profiler-agent" / name
