"""A small Dockerfile parser for the deployment tests: instructions, stages, exec-form commands.

Enough of the Dockerfile grammar to check our own files when hadolint is not installed:
comments, parser directives, line continuations, heredoc-free instructions.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}


@dataclass
class Instruction:
    line: int  # 1-based line of the instruction's first line
    name: str  # upper case
    args: str  # the rest, continuations joined with a space

    def exec_form(self) -> Optional[List[str]]:
        """The JSON (exec) form of CMD/ENTRYPOINT/RUN/SHELL, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ValueError(f"line {self.line}: {self.name} JSON form must be a list of strings")
        return value

    def flags_and_words(self) -> List[str]:
        return shlex.split(self.args, posix=True)


@dataclass
class Stage:
    base: str
    name: Optional[str]
    instructions: List[Instruction] = field(default_factory=list)

    def all(self, name: str) -> List[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Optional[Instruction]:
        found = self.all(name)
        return found[-1] if found else None


class DockerfileError(ValueError):
    pass


def parse(text: str) -> List[Instruction]:
    """Instructions in order; raises DockerfileError on an unknown instruction or a dangling '\\'."""
    out: List[Instruction] = []
    buf: List[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1].strip())
            continue
        buf.append(stripped)
        joined = " ".join(p for p in buf if p)
        buf = []
        m = re.match(r"([A-Za-z]+)\s*(.*)", joined)
        if not m:
            raise DockerfileError(f"line {start}: cannot parse {joined[:60]!r}")
        name = m.group(1).upper()
        if name not in INSTRUCTIONS:
            raise DockerfileError(f"line {start}: unknown instruction {m.group(1)!r}")
        out.append(Instruction(start, name, m.group(2)))
    if buf:
        raise DockerfileError(f"line {start}: the file ends inside a line continuation")
    return out


def stages(instructions: List[Instruction]) -> List[Stage]:
    """Split into build stages; only ARG may come before the first FROM (Docker's rule)."""
    result: List[Stage] = []
    for ins in instructions:
        if ins.name == "FROM":
            words = [w for w in ins.flags_and_words() if not w.startswith("--")]
            if not words:
                raise DockerfileError(f"line {ins.line}: FROM without an image")
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name))
        elif not result:
            if ins.name != "ARG":
                raise DockerfileError(f"line {ins.line}: {ins.name} before the first FROM (only ARG may be)")
        else:
            result[-1].instructions.append(ins)
    if not result:
        raise DockerfileError("no FROM instruction")
    return result


def load(path: Path) -> List[Stage]:
    return stages(parse(path.read_text(encoding="utf-8")))


def copy_sources(ins: Instruction) -> List[str]:
    """The source paths of a COPY/ADD from the build context (not --from=stage copies)."""
    words = ins.flags_and_words()
    if any(w.startswith("--from=") for w in words):
        return []
    plain = [w for w in words if not w.startswith("--")]
    return plain[:-1]


def copy_destination(ins: Instruction) -> str:
    return [w for w in ins.flags_and_words() if not w.startswith("--")][-1]
