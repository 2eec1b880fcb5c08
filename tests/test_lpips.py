"""LPIPS: the real loading path (a backbone checkpoint in the torch hub cache), and no LPIPS without it."""
import warnings

import pytest
import torch
import torchvision

from warpgan import inversion
from warpgan.inversion import load_lpips


@pytest.fixture
def hub(tmp_path, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    monkeypatch.setattr(inversion, "_lpips_cache", {})
    yield tmp_path
    torch.hub.set_dir(old)


def test_lpips_loads_the_cached_backbone(hub):
    torch.manual_seed(0)
    alex = torchvision.models.alexnet()                      # stands in for the downloaded ImageNet weights
    (hub / "checkpoints").mkdir()
    torch.save(alex.state_dict(), hub / "checkpoints" / "alexnet-owt-7be5be79.pth")
    model = load_lpips("alex")
    assert model is not None
    loaded = dict(model.net.named_parameters())
    # lpips splits alexnet.features into slices; every conv weight must be the file's, not a fresh draw
    convs = [m for m in alex.features if isinstance(m, torch.nn.Conv2d)]
    ours = [v for k, v in sorted(loaded.items()) if k.endswith("weight")]
    assert len(convs) == len(ours) == 5
    for conv in convs:
        assert any(o.shape == conv.weight.shape and torch.equal(o, conv.weight) for o in ours)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(model(x, x).flatten(), torch.zeros(2), atol=1e-6)
    assert (model(x, x.flip(0)).flatten() > 0).all()
    assert load_lpips("alex") is model                      # loaded once


def test_no_lpips_without_backbone(hub):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert load_lpips("alex") is None
    assert any("LPIPS unavailable" in str(m.message) for m in w)
