"""User manifests: reading and checking, FLAIR-to-T1 rigid registration with a quality score."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.errors import TableError
from wmhkit.preprocess import load_template
from wmhkit.train.manifest import read_manifest, register_flair_to_t1, registration_quality


def test_read_manifest_resolves_paths_and_checks(tmp_path):
    for name in ("t1.nii.gz", "flair.nii.gz", "label.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "m.csv").write_text("t1,flair,label\nt1.nii.gz,flair.nii.gz,label.nii.gz\n")
    table = read_manifest(tmp_path / "m.csv")
    assert table.loc[0, "t1"] == str(tmp_path / "t1.nii.gz")
    assert table.loc[0, "transform"] == "" and table.loc[0, "case_id"] == "case0000"
    (tmp_path / "bad.csv").write_text("t1,label\nt1.nii.gz,label.nii.gz\n")
    with pytest.raises(TableError, match="flair"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("t1,flair,label\nt1.nii.gz,nope.nii.gz,label.nii.gz\n")
    with pytest.raises(TableError, match="nope.nii.gz"):
        read_manifest(tmp_path / "missing.csv")
    (tmp_path / "dup.csv").write_text(
        "case_id,t1,flair,label\na,t1.nii.gz,flair.nii.gz,label.nii.gz\na,t1.nii.gz,flair.nii.gz,label.nii.gz\n")
    with pytest.raises(TableError, match="repeats"):
        read_manifest(tmp_path / "dup.csv")


def _rigid(angle_deg: float, shift_mm) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    out = np.eye(4)
    out[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    out[:3, 3] = shift_mm
    return out


@pytest.mark.slow
def test_registration_recovers_a_known_rigid_transform():
    template = load_template("t1")
    t1_data = ndimage.zoom(np.asarray(template.dataobj, np.float32), 0.5, order=1)
    t1_affine = template.affine.copy()
    t1_affine[:3, :3] *= 2.0
    t1 = nib.Nifti1Image(t1_data, t1_affine)
    t1_to_flair = _rigid(6.0, [4.0, -3.0, 2.0])
    flair_affine = np.diag([1.8, 1.8, 5.0, 1.0])
    flair_affine[:3, 3] = [-96.0, -130.0, -70.0]
    flair_shape = (107, 125, 30)
    idx = np.indices(flair_shape).reshape(3, -1).astype(np.float64)
    to_t1_vox = np.linalg.inv(t1_affine) @ np.linalg.inv(t1_to_flair) @ flair_affine
    sampled = ndimage.map_coordinates(t1_data, to_t1_vox[:3, :3] @ idx + to_t1_vox[:3, 3:], order=1)
    flair_data = np.where(sampled > 0.05, 1.2 - sampled, 0.0).reshape(flair_shape)  # inverted contrast
    flair = nib.Nifti1Image(flair_data.astype(np.float32), flair_affine)
    estimated, quality = register_flair_to_t1(t1, flair)
    points = np.array([[0, 0, 0, 1], [40, 30, 20, 1], [-40, -50, 30, 1], [20, -60, -10, 1]], float).T
    error_mm = np.linalg.norm((estimated @ points - t1_to_flair @ points)[:3], axis=0)
    assert error_mm.max() < 2.5
    assert quality > registration_quality(t1, flair, np.eye(4)) and quality > 0.1
