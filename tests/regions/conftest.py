"""A synthetic subject: a 2 mm LAS grid rotated and shifted against MNI152, with a known alignment.

Lesions are placed at MNI positions chosen from the atlas geometry at 1 mm (distances computed
on the MNI grid), then drawn as spheres on the subject grid, so the regional code (which works
on the subject grid after resampling the atlas) is checked against an independent computation.
"""

from __future__ import annotations

import dataclasses
import functools

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.preprocess import MNIAlignment


def _rotation_z(degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    out = np.eye(4)
    out[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return out


@dataclasses.dataclass
class Subject:
    grid: nib.Nifti1Image        # empty uint8 image on the subject grid
    alignment: MNIAlignment
    mni_parcels: np.ndarray      # parcel codes on the MNI 1 mm grid
    mni_affine: np.ndarray
    d_vent_mni: np.ndarray       # mm, on the MNI grid
    d_cortex_mni: np.ndarray

    @functools.cached_property
    def mni_of_voxels(self) -> np.ndarray:
        """MNI mm of every subject voxel centre, shape (n, 3), float32."""
        ijk = np.indices(self.grid.shape).reshape(3, -1).T
        to_mni = self.alignment.subject_to_mni @ self.grid.affine
        return (ijk @ to_mni[:3, :3].T + to_mni[:3, 3]).astype(np.float32)

    def mask(self, *spheres: tuple[np.ndarray, float]) -> nib.Nifti1Image:
        """uint8 mask on the subject grid: spheres given as (MNI centre mm, radius mm)."""
        data = np.zeros(len(self.mni_of_voxels), np.uint8)
        for centre, radius in spheres:
            data[((self.mni_of_voxels - np.asarray(centre, np.float32)) ** 2).sum(axis=1) <= radius**2] = 1
        return nib.Nifti1Image(data.reshape(self.grid.shape), self.grid.affine)

    def pick(self, codes, d_vent: tuple[float, float], d_cortex_min: float = 0.0, near=(0.0, 0.0, 0.0)) -> np.ndarray:
        """MNI mm of the parcel voxel of ``codes`` with d_vent in range, nearest to ``near``."""
        ok = np.isin(self.mni_parcels, codes) & (self.d_vent_mni >= d_vent[0]) & (self.d_vent_mni <= d_vent[1])
        ok &= self.d_cortex_mni >= d_cortex_min
        ijk = np.argwhere(ok)
        mni = ijk @ self.mni_affine[:3, :3].T + self.mni_affine[:3, 3]
        return mni[np.argmin(np.linalg.norm(mni - np.asarray(near), axis=1))]


@pytest.fixture(scope="session")
def subject(tmp_path_factory) -> Subject:
    # Same cache folder as the autouse fixture of tests/conftest.py (session fixtures run first).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WMHKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "wmhkit-cache"))
        from wmhkit.regions.parcels import load_parcels, tissue_lookup

        parcels_img = load_parcels()
    parcels = np.asarray(parcels_img.dataobj)
    shift = np.eye(4)
    shift[:3, 3] = [3.0, -5.0, 4.0]
    subject_to_mni = shift @ _rotation_z(8.0)
    # LAS, 2 mm, unequal axes, covering the brain after the inverse map.
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [84.0, -124.0, -66.0]
    grid = nib.Nifti1Image(np.zeros((86, 104, 78), np.uint8), affine)
    return Subject(
        grid=grid,
        alignment=MNIAlignment(subject_to_mni, quality=1.0, method="known"),
        mni_parcels=parcels,
        mni_affine=parcels_img.affine,
        d_vent_mni=ndimage.distance_transform_edt(~tissue_lookup("ventricle")[parcels]),
        d_cortex_mni=ndimage.distance_transform_edt(~tissue_lookup("cortex")[parcels]),
    )
