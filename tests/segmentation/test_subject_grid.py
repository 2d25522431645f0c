"""Inference on the subject's own voxels: exact under reorientation, on the input grid otherwise."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.segmentation.test_pipeline import _reoriented, _resampled


@pytest.fixture(scope="module")
def one_mm(phantom_2mm):
    from wmhkit.preprocess import prepare_t1

    img = _resampled(phantom_2mm.t1, 1.0)
    return img, prepare_t1(img)


@pytest.fixture(scope="module")
def tiny_net(tiny_model_path):
    from wmhkit.segmentation.models import load_model

    return load_model(tiny_model_path).net


def _on_input(img, prepared, net):
    """The network's map on ``img``'s grid, run on its subject-space grid (the steps of ``segment``)."""
    import dataclasses

    from wmhkit.segmentation.inference import network_probability
    from wmhkit.segmentation.spaces import grid_for

    grid = grid_for(dataclasses.replace(prepared, img=img), "subject")
    probability, _ = network_probability(grid, net)
    sub, part = grid.to_input(probability)
    np.testing.assert_array_equal(grid.to_input_grid(probability)[sub], part)
    return grid.to_input_grid(probability), sub


def test_native_voxels_give_the_same_map_in_any_orientation(one_mm, tiny_net):
    img, prepared = one_mm
    reference, sub = _on_input(img, prepared, tiny_net)
    assert reference.shape == img.shape and reference.max() > 0
    outside = np.ones(img.shape, bool)
    outside[sub] = False
    assert not reference[outside].any()
    # Same world, other voxel order: the alignment still holds, and nothing is interpolated.
    lia = _reoriented(img, "LIA")
    probability, _ = _on_input(lia, prepared, tiny_net)
    back = _reoriented(nib.Nifti1Image(probability, lia.affine), "".join(nib.aff2axcodes(img.affine)))
    np.testing.assert_allclose(np.asanyarray(back.dataobj), reference, atol=1e-6)


def test_coarse_voxels_are_sampled_once_each_way(phantom_2mm, one_mm, tiny_net):
    _, prepared = one_mm
    img = _resampled(phantom_2mm.t1, (1.0, 1.0, 3.0))  # 3 mm slices: resampled to 1 mm along its axes
    probability, sub = _on_input(img, prepared, tiny_net)
    assert probability.shape == img.shape and probability.dtype == np.float32
    assert 0.0 <= probability.min() and probability.max() <= 1.0 and probability[sub].max() > 0


def test_both_spaces_give_the_same_interface(one_mm, tiny_net):
    """The MNI grid and the subject grid hand the network the same things and take back the same things."""
    from wmhkit.segmentation.spaces import Grid, grid_for

    img, prepared = one_mm
    for space in ("mni", "subject"):
        grid = grid_for(prepared, space)
        assert isinstance(grid, Grid) and grid.space == space
        assert grid.t1.dtype == np.float32 and grid.envelope.shape == grid.ventricle_zone.shape == grid.t1.shape
        assert grid.envelope.dtype == bool and grid.envelope.any() and 0.9 < grid.voxel_mm3 < 1.1
        sub, part = grid.to_input(grid.envelope.astype(np.float32))
        back = grid.to_input_grid(grid.envelope.astype(np.float32))
        assert back.shape == img.shape and part.max() > 0.99 and back.sum() == pytest.approx(part.sum(), rel=1e-6)


def test_segment_records_its_space_and_refuses_unknown_ones(phantom_2mm, tiny_model_path):
    from wmhkit.errors import OptionError
    from wmhkit.segmentation import segment

    with pytest.raises(OptionError, match="space"):
        segment(phantom_2mm.t1, model=tiny_model_path, space="talairach")
    result = segment(phantom_2mm.t1, model=tiny_model_path, regions=False, space="subject")
    assert result.metadata["inference_space"] == "subject"
    assert result.mask.shape == phantom_2mm.t1.shape and result.metadata["timings_s"]["infer"] > 0


def test_the_model_declares_its_space(phantom_2mm, random_checkpoint):
    from wmhkit.segmentation import segment
    from wmhkit.segmentation.models import load_model

    plain = random_checkpoint("plain.pt", 4, version="p-1")
    declared = random_checkpoint("subject.pt", 4, version="s-1", space="subject")
    assert load_model(plain).space == "mni" and load_model(declared).space == "subject"
    assert segment(phantom_2mm.t1, model=declared, regions=False).metadata["inference_space"] == "subject"
    assert segment(phantom_2mm.t1, model=declared, regions=False, space="mni").metadata["inference_space"] == "mni"
    assert segment(phantom_2mm.t1, model=plain, regions=False).metadata["inference_space"] == "mni"
    # The baseline has no network to place: always the MNI grid.
    assert segment(phantom_2mm.t1, method="baseline", regions=False, space="subject").metadata[
        "inference_space"] == "mni"


@pytest.mark.parametrize("codes", ["RAS", "LIA", "PSR"])
def test_network_grid_reads_the_voxels_it_claims(one_mm, codes):
    from wmhkit.segmentation.subject_grid import network_grid

    img, prepared = one_mm
    img = _reoriented(img, codes)
    grid = network_grid(img, prepared.alignment, prepared.intensity_levels)
    assert grid.native and grid.t1.dtype == np.float32
    # Voxel indices sampled onto the grid must name input voxels at the same world position.
    index = np.arange(np.prod(img.shape)).reshape(img.shape)
    sampled = grid.sample(index, order=0)
    assert sampled.shape == grid.t1.shape
    rng = np.random.default_rng(0)
    picks = np.stack([rng.integers(0, n, 50) for n in grid.t1.shape], axis=1)
    world_grid = picks @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    source = np.stack(np.unravel_index(sampled[tuple(picks.T)], img.shape), axis=1)
    world_input = source @ img.affine[:3, :3].T + img.affine[:3, 3]
    np.testing.assert_allclose(world_grid, world_input, atol=1e-4)
    # The slice axis of the grid runs inferior-superior.
    assert abs(grid.affine[2, 2]) > 0.9


def test_envelope_and_ventricle_zone_come_from_one_sampling(one_mm):
    from wmhkit.anatomy.atlas import ventricle_zone_mni, wm_envelope_mni
    from wmhkit.segmentation.subject_grid import masks_on_grid, mni_mask_on_grid, network_grid

    img, prepared = one_mm
    grid = network_grid(prepared.img, prepared.alignment, prepared.intensity_levels)
    envelope, zone = masks_on_grid(grid, prepared.alignment)
    assert envelope.dtype == bool and zone.shape == grid.t1.shape
    np.testing.assert_array_equal(envelope, mni_mask_on_grid(wm_envelope_mni(), grid, prepared.alignment) > 0)
    np.testing.assert_array_equal(zone, mni_mask_on_grid(ventricle_zone_mni(), grid, prepared.alignment) > 0)
    assert zone.any() and (zone & envelope).any() and not zone.all()
