"""The `warpgan` command as a user runs it: a real subprocess, files on disk, exit codes."""
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

EXE = shutil.which("warpgan")


def run(*args, cwd=None):
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_console_script_is_installed():
    assert EXE, "the `warpgan` console script is not on PATH: is the project installed (pip install -e .)?"


def test_help_explains_the_commands():
    r = run("--help")
    assert r.returncode == 0
    assert "demo" in r.stdout and "warpgan demo" in r.stdout
    r = run("demo", "--help")
    assert r.returncode == 0 and "--out" in r.stdout


def test_demo_writes_grid_and_orbit(tmp_path):
    r = run("demo", "--out", str(tmp_path / "out"), "--frames", "3", "--resolution", "32", "--quiet")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    grid = iio.imread(out / "novel_views.png")
    assert grid.ndim == 3 and grid.shape[0] > 100 and grid.shape[1] > 400
    gif = iio.imread(out / "orbit.gif")
    assert gif.shape == (3, 32, 32, 3)
    # the orbit moves: consecutive frames differ
    assert (gif[0].astype(int) - gif[1].astype(int)).any()
    for name in ("novel_views.png", "orbit.gif"):
        assert f"wrote {out / name}" in r.stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_demo_default_out_is_relative_to_cwd(tmp_path):
    r = run("demo", "--frames", "2", "--resolution", "16", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "warpgan_out" / "orbit.gif").exists()


def test_unwritable_out_is_a_clean_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    r = run("demo", "--out", str(blocker / "sub"), "--quiet")
    assert r.returncode == 2
    assert "--out" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0, "expected a one-line error"


@pytest.mark.parametrize("args, needle", [
    (["demo", "--frames", "1"], "--frames"),
    (["demo", "--frames", "many"], "--frames"),
    (["demo", "--resolution", "2"], "resolution"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_exit_2_without_traceback(tmp_path, args, needle):
    r = run(*args, "--out", str(tmp_path)) if args[0] == "demo" else run(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_failed_run_leaves_no_partial_file(tmp_path):
    r = run("demo", "--out", str(tmp_path), "--frames", "1")
    assert r.returncode == 2
    assert list(tmp_path.iterdir()) == []
