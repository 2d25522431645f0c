"""The segmentation package stays readable: short functions, one interface per space, no borrowed anatomy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "wmhkit" / "segmentation"
MAX_FUNCTION_LINES = 80


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _imported_modules(path: Path, inside: str | None = None) -> set[str]:
    """Modules a file imports (anywhere, or only inside the function ``inside``)."""
    tree = ast.parse(path.read_text())
    if inside is not None:
        tree = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == inside)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_function_is_longer_than_80_lines(path):
    """Docstring included: a new contributor reads each function in one screen or two."""
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in _functions(path)
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_segment_reads_as_its_stages_in_order():
    tree = ast.parse((PACKAGE / "pipeline.py").read_text())
    segment = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "segment")
    stages = ["load", "prepare", "infer", "postprocess", "quantify", "to_input"]
    laps = sorted((node.lineno, node.args[0].value) for node in ast.walk(segment)
                  if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "lap")
    assert [name for _, name in laps] == stages
    calls = {node.func.id: node.lineno for node in ast.walk(segment)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert [calls[name] for name in stages] == sorted(calls[name] for name in stages)


def test_the_network_path_takes_its_anatomy_from_the_anatomy_package():
    """Neither space, nor the cortex rule, nor the network's inference imports the classical baseline."""
    for name in ("cortex.py", "spaces.py", "subject_grid.py", "mni_grid.py"):
        assert "wmhkit.segmentation.baseline" not in _imported_modules(PACKAGE / name), name
    assert "wmhkit.segmentation.baseline" not in _imported_modules(PACKAGE / "inference.py", "network_probability")


def test_the_spaces_do_not_borrow_from_each_other():
    """The subject path and the MNI path meet only in the shared interface (spaces.py, inference.py)."""
    assert "wmhkit.segmentation.mni_grid" not in _imported_modules(PACKAGE / "subject_grid.py")
    assert "wmhkit.segmentation.subject_grid" not in _imported_modules(PACKAGE / "mni_grid.py")
    assert not {"wmhkit.segmentation.mni_grid", "wmhkit.segmentation.subject_grid"} & _imported_modules(
        PACKAGE / "inference.py")
