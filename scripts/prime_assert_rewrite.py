"""Write pytest's assertion-rewritten bytecode for every test module once, before the xdist workers start.

pytest caches a rewritten test module only when bytecode may be written; this kind of machine sets
PYTHONDONTWRITEBYTECODE, so each worker parsed and rewrote all ~100 test modules again (about 4 s of CPU
per worker, 2,000 asserts). Workers read a cached copy even when they may not write one, so one pass here
serves them all. pytest's rewriter is internal API: if it moves, this says so and the suite runs as before.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace


def main(root: Path) -> int:
    try:
        from _pytest.assertion import rewrite as rw
    except ImportError as e:  # pragma: no cover - depends on the installed pytest
        print(f"prime_assert_rewrite: skipped ({e})", file=sys.stderr)
        return 0
    state = SimpleNamespace(trace=lambda *_: None)
    for fn in sorted(root.rglob("*.py")):
        if not (fn.name.startswith("test_") or fn.name == "conftest.py"):
            continue
        try:
            pyc = rw.get_cache_dir(fn) / (fn.name[:-3] + rw.PYC_TAIL)
            if rw._read_pyc(fn, pyc) is not None:
                continue
            rw.try_makedirs(pyc.parent)
            stat, co = rw._rewrite_test(fn, None)  # type: ignore[arg-type]  # no config: pytest's defaults
            rw._write_pyc(state, co, stat, pyc)  # type: ignore[arg-type]
        except SyntaxError:
            continue  # pytest reports it where it belongs
        except (AttributeError, TypeError) as e:  # pragma: no cover - a pytest whose internals moved
            print(f"prime_assert_rewrite: skipped ({e!r})", file=sys.stderr)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests")))
