"""save_figure writes every format atomically at the asked resolution."""

from __future__ import annotations

import pytest
from .figure_fixtures import cohort_table  # noqa: F401 (fixtures)
from matplotlib.image import imread

from wmhkit.errors import OptionError, OutputError
from wmhkit.plotting.style import PALETTE, colour_cycle, new_figure, require_columns, save_figure


def _figure():
    fig = new_figure(2.0, 1.5)
    fig.add_subplot().plot([0, 1], [0, 1])
    return fig


@pytest.mark.parametrize(("ending", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_each_format_is_written_with_its_magic_bytes(tmp_path, ending, magic):
    (path,) = save_figure(_figure(), tmp_path / f"fig.{ending}")
    assert path.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"fig.{ending}"]  # no temporary file left


def test_dpi_scales_png_pixels(tmp_path):
    low = imread(save_figure(_figure(), tmp_path / "low.png", dpi=100)[0])
    high = imread(save_figure(_figure(), tmp_path / "high.png", dpi=200)[0])
    assert high.shape[1] == pytest.approx(2 * low.shape[1], abs=4)


def test_several_formats_in_one_call(tmp_path):
    written = save_figure(_figure(), tmp_path / "fig", formats=("png", ".pdf"))
    assert [p.name for p in written] == ["fig.png", "fig.pdf"]
    assert all(p.stat().st_size > 0 for p in written)


def test_bad_ending_and_dpi_raise(tmp_path):
    with pytest.raises(OptionError, match="jpg"):
        save_figure(_figure(), tmp_path / "fig.jpg")
    with pytest.raises(OptionError, match="dpi"):
        save_figure(_figure(), tmp_path / "fig.png", dpi=0)
    with pytest.raises(OptionError, match="Figure"):
        save_figure("not a figure", tmp_path / "fig.png")


def test_unwritable_folder_raises_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        save_figure(_figure(), blocker / "fig.png")


def test_palette_is_the_okabe_ito_set():
    assert colour_cycle(9)[8] == colour_cycle(1)[0]
    assert set(colour_cycle(8)) == set(PALETTE.values()) - {PALETTE["grey"]}


def test_require_columns_names_the_missing_column(cohort_table):
    from wmhkit.errors import TableError

    with pytest.raises(TableError, match="'nope'"):
        require_columns(cohort_table, ["age", "nope"], "test")
