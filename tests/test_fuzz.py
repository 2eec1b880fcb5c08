"""Hostile input, fuzzed: the command, the Python API and checkpoint loading.

Every case must end in a one-line error that names the argument (exit code 2), or in a documented
conversion (exit code 0) — never a traceback, never a partly written file. Deterministic: every
random input comes from a seeded generator. The command runs in-process (`cli.main`) with the
shipped model loaded once; the interrupted-run cases start real processes."""
import contextlib
import io
import json
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from warpgan import cli
from warpgan.camera import camera_label, orbit_pose

RNG = np.random.default_rng(20261201)
COUNTS = {}


_real_load = cli.load_model
_model = lru_cache(maxsize=1)(lambda: _real_load("cpu"))       # the shipped model, loaded once for the in-process cases


@pytest.fixture(autouse=True)
def one_model(monkeypatch):
    monkeypatch.setattr(cli, "load_model", lambda device="cpu": _real_load(device) if device != "cpu" else _model())


def command(*argv):
    "Run `warpgan ARGV` in-process: (exit code, stdout, stderr). Any exception but SystemExit escapes: a traceback."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as e:                 # argparse's errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def files_in(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def check(category, rc, err, out_dir=None, needle=None):
    "The contract: exit 0 or 2; on 2 one line naming the argument and no file written."
    COUNTS[category] = COUNTS.get(category, 0) + 1
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 2:
        lines = [l for l in err.splitlines() if "error:" in l]
        assert len(lines) == 1, err
        if needle:
            assert needle.lower() in lines[0].lower(), (needle, lines[0])
        if out_dir is not None:
            assert files_in(out_dir) == [], files_in(out_dir)


# ---------------------------------------------------------------- images

def png_with_size(path, w, h):
    "A PNG whose header declares w×h pixels but holds one row of data (a decompression-bomb shape)."
    raw = b"\x89PNG\r\n\x1a\n"
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00" * (3 * min(w, 64) + 1)))
    raw += chunk(b"IEND", b"")
    path.write_bytes(raw)


def valid(path, mode="RGB", size=(48, 48), fmt=None, **kw):
    arr = RNG.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr).convert(mode) if mode not in ("I;16", "F") else None
    if mode == "I;16":
        im = Image.fromarray((RNG.integers(0, 65535, size[::-1])).astype(np.uint16))
    if mode == "F":
        im = Image.fromarray(RNG.random(size[::-1]).astype(np.float32))
    im.save(path, format=fmt, **kw)
    return path


def image_cases(d):
    "(name, path, expect): expect 'error' (exit 2 naming the image), 'ok' (a documented conversion), or 'any'."
    d = Path(d)
    cases = []
    for ext, fmt in (("png", "PNG"), ("jpg", "JPEG"), ("gif", "GIF"), ("bmp", "BMP"), ("tif", "TIFF"), ("webp", "WEBP")):
        good = valid(d / f"good.{ext}", "RGB", fmt=fmt)
        data = good.read_bytes()
        for frac in (0.5, 0.1):
            p = d / f"truncated_{int(frac * 100)}.{ext}"
            p.write_bytes(data[:max(8, int(len(data) * frac))])
            cases.append((p.name, p, "any"))       # PIL reads some truncated files' first rows: a conversion or an error
        p = d / f"header_only.{ext}"
        p.write_bytes(data[:16])
        cases.append((p.name, p, "error"))
        p = d / f"random.{ext}"
        p.write_bytes(RNG.integers(0, 256, 2000, dtype=np.uint8).tobytes())
        cases.append((p.name, p, "error"))
        cases.append((good.name, good, "ok"))
    png_with_size(d / "bomb.png", 60000, 60000)
    cases.append(("bomb.png", d / "bomb.png", "error"))
    png_with_size(d / "bomb_warn.png", 10000, 10000)              # above PIL's limit, below twice it: a warning, refused too
    cases.append(("bomb_warn.png", d / "bomb_warn.png", "error"))
    for name, mode, size in (("one_pixel.png", "RGB", (1, 1)), ("grey16.png", "I;16", (40, 40)), ("float.tif", "F", (40, 40)),
                             ("palette.png", "P", (48, 48)), ("cmyk.jpg", "CMYK", (48, 48)), 
                             ("rgba.png", "RGBA", (48, 48)), ("la.png", "LA", (48, 48)),
                             ("grey.png", "L", (48, 48)), ("bw.png", "1", (48, 48))):
        cases.append((name, valid(d / name, mode, size), "ok"))
    frames = [Image.fromarray(RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    frames[0].save(d / "animated.png", save_all=True, append_images=frames[1:], duration=50)
    cases += [("animated.gif", d / "animated.gif", "ok"), ("animated.png", d / "animated.png", "ok")]
    for name, size in (("wide.png", (120, 30)), ("tall.png", (20, 90))):     # the camera describes a square crop
        cases.append((name, valid(d / name, "RGB", size), "error"))
    cases.append(("huge_valid.png", valid(d / "huge_valid.png", "RGB", (3000, 3000), compress_level=0), "ok"))
    (d / "empty.png").write_bytes(b"")
    cases.append(("empty.png", d / "empty.png", "error"))
    (d / "folder.png").mkdir()
    cases.append(("folder.png", d / "folder.png", "error"))
    (d / "dangling.png").symlink_to(d / "nowhere.png")
    cases.append(("dangling.png", d / "dangling.png", "error"))
    for odd in ("héad ✓.png", "with space.png", "new\nline.png", "semi;colon$(x).png", "-dash.png"):
        cases.append((odd, valid(d / odd, "RGB"), "ok"))
    return cases


def test_images(tmp_path):
    src = tmp_path / "src"; src.mkdir()
    cases = image_cases(src)
    wrong = []
    for i, (name, path, expect) in enumerate(cases):
        out = tmp_path / f"out{i}"
        rc, _, err = command("novel-view", "--out", out, "--quiet", "--yaw", "20", "--", path)
        check("images", rc, err, out, "image")
        if (expect == "error" and rc != 2) or (expect == "ok" and (rc != 0 or not files_in(out))):
            wrong.append((name, expect, rc, err.strip()))
    assert not wrong, wrong
    rc, _, err = command("novel-view", "--out", tmp_path / "o", "--quiet", tmp_path / "missing.png")
    check("images", rc, err, tmp_path / "o", "IMAGE")
    assert "decompression" in command("novel-view", "--out", tmp_path / "b", "--quiet", src / "bomb.png")[2]


# ---------------------------------------------------------------- cameras

def label(yaw=20.0):
    return camera_label(orbit_pose(torch.tensor([yaw]), torch.tensor([0.0])))[0].tolist()


def camera_cases():
    good = label()
    skew = good[:16] + [4.26, 0.5, 0.5, 0, 4.26, 0.5, 0, 0, 1]
    zero_f = good[:16] + [0, 0, 0.5, 0, 0, 0.5, 0, 0, 1]
    scaled = [v * 2 if i in (0, 5, 10) else v for i, v in enumerate(good)]
    nested = "[" * 100_000 + "]" * 100_000
    bad = {
        "not json": "this is not json {",
        "truncated": json.dumps({"labels": [["face.png", good]]})[:-7],
        "deeply nested": '{"labels": ' + nested + "}",
        "nested labels": json.dumps({"labels": [["face.png", [[v] for v in good]]]}),
        "empty": "",
        "a list": json.dumps([["face.png", good]]),
        "labels not a list": json.dumps({"labels": {"face.png": good}}),
        "no such name": json.dumps({"labels": [["other.png", good]]}),
        "24 numbers": json.dumps({"labels": [["face.png", good[:24]]]}),
        "26 numbers": json.dumps({"labels": [["face.png", good + [1.0]]]}),
        "strings": json.dumps({"labels": [["face.png", [str(v) for v in good]]]}),
        "NaN": json.dumps({"labels": [["face.png", [math.nan] + good[1:]]]}),
        "inf": json.dumps({"labels": [["face.png", good[:3] + [math.inf] + good[4:]]]}),
        "non-rigid pose": json.dumps({"labels": [["face.png", scaled]]}),
        "zero focal": json.dumps({"labels": [["face.png", zero_f]]}),
        "entry without a name": json.dumps({"labels": [[good]]}),
        "null": "null",
        "huge number": json.dumps({"labels": [["face.png", [1e308] * 25]]}),
    }
    fine = {
        "skewed intrinsics": json.dumps({"labels": [["face.png", skew]]}),
        "huge file": json.dumps({"labels": [[f"img{i:06d}.png", good] for i in range(60_000)] + [["face.png", good]]}),
    }
    return bad, fine


def test_cameras(tmp_path):
    face = tmp_path / "face.png"
    valid(face, "RGB")
    bad, fine = camera_cases()
    for i, (name, text) in enumerate({**bad, **fine}.items()):
        js, out = tmp_path / f"cam{i}.json", tmp_path / f"out{i}"
        js.write_text(text)
        rc, _, err = command("novel-view", face, "--camera", js, "--out", out, "--quiet", "--yaw", "10")
        check("cameras", rc, err, out, "--camera")
        assert rc == (2 if name in bad else 0), (name, err)


@pytest.mark.parametrize("args, needle", [
    (["novel-view", "{face}", "--yaw=inf"], "--yaw"), (["novel-view", "{face}", "--yaw=-inf"], "--yaw"),
    (["novel-view", "{face}", "--yaw=nan"], "--yaw"), (["novel-view", "{face}", "--yaw", "1e308"], "--yaw"),
    (["novel-view", "{face}", "--yaw", "-inf"], "--yaw=-inf"), (["novel-view", "{face}", "--yaw", "abc"], "--yaw"),
    (["novel-view", "{face}", "--pitch", "95"], "--pitch"), (["novel-view", "{face}", "--pitch", "1", "--pitch", "2"], "--pitch"),
    (["demo", "--frames", "0"], "--frames"), (["demo", "--frames", "-5"], "--frames"), (["demo", "--frames", "10000000"], "--frames"),
    (["demo", "--frames", "2.5"], "--frames"), (["bench", "--heads", "0"], "--heads"), (["bench", "--heads", "-1"], "--heads"),
    (["bench", "--heads", "100000000"], "--heads"), (["bench", "--slow-heads", "-1"], "--slow-heads"),
    (["demo", "--seed", "99999999999999999999"], "--seed"), (["demo", "--seed", "-1"], "--seed"), (["demo", "--seed", "1e3"], "--seed"),
    (["demo", "--device", "tpu"], "--device"), (["novel-view"], "IMAGE"), (["frobnicate"], "invalid choice"),
    (["novel-view", "{face}", "--edit", "hairline"], "NAME=AMOUNT"), (["novel-view", "{face}", "--edit", "beard=0.2"], "unknown attribute"),
    (["novel-view", "{face}", "--edit", "hairline=5"], "within ±1"), (["novel-view", "{face}", "--edit", "hairline=nan"], "within ±1"),
    (["novel-view", "{face}", "--edit", "hairline=inf"], "within ±1"), (["novel-view", "{face}", "--edit", "hairline=+"], "a number"),
    (["novel-view", "{face}", "--edit", "=0.3"], "unknown attribute"),
])
def test_absurd_arguments(tmp_path, args, needle):
    face = valid(tmp_path / "face.png", "RGB")
    out = tmp_path / "out"
    argv = [a.replace("{face}", str(face)) for a in args] + (["--out", out] if args[0] in ("demo", "novel-view") else [])
    rc, _, err = command(*argv)
    check("arguments", rc, err, out, needle)
    assert rc == 2, err


# ---------------------------------------------------------------- the Python API

@pytest.fixture(scope="module")
def wg():
    return _model()


def api_cases(wg):
    G = wg.G
    c1 = camera_label(orbit_pose(torch.tensor([10.0]), torch.tensor([0.0])))
    img = torch.zeros(1, 3, 64, 64)
    src = wg.invert(img, c1)
    from warpgan.warping import warp_to_view
    depth = torch.full((1, 1, 64, 64), 2.6)
    nan_img = img.clone(); nan_img[0, 0, 0, 0] = math.nan
    inf_img = img.clone(); inf_img[0, 1, 3, 3] = math.inf
    bad_c = c1.clone(); bad_c[0, 0] = math.nan
    return {
        "invert: NaN image": (lambda: wg.invert(nan_img, c1), "image"),
        "invert: inf image": (lambda: wg.invert(inf_img, c1), "image"),
        "invert: int64 image": (lambda: wg.invert(torch.zeros(1, 3, 64, 64, dtype=torch.int64) + 300, c1), "image"),
        "invert: complex image": (lambda: wg.invert(torch.zeros(1, 3, 64, 64, dtype=torch.complex64), c1), "image"),
        "invert: empty batch": (lambda: wg.invert(torch.zeros(0, 3, 64, 64), c1), "image"),
        "invert: 5-d": (lambda: wg.invert(torch.zeros(1, 1, 3, 64, 64), c1), "image"),
        "invert: 5 channels": (lambda: wg.invert(torch.zeros(1, 5, 64, 64), c1), "image"),
        "invert: NaN camera": (lambda: wg.invert(img, bad_c), "c"),
        "invert: 24-number camera": (lambda: wg.invert(img, c1[:, :24]), "c"),
        "invert: string camera": (lambda: wg.invert(img, "not a file.json"), "c"),
        "novel_view: NaN camera": (lambda: wg.novel_view(src, bad_c), "c_new"),
        "novel_view: batch mismatch": (lambda: wg.novel_view(src, c1.repeat(3, 1)), "c_new"),
        "novel_view: (yaw, pitch) = (inf, 0)": (lambda: wg.novel_view(src, (math.inf, 0.0)), "yaw"),
        "novel_view: not a Source": (lambda: wg.novel_view("photo.png", c1), "src"),
        "warp: NaN depth": (lambda: warp_to_view(img, depth.masked_fill(depth > 0, math.nan), c1, c1), "depth"),
        "warp: wrong depth shape": (lambda: warp_to_view(img, depth[:, :, :10], c1, c1), "depth"),
        "warp: int image": (lambda: warp_to_view(img.long(), depth, c1, c1), "image"),
        "warp: empty batch": (lambda: warp_to_view(img[:0], depth[:0], c1[:0], c1[:0]), "image"),
        "warp: bad backend": (lambda: warp_to_view(img, depth, c1, c1, backend="opengl"), "backend"),
        "generator: NaN z": (lambda: G(torch.full((1, G.z_dim), math.nan), c1), "z"),
        "generator: int z": (lambda: G(torch.zeros(1, G.z_dim, dtype=torch.int64), c1), "z"),
        "generator: empty batch": (lambda: G(torch.zeros(0, G.z_dim), c1[:0]), "z"),
        "generator: NaN ws": (lambda: G.synthesis(torch.full((1, G.num_ws, G.w_dim), math.nan), c1), "ws"),
        "generator: NaN camera": (lambda: G(torch.zeros(1, G.z_dim), bad_c), "c"),
    }


def test_python_api_names_the_argument(wg):
    wrong = []
    for name, (call, arg) in api_cases(wg).items():
        COUNTS["api"] = COUNTS.get("api", 0) + 1
        try:
            call()
            wrong.append((name, "no error"))
        except ValueError as e:
            if not (str(e).startswith((f"{arg}:", f"{arg} (")) or f" {arg}:" in str(e)):
                wrong.append((name, f"does not name {arg!r}: {e}"))
        except Exception as e:                      # a crash deep inside torch
            wrong.append((name, f"{type(e).__name__}: {str(e)[:120]}"))
    assert not wrong, "\n".join(f"{n}: {m}" for n, m in wrong)


# ---------------------------------------------------------------- checkpoints

class Gadget:
    "A pickle whose loading would call `fn(*args)`."
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def hostile_pickles(marker):
    import builtins, functools, operator
    touch = f"open({str(marker)!r}, 'w')"
    gadgets = {
        "os.system": Gadget(os.system, f"touch {marker}"),
        "builtins.exec": Gadget(exec, touch),
        "builtins.eval": Gadget(eval, touch),
        "subprocess.call": Gadget(subprocess.call, ["touch", str(marker)]),
        "builtins.getattr": Gadget(getattr, Gadget(builtins.__import__, "os"), "system"),
        "builtins.__import__": Gadget(builtins.__import__, "os"),
        "functools.partial": Gadget(functools.partial, os.system, f"touch {marker}"),
        "operator.methodcaller": Gadget(operator.methodcaller, "system", f"touch {marker}"),
        "builtins.open": Gadget(open, str(marker), "w"),
        "numpy": Gadget(np.frombuffer, b"\x00" * 8),
        "torch._utils": Gadget(torch._utils._rebuild_tensor_v2, Gadget(os.system, f"touch {marker}"), 0, (1,), (1,), False, {}),
        "posix": Gadget(os.remove, str(marker)),
        "shutil": Gadget(__import__("shutil").rmtree, str(marker)),
    }
    out = {}
    for name, g in gadgets.items():
        for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
            try:
                out[f"{name} (protocol {proto})"] = (pickle.dumps({"G_ema": g}, protocol=proto), name.split(".")[0])
            except (pickle.PicklingError, TypeError, AttributeError):
                pass
    return out


def test_hostile_pickles_are_refused_before_anything_runs(tmp_path):
    from warpgan.eg3d_checkpoint import load_eg3d_pickle
    marker = tmp_path / "PWNED"
    corpus = hostile_pickles(marker)
    assert len(corpus) >= 60
    for name, (data, module) in corpus.items():
        COUNTS["pickles"] = COUNTS.get("pickles", 0) + 1
        p = tmp_path / "evil.pkl"
        p.write_bytes(data)
        with pytest.raises(ValueError) as e:
            load_eg3d_pickle(p)
        assert "refused: the pickle asks for " in str(e.value) and "nothing from it was run" in str(e.value), (name, str(e.value))
        assert not marker.exists(), name
    # a persistence record (StyleGAN's embedded-source classes) with an unexpected module name
    rec = pickle.dumps({"G_ema": Gadget(__import__("types").SimpleNamespace)})
    (tmp_path / "ns.pkl").write_bytes(rec)
    with pytest.raises(ValueError, match="types"):
        load_eg3d_pickle(tmp_path / "ns.pkl")


def test_zip_checkpoints_with_path_traversal_load_nothing_outside(tmp_path):
    from warpgan.eg3d_checkpoint import eg3d_generator
    zpath = tmp_path / "evil.pt"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("../../escaped.txt", "outside")
        z.writestr("archive/data.pkl", pickle.dumps({"G_ema": Gadget(os.system, "true")}))
    COUNTS["pickles"] = COUNTS.get("pickles", 0) + 1
    with pytest.raises(ValueError):
        eg3d_generator(zpath, config="tiny")
    assert not (tmp_path.parent.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shipped_weights_fail_the_checksum(tmp_path, monkeypatch, damage):
    from warpgan import core, generator
    data = bytearray(core.weights_file(generator.WEIGHTS["tiny"][0]).read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x10
    (tmp_path / "generator_tiny.pt").write_bytes(bytes(data))
    monkeypatch.setattr(core, "weights_file", lambda name: tmp_path / name)
    COUNTS["pickles"] = COUNTS.get("pickles", 0) + 1
    with pytest.raises(ValueError, match="checksum"):
        generator.TriPlaneGenerator.from_pretrained("tiny")


# ---------------------------------------------------------------- interrupted and concurrent work

def start_demo(out, frames=24):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # a test run started in the background inherits SIGINT ignored (POSIX shells do that to background jobs): restore it
    return subprocess.Popen([str(Path(sys.executable).parent / "warpgan"), "demo", "--out", str(out), "--quiet", "--frames", str(frames)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def complete(path):
    "Every file there reads back whole (PNG, GIF, MP4), and no hidden temporary is left."
    import imageio.v3 as iio
    for p in Path(path).iterdir():
        assert not p.name.startswith("."), f"temporary file left: {p.name}"
        iio.imread(p, index=0) if p.suffix == ".mp4" else iio.imread(p)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_demo_leaves_no_partial_file(tmp_path, sig):
    out = tmp_path / "out"
    proc = start_demo(out, frames=400)
    t0 = time.time()
    while time.time() - t0 < 120 and not (out / "novel_views.png").exists():
        time.sleep(0.2)
    time.sleep(1.0)                       # mid-orbit
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    COUNTS["interrupted"] = COUNTS.get("interrupted", 0) + 1
    assert proc.returncode != 0
    complete(out)
    assert "orbit.gif" not in os.listdir(out)


def test_two_demos_into_one_folder(tmp_path):
    out = tmp_path / "out"
    procs = [start_demo(out, frames=6) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    COUNTS["interrupted"] = COUNTS.get("interrupted", 0) + 1
    complete(out)
    assert {"novel_views.png", "orbit.gif"} <= set(os.listdir(out))


def test_zz_report_counts():
    "Print how many hostile inputs each category tried (read by the README's bad-input paragraph)."
    print("\nfuzz cases:", ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())), "| total", sum(COUNTS.values()))
    if set(COUNTS) == {"images", "cameras", "arguments", "api", "pickles", "interrupted"}:     # the whole file ran
        readme = (Path(__file__).parent.parent / "README.md").read_text()
        words = {"images": "images", "cameras": "camera files", "arguments": "absurd arguments", "api": "hostile tensors",
                 "pickles": "hostile or damaged checkpoints", "interrupted": "killed or concurrent runs"}
        flat = " ".join(readme.split())
        assert f"{sum(COUNTS.values())} hostile inputs" in flat
        for k, w in words.items():
            assert f"{COUNTS[k]} {w}" in flat, (k, COUNTS[k])
