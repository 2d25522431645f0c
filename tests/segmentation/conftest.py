"""Fixtures for the segmentation tests: small phantoms and a tiny random network on disk."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture(scope="session")
def phantom_2mm():
    """A fast 2 mm phantom (skull-stripped) with lesions; skips if wmhkit.synth is not there yet."""
    synth = pytest.importorskip("wmhkit.synth")
    if not hasattr(synth, "make_phantom"):
        pytest.skip("wmhkit.synth.make_phantom is not available")
    return synth.make_phantom(seed=3, voxel_size_mm=2.0, lesion_burden=2.0)


@pytest.fixture(scope="session")
def phantom_2mm_skull():
    synth = pytest.importorskip("wmhkit.synth")
    if not hasattr(synth, "make_phantom"):
        pytest.skip("wmhkit.synth.make_phantom is not available")
    return synth.make_phantom(seed=4, voxel_size_mm=2.0, lesion_burden=2.0, skull=True)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A tiny random network saved as a wmhkit checkpoint (stands in for trained weights)."""
    torch = pytest.importorskip("torch")
    from wmhkit.segmentation.network import build_network, save_checkpoint

    torch.manual_seed(0)
    config = {"base_channels": 2, "levels": 2, "in_slices": 3}
    net = build_network(config)
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    save_checkpoint(path, net, config, {"version": "test-0"})
    return path


def save(img: nib.Nifti1Image, path):
    nib.save(img, str(path))
    return path


@pytest.fixture
def random_checkpoint(tmp_path):
    """Save a random network (4 channels, 2 levels: wide enough not to be constant) as ``tmp_path/name``.

    ``random_checkpoint(name, seed, **metadata)`` returns the path; the same seed gives the same weights,
    so checkpoints that differ only in their metadata can be compared.
    """
    torch = pytest.importorskip("torch")
    from wmhkit.segmentation.network import build_network, save_checkpoint

    def save(name: str, seed: int, **metadata):
        torch.manual_seed(seed)
        config = {"base_channels": 4, "levels": 2, "in_slices": 3}
        return save_checkpoint(tmp_path / name, build_network(config), config, metadata)

    return save
