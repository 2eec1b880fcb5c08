"""Full scale without a GPU: EG3D-format pickles read safely, and SVINet's DDP path with two CPU processes."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from warpgan.fullscale import eg3d_generator, eg3d_style_pickle, load_eg3d_pickle
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


def test_ddp_encoder_two_cpu_processes_stay_in_step(tmp_path):
    r = torchrun("train-encoder", 29547, "--data", "tiny:4", "--steps", "6", "--batch", "4", "--backend", "gloo",
                 "--log-every", "1", "--report", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr[-3000:]
    reports = [json.loads((tmp_path / f"r.rank{k}.json").read_text()) for k in (0, 1)]
    assert reports[0]["checksum"] == reports[1]["checksum"] and reports[0]["abs"] == reports[1]["abs"]
    assert reports[0]["log"][0]["image"] != reports[1]["log"][0]["image"]    # different batches per rank
    assert reports[0]["held_after"] < reports[0]["held_before"], reports[0]


def test_ddp_svinet_two_cpu_processes_stay_in_step(tmp_path):
    r = torchrun("train-svinet", 29541, "--data", "tiny:4", "--n-synthetic", "8", "--steps", "20", "--batch", "4",
                 "--backend", "gloo", "--log-every", "1", "--report", str(tmp_path / "r"), "--set", "w_perceptual=0.0",
                 "--set", "w_adv=0.0", "--set", "w_fm=0.0", "--set", "w_latent=0.0", "--set", "lr=0.003")
    assert r.returncode == 0, r.stderr[-3000:]
    reports = [json.loads((tmp_path / f"r.rank{k}.json").read_text()) for k in (0, 1)]
    assert reports[0]["world"] == 2
    assert reports[0]["checksum"] == reports[1]["checksum"] and reports[0]["abs"] == reports[1]["abs"]
    assert reports[0]["log"][0]["l1"] != reports[1]["log"][0]["l1"]        # different batches per rank
    assert reports[0]["held_after"] < reports[0]["held_before"], reports[0]
