"""Intensity normalisation: white matter -> 1 and background -> 0, whatever the dtype and scale."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from .preprocess_testdata import make_subject

from wmhkit.errors import InputImageError
from wmhkit.preprocess import MNIAlignment, normalize_intensity
from wmhkit.preprocess.intensity import NORMALISED_MAX
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data

#: Template T1 intensity of its white matter (WM probability > 0.9), on its 0-1 scale.
TEMPLATE_WM = float(np.median(template_data("t1")[template_data("wm") > 0.9]))


def _wm_voxels(img, truth):
    wm = MNIAlignment(truth).resample_to_subject(
        nib.Nifti1Image((template_data("wm") > 0.95).astype(np.uint8), TEMPLATE_AFFINE), img, order=0
    )
    return np.asanyarray(wm.dataobj) > 0


@pytest.mark.parametrize(
    "dtype, scale", [(np.uint8, 255.0 / TEMPLATE_WM * 0.75), (np.float64, 255.0), (np.int16, 4000.0)]
)
@pytest.mark.parametrize("with_alignment", [True, False])
def test_white_matter_maps_to_one_for_any_dtype_and_scale(skull_subject, dtype, scale, with_alignment):
    _, truth = skull_subject
    img = make_subject(truth, dtype=dtype, scale=scale, seed=4)
    out = normalize_intensity(img, MNIAlignment(truth) if with_alignment else None)
    data = out.get_fdata()
    assert out.get_data_dtype() == np.float32
    assert out.shape == img.shape
    np.testing.assert_allclose(out.affine, img.affine)
    assert abs(np.median(data[_wm_voxels(img, truth)]) - 1.0) < 0.05
    assert data.min() == 0.0 and data.max() <= NORMALISED_MAX
    corner = data[:5, :5, :5]
    assert np.all(corner == 0.0)


def test_background_offset_is_removed(stripped_subject):
    img, truth = stripped_subject
    shifted = nib.Nifti1Image(img.get_fdata() - 300.0, img.affine)
    out = normalize_intensity(shifted, MNIAlignment(truth)).get_fdata()
    reference = normalize_intensity(img, MNIAlignment(truth)).get_fdata()
    np.testing.assert_allclose(out, reference, atol=0.02)


def test_image_without_white_matter_is_refused():
    data = np.zeros((60, 70, 50), dtype=np.float32)
    data[0, 0, 0] = 1.0
    with pytest.raises(InputImageError, match="white-matter"):
        normalize_intensity(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])))
