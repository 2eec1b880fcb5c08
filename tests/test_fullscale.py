"""Full scale without a GPU: EG3D-format pickles read safely, and SVINet's DDP path with two CPU processes."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from warpgan.eg3d_checkpoint import eg3d_generator, eg3d_style_pickle, load_eg3d_pickle
from warpgan.generator import TriPlaneGenerator


def test_persistence_pickle_round_trip_never_runs_embedded_source(tmp_path):
    G = TriPlaneGenerator.from_config("tiny", seed=11)
    marker = tmp_path / "ran"
    src = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n"
    (tmp_path / "net.pkl").write_bytes(eg3d_style_pickle({"G_ema": G, "augment_pipe": None}, src))
    back = eg3d_generator(tmp_path / "net.pkl", config="tiny")
    assert not marker.exists()
    for (k, a), (k2, b) in zip(G.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


@pytest.mark.parametrize("payload, needle", [
    (lambda m: type("Evil", (), {"__reduce__": lambda self: (os.system, (f"touch {m}",))})(), "system"),
    (lambda m: type("Evil", (), {"__reduce__": lambda self: (exec, (f"open({str(m)!r}, 'w')",))})(), "builtins.exec"),
    (lambda m: type("Evil", (), {"__reduce__": lambda self: (subprocess.call, (["touch", str(m)],))})(), "subprocess"),
])
def test_malicious_pickles_are_refused_before_anything_runs(tmp_path, payload, needle):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G_ema": payload(marker)}))
    with pytest.raises(ValueError, match=needle):
        load_eg3d_pickle(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_wrong_config_and_missing_network_are_named(tmp_path):
    (tmp_path / "g.pkl").write_bytes(eg3d_style_pickle({"G_ema": TriPlaneGenerator.from_config("tiny")}))
    with pytest.raises(ValueError, match="does not fit"):
        eg3d_generator(tmp_path / "g.pkl", config="ffhq512")
    with pytest.raises(ValueError, match="no network 'D'"):
        eg3d_generator(tmp_path / "g.pkl", config="tiny", key="D")


def torchrun(job, port, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "warpgan.fullscale", job, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


def in_step_reports(r, report) -> list:
    "Both ranks' reports of a finished two-process run, checked to hold the same weights."
    assert r.returncode == 0, r.stderr[-3000:]
    reports = [json.loads(open(f"{report}.rank{k}.json").read()) for k in (0, 1)]
    assert reports[0]["world"] == 2
    assert reports[0]["checksum"] == reports[1]["checksum"] and reports[0]["abs"] == reports[1]["abs"]
    return reports


def test_ddp_encoder_two_cpu_processes_stay_in_step(tmp_path):
    r = torchrun("train-encoder", 29547, "--data", "tiny:4", "--steps", "6", "--batch", "4", "--backend", "gloo",
                 "--log-every", "1", "--report", str(tmp_path / "r"))
    reports = in_step_reports(r, tmp_path / "r")
    assert reports[0]["log"][0]["image"] != reports[1]["log"][0]["image"]    # different batches per rank
    assert reports[0]["held_after"] < reports[0]["held_before"], reports[0]


def test_ddp_svinet_two_cpu_processes_stay_in_step(tmp_path):
    r = torchrun("train-svinet", 29541, "--data", "tiny:4", "--n-synthetic", "8", "--steps", "20", "--batch", "4",
                 "--backend", "gloo", "--log-every", "1", "--report", str(tmp_path / "r"), "--set", "w_perceptual=0.0",
                 "--set", "w_adv=0.0", "--set", "w_fm=0.0", "--set", "w_latent=0.0", "--set", "lr=0.003")
    reports = in_step_reports(r, tmp_path / "r")
    assert reports[0]["log"][0]["l1"] != reports[1]["log"][0]["l1"]        # different batches per rank
    assert reports[0]["held_after"] < reports[0]["held_before"], reports[0]


def test_ddp_generator_stage1_two_cpu_processes_stay_in_step(tmp_path):
    r = torchrun("train-gan", 29551, "--stage", "recon", "--data", "tiny:4", "--steps", "6", "--batch", "4",
                 "--backend", "gloo", "--log-every", "1", "--report", str(tmp_path / "r"))
    reports = in_step_reports(r, tmp_path / "r")
    assert reports[0]["log"][0]["image"] != reports[1]["log"][0]["image"]    # different batches per rank
    assert reports[0]["held_after"] < reports[0]["held_before"], reports[0]


def test_ddp_gan_stage_on_an_eg3d_zip_resumes_in_step(tmp_path):
    from warpgan.dataset_folder import export_dataset_folder
    from warpgan.train_gan import render_dataset
    export_dataset_folder(render_dataset(4, 2, seed=7, progress=False), tmp_path / "set.zip")
    args = ["--data", str(tmp_path / "set.zip"), "--batch", "4", "--backend", "gloo", "--log-every", "1",
            "--set", "r1_every=2", "--checkpoint", str(tmp_path / "g.ckpt"), "--report", str(tmp_path / "r")]
    r = torchrun("train-gan", 29552, "--steps", "3", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    r = torchrun("train-gan", 29553, "--steps", "5", *args)                       # resumes from step 3
    reports = in_step_reports(r, tmp_path / "r")
    assert [e["step"] for e in reports[0]["log"]] == [1, 2, 3, 4, 5]
    assert reports[0]["log"][-1]["g"] != reports[1]["log"][-1]["g"]
    straight = [a if a != str(tmp_path / "g.ckpt") else str(tmp_path / "straight.ckpt") for a in args]
    straight = [a if a != str(tmp_path / "r") else str(tmp_path / "s") for a in straight]
    r = torchrun("train-gan", 29555, "--steps", "5", *straight)                  # the same five steps without a break
    assert in_step_reports(r, tmp_path / "s")[0]["checksum"] == reports[0]["checksum"]
    ck = torch.load(tmp_path / "g.ckpt", weights_only=False)
    assert ck["step"] == {"recon": 0, "gan": 5} and ck["nimg"]["gan"] == 5 * 4 * 2      # images counted over both ranks
    assert ck["latents"].shape[0] == 0                                                  # photos: no identity table


def test_ddp_svinet_live_renders_on_a_folder(tmp_path):
    from warpgan.dataset_folder import export_dataset_folder
    from warpgan.train_gan import render_dataset
    export_dataset_folder(render_dataset(4, 2, seed=7, progress=False), tmp_path / "set")
    r = torchrun("train-svinet", 29554, "--live", "--data", str(tmp_path / "set"), "--steps", "4", "--batch", "2",
                 "--backend", "gloo", "--log-every", "1", "--report", str(tmp_path / "r"), "--set", "w_perceptual=0.0")
    reports = in_step_reports(r, tmp_path / "r")
    assert [e["kind"] for e in reports[0]["log"]] == ["synthetic", "real", "synthetic", "real"]
    assert reports[0]["log"][1]["l1"] != reports[1]["log"][1]["l1"]


def test_encoder_trains_on_an_eg3d_folder(tmp_path):
    from warpgan.dataset_folder import export_dataset_folder
    from warpgan.fullscale import main
    from warpgan.train_gan import render_dataset
    export_dataset_folder(render_dataset(4, 2, seed=7, progress=False), tmp_path / "set")
    assert main(["train-encoder", "--data", str(tmp_path / "set"), "--steps", "10", "--batch", "4", "--log-every", "1",
                 "--report", str(tmp_path / "r")]) == 0
    rep = json.loads((tmp_path / "r.rank0.json").read_text())
    assert [e["kind"] for e in rep["log"][:2]] == ["gan", "world"]
    assert rep["held_after"] < rep["held_before"], rep


def test_training_entry_point_refuses_bad_input(tmp_path):
    from warpgan.dataset_folder import DatasetFolder, export_dataset_folder
    from warpgan.fullscale import main
    from warpgan.train_gan import Trainer, render_dataset
    with pytest.raises(FileNotFoundError, match="no such data set"):
        main(["train-gan", "--data", str(tmp_path / "nowhere"), "--steps", "1"])
    with pytest.raises(ValueError, match="--set: expected key=value"):
        main(["train-gan", "--data", "tiny:2", "--steps", "1", "--set", "learning_rate=1"])
    with pytest.raises(ValueError, match="--data: its images are 64², the ffhq512 networks take 512²"):
        main(["train-encoder", "--config", "ffhq512", "--data", "tiny:2", "--steps", "1"])
    big = render_dataset(1, 1, seed=7, progress=False)
    big["image"] = torch.nn.functional.interpolate(big["image"].float(), size=512).byte()
    export_dataset_folder(big, tmp_path / "set512")
    with pytest.raises(ValueError, match="--generator: train-encoder at ffhq512 needs the EG3D checkpoint"):
        main(["train-encoder", "--config", "ffhq512", "--data", str(tmp_path / "set512"), "--steps", "1"])
    export_dataset_folder(render_dataset(2, 2, seed=7, progress=False), tmp_path / "set")
    with pytest.raises(ValueError, match="reconstruction stage needs multi-view depth"):
        Trainer(DatasetFolder(tmp_path / "set"), batch=2).recon_step()


def test_module_entry_point_runs_last_and_reports_bad_input_in_one_line(tmp_path):
    import ast
    import warpgan.fullscale as fs
    body = ast.parse(open(fs.__file__).read()).body
    guard = body[-1]                        # `python -m` runs the module top to bottom: main must see every definition
    assert isinstance(guard, ast.If) and "__main__" in ast.unparse(guard.test), ast.unparse(guard)[:200]
    r = subprocess.run([sys.executable, "-m", "warpgan.fullscale", "train-gan", "--data", str(tmp_path / "nowhere"), "--steps", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("python -m warpgan.fullscale: error:") and "no such data set" in r.stderr
