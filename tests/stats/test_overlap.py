"""Segmentation metrics against a transcription of the MICCAI 2017 WMH challenge evaluation (SimpleITK)."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import scipy.spatial

from wmhkit.errors import InputImageError
from wmhkit.stats.overlap import absolute_volume_difference, dice, evaluate_segmentation, hausdorff95, lesion_detection

sitk = pytest.importorskip("SimpleITK")


def _challenge(test_array, result_array, spacing):
    """The challenge's evaluation.py (getImages, getDSC, getHausdorff, getLesionDetection, getAVD), arrays in x,y,z."""
    def to_img(a, dtype):
        img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(a, (2, 1, 0))).astype(dtype))
        img.SetSpacing([float(s) for s in spacing])
        return img

    # the challenge label files are stored as floats (a uint8 image would turn the 0.5 threshold into 0)
    test_image, result_image = to_img(test_array, np.float32), to_img(result_array, np.float32)
    masked_test = sitk.BinaryThreshold(test_image, 0.5, 1.5, 1, 0)
    non_wmh = sitk.BinaryThreshold(test_image, 1.5, 2.5, 0, 1)
    b_result = sitk.BinaryThreshold(result_image, 0.5, 1000, 1, 0)
    masked_result = sitk.Mask(b_result, non_wmh)
    test_image = masked_test
    result_image = sitk.Cast(masked_result, sitk.sitkUInt8)
    t = sitk.GetArrayFromImage(test_image).flatten().astype(bool)  # old scipy cast to bool itself
    r = sitk.GetArrayFromImage(result_image).flatten().astype(bool)
    dsc = 1.0 - scipy.spatial.distance.dice(t, r)
    # Hausdorff
    e_test = sitk.BinaryErode(test_image, (1, 1, 0))
    e_result = sitk.BinaryErode(result_image, (1, 1, 0))
    h_test = sitk.GetArrayFromImage(sitk.Subtract(test_image, e_test))
    h_result = sitk.GetArrayFromImage(sitk.Subtract(result_image, e_result))
    tc = [test_image.TransformIndexToPhysicalPoint(x.tolist()) for x in np.transpose(np.flipud(np.nonzero(h_test)))]
    rc = [test_image.TransformIndexToPhysicalPoint(x.tolist()) for x in np.transpose(np.flipud(np.nonzero(h_result)))]
    d = lambda a, b: scipy.spatial.KDTree(a, leafsize=100).query(b, k=1, eps=0, p=2)[0]  # noqa: E731
    hd = max(np.percentile(d(tc, rc), 95), np.percentile(d(rc, tc), 95))
    # lesion detection
    cc = sitk.ConnectedComponentImageFilter()
    cc.SetFullyConnected(True)
    cc_test = cc.Execute(test_image)
    l_result = sitk.Multiply(cc_test, sitk.Cast(result_image, sitk.sitkUInt32))
    n_wmh = len(np.unique(sitk.GetArrayFromImage(cc_test))) - 1
    recall = 1.0 if n_wmh == 0 else (len(np.unique(sitk.GetArrayFromImage(l_result))) - 1) / n_wmh
    cc_result = cc.Execute(result_image)
    l_test = sitk.Multiply(cc_result, sitk.Cast(test_image, sitk.sitkUInt32))
    n_det = len(np.unique(sitk.GetArrayFromImage(cc_result))) - 1
    precision = 1.0 if n_det == 0 else (len(np.unique(sitk.GetArrayFromImage(l_test))) - 1) / n_det
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    st, sr = sitk.StatisticsImageFilter(), sitk.StatisticsImageFilter()
    st.Execute(test_image)
    sr.Execute(result_image)
    avd = abs(st.GetSum() - sr.GetSum()) / st.GetSum() * 100
    return {"dice": dsc, "hd95_mm": hd, "lesion_recall": recall, "lesion_f1": f1, "avd_percent": avd}


def _random_lesions(rng, shape, n_blobs):
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    mask = np.zeros(shape, bool)
    for _ in range(n_blobs):
        centre = rng.uniform([2, 2, 1], np.array(shape) - [2, 2, 1])
        radii = rng.uniform(1.0, 3.5, 3)
        mask |= (((grid - centre) / radii) ** 2).sum(-1) <= 1
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_challenge_definition(seed):
    rng = np.random.default_rng(seed)
    shape = (30, 26, 14)
    spacing = (0.9, 1.1, 3.0)
    reference = _random_lesions(rng, shape, 8).astype(np.uint8)
    # label 2 (other pathology) in a corner: ignored in the reference, removed from the result
    reference[:4, :4, :3] = 2
    shifted = np.roll(_random_lesions(np.random.default_rng(seed), shape, 8), 1, axis=0)
    prediction = (shifted | _random_lesions(rng, shape, 3)).astype(np.float32) * 0.8
    prediction[:4, :4, :3] = 1.0
    expected = _challenge(reference, prediction, spacing)
    got = evaluate_segmentation(reference, prediction, spacing_mm=spacing)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key  # SimpleITK stores positions in single precision
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 3.0]
    images = evaluate_segmentation(nib.Nifti1Image(reference, affine), nib.Nifti1Image(prediction, affine))
    assert images["hd95_mm"] == pytest.approx(expected["hd95_mm"], abs=1e-6)
    voxel_ml = np.prod(spacing) / 1000
    assert images["reference_ml"] == pytest.approx((reference == 1).sum() * voxel_ml)


def test_edge_cases():
    empty = np.zeros((8, 9, 5))
    one = empty.copy()
    one[2:4, 2:4, 2] = 1
    assert dice(empty, empty) == 1.0
    assert dice(one, empty) == 0.0
    assert np.isnan(hausdorff95(one, empty))
    assert np.isnan(absolute_volume_difference(empty, one))
    d = lesion_detection(empty, one)
    assert d["lesion_recall"] == 1.0 and d["lesion_precision"] == 0.0 and d["lesion_f1"] == 0.0
    assert hausdorff95(one, one, spacing_mm=2.0) == 0.0
    with pytest.raises(InputImageError, match="shapes differ"):
        dice(one, np.zeros((8, 9, 6)))


def test_metrics_do_not_import_torch():
    code = "import sys, numpy as np; from wmhkit.stats import evaluate_segmentation; " \
           "evaluate_segmentation(np.ones((3, 4, 5)), np.ones((3, 4, 5))); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
