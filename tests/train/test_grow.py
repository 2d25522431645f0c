import pytest
import torch

from wmhkit.errors import OptionError
from wmhkit.segmentation.network import build_network, load_checkpoint, save_checkpoint
from wmhkit.train.grow import widen_checkpoint


@pytest.fixture()
def small_checkpoint(tmp_path):
    torch.manual_seed(3)
    config = {"base_channels": 4, "levels": 3, "in_slices": 3}
    net = build_network(config)
    with torch.no_grad():  # batch-norm statistics and affine terms away from their defaults
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return save_checkpoint(tmp_path / "small.pt", net, config, {"name": "small", "threshold": 0.7})


@pytest.mark.parametrize("factor", [1.5, 2.0])
def test_the_widened_network_computes_the_same_in_inference_and_in_training(small_checkpoint, tmp_path, factor):
    wide_path = widen_checkpoint(small_checkpoint, tmp_path / "wide.pt", factor=factor, noise=0.0)
    small, _, _ = load_checkpoint(small_checkpoint)
    wide, config, metadata = load_checkpoint(wide_path)
    assert config["base_channels"] == int(round(4 * factor)) and metadata["threshold"] == 0.7
    x = torch.rand(4, 3, 20, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(small.eval()(x), wide.eval()(x), atol=1e-4)
        # batch statistics of copied channels are the copies of the old ones
        assert torch.allclose(small.train()(x), wide.train()(x), atol=1e-4)


def test_noise_moves_the_copies_apart_a_little(small_checkpoint, tmp_path):
    exact = load_checkpoint(widen_checkpoint(small_checkpoint, tmp_path / "a.pt", noise=0.0))[0].eval()
    noisy = load_checkpoint(widen_checkpoint(small_checkpoint, tmp_path / "b.pt", noise=0.01, seed=1))[0].eval()
    again = load_checkpoint(widen_checkpoint(small_checkpoint, tmp_path / "c.pt", noise=0.01, seed=1))[0].eval()
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        difference = float((exact(x) - noisy(x)).abs().max())
        assert 0 < difference < 0.5 * float(exact(x).abs().max())
        assert torch.equal(noisy(x), again(x))


@pytest.mark.parametrize("option", [{"factor": 0.5}, {"noise": -1.0}])
def test_a_shrinking_factor_or_negative_noise_is_refused(small_checkpoint, tmp_path, option):
    with pytest.raises(OptionError):
        widen_checkpoint(small_checkpoint, tmp_path / "x.pt", **option)
    assert not (tmp_path / "x.pt").exists()
