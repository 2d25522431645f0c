"""Lesion overlay mosaics: slices over the lesion, orientation-independent, colour only where lesions are."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from .figure_fixtures import head_and_lesion, canvas_rgb  # noqa: F401 (fixtures)
from matplotlib.figure import Figure

from wmhkit.errors import OptionError
from wmhkit.io import reorient_to_ras
from wmhkit.plotting import plot_lesion_mosaic
from wmhkit.plotting.slices import choose_slices, compose_rgb, load_overlay_volume


def _coloured_pixels(rgb: np.ndarray) -> int:
    """Pixels that are not grey (R, G, B differ): the overlay and the colour bar."""
    rgb = rgb.astype(int)
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 40).sum())


def test_mosaic_has_one_panel_per_slice_and_a_colour_bar(head_and_lesion):
    t1, lesion = head_and_lesion
    fig = plot_lesion_mosaic(t1, lesion, n_slices=8, n_columns=4)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 8
    assert all(len(ax.images) == 2 for ax in panels)  # T1 and overlay
    assert any(ax.get_ylabel() == "Lesion probability" for ax in fig.axes)  # the colour bar


def test_slices_cover_the_lesion(head_and_lesion):
    t1, lesion = head_and_lesion
    volume = load_overlay_volume(t1, lesion)
    lesion_z = np.flatnonzero((volume.overlay > 0.5).any(axis=(0, 1)))
    picks = choose_slices(volume, 2, 5, threshold=0.5)
    assert picks[0] == lesion_z[0] and picks[-1] == lesion_z[-1]


def test_empty_overlay_spreads_slices_over_the_head(head_and_lesion):
    t1, lesion = head_and_lesion
    empty = nib.Nifti1Image(np.zeros(lesion.shape, np.float32), lesion.affine)
    picks = choose_slices(load_overlay_volume(t1, empty), 2, 6)
    assert len(picks) == 6 and picks[-1] - picks[0] >= 0.6 * t1.shape[2]


def test_overlay_adds_colour_only_when_there_are_lesions(head_and_lesion, canvas_rgb):
    t1, lesion = head_and_lesion
    empty = nib.Nifti1Image(np.zeros(lesion.shape, np.uint8), lesion.affine)
    with_lesion = canvas_rgb(plot_lesion_mosaic(t1, lesion, n_slices=4, kind="mask"))
    without = canvas_rgb(plot_lesion_mosaic(t1, empty, n_slices=4, kind="mask"))
    assert _coloured_pixels(without) == 0
    assert _coloured_pixels(with_lesion) > 50


def test_rendering_does_not_depend_on_voxel_order(head_and_lesion, canvas_rgb):
    t1, lesion = head_and_lesion
    ras_t1, ras_lesion = reorient_to_ras(t1), reorient_to_ras(lesion)
    assert not np.allclose(ras_t1.affine, t1.affine)  # the fixture really is LAS
    a = canvas_rgb(plot_lesion_mosaic(t1, lesion, n_slices=4))
    b = canvas_rgb(plot_lesion_mosaic(ras_t1, ras_lesion, n_slices=4))
    assert np.array_equal(a, b)


def test_overlay_on_another_grid_is_resampled(head_and_lesion):
    t1, lesion = head_and_lesion
    data = np.asanyarray(lesion.dataobj)[::2, ::2, ::2]
    coarse_affine = lesion.affine.copy()
    coarse_affine[:3, :3] *= 2
    volume = load_overlay_volume(t1, nib.Nifti1Image(data, coarse_affine))
    assert volume.overlay.shape == volume.background.shape
    assert volume.overlay.max() > 0.5


def test_contour_draws_lines_not_fills(head_and_lesion):
    t1, lesion = head_and_lesion
    fig = plot_lesion_mosaic(t1, lesion, n_slices=3, contour=True, slices=[16, 18, 20])
    panels = [ax for ax in fig.axes if ax.images]
    assert all(len(ax.images) == 1 for ax in panels)  # T1 only: the lesion is a contour
    assert all(len(ax.collections) >= 1 for ax in panels)


def test_bad_options_raise(head_and_lesion):
    t1, lesion = head_and_lesion
    with pytest.raises(OptionError, match="axis"):
        plot_lesion_mosaic(t1, lesion, axis="oblique")
    with pytest.raises(OptionError, match="kind"):
        plot_lesion_mosaic(t1, lesion, kind="heat")
    with pytest.raises(OptionError, match="outside"):
        plot_lesion_mosaic(t1, lesion, slices=[0, 99])


def test_compose_rgb_blends_by_opacity():
    background = np.full((2, 2), 0.5)
    overlay = np.array([[1.0, 0.0], [0.0, 0.0]])
    half = compose_rgb(background, overlay, window=(0.0, 1.0), alpha=0.5, colour=(1.0, 0.0, 0.0))
    assert half[0, 0].tolist() == pytest.approx([0.75, 0.25, 0.25])
    assert half[1, 1].tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_comparison_has_one_row_per_map_on_the_same_slices(head_and_lesion):
    from wmhkit.plotting import plot_overlay_comparison

    t1, lesion = head_and_lesion
    blocky = np.asanyarray(lesion.dataobj).copy()
    blocky[:, :, 17:20] = blocky[:, :, 17:20].max(axis=2, keepdims=True)  # a thick-slice-like slab
    fig = plot_overlay_comparison(t1, {"truth": lesion, "slab": nib.Nifti1Image(blocky, lesion.affine)}, n_slices=3)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6
    assert [ax.get_title() for ax in panels[:3]] == [ax.get_title() for ax in fig.axes[:3]]
    assert [ax.get_ylabel() for ax in panels[::3]] == ["truth", "slab"]
    for ax in panels:  # every panel paints some lesion voxels and leaves the rest grey
        painted = np.ma.masked_invalid(ax.images[1].get_array())
        assert 0 < np.ma.count(painted) < painted.size
    with pytest.raises(OptionError, match="at least one"):
        plot_overlay_comparison(t1, {})
