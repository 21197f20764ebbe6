"""The package's layering: the library never imports the CLI, and its modules import
each other without cycles.

Both checks read the source (every ``import`` statement, wherever it is: at module
level, in a function, under ``if TYPE_CHECKING:``), so an import hidden in a function
body counts as much as one at the top. ``python -X importtime`` then confirms the first
rule on a real interpreter: ``import softplc`` loads no CLI module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "softplc"


@dataclass(frozen=True)
class Edge:
    """One import statement: ``source`` imports ``target`` at ``file:line``."""

    source: str
    target: str
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """``root/softplc/trace/_reader.py`` -> ``softplc.trace._reader`` (a package's
    ``__init__.py`` is the package itself)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def known_modules(root: Path, package: str) -> set[str]:
    """Every module of ``package`` under ``root`` (sources and stub-only extension
    modules such as ``softplc._native``)."""
    base = root / package
    names = {module_name(p, root) for p in base.rglob("*.py")}
    names |= {module_name(p, root) for p in base.rglob("*.pyi")}
    return names


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of a relative import in ``module``."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def _innermost_module(name: str, modules: set[str]) -> str | None:
    """``softplc.trace._reader.Trace`` -> ``softplc.trace._reader``: the longest prefix
    that names a module."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in modules:
            return candidate
    return None


def imports_of(path: Path, root: Path, modules: set[str]) -> Iterator[Edge]:
    """The package-internal imports of one source file, resolved to module names.

    ``from pkg import x`` is an import of ``pkg.x`` when ``x`` is a submodule and of
    ``pkg`` otherwise; relative imports are resolved against the file's package.
    """
    source = module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(source, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if full in modules else base)
        for t in targets:
            target = _innermost_module(t, modules)
            if target is not None and target != source:
                yield Edge(source, target, str(path.relative_to(root.parent)), node.lineno)


def import_graph(root: Path, package: str) -> dict[str, list[Edge]]:
    """Module -> the imports it makes of other modules of the package."""
    modules = known_modules(root, package)
    graph: dict[str, list[Edge]] = {m: [] for m in modules}
    for path in sorted((root / package).rglob("*.py")):
        for edge in imports_of(path, root, modules):
            graph[edge.source].append(edge)
    return graph


def find_cycle(graph: dict[str, list[Edge]]) -> list[Edge] | None:
    """One import cycle as the list of its edges, or None (depth-first search with
    the usual white/grey/black colouring: an edge into a grey module closes a cycle)."""
    colour = dict.fromkeys(graph, 0)  # 0 unseen, 1 on the current path, 2 done
    path: list[Edge] = []

    def visit(m: str) -> list[Edge] | None:
        colour[m] = 1
        for e in graph[m]:
            if colour[e.target] == 1:
                start = next(i for i, p in enumerate(path) if p.source == e.target) if path else 0
                return [*path[start:], e]
            if colour[e.target] == 0:
                path.append(e)
                found = visit(e.target)
                if found is not None:
                    return found
                path.pop()
        colour[m] = 2
        return None

    for m in sorted(graph):
        if colour[m] == 0:
            found = visit(m)
            if found is not None:
                return found
    return None


def describe(cycle: list[Edge]) -> str:
    return (
        " -> ".join(e.source for e in cycle)
        + f" -> {cycle[-1].target}  ("
        + ", ".join(f"{e.source} imports {e.target} at {e.where()}" for e in cycle)
        + ")"
    )


# -- the checker itself, on small packages written for the test --------------------------


def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_the_checker_finds_a_cycle_hidden_in_a_function_body(tmp_path):
    root = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from . import c\n",
            "pkg/c.py": "def g():\n    import pkg.a as a\n",
        },
    )
    cycle = find_cycle(import_graph(root, "pkg"))
    assert cycle is not None
    text = describe(cycle)
    assert "pkg.a -> pkg.b -> pkg.c -> pkg.a" in text
    assert "pkg/b.py:2" in text
    assert "pkg/c.py:2" in text


def test_the_checker_resolves_names_that_are_not_submodules_to_their_package(tmp_path):
    root = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.core import thing\n",
            "pkg/core.py": "",
            "pkg/user.py": "from pkg import thing\nfrom .core import thing as t2\n",
        },
    )
    graph = import_graph(root, "pkg")
    assert sorted(e.target for e in graph["pkg.user"]) == ["pkg", "pkg.core"]
    assert find_cycle(graph) is None


def test_the_checker_resolves_relative_imports_in_packages_and_modules(tmp_path):
    root = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from . import leaf\nfrom .. import top\n",
            "pkg/sub/leaf.py": "from ..top import X\n",
            "pkg/top.py": "X = 1\n",
        },
    )
    graph = import_graph(root, "pkg")
    assert sorted(e.target for e in graph["pkg.sub"]) == ["pkg.sub.leaf", "pkg.top"]
    assert [e.target for e in graph["pkg.sub.leaf"]] == ["pkg.top"]


# -- the rules, on softplc ----------------------------------------------------------------


def _is_cli(module: str) -> bool:
    return module == "softplc.cli" or module.startswith("softplc.cli.")


# ``python -m softplc`` runs softplc/__main__.py: the interpreter's entry point for the
# command, which ``import softplc`` never loads (the importtime test below checks that).
ENTRY_POINTS = {"softplc.__main__"}


def test_no_module_outside_the_cli_imports_the_cli():
    graph = import_graph(PACKAGE.parent, "softplc")
    offenders = [
        f"{e.source} imports {e.target} at {e.where()}"
        for edges in graph.values()
        for e in edges
        if _is_cli(e.target) and not _is_cli(e.source) and e.source not in ENTRY_POINTS
    ]
    assert offenders == []


def test_the_import_graph_of_softplc_has_no_cycle():
    cycle = find_cycle(import_graph(PACKAGE.parent, "softplc"))
    assert cycle is None, "import cycle: " + describe(cycle)


def test_importing_softplc_loads_no_cli_module():
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import softplc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Lines read "import time: self [us] | cumulative | <indented module name>".
    loaded = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()]
    assert "softplc.engine" in loaded, r.stderr[-2000:]
    assert [m for m in loaded if _is_cli(m) or m in ENTRY_POINTS] == []
