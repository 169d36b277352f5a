"""The package's shape, checked so that it stays true: no module named like one of the standard
library (it would shadow it for every import of that name), no import cycle (function-level
imports included: a cycle hidden in a function is a cycle all the same), no function over 60
lines without a comment saying why it must be one, no local name that hides one of its module's
functions, classes or imports, and no call of more than six positional arguments (beyond the
sixth, a reader cannot tell which value is which)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from msga.grid import codedeps

PACKAGE = codedeps.PACKAGE
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 60
WHY_MARKER = "# one function:"  # what a longer function says, with its reason
MAX_POSITIONAL = 6
VARARGS = {"log.info", "log.warning", "log.error", "log.debug", "nn.Sequential"}  # take any number by design


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _edges(path: Path) -> set[str]:
    """The package files `path` imports by name, anywhere in it: for `from X import a`, X.a when it
    is a module, else X."""
    rel, out = _rel(path), set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = codedeps.absolute_module(rel, node.module, node.level)
            targets = [f"{base}.{a.name}" if codedeps.module_file(PACKAGE, f"{base}.{a.name}") else base
                       for a in node.names]
        else:
            continue
        out.update(f for f in (codedeps.module_file(PACKAGE, t) for t in targets) if f and f != rel)
    return out


def test_no_module_is_named_like_a_standard_library_module():
    clashes = [_rel(p) for p in SOURCES if p.stem in sys.stdlib_module_names]
    assert clashes == []


def test_the_import_graph_has_no_cycle():
    graph = {_rel(p): _edges(p) for p in SOURCES}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def _functions():
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node


def test_no_function_is_longer_than_60_lines_without_saying_why():
    long = []
    for path, node in _functions():
        lines = path.read_text().splitlines()[node.lineno - 1:node.end_lineno]
        if len(lines) > MAX_LINES and not any(line.strip().startswith(WHY_MARKER) for line in lines):
            long.append(f"{_rel(path)}:{node.lineno} {node.name} ({len(lines)} lines)")
    assert long == []


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _locals(node: ast.FunctionDef) -> set[str]:
    """The names a function binds itself: its parameters and what it assigns (nested functions' own
    names are theirs)."""
    args = node.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
    todo = list(node.body)
    while todo:
        inner = todo.pop()
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
            names.add(inner.id)
        if not isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(inner))
    return names


def test_no_local_name_hides_a_module_level_one():
    hidden = []
    for path in SOURCES:
        tree = _tree(path)
        module = _module_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                clash = _locals(node) & module
                if clash:
                    hidden.append(f"{_rel(path)}:{node.lineno} {node.name}: {sorted(clash)}")
    assert hidden == []


def test_no_call_passes_more_than_six_positional_arguments():
    calls = []
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and len(node.args) > MAX_POSITIONAL and ast.unparse(node.func) not in VARARGS:
                calls.append(f"{_rel(path)}:{node.lineno} {ast.unparse(node.func)} ({len(node.args)} positional)")
    assert calls == []


@pytest.mark.parametrize("name", ["shadows", "cycle", "hidden"])
def test_the_checks_see_what_they_look_for(tmp_path, monkeypatch, name):
    """Each check fails on a package that breaks its rule, so a pass means something."""
    package = tmp_path / "msga"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    if name == "shadows":
        (package / "sub" / "io.py").write_text("")
    elif name == "cycle":
        (package / "sub" / "a.py").write_text("def f():\n    from msga.sub import b\n")
        (package / "sub" / "b.py").write_text("from msga.sub.a import f\n")
    else:
        (package / "sub" / "c.py").write_text("def table():\n    pass\n\n\ndef show(table):\n    return table\n")
    monkeypatch.setattr(codedeps, "PACKAGE", package)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", sorted(package.rglob("*.py")))
    check = {"shadows": test_no_module_is_named_like_a_standard_library_module,
             "cycle": test_the_import_graph_has_no_cycle, "hidden": test_no_local_name_hides_a_module_level_one}[name]
    with pytest.raises(AssertionError):
        check()
