"""The store sits under every protocol: it imports nothing of mailstack but
itself and the error tree. Above all it never imports ``mailstack.mime``
(callers hand it a parsed message; the opener's ParseCodec reads it back),
not even for type checking."""

from __future__ import annotations

import ast
from pathlib import Path

import mailstack.store

STORE = Path(mailstack.store.__file__).parent
ALLOWED = ("mailstack.store", "mailstack.errors")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; name the module")
    return names


def test_the_store_imports_only_itself_and_the_errors():
    modules = sorted(STORE.rglob("*.py"))
    assert len(modules) > 10
    wrong = {
        f"{path.relative_to(STORE)}: {name}"
        for path in modules
        for name in imported(path)
        if name.split(".")[0] == "mailstack" and not name.startswith(ALLOWED)
    }
    assert not wrong


def test_a_backend_imports_no_other_backend():
    """What both backends share lives beside them (contract/, sqltext,
    listeners), so each stays removable."""
    backends = ("sqlite", "postgres")
    wrong = {
        f"{path.relative_to(STORE)}: {name}"
        for backend in backends
        for path in (STORE / backend).rglob("*.py")
        for name in imported(path)
        for other in backends
        if other != backend and name.startswith(f"mailstack.store.{other}")
    }
    assert not wrong


def test_no_module_of_the_store_mentions_the_mime_package():
    mentions = [
        path.relative_to(STORE)
        for path in STORE.rglob("*.py")
        if any(name.startswith("mailstack.mime") for name in imported(path))
    ]
    assert mentions == []


def test_the_contract_suite_uses_only_the_contract():
    """tests/contract runs against every backend: no backend's module, no
    private attribute, no SQL (conftest.py alone names the backends)."""
    suite = Path(__file__).parents[2] / "contract"
    wrong = []
    for path in sorted(suite.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                if not node.attr.startswith("__"):
                    wrong.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.lstrip().upper().startswith(("SELECT ", "INSERT ", "UPDATE ")):
                    wrong.append(f"{path.name}:{node.lineno} SQL")
        for name in imported(path):
            if name.startswith("mailstack.store.") or name == "sqlite3":
                wrong.append(f"{path.name}: imports {name}")
    assert wrong == []
