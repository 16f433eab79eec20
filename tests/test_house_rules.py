"""House rules for src/: modules under 350 lines, functions under 60, so each stays readable as one job."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "feedpub"
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60
MODULES = sorted(SRC.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(SRC.parent).as_posix()


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(qualified name, lines) of each function or method longer than ``limit``, decorators and docstring included."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    lines = (child.end_lineno or child.lineno) - first + 1
                    if lines > limit:
                        found.append((name, lines))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_modules_are_found() -> None:
    assert len(MODULES) > 20 and SRC / "settings.py" in MODULES


def test_no_module_is_over_350_lines() -> None:
    too_long = {_name(p): n for p in MODULES if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_function_is_over_60_lines() -> None:
    too_long = {f"{_name(p)}:{name}": n for p in MODULES
                for name, n in long_functions(p.read_text("utf-8"), MAX_FUNCTION_LINES)}
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


@pytest.mark.parametrize(("lines", "flagged"), [(60, []), (61, [("Outer.method", 61)])])
def test_a_long_method_is_reported_by_its_qualified_name(lines: int, flagged: list[tuple[str, int]]) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(lines - 1))
    source = f"class Outer:\n    def method(self) -> None:\n{body}\n\n\ndef short() -> None:\n    pass\n"
    assert long_functions(source, MAX_FUNCTION_LINES) == flagged
