"""MNI tissue maps for phantoms, and the field helpers."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.io import cache_dir
from wmhkit.synth import templates
from wmhkit.synth.fields import bounding_box, trilinear, upsample_linear


def test_tissue_maps_are_fractions_with_ventricles_and_cap_sites():
    maps = templates.load_tissue_maps(2)
    total = maps.wm + maps.gm + maps.deep_gm + maps.csf
    assert total.max() <= 1.0 + 2e-3 and min(maps.wm.min(), maps.gm.min(), maps.csf.min()) >= -1e-3
    ventricle_ml = (maps.ventricle_sd_mm < 0).sum() * 8 / 1000
    assert 5 < ventricle_ml < 60
    tips = maps.horn_tips_mm  # left frontal, left occipital, right frontal, right occipital
    assert tips[0, 1] > tips[1, 1] and tips[2, 1] > tips[3, 1]
    assert tips[0, 0] < 0 < tips[2, 0]
    index = np.linalg.inv(maps.affine) @ np.vstack([maps.deep_wm_mm.T, np.ones(len(maps.deep_wm_mm))])
    wm_at_centres = ndimage.map_coordinates(maps.wm, index[:3], order=1)
    assert len(maps.deep_wm_mm) > 1000 and np.median(wm_at_centres) > 0.8


def test_cache_round_trip_gives_the_same_maps(tmp_path, monkeypatch):
    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path))
    templates.load_tissue_maps.cache_clear()
    try:
        built = templates.load_tissue_maps(2)
        assert (cache_dir("synth") / "mni_tissue_2mm.npz").is_file()
        templates.load_tissue_maps.cache_clear()
        cached = templates.load_tissue_maps(2)
    finally:
        templates.load_tissue_maps.cache_clear()
    for name in ("wm", "gm", "csf", "ventricle_sd_mm", "outside_mm", "deep_wm_mm", "affine"):
        np.testing.assert_array_equal(getattr(built, name), getattr(cached, name))
    assert built.central_box == cached.central_box


def test_trilinear_matches_map_coordinates_and_clamps():
    rng = np.random.default_rng(0)
    stack = rng.random((7, 9, 8, 4)).astype(np.float32)
    index = (rng.random((3, 500)) * np.array([[8.0], [10.0], [9.0]]) - 0.5).astype(np.float32)
    ours = trilinear(stack, index)
    for channel in range(4):
        expected = ndimage.map_coordinates(stack[..., channel], index, order=1, mode="nearest")
        np.testing.assert_allclose(ours[:, channel], expected, atol=1e-5)
    np.testing.assert_allclose(trilinear(stack[..., :3], index)[:, 2], ours[:, 2], atol=1e-6)


def test_upsample_and_bounding_box():
    coarse = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    fine = upsample_linear(coarse, (3, 5, 4))
    assert fine.shape == (3, 5, 4)
    assert fine[0, 0, 0] == coarse[0, 0, 0] and fine[-1, -1, -1] == coarse[-1, -1, -1]
    assert bounding_box(np.zeros((3, 4, 5), bool)) is None


def test_warp_volumes_bends_image_and_mask_together():
    from wmhkit.synth.fields import warp_volumes

    shape = (40, 46, 34)
    centre = np.array(shape) / 2.0
    distance = np.sqrt(((np.indices(shape).T - centre) ** 2).sum(-1)).T
    image = np.clip(12.0 - distance, 0.0, 1.0).astype(np.float32)  # a soft ball of radius ~12
    mask = (distance < 11.0).astype(np.uint8)
    (image_w, mask_w), rms = warp_volumes(np.random.default_rng(4), [image, mask], (1.0, 1.2, 0.9),
                                          amplitude_mm=3.0, wavelength_mm=20.0)
    assert image_w.dtype == np.float32 and mask_w.dtype == np.uint8
    assert 2.0 < rms < 4.0
    assert not np.array_equal(mask_w, mask)
    # The same deformation: the warped mask still marks the warped ball's bright part.
    assert (image_w[mask_w > 0] > 0.5).mean() > 0.99
    assert abs(int(mask_w.sum()) - int(mask.sum())) < 0.25 * mask.sum()
