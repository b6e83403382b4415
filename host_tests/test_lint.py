"""Dead code stays out: ruff (pinned, rules in pyproject.toml) over every tree, and a check ruff has no rule for,
private module-level names (constants, tables, functions) that nothing uses."""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from hourglass import common

TREES = ("lib", "firmware", "tools", "host_tests")


def test_ruff_finds_nothing():
    proc = subprocess.run([common.find_executable("ruff"), "check", "--output-format", "concise", *TREES],
                          cwd=common.REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def imported_names(source: str) -> set[str]:
    """Names taken from other modules with `from m import name` (a private one so taken is in use)."""
    return {a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) for a in n.names}


def unused_private_names(source: str, elsewhere: frozenset[str] = frozenset()) -> list[str]:
    tree = ast.parse(source)
    defined = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        defined += [t.id for t in targets if isinstance(t, ast.Name)]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.append(node.name)
    private = {n for n in defined if n.startswith("_") and not n.startswith("__")}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    # a name may be read by its string (globals()["_X"], getattr(module, "_X"))
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return sorted(private - used - strings - elsewhere)


def test_the_private_name_check_sees_an_unused_constant():
    assert unused_private_names("_A = const(1)\n_B = 2\nx = _B\n") == ["_A"]
    assert unused_private_names("_A = 1\n", frozenset({"_A"})) == [], "imported by another module"
    assert unused_private_names("def _f():\n    pass\n\n\ndef _g():\n    pass\n\n\nx = _g\n") == ["_f"]


def _sources() -> dict[Path, str]:
    return {path: path.read_text() for tree in TREES for path in sorted((common.REPO / tree).rglob("*.py"))
            if "vectors" not in path.parts}  # the SUIT vectors' payload files are bytes, not Python


def test_no_unused_private_module_names():
    sources = _sources()
    elsewhere = frozenset().union(*(imported_names(s) for s in sources.values()))
    found = {}
    for path, source in sources.items():
        names = unused_private_names(source, elsewhere)
        if names:
            found[str(path.relative_to(common.REPO))] = names
    assert not found, found


