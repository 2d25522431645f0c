"""The model registry: names, paths, caching, clear errors; torch stays out of imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wmhkit.errors import ModelError, OptionError
from wmhkit.segmentation import models


def test_import_does_not_load_torch():
    code = (
        "import sys, wmhkit, wmhkit.segmentation, wmhkit.cli.segment; "
        "from wmhkit.segmentation import segment, baseline_probability; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_missing_named_model_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    assert models.available_models() == []
    with pytest.raises(ModelError, match="not installed.*--method baseline") as info:
        models.load_model("default")
    assert "no model is installed yet" in str(info.value)


def test_missing_path(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.load_model(tmp_path / "nope.pt")


def test_foreign_file_refused(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError):
        models.load_model(path)


def test_registry_lists_and_loads_once(monkeypatch, tmp_path, tiny_model_path):
    import shutil

    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    shutil.copy(tiny_model_path, tmp_path / "small.pt")
    assert models.available_models() == ["small"]
    models.clear_model_cache()
    first = models.load_model("small")
    assert models.load_model("small") is first
    assert first.name == "small" and first.version == "test-0"
    described = first.describe()
    assert described["sha256"] and len(described["sha256"]) == 64 and described["file"] == "small.pt"
    by_path = models.load_model(tiny_model_path)
    assert by_path.name == "tiny" and by_path.sha256 == first.sha256
    assert models.load_model(by_path) is by_path


def test_cuda_refused_without_gpu(tiny_model_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(OptionError, match="no CUDA GPU"):
        models.load_model(tiny_model_path, device="cuda")
    with pytest.raises(OptionError, match="not a torch device"):
        models.load_model(tiny_model_path, device="tpu9")


def test_loaded_model_predicts_as_the_checkpoint(tiny_model_path):
    """The registry's faster copy (batch norms folded, channels-last) gives the checkpoint's own probabilities."""
    import numpy as np

    from wmhkit.segmentation.network import load_checkpoint, predict_volume

    models.clear_model_cache()
    volume = np.random.default_rng(3).random((21, 17, 9)).astype(np.float32)
    plain = predict_volume(load_checkpoint(tiny_model_path)[0], volume)
    fast_net = models.load_model(tiny_model_path).net
    assert not any("BatchNorm" in type(m).__name__ for m in fast_net.modules())
    fast = predict_volume(fast_net, volume)
    assert plain.std() > 0
    np.testing.assert_allclose(fast, plain, atol=1e-5)
