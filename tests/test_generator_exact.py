"""Every layer and stage of the generator against `eg3d_reference` (float64, other code paths), at both configs."""
import pytest
import torch

import eg3d_reference as ref
from warpgan.camera import camera_label, orbit_pose
from warpgan.generator import (TriPlaneGenerator, conv2d_resample, downsample2d, modulated_conv2d, sample_from_planes,
                               setup_filter, upsample2d)

TOL = 1e-5
STAGES = ("ws", "planes", "feature_image", "image_raw", "image_depth", "weights_sum", "image")


def cameras(n):
    return camera_label(orbit_pose(torch.tensor([20.0, -35.0][:n]), torch.tensor([5.0, -3.0][:n])))


@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("k", [1, 3])
def test_resampling_convolution_matches_the_definitions(up, down, k):
    g = torch.Generator().manual_seed(k + 10 * up + 100 * down)
    x, w, f = torch.randn(2, 5, 7, 7, generator=g), torch.randn(4, 5, k, k, generator=g), setup_filter()
    s = torch.rand(2, 5, generator=g) + 0.5
    ours = modulated_conv2d(x, w, s, up=up, down=down, resample_filter=f)
    if k == 3:
        expect = ref.modconv(x.double(), w, s, up=up, down=down, f=f)
    else:          # a 1×1 kernel: resampling and the per-pixel product commute
        y = ref.modconv(x.double(), w, s)
        expect = ref.upsample(y, f.double()) if up > 1 else ref.fir(y, f.double(), (1, 1, 1, 1))[..., ::2, ::2] if down > 1 else y
    assert ours.shape == expect.shape
    assert ref.relative(ours, expect) < TOL


def test_fir_resampling_matches_the_definitions():
    x, f = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(0)), setup_filter()
    assert ref.relative(upsample2d(x, f), ref.upsample(x.double(), f.double())) < TOL
    assert ref.relative(downsample2d(x, f), ref.fir(x.double(), f.double(), (1, 1, 1, 1))[..., ::2, ::2]) < TOL


def test_up_convolution_is_a_true_convolution_not_a_correlation():
    """An impulse's response is the kernel itself (a true convolution); upsample-then-correlate answers with it mirrored."""
    L = torch.tensor([[1.0, 0, 0], [1, 0, 0], [1, 1, 1]])[None, None]
    x = torch.zeros(1, 1, 5, 5); x[..., 2, 2] = 1
    f = setup_filter()
    exact = conv2d_resample(x, L, f, up=2, padding=1)
    naive = torch.nn.functional.conv2d(upsample2d(x, f), L, padding=1)
    mirrored = torch.nn.functional.conv2d(upsample2d(x, f), L.flip([2, 3]), padding=1)
    assert (exact - naive).abs().max() > 0.1
    assert torch.allclose(exact, mirrored, atol=1e-6)       # away from the border (an impulse in the middle)


def test_plane_axes_sample_the_planes_they_claim():
    R = 16
    ramp = (torch.arange(R) + 0.5) / R * 2 - 1
    for axes, coords in ref.PLANE_COORDS.items():
        for plane, (ua, va) in enumerate(coords):
            field = torch.zeros(1, 3, 2, R, R)
            field[0, plane, 0] = ramp[None, :]           # feature 0 holds u, feature 1 holds v
            field[0, plane, 1] = ramp[:, None]
            pts = torch.rand(1, 50, 3, generator=torch.Generator().manual_seed(plane)) * 0.8 - 0.4
            got = sample_from_planes(field, pts, 1.0, axes)[0, plane]
            assert torch.allclose(got[:, 0], pts[0, :, ua] * 2, atol=1e-5)
            assert torch.allclose(got[:, 1], pts[0, :, va] * 2, atol=1e-5)
    G = TriPlaneGenerator.from_config("tiny", planes="lpff")
    assert G.planes == "lpff" and TriPlaneGenerator.from_config("tiny").planes == "eg3d"
    with pytest.raises(ValueError, match="planes"):
        TriPlaneGenerator.from_config("tiny", planes="zyx")


@pytest.mark.parametrize("name, batch, R, planes", [("tiny", 2, 32, "eg3d"), ("tiny", 1, 16, "lpff"), ("ffhq512", 1, 16, "eg3d")])
def test_every_stage_matches_the_reference(name, batch, R, planes):
    G = ref.randomise(TriPlaneGenerator.from_config(name, planes=planes)).eval().requires_grad_(False)
    z, c = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)), cameras(batch)
    with torch.no_grad():
        ws = G.mapping(z, c)
        ours = dict(G.synthesis(ws, c, neural_rendering_resolution=R, rng=torch.Generator().manual_seed(0),
                                return_planes=True), ws=ws)
        expect = ref.generator_stages(G, z, c, R, seed=0)
        layers = ref.layer_table(G, ws)
    bad = {k: ref.relative(ours[k], expect[k]) for k in STAGES if ref.relative(ours[k], expect[k]) >= TOL}
    assert not bad, bad
    assert len(layers) == sum(type(m).__name__ in ("SynthesisLayer", "ToRGBLayer") for m in G.modules())
    assert max(v for _, v in layers) < TOL, max(layers, key=lambda r: r[1])


def test_eval_renders_are_bit_reproducible_and_seedable():
    G = TriPlaneGenerator.from_pretrained("tiny")
    z, c = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)), cameras(2)
    with torch.no_grad():
        a, b = G(z, c), G(z, c)
        other = G(z, c, rng=torch.Generator().manual_seed(5))
        noisy = [G(z, c, noise_mode="random")["image"] for _ in range(2)]
    for k in ("image", "image_raw", "image_depth"):
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["image_depth"], other["image_depth"])           # a different seed, a different jitter
    assert torch.equal(noisy[0], noisy[1])                                   # random noise also from the default seed
    G.train()
    with torch.no_grad():
        t1, t2 = G(z, c)["image_depth"], G(z, c)["image_depth"]
    assert not torch.equal(t1, t2)                                           # training keeps fresh draws
