"""Every bad input the foundation promises to refuse, and the good ones it must keep exact."""

from __future__ import annotations

import gzip
import struct

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import InputImageError
from wmhkit.io import (
    check_img,
    check_mask,
    mask_volume_ml,
    reorient_like,
    reorient_to_ras,
    voxel_volume_ml,
)


def _save(img, path):
    nib.save(img, str(path))
    return path


def _raises(img, match):
    with pytest.raises(InputImageError, match=match) as info:
        check_img(img)
    message = str(info.value)
    assert message.count(". ") == 0 or message.endswith("."), message  # one sentence
    return message


def test_missing_file_names_path(tmp_path):
    message = _raises(tmp_path / "nope.nii.gz", "does not exist")
    assert "nope.nii.gz" in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    _raises(path, "empty file")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.nii"
    path.write_text("this is not an image, just text that is long enough to look like a header" * 10)
    _raises(path, "could not be read")


def test_wrong_suffix(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"DICM" * 100)
    _raises(path, "not a NIfTI or MGZ")


def test_folder_without_dicom_refused(tmp_path):
    # A folder is read as a DICOM series (wmhkit.io.dicom); one without DICOM files is refused.
    _raises(tmp_path, "holds no DICOM images")


def test_truncated_gzip(tmp_path, head_img):
    path = _save(head_img, tmp_path / "full.nii.gz")
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _raises(cut, "truncated|could not be read")


def test_truncated_uncompressed(tmp_path, head_img):
    path = _save(head_img, tmp_path / "full.nii")
    cut = tmp_path / "cut.nii"
    cut.write_bytes(path.read_bytes()[:2000])
    _raises(cut, "truncated|could not be read")


def test_2d_refused(rng):
    _raises(nib.Nifti1Image(rng.random((40, 50)).astype(np.float32), np.eye(4)), "2D")


def test_4d_multi_volume_refused(rng):
    _raises(nib.Nifti1Image(rng.random((50, 60, 45, 3)).astype(np.float32), np.diag([2, 2, 2, 1.0])), "3 volumes")


def test_4d_single_volume_accepted(head_img):
    data = np.asarray(head_img.dataobj)[..., None]
    out = check_img(nib.Nifti1Image(data, head_img.affine))
    assert out.shape == head_img.shape
    np.testing.assert_array_equal(np.asarray(out.dataobj), np.asarray(head_img.dataobj))


def _write_patched(head_img, path, patches):
    """Write a NIfTI with sform only, then patch raw header floats (nibabel would fix them on save).

    ``patches`` maps a byte offset to a float: pixdim[1] is at 80, srow_x at 280, srow_z at 312.
    """
    data = np.asarray(head_img.dataobj)
    img = nib.Nifti1Image(data, head_img.affine)
    img.set_qform(None, code=0)
    img.set_sform(head_img.affine, code=2)
    img.header["vox_offset"] = 352
    raw = bytearray(img.header.binaryblock) + bytearray(4) + bytearray(data.tobytes())
    for offset, value in patches.items():
        raw[offset : offset + 4] = struct.pack("<f", value)
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def test_singular_affine(tmp_path, head_img):
    # srow_z = 0 0 0 z: the third axis collapses.
    path = _write_patched(head_img, tmp_path / "flat.nii.gz", {312: 0.0, 316: 0.0, 320: 0.0})
    _raises(path, "singular affine|could not be read")


def test_non_finite_affine(tmp_path, head_img):
    path = _write_patched(head_img, tmp_path / "nan.nii.gz", {292: float("nan")})
    _raises(path, "non-finite affine|could not be read")


@pytest.mark.parametrize("value", [0.0, -2.0])
def test_zero_or_negative_voxel_size(tmp_path, head_img, value):
    path = _write_patched(head_img, tmp_path / "pix.nii.gz", {80: value})
    _raises(path, "voxel sizes|could not be read")


def test_nan_and_inf_voxels(head_img):
    for bad in (np.nan, np.inf):
        data = np.asarray(head_img.dataobj).copy()
        data[3, 4, 5] = bad
        _raises(nib.Nifti1Image(data, head_img.affine), "NaN or infinite")


def test_constant_image(head_img):
    _raises(nib.Nifti1Image(np.full(head_img.shape, 7, np.int16), head_img.affine), "constant")


def test_coarse_voxels_warn_and_refuse(rng):
    data = rng.random((40, 44, 36)).astype(np.float32)
    with pytest.warns(UserWarning, match="less reliable"):
        check_img(nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0])))
    _raises(nib.Nifti1Image(data[:20, :22, :18], np.diag([7.0, 7.0, 7.0, 1.0])), "coarser than")


def test_anisotropic_thick_slices_accepted(rng):
    # 1x1x3 mm is a valid T1 (finest axis 1 mm): no warning, no error.
    data = rng.random((150, 170, 50)).astype(np.float32)
    assert check_img(nib.Nifti1Image(data, np.diag([1.0, 1.0, 3.0, 1.0]))).shape == (150, 170, 50)


def test_too_small_for_a_brain(rng):
    _raises(nib.Nifti1Image(rng.random((30, 40, 20)).astype(np.float32), np.eye(4)), "too small to hold a brain")


def test_not_an_image_object():
    _raises(np.zeros((10, 10, 10)), "not an image")


def test_affine_and_dtype_kept_exactly(tmp_path, rng):
    affine = np.array([[-0.9, 0.1, 0.0, 91.2], [0.05, 1.1, 0.2, -120.5], [0.0, -0.1, 1.2, -60.25], [0, 0, 0, 1]])
    data = rng.integers(0, 4000, size=(96, 110, 84)).astype(np.int16)
    img = nib.Nifti1Image(data, affine)
    img.set_qform(None, code=0)
    img.set_sform(affine, code=2)
    path = _save(img, tmp_path / "oblique.nii.gz")
    out = check_img(path)
    np.testing.assert_allclose(out.affine, affine, atol=1e-5)
    assert out.get_data_dtype() == np.int16
    assert int(out.header["sform_code"]) == 2
    np.testing.assert_array_equal(np.asarray(out.dataobj), data)


def test_reads_mgz_and_nifti2(tmp_path, head_img):
    data = np.asarray(head_img.dataobj)
    mgz = _save(nib.MGHImage(data, head_img.affine), tmp_path / "head.mgz")
    nii2 = _save(nib.Nifti2Image(data, head_img.affine), tmp_path / "head2.nii")
    for path in (mgz, nii2):
        out = check_img(path)
        np.testing.assert_allclose(out.affine, head_img.affine, atol=1e-5)
        np.testing.assert_allclose(np.asarray(out.dataobj), data, rtol=1e-6)


def test_scaled_integer_data_keeps_values(tmp_path, head_img):
    img = nib.Nifti1Image(np.asarray(head_img.dataobj), head_img.affine)
    img.set_data_dtype(np.int16)
    path = _save(img, tmp_path / "scaled.nii.gz")
    out = check_img(path)
    np.testing.assert_allclose(np.asarray(out.dataobj), np.asarray(head_img.dataobj), rtol=1e-3, atol=0.05)


@pytest.mark.parametrize("codes", ["LAS", "LIA", "PSR", "RAS"])
def test_reorient_round_trip(rng, codes):
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, ornt_transform

    data = rng.random((11, 13, 17)).astype(np.float32)
    ras = nib.Nifti1Image(data, np.diag([1.0, 1.5, 2.0, 1.0]))
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes))
    moved = nib.Nifti1Image(
        nib.orientations.apply_orientation(data, transform), ras.affine @ inv_ornt_aff(transform, data.shape)
    )
    back = reorient_to_ras(moved)
    assert nib.aff2axcodes(back.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    np.testing.assert_allclose(back.affine, ras.affine)
    np.testing.assert_array_equal(reorient_like(np.asarray(back.dataobj), moved), np.asarray(moved.dataobj))


def test_mask_checks_grid_and_binarises(head_img):
    probability = np.zeros(head_img.shape, np.float32)
    probability[10:15, 20:30, 5:9] = 0.8
    mask = check_mask(nib.Nifti1Image(probability, head_img.affine), reference=head_img)
    assert mask.get_data_dtype() == np.uint8
    assert int(np.asarray(mask.dataobj).sum()) == 5 * 10 * 4
    assert mask_volume_ml(mask) == pytest.approx(5 * 10 * 4 * voxel_volume_ml(head_img))
    with pytest.raises(InputImageError, match="not on the grid"):
        check_mask(nib.Nifti1Image(probability[:-1], head_img.affine), reference=head_img)


def test_empty_mask_is_allowed(head_img):
    assert mask_volume_ml(nib.Nifti1Image(np.zeros(head_img.shape, np.uint8), head_img.affine)) == 0.0
