"""The bundled MNI152 2009a maps."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.preprocess import TEMPLATE_AFFINE, TEMPLATE_SHAPE, load_template


@pytest.mark.parametrize("kind, dtype", [("t1", "float32"), ("gm", "float32"), ("wm", "float32"), ("csf", "float32"), ("brain_mask", "uint8")])
def test_maps_are_on_the_1mm_grid_and_cached(kind, dtype):
    img = load_template(kind)
    assert img.shape == TEMPLATE_SHAPE
    assert img.get_data_dtype().name == dtype
    np.testing.assert_array_equal(img.affine, TEMPLATE_AFFINE)
    data = np.asanyarray(img.dataobj)
    assert data.min() >= 0 and data.max() == 1
    assert np.asanyarray(load_template(kind).dataobj) is data  # read once per process
    assert not data.flags.writeable


def test_tissue_maps_add_up_to_one_inside_the_brain():
    brain = np.asanyarray(load_template("brain_mask").dataobj) > 0
    total = sum(np.asanyarray(load_template(kind).dataobj) for kind in ("gm", "wm", "csf"))
    assert np.all(total[brain] >= 1.0 - 1e-6)
    assert np.all(np.asanyarray(load_template("csf").dataobj)[~brain] == 0)


@pytest.mark.slow
def test_maps_equal_nilearns_loaders():
    datasets = pytest.importorskip("nilearn.datasets")
    pairs = [
        ("t1", datasets.load_mni152_template(resolution=1)),
        ("gm", datasets.load_mni152_gm_template(resolution=1)),
        ("wm", datasets.load_mni152_wm_template(resolution=1)),
        ("brain_mask", datasets.load_mni152_brain_mask(resolution=1)),
    ]
    for kind, reference in pairs:
        np.testing.assert_array_equal(np.asanyarray(load_template(kind).dataobj), reference.get_fdata())
        np.testing.assert_allclose(load_template(kind).affine, reference.affine)


def test_unknown_kind_is_an_option_error():
    with pytest.raises(OptionError, match="choose one of"):
        load_template("flair")


def test_the_brain_box_holds_the_template_brain_with_its_margin():
    """The one MNI brain box: every brain voxel inside, at least 6 mm of margin across and front to back."""
    from wmhkit.preprocess.templates import MNI_BRAIN_BOX, template_brain_bounds, template_data

    brain = template_data("brain_mask") > 0
    assert brain[MNI_BRAIN_BOX].sum() == brain.sum()
    low, high = template_brain_bounds(6.0)
    assert [s.start for s in MNI_BRAIN_BOX[:2]] == low[:2].tolist()
    assert all(s.stop - 1 >= h for s, h in zip(MNI_BRAIN_BOX, high))
    assert all(s.stop <= n for s, n in zip(MNI_BRAIN_BOX, TEMPLATE_SHAPE))


def test_the_network_reads_the_same_box():
    network = pytest.importorskip("wmhkit.segmentation.network")
    from wmhkit.preprocess.templates import MNI_BRAIN_BOX

    assert tuple(network.MNI_BRAIN_BOX) == MNI_BRAIN_BOX


def test_brain_corners_placed_by_an_alignment_bound_the_brain_on_a_subject_grid():
    """Corners of the template brain mapped through an alignment hold every brain voxel sampled there."""
    from wmhkit.preprocess.resampling import box_on_grid, resample_array
    from wmhkit.preprocess.templates import template_brain_corners_mm, template_data

    shift_scale = np.diag([1.1, 0.9, 1.05, 1.0])
    shift_scale[:3, 3] = [4.0, -7.0, 12.0]          # subject mm -> MNI mm
    affine = np.diag([-1.5, 1.2, 1.3, 1.0])
    affine[:3, 3] = [120.0, -150.0, -90.0]
    shape = (170, 230, 160)
    to_grid = np.linalg.inv(affine) @ np.linalg.inv(shift_scale)
    box = box_on_grid(template_brain_corners_mm(), to_grid, shape)
    brain = resample_array(template_data("brain_mask"), TEMPLATE_AFFINE, shape, affine, shift_scale, order=0) > 0
    assert brain.sum() > 0 and brain[box].sum() == brain.sum()
    inner = tuple(slice(s.start + 2, s.stop - 2) for s in box)
    assert brain[inner].sum() < brain.sum()   # and it is tight
