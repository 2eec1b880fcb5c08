"""The generator against EG3D's own state dict, and its training numerics."""
import json
from pathlib import Path

import pytest
import torch

from warpgan.generator import TriPlaneGenerator, ray_march
from warpgan.inversion import Encoder
from warpgan.svinet import SVINet
from warpgan.world import sample_cameras

HERE = Path(__file__).parent


def test_ffhq512_state_dict_is_eg3d_s():
    ref = {k: tuple(v) for k, v in json.loads((HERE / "eg3d_ffhq512_state.json").read_text()).items()}
    G = TriPlaneGenerator.from_config("ffhq512")
    assert {k: tuple(v.shape) for k, v in G.state_dict().items()} == ref
    assert sum(p.numel() for p in G.parameters()) == 30_662_136
    assert G.num_ws == 14


def test_empty_rays_have_far_depth_and_finite_gradients():
    depths = torch.linspace(2.25, 3.3, 8).reshape(1, 1, 8, 1).repeat(2, 3, 1, 1)
    sigma = torch.full((2, 3, 8, 1), -60.0, requires_grad=True)
    feats = torch.rand(2, 3, 8, 4, requires_grad=True)
    feat, depth, _ = ray_march(feats, sigma, depths)
    assert torch.allclose(depth, torch.full_like(depth, 3.3))
    ((depth * 0).sum() + (feat * 0).sum()).backward()
    assert torch.isfinite(sigma.grad).all() and torch.isfinite(feats.grad).all()


def test_tiny_forward_is_seeded_and_shaped():
    G = TriPlaneGenerator.from_config("tiny", seed=1).eval()
    c = sample_cameras(2, 0)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = G(z, c, rng=torch.Generator().manual_seed(3))
        b = G(z, c, rng=torch.Generator().manual_seed(3))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["image_depth"], b["image_depth"])
    assert a["image"].shape == (2, 3, 64, 64) and a["image_raw"].shape == (2, 3, 32, 32)
    assert a["image_depth"].shape == (2, 1, 32, 32)
    assert ((a["image_depth"] >= 2.25) & (a["image_depth"] <= 3.3)).all()


@pytest.mark.parametrize("call, needle", [
    (lambda G: G(torch.randn(2, 5), sample_cameras(2, 0)), "z: expected"),
    (lambda G: G(torch.randn(2, G.z_dim), sample_cameras(1, 0)), "(2, 25)"),
    (lambda G: G.synthesis(torch.randn(1, 2, G.w_dim), sample_cameras(1, 0)), "ws: expected"),
])
def test_bad_input(call, needle):
    G = TriPlaneGenerator.from_config("tiny")
    with pytest.raises(ValueError, match=None) as e:
        call(G)
    assert needle in str(e.value)


def test_shipped_tiny_generator_loads_and_renders_heads():
    G = TriPlaneGenerator.from_pretrained("tiny")
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    c = sample_cameras(4, 1_000_000)
    with torch.no_grad():
        out = G(torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0)), c)
    assert out["image"].shape == (4, 3, 64, 64) and torch.isfinite(out["image"]).all()
    opacity = out["weights_sum"].mean().item()
    assert 0.3 < opacity < 0.9                      # a head on a background, not empty and not a wall
    fg = out["weights_sum"] > 0.5
    assert 2.3 < out["image_depth"][fg].mean().item() < 2.8    # at the head's distance from the camera


@pytest.mark.parametrize("loader, filename", [
    (lambda name: TriPlaneGenerator.from_pretrained(name), "generator_tiny.pt"),
    (lambda name: Encoder.from_pretrained(name), "encoder_tiny.pt"),
    (lambda name: SVINet.from_pretrained(name), "svinet_tiny.pt"),
])
def test_missing_or_corrupt_shipped_weights_are_named(monkeypatch, tmp_path, loader, filename):
    import warpgan.core
    monkeypatch.setattr(warpgan.core, "weights_file", lambda name: tmp_path / name)   # every from_pretrained reads through it
    with pytest.raises(FileNotFoundError, match=filename):
        loader("tiny")
    (tmp_path / filename).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checksum"):
        loader("tiny")
    with pytest.raises(ValueError, match="no shipped"):
        loader("ffhq512")
