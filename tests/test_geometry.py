"""Cameras and the world together: conventions that only show when the modules meet, and bad input."""
import math

import pytest
import torch

from warpgan.camera import (camera_label, fov_to_intrinsics, lookat_pose, mirror_label, orbit_pose, project,
                            split_label, to_pytorch3d, unproject, pixel_centres)
from warpgan.world import HELDOUT_SEED, render_heads, sample_cameras, sample_heads


@pytest.fixture(scope="module")
def renders():
    c = sample_cameras(3, 7)
    heads = sample_heads(3, HELDOUT_SEED)
    return heads, c, render_heads(heads, c, 48)


def test_world_depth_is_eg3d_along_ray_depth(renders):
    heads, c, r = renders
    m, k = split_label(c)
    pts = unproject(r["depth"], m, k)
    uv, t, z = project(pts, m, k)
    on = r["mask"].reshape(3, -1).bool()
    assert torch.allclose(uv[on], pixel_centres(48).expand(3, -1, -1)[on], atol=1e-5)
    assert torch.allclose(t[on], r["depth"].reshape(3, -1)[on], atol=1e-5)
    # along-ray depth is longer than z-depth off the optical axis: confusing them is a real error
    assert (t[on] - z[on]).max() > 1e-3


def test_pytorch3d_sees_world_points_where_we_do(renders):
    heads, c, r = renders
    m, k = split_label(c)
    pts = unproject(r["depth"], m, k)
    on = r["mask"].reshape(3, -1).bool()
    for res in (48, 512):
        scr = to_pytorch3d(m, k, res).transform_points_screen(torch.nan_to_num(pts, posinf=0.0), image_size=(res, res))
        ours = pixel_centres(48).expand(3, -1, -1) * res
        assert (scr[..., :2] - ours)[on].abs().max() < 1e-4 * res


def test_symmetric_heads_mirror_through_mirror_label():
    heads = sample_heads(3, HELDOUT_SEED + 10, asymmetry=False)
    c = camera_label(orbit_pose(torch.tensor([20.0, -35.0, 50.0]), torch.tensor([5.0, -10.0, 15.0])))
    a, b = render_heads(heads, c, 40), render_heads(heads, mirror_label(c), 40)
    assert (a["image"] - b["image"].flip(-1)).abs().mean() < 1e-4
    assert torch.equal(a["mask"], b["mask"].flip(-1))
    on = a["mask"].bool()
    assert (a["depth"][on] - b["depth"].flip(-1)[on]).abs().max() < 1e-4


def test_eg3d_frontal_camera_and_orbit_agree():
    assert torch.allclose(lookat_pose(math.pi / 2, math.pi / 2), orbit_pose(0.0, 0.0), atol=1e-6)
    assert torch.allclose(lookat_pose(math.pi / 2 + 0.4, math.pi / 2), orbit_pose(math.degrees(0.4), 0.0), atol=1e-5)


def bad_rotation():
    m = orbit_pose(0.0, 0.0).clone()
    m[0, :3, :3] *= 1.5
    return m


@pytest.mark.parametrize("call, names", [
    (lambda: camera_label(torch.eye(3)[None]), ["cam2world", "(B, 4, 4)"]),
    (lambda: camera_label(bad_rotation()), ["cam2world", "rigid"]),
    (lambda: camera_label(orbit_pose(0.0, 0.0), torch.ones(2, 2)), ["intrinsics", "(3, 3)"]),
    (lambda: split_label(torch.zeros(25, 2)), ["c:", "(B, 25)"]),
    (lambda: split_label(torch.full((1, 25), float("inf"))), ["finite"]),
    (lambda: orbit_pose(float("nan"), 0.0), ["yaw_deg", "finite"]),
    (lambda: lookat_pose(0.0, float("nan")), ["vertical", "finite"]),
    (lambda: orbit_pose("left", 0.0), ["yaw_deg"]),
    (lambda: unproject(torch.ones(2, 3, 8, 8), orbit_pose(0.0, 0.0), fov_to_intrinsics()), ["depth", "(B, 1, R, R)"]),
    (lambda: project(torch.ones(1, 5, 2), orbit_pose(0.0, 0.0), fov_to_intrinsics()), ["points", "(B, N, 3)"]),
    (lambda: render_heads(sample_heads(2, 0), sample_cameras(3, 0)), ["c:", "1 or 2"]),
    (lambda: render_heads(sample_heads(1, 0), sample_cameras(1, 0), resolution=0), ["resolution"]),
    (lambda: sample_heads(2.5, 0), ["n:"]),
])
def test_bad_input_names_the_argument(call, names):
    with pytest.raises(ValueError) as e:
        call()
    for name in names:
        assert name in str(e.value)
