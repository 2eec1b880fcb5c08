"""The `warpgan` command as a user runs it: a real subprocess, files on disk, exit codes, bad input."""
import json
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

EXE = shutil.which("warpgan")


def run(*args, cwd=None):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_clean_error(r, needle):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if not l.startswith("warpgan: note:")]
    assert len(lines) == 1, f"expected a one-line error, got {r.stderr!r}"


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    "An EG3D-style folder: the demo head upscaled to a 512² RGB PNG, a grey copy, and its dataset.json."
    from warpgan.cli import demo_files
    d = tmp_path_factory.mktemp("faces")
    with demo_files() as (png, js, _):
        im = Image.open(png).convert("RGB")
        label = json.loads(Path(js).read_text())["labels"][0][1]
    im.resize((512, 512), Image.BICUBIC).save(d / "face.png")
    im.convert("L").save(d / "grey.png")
    (d / "dataset.json").write_text(json.dumps({"labels": [["face.png", label], ["grey.png", label]]}))
    return d


def test_console_script_is_installed():
    assert EXE, "the `warpgan` console script is not on PATH: is the project installed (pip install -e .)?"


def test_help_explains_the_commands():
    r = run("--help")
    assert r.returncode == 0
    for word in ("demo", "novel-view", "bench", "warpgan demo"):
        assert word in r.stdout
    for cmd, flag in (("demo", "--out"), ("novel-view", "--yaw"), ("bench", "--json")):
        r = run(cmd, "--help")
        assert r.returncode == 0 and flag in r.stdout and "--device" in r.stdout


def test_demo_writes_grid_and_orbit(tmp_path):
    out = tmp_path / "out"
    r = run("demo", "--out", out, "--frames", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    grid = iio.imread(out / "novel_views.png")
    assert grid.ndim == 3 and grid.shape[0] > 200 and grid.shape[1] > 600
    gif = iio.imread(out / "orbit.gif")
    assert gif.shape == (3, 64, 64, 3)
    assert (gif[0].astype(int) - gif[1].astype(int)).any()          # the orbit moves
    for name in ("novel_views.png", "orbit.gif"):
        assert f"wrote {out / name}" in r.stdout
    assert "invert" in r.stdout and "per_view" in r.stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_demo_default_out_is_relative_to_cwd(tmp_path):
    r = run("demo", "--frames", "2", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "warpgan_out" / "orbit.gif").exists()


def test_novel_view_on_a_512_photo_from_an_eg3d_folder(photo_folder, tmp_path):
    r = run("novel-view", photo_folder / "face.png", "--camera", photo_folder / "dataset.json",
            "--yaw", "-30", "--yaw", "30", "--pitch", "5", "--out", tmp_path, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "resized from 512×512" in r.stderr                        # said once, as a note
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["grid.png", "view_yaw+030_pitch+05.png", "view_yaw-030_pitch+05.png"]
    assert iio.imread(tmp_path / "view_yaw+030_pitch+05.png").shape == (64, 64, 3)


def test_novel_view_grey_image_and_default_camera_and_sweep(photo_folder, tmp_path):
    r = run("novel-view", photo_folder / "grey.png", "--out", tmp_path, "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.glob("view_*.png"))) == 4                # the default sweep


def test_bench_fast_methods_json(tmp_path):
    r = run("bench", "--heads", "2", "--slow-heads", "0", "--json", tmp_path / "b.json", "--quiet")
    assert r.returncode == 0, r.stderr
    body = json.loads((tmp_path / "b.json").read_text())
    assert set(body["table"]) == {"encoder", "hybrid", "hybrid_sym", "warpgan"}
    assert set(body["table"]["warpgan"]) == {"-60", "-40", "-20", "20", "40", "60"}
    assert set(body["table"]["warpgan"]["20"]) == {"psnr", "ssim", "lpips", "seconds", "regions"}
    assert set(body["table"]["warpgan"]["20"]["regions"]) == {"covisible", "holes", "background"}
    assert set(body["intervals"]) == {"encoder", "hybrid", "hybrid_sym"}           # WarpGAN minus each other method
    assert len(body["scores"]["warpgan"]["yaws"]["20"]["psnr"]["holes"]) == 2        # per head
    assert "PSNR" in r.stdout and "warpgan" in r.stdout and "orbit consistency" in r.stdout
    again = run("bench", "--heads", "2", "--slow-heads", "0", "--json", tmp_path / "c.json", "--quiet")
    assert again.returncode == 0, again.stderr
    scores = lambda b: {m: {y: (v["psnr"], v["ssim"]) for y, v in ys.items()} for m, ys in b["table"].items()}
    assert scores(json.loads((tmp_path / "c.json").read_text())) == scores(body)      # renders are seeded: same numbers


def test_unwritable_out_is_a_clean_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert_clean_error(run("demo", "--out", blocker / "sub", "--quiet"), "--out")


@pytest.mark.parametrize("make, needle", [
    (lambda d: d / "missing.png", "no such file"),
    (lambda d: (d / "text.png").write_text("not an image") and d / "text.png", "cannot read"),
    (lambda d: (d / "data.json").write_text("{}") and d / "data.json", "cannot read"),
    (lambda d: Image.new("RGB", (64, 48)).save(d / "wide.png") or d / "wide.png", "square"),
])
def test_bad_images(tmp_path, make, needle):
    r = run("novel-view", make(tmp_path), "--out", tmp_path / "out", "--quiet")
    assert_clean_error(r, needle)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("content, needle", [
    ("{not json", "--camera"),
    ('{"labels": [["face.png", [1, 2, 3]]]}', "--camera"),
    ('{"labels": [["other.png", ' + json.dumps(np.eye(4).flatten().tolist() + [4.26, 0, 0.5, 0, 4.26, 0.5, 0, 0, 1]) + ']]}', "no camera for"),
])
def test_bad_camera_files(photo_folder, tmp_path, content, needle):
    (tmp_path / "cam.json").write_text(content)
    assert_clean_error(run("novel-view", photo_folder / "face.png", "--camera", tmp_path / "cam.json", "--out", tmp_path / "o"), needle)


@pytest.mark.parametrize("args, needle", [
    (["--yaw", "left"], "--yaw"),
    (["--yaw", "nan"], "--yaw"),
    (["--yaw", "400"], "--yaw"),
    (["--pitch", "95"], "--pitch"),
    (["--yaw", "10", "--yaw", "20", "--pitch", "1", "--pitch", "2", "--pitch", "3"], "--pitch"),
    (["--device", "tpu"], "--device"),
])
def test_bad_views_and_options(photo_folder, tmp_path, args, needle):
    assert_clean_error(run("novel-view", photo_folder / "face.png", *args, "--out", tmp_path), needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, needle", [
    (["demo", "--frames", "1"], "--frames"),
    (["demo", "--frames", "many"], "--frames"),
    (["bench", "--heads", "0"], "--heads"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_exit_2_without_traceback(tmp_path, args, needle):
    r = run(*args, "--out", tmp_path) if args[0] == "demo" else run(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_failed_run_leaves_no_partial_file(tmp_path):
    r = run("demo", "--out", tmp_path, "--frames", "1")
    assert r.returncode == 2
    assert list(tmp_path.iterdir()) == []
