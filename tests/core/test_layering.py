"""Layering rules: the core imports without torch and, with the agent, needs only Python 3.8; no module
import cycles; no application imports another or the core an application."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

ROOT = Path(__file__).resolve().parents[2]

BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _Block())
"""


def run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_core_imports_and_works_without_torch():
    code = (
        BLOCK_TORCH
        + """
import lutcore, lutcore.ops, lutcore.spaces, lutcore.records, lutcore.catalogues, lutcore.cli
from lutcore.spaces import get_arch, get_space
assert abs(get_arch("squeezenas-lat-small").macs() / 1e9 - 4.47) < 0.03
assert len(get_space("fbnet").unique_ops()) > 0
from lutcore.cli.main import main
assert main(["arch", "show", "squeezenas-mac-small", "--json"]) == 0
assert "torch" not in sys.modules
try:
    import lutcore.torch
except ImportError:
    pass
else:
    raise SystemExit("torch was importable")
"""
    )
    r = run_py(code)
    assert r.returncode == 0, r.stderr + r.stdout


def test_core_and_agent_need_at_most_python_38():
    vermin = shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin is not installed (pip install vermin)")
    paths = [str(ROOT / "lutcore"), str(ROOT / "profiler_agent")]
    r = subprocess.run(
        [
            vermin,
            "-t=3.8-",
            "--no-tips",
            "--violations",
            "--eval-annotations",
            "--backport",
            "typing_extensions",
            "--no-parse-comments",
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_core_imports_no_application():
    for path in (ROOT / "lutcore").rglob("*.py"):
        text = path.read_text()
        for app in ("profiler_agent", "lut_server", "search_client"):
            assert f"import {app}" not in text and f"from {app}" not in text, (path, app)


APPS = ("profiler_agent", "lut_server", "search_client")
PACKAGES = ("lutcore", *APPS)


def _module_names() -> dict:
    """Dotted module name -> (path, is_package) for every module of the four packages."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, is_pkg: bool, modules: dict) -> set:
    """The tree's modules that ``name`` imports at run time, late (in-function) imports included;
    imports under ``if TYPE_CHECKING:`` are left out (they never run)."""
    found: Set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (child.level - 1)]
                    base = ".".join(pkg + ([base] if base else []))
                for a in child.names:
                    sub_module = f"{base}.{a.name}"
                    found.add(sub_module if sub_module in modules else base)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    out = set()
    for m in found:
        while m and m not in modules:
            m = m.rpartition(".")[0]
        if m and m != name:
            out.add(m)
    return out


def _import_graph() -> dict:
    modules = _module_names()
    return {name: _imports(name, path, is_pkg, modules) for name, (path, is_pkg) in modules.items()}


def _cycles(graph: dict) -> list:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    out = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = _import_graph()
    assert "lutcore.spaces.space" in graph["lutcore.spaces.definition"]  # the graph sees real imports
    assert _cycles(graph) == []


def test_applications_import_no_other_application():
    graph = _import_graph()
    bad = [
        (mod, dep)
        for mod, deps in graph.items()
        for dep in deps
        if mod.split(".")[0] != dep.split(".")[0] and dep.split(".")[0] in APPS
    ]
    assert bad == []
