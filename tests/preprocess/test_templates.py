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
