"""Real lesion masks: roles (train / held out) and randomly varied placement."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.synth.real_masks import HELD_OUT_MASKS, real_lesion_fraction, real_mask_paths


@pytest.fixture()
def mask_folder(tmp_path):
    """Three masks in an MNI-like world (1 mm, LAS as the real ones): one held-out name."""
    affine = np.array([[-1.0, 0, 0, 30], [0, 1, 0, -35], [0, 0, 1, -25], [0, 0, 0, 1]])
    shape = (61, 71, 51)
    grid = np.indices(shape)
    for k, name in enumerate(["ms_lesions_90", "ms_lesions_91", HELD_OUT_MASKS[0]]):
        data = np.zeros(shape, np.uint8)
        for centre in [(20 + k, 30, 25), (45, 40, 20), (30, 55, 35)]:  # three blobs, off the midline
            data[sum((g - c) ** 2 for g, c in zip(grid, centre)) <= 16] = 1
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{name}.nii.gz")
    return tmp_path


def _mni_points(folder):
    img = nib.load(sorted(folder.glob("*.nii.gz"))[0])
    ijk = np.indices(img.shape).reshape(3, -1)
    return (img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]).astype(np.float32), np.asarray(img.dataobj).ravel() > 0


def test_roles(mask_folder):
    train = real_mask_paths(mask_folder, role="train")
    held = real_mask_paths(mask_folder, role="held_out")
    assert [p.name.split(".")[0] for p in held] == [HELD_OUT_MASKS[0]]
    assert len(train) == 2 and not set(train) & set(held)
    assert len(real_mask_paths(mask_folder, role="all")) == 3
    assert real_mask_paths(mask_folder / "missing") == []
    with pytest.raises(OptionError):
        real_mask_paths(mask_folder, role="test")


def test_as_it_is_reproduces_the_mask(mask_folder):
    points, truth = _mni_points(mask_folder)
    path = real_mask_paths(mask_folder, role="all")[0]
    fraction, params = real_lesion_fraction(np.random.default_rng(0), points, path, keep_share=1, grow_mm=0,
                                            flip=False, warp_mm=0)
    assert params["lesions_in_mask"] == 3 and params["lesions_kept"] == 3
    assert ((fraction > 0.5) == truth).mean() > 0.999


def test_variations(mask_folder):
    points, truth = _mni_points(mask_folder)
    path = real_mask_paths(mask_folder, role="all")[0]
    fixed = {"keep_share": 1, "flip": False, "warp_mm": 0}
    grown = real_lesion_fraction(np.random.default_rng(0), points, path, grow_mm=1.5, **fixed)[0] > 0.5
    assert grown.sum() > 1.3 * truth.sum() and (grown | ~truth).all()
    flipped = real_lesion_fraction(np.random.default_rng(0), points, path, keep_share=1, grow_mm=0, flip=True,
                                   warp_mm=0)[0] > 0.5
    assert flipped.sum() == pytest.approx(truth.sum(), rel=0.05) and (flipped & truth).sum() < 0.5 * truth.sum()
    warped = real_lesion_fraction(np.random.default_rng(0), points, path, keep_share=1, grow_mm=0, flip=False,
                                  warp_mm=4)[0] > 0.5
    assert 0.5 * truth.sum() < warped.sum() < 1.5 * truth.sum() and not np.array_equal(warped, truth)
    # Keeping a share of the lesions keeps at least one, and whole lesions only.
    kept, params = real_lesion_fraction(np.random.default_rng(5), points, path, keep_share=0.01, grow_mm=0,
                                        flip=False, warp_mm=0)
    assert params["lesions_kept"] == 1 and 0.2 * truth.sum() < (kept > 0.5).sum() < 0.5 * truth.sum()
    # Drawn variations are reproducible from the generator's seed.
    a = real_lesion_fraction(np.random.default_rng(7), points, path)
    b = real_lesion_fraction(np.random.default_rng(7), points, path)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


def test_moved_mask_keeps_its_geometry_elsewhere(mask_folder):
    points, truth = _mni_points(mask_folder)
    path = real_mask_paths(mask_folder, role="all")[0]
    fixed = {"keep_share": 1, "grow_mm": 0, "flip": False, "warp_mm": 0}
    moved, params = real_lesion_fraction(np.random.default_rng(3), points, path, rotate_deg=10, shift_mm=6, **fixed)
    moved = moved > 0.5
    # A rigid motion keeps the volume (up to the edge of the mask's grid) but not the place.
    assert 0.8 * truth.sum() < moved.sum() <= 1.05 * truth.sum()
    assert (moved & truth).sum() < 0.7 * truth.sum()
    assert all(abs(v) <= 10 for v in params["rotate_deg"]) and all(abs(v) <= 6 for v in params["shift_mm"])
    unmoved = real_lesion_fraction(np.random.default_rng(3), points, path, **fixed)[0] > 0.5
    assert "rotate_deg" not in real_lesion_fraction(np.random.default_rng(3), points, path, **fixed)[1]
    assert ((unmoved == truth).mean()) > 0.999
