"""Every state a document gets is written by ``states.start`` (a new document's first state) or through
``transition()`` (``states.move``, ``states.client_move``): nothing else in the package writes one.

A transition table that some path bypasses is not a table, so this reads the package's source and
lists each place that writes a ``"state"`` key."""

from __future__ import annotations

import ast
from pathlib import Path

import ordering

PACKAGE = Path(ordering.__file__).parent
# Where a document's state may be written, and whether that place checks a transition table.
WRITERS = {("states", "start"): False, ("states", "move"): True, ("states", "client_move"): True}


def _is_state(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "state"


def _writes_state(node: ast.AST) -> bool:
    """``x["state"] = ...`` (also augmented or annotated), ``x.setdefault("state", ...)``,
    ``x.update(state=...)`` / ``dict(x, state=...)``, and ``{**x, "state": ...}`` (a copy in another state)."""
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Subscript) and _is_state(t.slice) for t in targets)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("setdefault", "__setitem__"):
            return bool(node.args) and _is_state(node.args[0])
        named_state = any(k.arg == "state" for k in node.keywords)
        if isinstance(func, ast.Attribute) and func.attr == "update":
            return named_state or any(
                isinstance(a, ast.Dict) and any(map(_is_state, a.keys)) for a in node.args
            )
        return named_state and isinstance(func, ast.Name) and func.id == "dict"
    if isinstance(node, ast.Dict):
        return None in node.keys and any(_is_state(k) for k in node.keys)
    return False


def state_writes() -> dict[tuple[str, str], list[int]]:
    """``(module, enclosing function) -> lines`` of every state write in the package."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))

        def visit(node: ast.AST, function: str, module: str = path.stem) -> None:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                function = node.name
            if _writes_state(node):
                found.setdefault((module, function), []).append(getattr(node, "lineno", 0))
            for child in ast.iter_child_nodes(node):
                visit(child, function)

        visit(tree, "<module>")
    return found


def test_only_the_state_functions_write_a_state() -> None:
    assert set(state_writes()) == set(WRITERS), state_writes()


def test_the_moves_go_through_transition() -> None:
    tree = ast.parse((PACKAGE / "states.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for (_, name), checked in WRITERS.items():
        calls = {
            c.func.id
            for c in ast.walk(functions[name])
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
        }
        assert ("transition" in calls) == checked, name


def test_the_guard_sees_each_kind_of_write() -> None:
    for source in (
        'doc["state"] = "completed"',
        'doc["state"]: str = "completed"',
        'doc["state"] += "x"',
        'doc.setdefault("state", "held")',
        'doc.update(state="held")',
        'doc.update({"state": "held"})',
        'dict(doc, state="held")',
        '{**doc, "state": "held"}',
    ):
        assert any(_writes_state(n) for n in ast.walk(ast.parse(source))), source
    for source in ('x = doc["state"]', 'row = {"state": doc["state"]}', 'query.values(state=doc["state"])'):
        assert not any(_writes_state(n) for n in ast.walk(ast.parse(source))), source
