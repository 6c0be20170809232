"""Behaviour cloning: samples, a tiny training run, and the bot playing with the exported policy."""

import shutil
import subprocess
import sys

import numpy as np

from bot.actions import ACTION_TABLE, THROTTLE
from bot.frame import POS
from tests.conftest import ROOT
from training.bc_data import load_bc_samples


def test_samples_are_fresh_labelled_frames_without_kickoff_standstill(labelled_replay):
    replays, labels, _ = labelled_replay
    s = load_bc_samples(replays, labels)
    assert len(s) > 1000 and s.glob_bf.shape[0] == s.others_bof.shape[0] == len(s.action_b)
    assert (s.action_b >= 0).all() and (s.action_b < 90).all()
    ball_at_centre = np.abs(s.glob_bf[:, POS][:, :2]).max(-1) < 1 / 2300
    assert not (ball_at_centre & (ACTION_TABLE[s.action_b, THROTTLE] == 0)
                & (np.abs(s.glob_bf[:, 51 + 3:51 + 5]).max(-1) < 1 / 2300)).any()


def test_bc_train_exports_a_policy_the_bot_plays_with(labelled_replay, tmp_path):
    replays, labels, _ = labelled_replay
    cmd = [sys.executable, "-m", "training", "bc-train", "--replays", str(replays), "--labels", str(labels),
           "--out", str(tmp_path / "run"), "--steps", "20", "--eval-every", "10", "--hidden", "32", "--layers", "2",
           "--batch-size", "64", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = (tmp_path / "run" / "model" / "MODEL_CARD.md").read_text()
    assert "top1" in card and "idm" in card.lower()
    # a copy of the bot package with this policy bundled, loaded through bot.cfg like RLBotGUI does
    bot_dir = tmp_path / "bot-package"
    for name in ("bot", "bot.cfg", "appearance.cfg", "logo.png", "requirements.txt"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, bot_dir / name)
    shutil.copytree(tmp_path / "run" / "model", bot_dir / "models" / "bc")
    from training.evaluate import Config, main
    report = main(Config(blue=str(bot_dir / "bot.cfg"), orange="baseline:chaser", games=2, seconds=10.0,
                         countdown=0.5))
    assert report["summary"]["games"] == 2
    assert all(g["ticks"] > 1000 for g in report["games"])


def test_mirrored_copies_swap_left_and_right(labelled_replay):
    from bot.actions import MIRROR, STEER
    from bot.obs import C_LOCAL_BALL_POS, G_SELF
    replays, labels, _ = labelled_replay
    s = load_bc_samples(replays, labels, mirror=True)
    n = int((~s.mirrored_b).sum())
    assert n == int(s.mirrored_b.sum()) > 1000 and not s.mirrored_b[:n].any()
    np.testing.assert_array_equal(s.action_b[n:], MIRROR[s.action_b[:n]])
    np.testing.assert_array_equal(ACTION_TABLE[s.action_b[n:], STEER], -ACTION_TABLE[s.action_b[:n], STEER])
    local = s.glob_bf[:, G_SELF][:, C_LOCAL_BALL_POS]  # (forward, side, up) of the ball as the car sees it
    np.testing.assert_allclose(local[n:], local[:n] * [1, -1, 1], atol=1e-5)


def test_self_motion_noise_blurs_only_the_players_own_spin_and_slip():
    import torch

    from bot.obs import C_ANG_VEL, C_LOCAL_VEL, G_SELF, GLOBAL_F
    from training.bc_train import add_self_motion_noise
    spin = torch.zeros(GLOBAL_F, dtype=torch.bool)
    spin[G_SELF.start + C_ANG_VEL.start:G_SELF.start + C_ANG_VEL.stop] = True
    slip = torch.zeros(GLOBAL_F, dtype=torch.bool)
    slip[G_SELF.start + C_LOCAL_VEL.start + 1] = True  # sideways: forward, side, up
    for spin_std, slip_std, expected in ((0.5, 0.0, spin), (0.0, 0.3, slip), (0.5, 0.3, spin | slip)):
        glob = torch.zeros(4096, GLOBAL_F)
        add_self_motion_noise(glob, spin_std, slip_std)
        assert (glob != 0).any(0).equal(expected)
        if spin_std:
            assert abs(glob[:, spin].std().item() - spin_std) < 0.02
        if slip_std:
            assert abs(glob[:, slip].std().item() - slip_std) < 0.02


def test_rebuilt_boost_changes_only_boost_and_only_downwards(labelled_replay):
    """Samples with the boost amount rebuilt between the replay's updates differ from the recorded ones in the
    boost columns only (own car and other cars), and only by boost used: never above the held amount."""
    from bot.obs import C_BOOST, G_SELF
    replays, labels, _ = labelled_replay
    held, rebuilt = load_bc_samples(replays, labels), load_bc_samples(replays, labels, reconstruct=True)
    np.testing.assert_array_equal(held.action_b, rebuilt.action_b)
    own = G_SELF.start + C_BOOST
    not_own = np.arange(held.glob_bf.shape[1]) != own
    np.testing.assert_array_equal(held.glob_bf[:, not_own], rebuilt.glob_bf[:, not_own])
    not_boost = np.arange(held.others_bof.shape[2]) != C_BOOST
    np.testing.assert_array_equal(held.others_bof[..., not_boost], rebuilt.others_bof[..., not_boost])
    lower = held.glob_bf[:, own] - rebuilt.glob_bf[:, own]
    assert (lower >= -1e-6).all() and (lower > 0.02).mean() > 0.1, (lower > 0.02).mean()
    assert (held.others_bof[..., C_BOOST] - rebuilt.others_bof[..., C_BOOST] >= -1e-6).all()


def test_extrapolated_samples_keep_the_players_own_sampled_motion(labelled_replay):
    """Samples are frames where the acting player's physics were sampled: extrapolating held bodies moves the
    ball and the other cars (some samples change) but never the player's own position or any velocity."""
    from bot.obs import C_POS, C_VEL, G_BALL_VEL, G_SELF
    replays, labels, _ = labelled_replay
    held, moved = load_bc_samples(replays, labels), load_bc_samples(replays, labels, extrapolate=True)
    own_pos = slice(G_SELF.start + C_POS.start, G_SELF.start + C_POS.stop)
    own_vel = slice(G_SELF.start + C_VEL.start, G_SELF.start + C_VEL.stop)
    for cols in (own_pos, own_vel, G_BALL_VEL):
        np.testing.assert_array_equal(held.glob_bf[:, cols], moved.glob_bf[:, cols])
    np.testing.assert_array_equal(held.others_bof[..., C_VEL], moved.others_bof[..., C_VEL])
    changed = (np.abs(held.others_bof[..., C_POS] - moved.others_bof[..., C_POS]).max(-1) > 1e-4).any(-1)
    assert 0.2 < changed.mean() < 1.0, changed.mean()
