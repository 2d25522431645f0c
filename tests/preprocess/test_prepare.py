"""prepare_t1: everything the segmentation needs, in one call."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import InputImageError
from wmhkit.io import mask_volume_ml
from wmhkit.preprocess import TEMPLATE_ICV_ML, MNIAlignment, PreparedT1, prepare_t1
from wmhkit.preprocess.templates import template_data


def test_prepared_fields_with_a_known_alignment(skull_subject):
    img, truth = skull_subject
    prepared = prepare_t1(img, alignment=MNIAlignment(truth))
    assert isinstance(prepared, PreparedT1)
    assert prepared.img.shape == img.shape
    assert prepared.brain_mask.shape == img.shape and prepared.brain_mask.get_data_dtype() == np.uint8
    assert np.isclose(prepared.etiv_ml, TEMPLATE_ICV_ML / np.linalg.det(truth[:3, :3]))
    assert 0.8 * prepared.etiv_ml < mask_volume_ml(prepared.brain_mask) < 1.02 * prepared.etiv_ml
    t1_mni = prepared.t1_mni
    assert t1_mni.shape == (197, 233, 189) and t1_mni.get_data_dtype() == np.float32
    data = np.asanyarray(t1_mni.dataobj)
    assert abs(np.median(data[template_data("wm") > 0.9]) - 1.0) < 0.05
    assert data.min() == 0.0 and data.max() <= 2.0
    assert set(prepared.timings) == {"check", "align", "intensity", "brain_mask", "etiv", "resample_mni", "total"}
    assert prepared.timings["total"] >= prepared.timings["resample_mni"] >= 0


@pytest.mark.slow
def test_prepare_aligns_when_no_alignment_is_given(stripped_subject):
    img, truth = stripped_subject
    prepared = prepare_t1(img)
    assert prepared.alignment.method == "sitk-affine-corr"
    assert abs(prepared.etiv_ml / (TEMPLATE_ICV_ML / np.linalg.det(truth[:3, :3])) - 1.0) < 0.03


def test_unreadable_input_is_an_input_image_error(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    with pytest.raises(InputImageError, match="empty"):
        prepare_t1(path)
