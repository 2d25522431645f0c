"""Layering rules: quantification, statistics and the command line import without torch; figures are
drawn only in wmhkit.plotting and wmhkit.widgets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

NO_TORCH_MODULES = ["wmhkit", "wmhkit.io", "wmhkit.cli", "wmhkit.synth", "wmhkit.preprocess", "wmhkit.anatomy",
                    "wmhkit.anatomy.atlas", "wmhkit.anatomy.ventricles", "wmhkit.regions", "wmhkit.stats"]


@pytest.mark.parametrize("module", NO_TORCH_MODULES)
def test_imports_without_torch(module):
    code = f"import sys, importlib; importlib.import_module({module!r}); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode != 0 and "No module named" in result.stderr and module.split(".")[-1] in result.stderr:
        pytest.skip(f"{module} is not built yet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"importing {module} imported torch"


#: The only packages that may draw (import matplotlib); every other module calls their functions.
FIGURE_PACKAGES = ("plotting", "widgets")


def _matplotlib_imports(path: Path) -> list[int]:
    """Line numbers of ``import matplotlib...`` / ``from matplotlib... import`` anywhere in a file."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "matplotlib" or name.startswith("matplotlib.") for name in names):
            lines.append(node.lineno)
    return lines


def test_figures_are_drawn_only_in_plotting_and_widgets():
    package = Path(__file__).resolve().parents[1] / "wmhkit"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] in FIGURE_PACKAGES:
            continue
        offenders += [f"{path.relative_to(package.parent)}:{line}" for line in _matplotlib_imports(path)]
    assert not offenders, f"matplotlib imported outside wmhkit.plotting/widgets: {offenders}"
