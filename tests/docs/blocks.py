"""The code blocks of README.md and docs/**/*.md, with the docs-test markers that say how to try them.

A marker is an HTML comment (invisible when rendered) on the line just before a fence; several
keys go in one comment separated by ``;``::

    <!-- docs-test: server; replace 128x256 => 32x64 -->
    ```bash

Keys:
- ``skip REASON``: not tried; the reason (the rest of the comment) is required (e.g. needs Docker, a
  Jetson, root, installs packages).
- ``options``: not run; every ``lut``/``profiler-agent`` command in it is checked against its ``--help``
  (the subcommand exists and takes each ``--flag`` the block shows). For commands that block
  (``lut serve``) or take placeholders (``--db ...``, ``URL``).
- ``server``: a ``lut serve --db sqlite:///lut.db --port 8000`` is started in the block's folder first.
- ``replace OLD => NEW``: the block is run with OLD replaced (small resolutions, short timing budgets).
- ``then``: run this block right after the file's previous block, in the same shell (a python block that
  uses what a bash block started). A python block is run only with ``then`` or ``run``.

Unmarked ``bash``/``sh`` blocks are run as they are. Every run: in a fresh folder that links the repo's
examples/, scripts/, deploy/, tests/ and bench/; ``lut``, ``profiler-agent`` and ``python`` from this
checkout; port 8000 replaced by a free port; ``set -euo pipefail``; background jobs stopped at the end.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
SHELL_LANGS = ("bash", "sh")
MARK = re.compile(r"^<!--\s*docs-test:(.*?)-->\s*$")
# Files whose owners have not marked their blocks yet: their shell blocks are checked as ``options``.
UNMARKED_AS_OPTIONS = ("docs/agent.md", "docs/api.md")


@dataclass
class Block:
    path: str
    line: int
    lang: str
    text: str
    skip: Optional[str] = None
    options: bool = False
    server: bool = False
    then: bool = False
    run: bool = False
    replace: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def tried(self) -> bool:
        if self.skip is not None:
            return False
        return self.lang in SHELL_LANGS or self.then or self.run


def parse_marks(text: str, b: Block) -> None:
    head, sep, reason = text.partition("skip ")
    if sep and (not head.strip() or head.rstrip().endswith(";")):  # skip takes the rest, semicolons and all
        b.skip = reason.strip()
        text = head
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, _, rest = part.partition(" ")
        if key == "replace":
            old, sep, new = rest.partition("=>")
            if not sep:
                raise ValueError(f"{b.id}: replace needs OLD => NEW")
            b.replace.append((old.strip(), new.strip()))
        elif key in ("options", "server", "then", "run"):  # any words after these are a comment
            setattr(b, key, True)
        else:
            raise ValueError(f"{b.id}: unknown docs-test key {key!r}")


def blocks(path: Path) -> List[Block]:
    rel = path.relative_to(REPO).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    out: List[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        b = Block(rel, start + 1, m.group(1), "\n".join(lines[start + 1 : j]) + "\n")
        k = start - 1
        while k >= 0 and MARK.match(lines[k]):
            parse_marks(MARK.match(lines[k]).group(1), b)  # type: ignore[union-attr]
            k -= 1
        if rel in UNMARKED_AS_OPTIONS and b.lang in SHELL_LANGS and k == start - 1:
            b.options = True
        out.append(b)
        i = j + 1
    return out


def all_blocks() -> List[Block]:
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [b for f in files for b in blocks(f)]


def logical_lines(text: str) -> List[str]:
    """Lines with backslash continuations joined and comments dropped."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        out.append(cur)
        cur = ""
    return [re.sub(r"\s#\s.*$|^\s*#.*$", "", x).strip() for x in out if x.strip()]


CLIS = {"lut": ["-m", "lutcore"], "profiler-agent": ["-m", "profiler_agent"]}


def commands(text: str) -> List[Tuple[str, List[str], List[str]]]:
    """(cli, words before the first flag, flags) of every lut/profiler-agent command in the text."""
    out = []
    for line in logical_lines(text):
        words = shlex.split(re.sub(r"[\[\]|]", " ", line.replace("$(", " ").replace(")", " ")), comments=False)
        for n, w in enumerate(words):
            if w in CLIS:
                rest = words[n + 1 :]
                head: List[str] = []
                for x in rest:
                    if x.startswith("-") or x in ("&&", ";") or x in CLIS:
                        break
                    head.append(x)
                flags = sorted({x.split("=")[0] for x in rest if re.match(r"^--[a-z][a-z0-9-]*", x)})
                out.append((w, head, flags))
                break
    return out


def markers_by_id() -> Dict[str, Block]:
    return {b.id: b for b in all_blocks()}
