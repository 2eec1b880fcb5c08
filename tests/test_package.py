"""What a fresh install must contain: the library as the notebooks export it, package data, metadata."""
import configparser
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

import warpgan

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def test_version_matches_settings():
    assert warpgan.__version__ == settings()["version"]


def test_demo_assets_are_package_data():
    assets = resources.files("warpgan") / "assets"
    assert (assets / "demo_input.png").is_file()
    assert (assets / "dataset.json").is_file()


def test_every_notebook_module_is_importable():
    import importlib
    import json
    modules = []
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#| default_exp"):
                    modules.append(line.split()[-1])
    assert {"camera", "world", "generator", "train_gan", "inversion", "warping", "svinet", "losses",
            "train_svinet", "pipeline", "evaluate", "cli"} <= set(modules)
    for module in modules:
        importlib.import_module(f"warpgan.{module}")


@pytest.mark.skipif(sys.platform != "linux", reason="wheel build checked on Linux CI")
def test_wheel_ships_assets_and_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("warpgan-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "warpgan/assets/demo_input.png" in names and "warpgan/assets/dataset.json" in names
    assert "warpgan/camera.py" in names and "warpgan/world.py" in names
    from warpgan.generator import WEIGHTS
    assert WEIGHTS and all(f"warpgan/weights/{entry[0]}" in names for entry in WEIGHTS.values())
    from warpgan.inversion import ENCODER_WEIGHTS, REFINED_ENCODER_WEIGHTS
    for table in (ENCODER_WEIGHTS, REFINED_ENCODER_WEIGHTS):
        assert table and all(f"warpgan/weights/{entry[0]}" in names for entry in table.values())
    from warpgan.svinet import SVINET_WEIGHTS
    from warpgan.editing import DIRECTIONS_WEIGHTS, PROBE_WEIGHTS
    for table in (SVINET_WEIGHTS, DIRECTIONS_WEIGHTS, PROBE_WEIGHTS):
        assert table and all(f"warpgan/weights/{entry[0]}" in names for entry in table.values())
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "warpgan = warpgan.cli:main" in text


def module_imports() -> dict:
    "Each library module → the library modules it imports (relative imports, at any depth of the file)."
    import ast
    graph = {}
    for path in sorted((ROOT / "warpgan").glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text())
        graph[path.stem] = {(n.level, n.module, tuple(a.name for a in n.names)) for n in ast.walk(tree)
                            if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("warpgan."))}
    return graph


# the exercise checkers compare a student's answer with one internal step of the library
CHECKERS_MAY_IMPORT = {("exercises", "train_svinet", "_d_loss"),
                       ("exercises", "train_svinet", "_svinet_losses"),
                       ("exercises", "world", "_box_interval"), ("exercises", "svinet", "_latents")}


def test_no_private_name_crosses_modules():
    crossing = [(mod, src, name) for mod, imps in module_imports().items() for _, src, names in imps
                for name in names if name.startswith("_") and (mod, src, name) not in CHECKERS_MAY_IMPORT]
    assert not crossing, crossing


@pytest.mark.parametrize("page", ["README.md", "nbs/index.ipynb"])
def test_front_pages_draw_the_import_graph(page):
    "The mermaid figure has one arrow per dependency, exactly the library's imports."
    import json, re
    text = (ROOT / page).read_text()
    if page.endswith(".ipynb"):
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "markdown")
    edges = {(mod, (src or "").removeprefix("warpgan.")) for mod, imps in module_imports().items() for _, src, _ in imps}
    block = re.search(r"```mermaid\n(.*?)```", text, flags=re.S).group(1)
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", block, flags=re.M))
    expected = "\n".join(f"    {a} --> {b}" for a, b in sorted(edges))
    assert drawn == edges, f"{page}'s graph should read:\n{expected}"
    assert len(drawn) == len(re.findall("-->", block))               # no arrow drawn twice


def test_every_shipped_network_loads_in_a_fresh_process():
    "`from_pretrained` lives with each class: importing the class's own module is enough."
    code = ("from warpgan.svinet import SVINet; from warpgan.inversion import Encoder; "
            "from warpgan.generator import TriPlaneGenerator; import warpgan.pipeline, warpgan.evaluate; "
            "[m.from_pretrained('tiny') for m in (SVINet, Encoder, TriPlaneGenerator)]; "
            "import sys; assert 'warpgan.train_svinet' not in sys.modules and 'warpgan.train_gan' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
