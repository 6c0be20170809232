"""IDM training: the loss, a tiny run end to end, exact resume after a kill, and DDP with 2 CPU processes
(on one node, and on two nodes with one launcher each)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT
from bot.frame import PRESENT
from training.idm.model import equivalence_loss

TINY = ["--half-width", "4", "--hidden", "64", "--layers", "2", "--batch-size", "64", "--val-samples", "256",
        "--threads", "1", "--log-every", "5"]


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    subprocess.run([sys.executable, "-m", "training", "simulate", "--teacher", "random", "--seconds", "160",
                    "--arenas", "4", "--shard-seconds", "20", "--workers", "1", "--out", str(out), "--no-progress"],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out


def run_train(sim, out, *extra, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "training", "idm-train", "--sim", str(sim), "--out", str(out), *TINY, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_equivalence_loss():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    one_hot = torch.tensor([[False, True, False]])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1]))
    assert torch.allclose(equivalence_loss(logits, one_hot), expected)
    assert torch.allclose(equivalence_loss(logits, torch.ones(1, 3, dtype=torch.bool)), torch.zeros(1), atol=1e-6)
    two = torch.tensor([[True, True, False]])
    assert equivalence_loss(logits, two) < equivalence_loss(logits, torch.tensor([[True, False, False]]))


def test_tiny_training_run_writes_model_card_curves_and_logs(sim_data, tmp_path):
    proc = run_train(sim_data, tmp_path, "--steps", "30", "--eval-every", "15")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    for name in ("model/model.safetensors", "model/config.json", "model/MODEL_CARD.md", "curves.png",
                 "history.json", "checkpoint/state.json"):
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "tensorboard").iterdir())
    card = (tmp_path / "model" / "MODEL_CARD.md").read_text()
    assert "action_equiv_acc" in card and "idm-train" in card
    from bot.actions import EQUIV_RULES
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["equiv_rules"] == [EQUIV_RULES] and f"version {EQUIV_RULES}" in card  # the data's classes


def test_the_residual_mlp_trains_exports_and_loads_back(sim_data, tmp_path):
    """--arch resmlp: the same multiply-adds as the MLP (plus layer norms), saved and rebuilt from its config."""
    from training.idm.model import IDMConfig, build_idm
    mlp, res = (build_idm(IDMConfig(arch=arch, half_width=4, hidden=64, layers=3, motion=True))
                for arch in ("mlp", "resmlp"))
    def linear_weights(net: torch.nn.Module) -> int:
        return sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Linear))
    assert linear_weights(mlp) == linear_weights(res)
    proc = run_train(sim_data, tmp_path, "--arch", "resmlp", "--steps", "10", "--eval-every", "10")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    from training.idm.infer import load_idm
    rebuilt, cfg = load_idm(tmp_path / "model")  # what idm-eval and label load
    assert cfg.arch == "resmlp" and type(rebuilt) is type(res)
    action, flags = rebuilt(torch.randn(2, cfg.window, cfg.features))
    assert action.shape == (2, 90) and flags.shape == (2, 3) and torch.isfinite(action).all()


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(sim_data, tmp_path):
    args = ("--steps", "40", "--eval-every", "10", "--seed", "3")
    straight = run_train(sim_data, tmp_path / "a", *args)
    assert straight.wait(timeout=300) == 0
    killed = run_train(sim_data, tmp_path / "b", *args, start_new_session=True)
    state = tmp_path / "b" / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while not state.is_file() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert json.loads(state.read_text())["step"] < 40  # really interrupted mid-run
    assert not (tmp_path / "b" / "model").exists()
    resumed = run_train(sim_data, tmp_path / "b", *args, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-3000:]
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_init_starts_from_an_exported_model_and_refuses_another_architecture(sim_data, tmp_path):
    first = run_train(sim_data, tmp_path / "a", "--steps", "10", "--eval-every", "10")
    assert first.wait(timeout=300) == 0
    # lr 0: AdamW neither steps nor decays, so the run's model is exactly the one it started from
    again = run_train(sim_data, tmp_path / "b", "--steps", "5", "--eval-every", "5", "--lr", "0",
                      "--init", str(tmp_path / "a" / "model"))
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((tmp_path / "a" / "model" / "config.json").read_text())
    init = json.loads((tmp_path / "b" / "model" / "config.json").read_text())["init"]
    assert init["weights_sha256"] == saved["weights_sha256"] and init["steps"] == 10
    assert saved["weights_sha256"] in (tmp_path / "b" / "model" / "MODEL_CARD.md").read_text()
    # held frames filled in: the same inputs' meaning, so a model can be trained on into it
    filled = run_train(sim_data, tmp_path / "d", "--steps", "5", "--eval-every", "5", "--lr", "0",
                       "--interpolate-held", "--init", str(tmp_path / "a" / "model"))
    out, _ = filled.communicate(timeout=300)
    assert filled.returncode == 0, out[-3000:]
    d = load_file(tmp_path / "d" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], d[k]) for k in a)
    assert json.loads((tmp_path / "d" / "model" / "config.json").read_text())["model"]["interpolate_held"] is True
    assert "held frames filled in" in (tmp_path / "d" / "model" / "MODEL_CARD.md").read_text()
    assert "held frames filled in" not in (tmp_path / "a" / "model" / "MODEL_CARD.md").read_text()
    wider = run_train(sim_data, tmp_path / "c", "--steps", "5", "--hidden", "32",
                      "--init", str(tmp_path / "a" / "model"))
    out, _ = wider.communicate(timeout=300)
    assert wider.returncode != 0 and "architecture differs" in out and "'hidden': (64, 32)" in out


def test_ddp_with_two_cpu_processes(sim_data, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           "-m", "training", "idm-train", "--sim", str(sim_data), "--out", str(tmp_path), *TINY,
           "--steps", "10", "--eval-every", "10"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "world size 2" in proc.stdout + proc.stderr
    hist = np.array([r["step"] for r in __import__("json").loads((tmp_path / "history.json").read_text())["history"]])
    assert hist.tolist() == [10]


def test_ddp_across_two_nodes_each_with_one_cpu_process(sim_data, tmp_path):
    """What a cluster does: one torchrun launcher per node (--nnodes 2 --node-rank i), meeting at node 0."""
    launchers = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
         "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", "29519",
         "-m", "training", "idm-train", "--sim", str(sim_data), "--out", str(tmp_path), *TINY,
         "--steps", "10", "--eval-every", "10"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in (0, 1)]
    logs = [p.communicate(timeout=300)[0] for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], "\n".join(log[-2000:] for log in logs)
    assert "world size 2" in logs[0]
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_idm_eval_reports_sim_and_replay_metrics(sim_data, tmp_path):
    from tests.conftest import REPLAYS
    if not REPLAYS.is_dir():
        pytest.skip("../shared/replays is absent")
    proc = run_train(sim_data, tmp_path / "run", "--steps", "20", "--eval-every", "20")
    assert proc.wait(timeout=300) == 0
    parsed = tmp_path / "parsed"
    subprocess.run([sys.executable, "-m", "training", "replays", "--out", str(parsed),
                    str(REPLAYS / "good" / "post-eac-ranked-duel-2026-04-28-a.replay")], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    from training.idm_eval import Config, main
    report = main(Config(checkpoint=tmp_path / "run" / "model", sim=(sim_data,), replays=parsed,
                         json=tmp_path / "eval.json", plot=tmp_path / "confusion.png", samples=500, max_lag=1))
    for key in ("sim_clean", "sim_corrupt"):
        equiv, exact = report[key]["action_equiv_acc"], report[key]["action_exact_acc"]
        assert 0 <= equiv <= 1 and equiv >= exact
        # the situations split the same windows: shares add up, and so do the accuracy and the errors
        parts = report[key]["by_situation"].values()
        assert sum(p["share"] for p in parts) == pytest.approx(1)
        assert sum(p["share"] * p["accuracy"] for p in parts) == pytest.approx(equiv)
        assert equiv == 1 or sum(p["error_share"] for p in parts) == pytest.approx(1)
    replay = report["replay"]
    assert replay["frames"] > 1000 and set(replay["lag_scan"]) == {"-1", "0", "1"}
    for name in ("throttle", "steer", "boost", "jump", "handbrake"):
        assert 0 <= replay[f"{name}_agree"] <= 1
        # a weighted mean of the ground and air rates; a 20-step IDM may call every frame one of the two, and a
        # side without frames has no rate (None)
        parts = [rate for rate in (replay[f"{name}_ground_agree"], replay[f"{name}_air_agree"]) if rate is not None]
        assert parts and min(parts) - 1e-9 <= replay[f"{name}_agree"] <= max(parts) + 1e-9
    assert 0 <= replay["jump_component_agree"] <= 1
    assert (tmp_path / "confusion.png").stat().st_size > 10_000
    assert (tmp_path / "confusion-situations.png").stat().st_size > 10_000


def test_label_stage_labels_every_player_frame_in_play_and_resumes(sim_data, tmp_path):
    from tests.conftest import REPLAYS
    if not REPLAYS.is_dir():
        pytest.skip("../shared/replays is absent")
    assert run_train(sim_data, tmp_path / "run", "--steps", "10", "--eval-every", "10").wait(timeout=300) == 0
    parsed = tmp_path / "parsed"
    subprocess.run([sys.executable, "-m", "training", "replays", "--out", str(parsed),
                    str(REPLAYS / "good" / "post-eac-ranked-duel-2026-04-28-a.replay")], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    from training.label import Config, main
    from training.storage import read_shard
    cfg = Config(checkpoint=tmp_path / "run" / "model", replays=parsed, out=tmp_path / "labels", workers=1,
                 progress=False)
    first = main(cfg)
    (name, entry), = first["shards"].items()
    labels, _ = read_shard(tmp_path / "labels" / name)
    source, _ = read_shard(parsed / name)
    in_play = (np.asarray(source["segment_t"]) >= 0)[:, None] & (np.asarray(source["cars_tpf"])[..., PRESENT] > 0.5)
    assert np.array_equal(np.asarray(labels["action_tp"]) >= 0, in_play)  # exactly the present players in play
    assert entry["labelled"] == in_play.sum() > 1000
    mtime = (tmp_path / "labels" / name / "meta.json").stat().st_mtime
    main(cfg)
    assert (tmp_path / "labels" / name / "meta.json").stat().st_mtime == mtime  # resumed: nothing redone


def test_batches_carry_the_rows_of_their_labelled_frames(sim_data, monkeypatch):
    """idm-eval's situations come from these rows: they must belong to the batch's own windows, in its order."""
    import training.idm.data as data_module
    from bot.frame import POS
    from training.idm.features import SELF_POS
    monkeypatch.setattr(data_module, "is_validation_shard", lambda name, every=10: False)  # both shards
    data = data_module.SimDataset([sim_data], "train")
    assert len(data.shards) == 2
    ids = np.random.default_rng(0).integers(0, len(data), 300)  # unsorted, from both shards
    batch = data.batch(np.random.default_rng(1), 0, 2, 0.0, ids=ids, motion=True)
    centre_pos = batch.x_bwf[:, 2, SELF_POS] * 2300  # reflected into x >= 0, y >= 0
    np.testing.assert_allclose(centre_pos[:, :2], np.abs(batch.centre_bf[:, POS][:, :2]), atol=0.05)
    np.testing.assert_allclose(centre_pos[:, 2], batch.centre_bf[:, POS][:, 2], atol=0.05)
    assert batch.ball_bf.shape == (300, data.shards[0].ball.shape[-1]) and batch.flip_phase_b.shape == (300,)
