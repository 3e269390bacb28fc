"""No import cycles between the parts of mailstack, read from the sources.

A part is a top-level package (`smtp`, `queue`, `delivery`, `store`, ...) or
a top-level module (`config`, `errors`, `limits`, ...). An import counts when
it runs: at module level or inside a function, but not under
``if TYPE_CHECKING:``. `app` and `cli` put the node and the command line
together and may import anything; no other part may import them at run time.
The command line is one part, `cli`: `cli.py`, the helpers its commands share
(`commands.py`) and each package's own commands (`dns/cli.py`, `queue/cli.py`,
...), which sit above the packages whose work they ask for.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import mailstack

SOURCES = Path(mailstack.__file__).parent
ASSEMBLERS = ("app", "cli")

@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, "mailstack.smtp.server"
    target: str  # the imported module, "mailstack.store.base"
    site: str  # "smtp/server.py:21"

    @property
    def edge(self) -> tuple[str, str]:
        return part_of(self.source), part_of(self.target)


def part_of(module: str) -> str:
    """``mailstack.smtp.server`` -> ``smtp``; the command line's modules -> ``cli``;
    the root package is ``mailstack``."""
    names = module.split(".")
    if names[1:] == ["commands"] or (len(names) == 3 and names[2] == "cli"):
        return "cli"
    return names[1] if len(names) > 1 else names[0]


def module_name(root: Path, path: Path) -> str:
    names = list(path.relative_to(root.parent).with_suffix("").parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    """The imports of one module that run, with their absolute module names."""

    def __init__(self, root: Path, path: Path) -> None:
        self.root = root
        self.path = path
        self.module = module_name(root, path)
        self.package = self.module if path.name == "__init__.py" else self.module.rpartition(".")[0]
        self.found: list[Import] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            # Only for the type checker; the else branch runs.
            for statement in node.orelse:
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.package.split(".")
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        for alias in node.names:
            # `from mailstack import cli`: the module cli; `from x import name`: x.
            candidate = f"{base}.{alias.name}"
            self._add(candidate if self._exists(candidate) else base, node)

    def _exists(self, module: str) -> bool:
        relative = Path(*module.split(".")[1:])
        parent = self.root / relative
        return parent.is_dir() or parent.with_suffix(".py").is_file()

    def _add(self, target: str, node: ast.stmt) -> None:
        if target == self.root.name or target.startswith(self.root.name + "."):
            site = f"{self.path.relative_to(self.root).as_posix()}:{node.lineno}"
            self.found.append(Import(self.module, target, site))


def imports(root: Path) -> list[Import]:
    """Every run-time import of a module of ``root`` by another of its modules."""
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        collector = _Collector(root, path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        found += collector.found
    return found


def cycles(found: list[Import]) -> list[str]:
    """One cycle (the shortest through it) per tangle of parts, each step
    with an import that makes it: "smtp -> queue (smtp/x.py:3) -> smtp (...)"."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in found:
        source, target = imp.edge
        if source != target and source not in ASSEMBLERS:
            graph.setdefault(source, {}).setdefault(target, imp)
    reported: set[frozenset[str]] = set()
    out = []
    for start in sorted(graph):
        path = _shortest_cycle(graph, start)
        if path is None or frozenset(path) in reported:
            continue
        reported.add(frozenset(path))
        steps = [start]
        for source, target in zip(path, [*path[1:], start], strict=True):
            steps.append(f"{target} ({graph[source][target].site})")
        out.append(" -> ".join(steps))
    return out


def _shortest_cycle(graph: dict[str, dict[str, Import]], start: str) -> list[str] | None:
    """The parts on a shortest way from ``start`` back to itself, or None."""
    came_from: dict[str, str] = {}
    waiting = deque([start])
    while waiting:
        part = waiting.popleft()
        for target in sorted(graph.get(part, {})):
            if target == start:
                path = [part]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if target not in came_from:
                came_from[target] = part
                waiting.append(target)
    return None


# -- mailstack itself ------------------------------------------------------------------


def test_no_import_cycle_between_parts():
    found = cycles(imports(SOURCES))
    assert not found, "import cycles:\n" + "\n".join(found)


def test_only_app_and_cli_import_app_and_cli():
    wrong = sorted({
        f"{imp.site} imports {imp.target}"
        for imp in imports(SOURCES)
        if imp.edge[1] in ASSEMBLERS and imp.edge[0] not in ASSEMBLERS
    })
    assert not wrong, "\n".join(wrong)


# -- the checker, on a made-up tree -----------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_function_local_import_makes_a_cycle(tmp_path):
    root = write(tmp_path, {
        "__init__.py": "",
        "a/__init__.py": "",
        "a/one.py": "from pkg.b.two import f\n",
        "b/__init__.py": "",
        "b/two.py": "def f():\n    from pkg.a import one\n",
    })  # fmt: skip
    assert cycles(imports(root)) == ["a -> b (a/one.py:1) -> a (b/two.py:2)"]


def test_type_checking_imports_do_not_count(tmp_path):
    root = write(tmp_path, {
        "__init__.py": "",
        "a.py": "import pkg.b\n",
        "b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg import a\nelse:\n    import pkg.c\n"
        ),
        "c.py": "",
    })  # fmt: skip
    assert [(imp.source, imp.target) for imp in imports(root)] == [
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.c"),
    ]
    assert cycles(imports(root)) == []


def test_relative_imports_and_longer_cycles(tmp_path):
    root = write(tmp_path, {
        "__init__.py": "",
        "a/__init__.py": "from . import inner\nfrom ..b import x\n",
        "a/inner.py": "",
        "b/__init__.py": "",
        "b/x.py": "from pkg import c\n",
        "c.py": "from .a import inner\n",
    })  # fmt: skip
    assert cycles(imports(root)) == [
        "a -> b (a/__init__.py:2) -> c (b/x.py:1) -> a (c.py:1)"
    ]


def test_assemblers_may_import_anything(tmp_path):
    root = write(tmp_path, {
        "__init__.py": "",
        "app.py": "import pkg.a\n",
        "a.py": "def f():\n    import pkg.app\n",
    })  # fmt: skip
    assert cycles(imports(root)) == []
