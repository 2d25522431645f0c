"""add_perivascular_spaces: CSF-dark tubes in white matter, unlabelled, never on a lesion."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.errors import OptionError
from wmhkit.synth import TISSUE_LABELS, make_phantom
from wmhkit.synth.pvs import PVS_RADIUS_MM, add_perivascular_spaces


@pytest.fixture(scope="module")
def head():
    """A lesion-free 1.5 mm phantom (unequal axes): T1, white matter, ventricle CSF level."""
    phantom = make_phantom(11, lesion_burden=0.0, voxel_size_mm=1.5)
    tissue = np.asarray(phantom.tissue.dataobj)
    wm = nib.Nifti1Image((tissue == TISSUE_LABELS["wm"]).astype(np.uint8), phantom.t1.affine)
    csf = float(np.median(np.asarray(phantom.t1.dataobj)[tissue == TISSUE_LABELS["ventricle"]]))
    return phantom.t1, wm, csf


def test_spaces_are_csf_dark_tubes_inside_white_matter(head):
    t1, wm, csf = head
    out, mask, params = add_perivascular_spaces(t1, wm, count=40, seed=2)
    before, after = np.asarray(t1.dataobj, np.float32), np.asarray(out.dataobj)
    white = np.asarray(wm.dataobj) > 0
    changed = np.abs(after - before) > 1e-4
    assert changed.any() and not (changed & ~white).any()
    # Drawn toward the ventricles' own intensity, found without being told.
    assert params["csf_intensity"] == pytest.approx(csf, rel=0.35)
    inside = np.asarray(mask.dataobj) > 0
    assert np.all(after[inside] < before[inside]) and np.median(after[inside]) < 0.5 * (np.median(before[white]) + csf)
    # Thin: no voxel of a space lies further than its largest radius plus a voxel from its edge.
    depth = ndimage.distance_transform_edt(inside, sampling=t1.header.get_zooms()[:3])
    assert depth.max() <= PVS_RADIUS_MM[1] + 1.5
    # A few mL at most for 40 spaces, and about as many pieces as spaces (tubes cut by the border split).
    assert 0.0 < params["pvs_ml"] < 2.0
    pieces = ndimage.label(changed, np.ones((3, 3, 3)))[1]
    assert 10 <= pieces <= 80


def test_same_seed_same_spaces_and_keep_out_respected(head):
    t1, wm, _ = head
    a = np.asarray(add_perivascular_spaces(t1, wm, count=30, seed=5)[0].dataobj)
    b = np.asarray(add_perivascular_spaces(t1, wm, count=30, seed=5)[0].dataobj)
    c = np.asarray(add_perivascular_spaces(t1, wm, count=30, seed=6)[0].dataobj)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
    keep_out = nib.Nifti1Image(np.asarray(wm.dataobj).copy(), t1.affine)
    kept, mask, _ = add_perivascular_spaces(t1, wm, count=30, seed=5, keep_out_mask=keep_out)
    np.testing.assert_array_equal(np.asarray(kept.dataobj), np.asarray(t1.dataobj, np.float32))
    assert not np.asarray(mask.dataobj).any()


def test_zero_spaces_is_the_input_and_negative_count_refused(head):
    t1, wm, _ = head
    out, mask, params = add_perivascular_spaces(t1, wm, count=0)
    np.testing.assert_array_equal(np.asarray(out.dataobj), np.asarray(t1.dataobj, np.float32))
    assert params["pvs_ml"] == 0.0 and not np.asarray(mask.dataobj).any()
    with pytest.raises(OptionError, match="count"):
        add_perivascular_spaces(t1, wm, count=-1)
