"""Execute every walkthrough notebook headless, twice, with small parameters, and fail on any error.

Each notebook's parameters cell reads ``WMHKIT_NOTEBOOK_SMALL=1`` and shrinks its data, and
writes under ``WMHKIT_NOTEBOOK_OUTPUTS`` (here a temporary folder; for a user, by default
``~/wmhkit_outputs``, outside the source tree). Every notebook runs twice in a row, as "Restart
and run all" twice: the second run must replace or resume what the first wrote. A notebook
whose wmhkit dependency cannot be imported is skipped with the import error as the reason; any
other failure fails the test.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: Notebook -> the wmhkit modules it needs (skip only if one of these fails to import).
NOTEBOOKS = {
    "01_one_subject.ipynb": ["wmhkit.segmentation", "wmhkit.regions", "wmhkit.synth"],
    "02_cohort.ipynb": ["wmhkit.cohort", "wmhkit.segmentation", "wmhkit.synth"],
    "03_burden_vs_age.ipynb": ["wmhkit.stats", "wmhkit.synth"],
    "04_dementia_risk.ipynb": ["wmhkit.stats", "wmhkit.synth"],
    "05_training.ipynb": ["wmhkit.train", "wmhkit.synth"],
    "06_progression.ipynb": ["wmhkit.stats", "wmhkit.synth"],
}
#: Seconds one notebook may take with small parameters.
TIMEOUT_S = 600


def _missing_dependency(modules: list[str]) -> str | None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"{name} cannot be imported yet ({exc})"
    return None


def _execute(name: str, tmp_path: Path, monkeypatch, parameters: dict | None = None) -> float:
    """Run a notebook in a fresh python3 kernel; returns the seconds it took.

    The kernel works in ``tmp_path/cwd`` (the notebooks folder, for a user) and the notebook
    writes its outputs under ``tmp_path/wmhkit_outputs``.

    ``parameters`` replace assignments of the first code cell (the parameters cell), the way a
    user edits it: ``{"COHORT_TABLE": "'/path/table.tsv'"}`` turns ``COHORT_TABLE = None`` into
    ``COHORT_TABLE = '/path/table.tsv'``.
    """
    path = NOTEBOOK_DIR / name
    assert path.exists(), f"{path} is missing"
    reason = _missing_dependency(NOTEBOOKS[name])
    if reason:
        pytest.skip(reason)
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{name} is committed with outputs; strip them"
    )
    parameters_cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
    for key, value in (parameters or {}).items():
        lines = parameters_cell.source.splitlines()
        hits = [i for i, line in enumerate(lines) if line.startswith(f"{key} = ")]
        assert hits, f"{name}: the parameters cell has no {key} = ... line"
        lines[hits[0]] = f"{key} = {value}"
        parameters_cell.source = "\n".join(lines)
    monkeypatch.setenv("WMHKIT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("WMHKIT_NOTEBOOK_OUTPUTS", str(tmp_path / "wmhkit_outputs"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    (tmp_path / "cwd").mkdir(exist_ok=True)
    client = nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path / "cwd")}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    elapsed = time.perf_counter() - start
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    return elapsed


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_twice(name, tmp_path, monkeypatch):
    """Restart and run all, twice: nothing the first run wrote breaks the second."""
    first = _execute(name, tmp_path, monkeypatch)
    second = _execute(name, tmp_path, monkeypatch)
    outputs = tmp_path / "wmhkit_outputs" / name.removesuffix(".ipynb")
    assert any(outputs.rglob("*.png")), f"{name} wrote no figure under {outputs}"
    assert not any((tmp_path / "cwd").iterdir()), "the notebook wrote into its working folder"
    print(f"{name} executed in {first:.1f} s, then {second:.1f} s")


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_outputs_default_outside_the_source_tree(name, tmp_path, monkeypatch):
    """The parameters cell puts OUT_DIR under $WMHKIT_NOTEBOOK_OUTPUTS, else ~/wmhkit_outputs."""
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    parameters = next(cell for cell in notebook.cells if cell.cell_type == "code").source
    monkeypatch.delenv("WMHKIT_NOTEBOOK_OUTPUTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    namespace: dict = {}
    exec(parameters, namespace)  # the parameters cell only imports os and Path and assigns
    assert namespace["OUT_DIR"] == tmp_path / "wmhkit_outputs" / name.removesuffix(".ipynb")
    monkeypatch.setenv("WMHKIT_NOTEBOOK_OUTPUTS", str(tmp_path / "mine"))
    exec(parameters, namespace)
    assert namespace["OUT_DIR"] == tmp_path / "mine" / name.removesuffix(".ipynb")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["03_burden_vs_age.ipynb", "04_dementia_risk.ipynb"])
def test_notebook_runs_on_a_user_table(name, tmp_path, monkeypatch):
    """The parameters cell really switches to the user's data: here the example table in data/."""
    table = NOTEBOOK_DIR.parent / "data" / "example_cohort.tsv"
    _execute(name, tmp_path, monkeypatch, {"COHORT_TABLE": repr(str(table))})
    outputs = list((tmp_path / "wmhkit_outputs").rglob("*.png"))
    assert outputs, f"{name} wrote no figure"
