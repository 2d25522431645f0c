"""MNI alignment: known affines are recovered, in any voxel order, skull on or off."""

from __future__ import annotations

import importlib

import nibabel as nib
import numpy as np
import pytest
from .preprocess_testdata import make_subject, mean_distance_mm

from wmhkit.errors import InputImageError
from wmhkit.preprocess import QUALITY_THRESHOLD, MNIAlignment, align_to_mni, load_template
from wmhkit.preprocess.alignment import _working_image, alignment_quality


@pytest.fixture(scope="module")
def skull_alignment(skull_subject):
    img, _ = skull_subject
    return align_to_mni(img)


@pytest.mark.slow
def test_recovers_known_affine_skull_on(skull_subject, skull_alignment):
    _, truth = skull_subject
    assert mean_distance_mm(skull_alignment.mni_to_subject, np.linalg.inv(truth)) < 1.5
    assert skull_alignment.quality > QUALITY_THRESHOLD
    assert not skull_alignment.flagged
    assert skull_alignment.method == "sitk-affine-corr"


@pytest.mark.slow
def test_recovers_known_affine_skull_stripped(stripped_subject):
    img, truth = stripped_subject
    alignment = align_to_mni(img)
    assert mean_distance_mm(alignment.mni_to_subject, np.linalg.inv(truth)) < 1.5
    assert alignment.quality > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("orientation, oblique_deg", [("LIA", 0.0), ("RAS", 25.0)])
def test_voxel_order_and_obliquity_do_not_change_the_result(skull_subject, skull_alignment, orientation, oblique_deg):
    _, truth = skull_subject
    other = make_subject(truth, orientation=orientation, oblique_deg=oblique_deg, voxel_mm=1.7, dtype=np.uint8, scale=200.0)
    alignment = align_to_mni(other)
    assert mean_distance_mm(alignment.mni_to_subject, skull_alignment.mni_to_subject) < 1.5


def test_round_trip_subject_to_mni_to_subject(skull_subject):
    img, truth = skull_subject
    alignment = MNIAlignment(truth)
    in_mni = alignment.resample_to_mni(img, order=1)
    back = alignment.resample_to_subject(in_mni, img, order=1)
    assert back.shape == img.shape
    np.testing.assert_allclose(back.affine, img.affine)
    original = img.get_fdata()
    inside = load_template("brain_mask")
    brain = alignment.resample_to_subject(inside, img, order=0).get_fdata() > 0
    difference = np.abs(back.get_fdata() - original)[brain]
    # Two trilinear passes blur a little; the brain stays within a few % of its range.
    assert np.median(difference) < 0.03 * original.max()
    assert np.corrcoef(back.get_fdata()[brain], original[brain])[0, 1] > 0.95


def test_resample_to_mni_defaults_to_the_template_grid_and_keeps_label_dtype(skull_subject):
    img, truth = skull_subject
    labels = nib.Nifti1Image((img.get_fdata() > 500).astype(np.uint8), img.affine)
    out = MNIAlignment(truth).resample_to_mni(labels, order=0)
    assert out.shape == (197, 233, 189)
    assert out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asanyarray(out.dataobj))) <= {0, 1}
    small = MNIAlignment(truth).resample_to_mni(img, shape=(40, 50, 45), affine=np.diag([4.0, 4.0, 4.0, 1.0]))
    assert small.shape == (40, 50, 45) and small.get_data_dtype() == np.float32


def test_quality_drops_when_misaligned(skull_subject):
    img, truth = skull_subject
    work, work_affine = _working_image(np.asanyarray(img.dataobj), img.affine, 2.0)
    good = alignment_quality(work, work_affine, np.linalg.inv(truth))
    shifted = np.eye(4)
    shifted[:3, 3] = [12.0, -10.0, 8.0]
    bad = alignment_quality(work, work_affine, np.linalg.inv(truth) @ shifted)
    assert good > 0.9
    assert bad < QUALITY_THRESHOLD
    assert MNIAlignment(np.eye(4), bad).flagged and not MNIAlignment(np.eye(4), good).flagged


def test_bad_input_is_refused_with_an_input_image_error(tmp_path):
    flat = nib.Nifti1Image(np.full((60, 70, 50), 3.0, dtype=np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.raises(InputImageError, match="constant"):
        align_to_mni(flat)
    with pytest.raises(InputImageError, match="does not exist"):
        align_to_mni(tmp_path / "missing.nii.gz")


def _make_phantom():
    try:
        return importlib.import_module("wmhkit.synth").make_phantom
    except (ImportError, AttributeError):
        return None


@pytest.mark.slow
@pytest.mark.skipif(_make_phantom() is None, reason="wmhkit.synth.make_phantom is not available yet")
@pytest.mark.parametrize("skull", [False, True])
def test_matches_the_phantom_ground_truth(skull):
    phantom = _make_phantom()(seed=3, voxel_size_mm=2.0, skull=skull)
    alignment = align_to_mni(phantom.t1)
    # The phantom also has a smooth non-linear warp: its linear part is matched within a few mm.
    assert mean_distance_mm(alignment.mni_to_subject, np.linalg.inv(phantom.subject_to_mni)) < 4.0
    assert alignment.quality > QUALITY_THRESHOLD


def test_registration_runs_on_one_thread_whatever_the_machine(skull_subject):
    # Its answer changes in the 6th decimal with the thread count, and a cohort worker capped to
    # one core must not run two: the alignment fixes SimpleITK to one thread.
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(3)
    align_to_mni(skull_subject[0])
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 1
