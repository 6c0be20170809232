"""Replay ingestion on real replays from ../shared/replays (skipped when the corpus is absent)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.constants import BACK_WALL_Y, BOOST_PAD_IS_BIG, CEILING_Z, SIDE_WALL_X
from bot.frame import (
    BALL_FRESH,
    BLUE_SCORE,
    BOOST,
    DEMOLISHED,
    FORWARD,
    FRESH,
    HAS_FLIP,
    HAS_JUMP,
    KICKOFF_PAUSE,
    ON_GROUND,
    ORANGE_SCORE,
    POS,
    PRESENT,
    RECORDED_INPUTS,
    UP,
    VEL,
)
from training.replays import Config, run
from training.replays.replay import ReplayRejectedError, replay_to_frames
from training.storage import frames_from_arrays, read_shard

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".." / "shared" / "replays"
DUEL = CORPUS / "good" / "post-eac-ranked-duel-2026-04-28-a.replay"
DEMOS = CORPUS / "good" / "replay-format-2026-01-14-v868-32-net10-demolish-extended.replay"
ROSTER = CORPUS / "good" / "panzinii-double-flip-reset-2026-07-09.replay"  # subtr-actor's ndarray path raises
VALID_PARTIAL = ("utf-16.replay", "windows_1252.replay")

pytestmark = pytest.mark.skipif(not DUEL.is_file(), reason="replay corpus ../shared/replays not present")


@pytest.fixture(scope="module")
def duel():
    return replay_to_frames(DUEL)


def test_duel_units_and_arena(duel):
    frames, _, _, meta = duel
    assert frames.num_cars == 2 and sorted(frames.team_p.tolist()) == [0, 1]
    present = frames.cars_tpf[:, :, PRESENT] > 0
    cars = frames.cars_tpf[present]  # (N, CAR_F) rows of existing cars
    fwd, up = cars[:, FORWARD], cars[:, UP]
    np.testing.assert_allclose(np.linalg.norm(fwd, axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(up, axis=1), 1, atol=1e-3)
    assert np.abs((fwd * up).sum(1)).max() < 1e-3
    boost = cars[:, BOOST]
    assert np.nanmax(boost) <= 1.0 and np.nanmin(boost) >= 0.0 and np.isfinite(boost).mean() > 0.99
    pos = cars[:, POS]
    assert np.abs(pos[:, 0]).max() < SIDE_WALL_X + 50 and np.abs(pos[:, 1]).max() < BACK_WALL_Y + 900  # goals
    assert pos[:, 2].min() > 0 and pos[:, 2].max() < CEILING_Z + 50
    assert np.isnan(frames.cars_tpf[..., [ON_GROUND, HAS_JUMP, HAS_FLIP]]).all()
    absent = frames.cars_tpf[~present]
    assert (absent[:, FRESH] == 0).all() and np.isnan(absent[:, RECORDED_INPUTS]).all()
    assert meta["players"][0]["name_sha256"] != meta["players"][1]["name_sha256"]
    assert all(len(p["id_sha256"]) == 64 for p in meta["players"])


def test_fresh_position_change_matches_velocity(duel):
    """Between consecutive fresh samples, displacement matches mean velocity x frame-time difference. Samples
    are stamped with the frame that received them, so single pairs jitter by about one frame; the median
    ratio is tight and the direction always agrees."""
    frames = duel[0]
    ratios, cosines = [], []
    for p in range(frames.num_cars):
        car = frames.cars_tpf[:, p]
        idx = np.flatnonzero((car[:, FRESH] > 0) & (car[:, DEMOLISHED] == 0))
        a, b = idx[:-1], idx[1:]
        mean_vel = 0.5 * (car[a, VEL] + car[b, VEL])
        speed = np.linalg.norm(mean_vel, axis=1)
        keep = ((b - a) <= 3) & (speed > 500)
        a, b, mean_vel, speed = a[keep], b[keep], mean_vel[keep], speed[keep]
        moved = car[b, POS] - car[a, POS]
        ratios.append(np.linalg.norm(moved, axis=1) / (speed * (frames.time_t[b] - frames.time_t[a])))
        cosines.append((moved * mean_vel).sum(1) / np.maximum(np.linalg.norm(moved, axis=1) * speed, 1e-6))
    ratio, cosine = np.concatenate(ratios), np.concatenate(cosines)
    assert len(ratio) > 500
    assert 0.95 < np.median(ratio) < 1.05, np.median(ratio)
    assert np.quantile(ratio, 0.25) > 0.7 and np.quantile(ratio, 0.75) < 1.3
    assert np.median(cosine) > 0.99


def test_fresh_fraction_and_ball(duel):
    frames, _, _, meta = duel
    for car in meta["quality"]["cars"]:
        assert 0.40 <= car["fresh_fraction"] <= 0.50, car
    ball_fresh = frames.ball_tf[:, BALL_FRESH].mean()
    assert ball_fresh > max(c["fresh_fraction"] for c in meta["quality"]["cars"])


def test_pad_timers_from_pickups(duel):
    """Almost every pickup restarts the timer of a pad that our timers say was available (pads are located
    from the cars' paths), and timers never exceed 10 s (big) / 4 s (small)."""
    frames, _, _, meta = duel
    restart_tk = np.diff(frames.pads_tk, axis=0) > 1.0
    before = frames.pads_tk[:-1][restart_tk]
    assert restart_tk.sum() >= 0.9 * meta["num_pickups"] > 30
    assert (before < 0.1).mean() > 0.95
    assert frames.pads_tk[:, BOOST_PAD_IS_BIG].max() == 10.0 and frames.pads_tk[:, ~BOOST_PAD_IS_BIG].max() == 4.0
    assert (restart_tk.sum(0) > 0).sum() > 20  # pickups spread over most pads


def test_segments_end_at_goals(duel):
    frames, segment_t, segments, _ = duel
    final = frames.game_tf[-1]
    assert (segments[:, 2] >= 0).sum() == final[BLUE_SCORE] + final[ORANGE_SCORE] == 4
    for i, (start, stop, team) in enumerate(segments):
        assert (segment_t[start:stop] == i).all() and start < stop
        score = frames.game_tf[stop - 1, BLUE_SCORE + team] - frames.game_tf[start, BLUE_SCORE + team]
        assert team < 0 or score == 1
    assert (segment_t == -1).sum() > 0  # countdowns and goal replays are outside every segment
    assert (frames.game_tf[segments[:, 0], KICKOFF_PAUSE] == 1).all()  # play starts paused for the kickoff
    assert (frames.game_tf[segments[:, 1] - 1, KICKOFF_PAUSE] == 0).all()  # and the ball was hit before a goal


def test_demolition_flag():
    frames, _, _, meta = replay_to_frames(DEMOS)
    assert meta["num_demolitions"] >= 10
    demo = frames.cars_tpf[:, :, DEMOLISHED] > 0
    assert demo.any(0).sum() >= 4  # several victims
    assert frames.cars_tpf[demo][:, FRESH].mean() < 0.02  # a demolished car stops replicating
    for p in range(frames.num_cars):  # each demolished stretch ends within 4 s (respawn after 3 s)
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, demo[:, p].astype(int), 0])))[::2]
        assert runs.max(initial=0) <= 120


def test_bad_and_partial_rejected_with_reasons():
    for path in sorted((CORPUS / "bad").glob("*.replay")) + sorted((CORPUS / "partial").glob("*.replay")):
        if path.name in VALID_PARTIAL:
            continue
        with pytest.raises(ReplayRejectedError) as info:
            replay_to_frames(path)
        reason = str(info.value)
        assert reason.startswith("parse error: ") and "\n" not in reason, reason


def test_valid_partial_files_parse():
    """utf-16.replay and windows_1252.replay are complete pre-net-version replays with odd header strings:
    legacy rotators and units are decoded, so ground cars point where they drive."""
    for name in VALID_PARTIAL:
        frames, _, _, meta = replay_to_frames(CORPUS / "partial" / name)
        cars = frames.cars_tpf[frames.cars_tpf[:, :, PRESENT] > 0]
        speed = np.linalg.norm(cars[:, VEL], axis=1)
        fast_ground = (speed > 800) & (cars[:, POS][:, 2] < 30)
        cosine = (cars[fast_ground][:, FORWARD] * cars[fast_ground][:, VEL]).sum(1) / speed[fast_ground]
        assert fast_ground.sum() > 100 and np.median(np.abs(cosine)) > 0.98
        assert np.median(cars[fast_ground][:, UP][:, 2]) > 0.98
        assert 0 < cars[:, POS][:, 2].min() and cars[:, POS][:, 2].max() < CEILING_Z + 50
        assert meta["net_version"] is None


def test_roster_change_replays_parse():
    frames, segment_t, _, meta = replay_to_frames(ROSTER)  # subtr-actor's ndarray path raises on this one
    assert frames.num_cars == 2 and meta["team_size"] == 1
    assert (frames.cars_tpf[segment_t >= 0][:, :, PRESENT] > 0).all()
    frames, _, _, meta = replay_to_frames(CORPUS / "partial" / "windows_1252.replay")  # players come and go
    present = frames.cars_tpf[:, :, PRESENT] > 0
    assert frames.num_cars > 2 * meta["team_size"]  # one column per person ever seen
    assert present.sum(1).max() <= 2 * meta["team_size"] + 1
    assert (~present).any(0).sum() >= frames.num_cars - 2 * meta["team_size"]  # leavers/joiners have gaps


def test_other_modes_skipped_unless_kept():
    soccar = CORPUS / "good" / "replay-format-2026-03-03-v868-32-net11-dodge-refresh-counter.replay"
    frames = replay_to_frames(soccar)[0]  # a net11 2v2 that is plain soccar
    assert frames.num_cars == 4
    dropshot = CORPUS / "good" / "204c.replay"
    with pytest.raises(ReplayRejectedError, match="not soccar: dropshot"):
        replay_to_frames(dropshot)
    assert replay_to_frames(dropshot, keep_other_modes=True)[3]["game_mode"] == "dropshot"


def test_batch_resume_shards_and_timeout(tmp_path):
    inputs = [str(DUEL), str(CORPUS / "bad" / "fuzz-slice-index.replay"), str(CORPUS / "partial" / "text.replay")]
    cfg = Config(inputs=inputs, out=tmp_path / "out", workers=2, progress=False)
    first = run(cfg)
    status = {Path(e["file"]).name: e["status"] for e in first["replays"]}
    assert status == {DUEL.name: "parsed", "fuzz-slice-index.replay": "rejected", "text.replay": "rejected"}
    assert all(e["reason"] for e in first["replays"] if e["status"] == "rejected")
    sha = next(e["sha256"] for e in first["replays"] if e["status"] == "parsed")
    arrays, meta = read_shard(tmp_path / "out" / sha)
    frames = frames_from_arrays(arrays)
    assert frames.num_frames == meta["num_frames"] == len(arrays["segment_t"])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["parser_version"] and manifest["counts"] == {"parsed": 1, "rejected": 2}
    second = run(cfg)  # resumable: the existing shard is skipped, known rejections keep their reason
    assert {e["status"] for e in second["replays"] if e["sha256"] == sha} == {"cached"}
    assert [(e["status"], e["reason"]) for e in second["replays"]] == [
        (e["status"] if e["status"] != "parsed" else "cached", e["reason"]) for e in first["replays"]]
    halves = [run(Config(inputs=inputs, out=tmp_path / "s", shard=f"{i}/2", progress=False)) for i in range(2)]
    files = [{e["file"] for e in h["replays"]} for h in halves]
    assert not files[0] & files[1] and files[0] | files[1] == set(inputs)
    assert (tmp_path / "s" / "manifest-0of2.json").is_file() and (tmp_path / "s" / "manifest-1of2.json").is_file()
    slow = run(Config(inputs=[str(DEMOS)], out=tmp_path / "t", timeout_s=0.05, progress=False))
    assert slow["replays"][0]["reason"].startswith("timeout")


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "training", "replays", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--shard" in out.stdout and "--keep-other-modes" in out.stdout


def test_reconstructed_boost_follows_the_recorded_flag_between_rare_updates():
    """A true boost trajectory (bursts of boosting, one pad pickup), recorded as replays do it: the amount
    replicated on a few frames only. The rebuilt amount meets every update, is far closer to the truth than the
    held one, and never-replicated cars stay NaN."""
    from training.replays.frames import BOOST_USED_PER_FRAME, hold, reconstruct_boost
    rng = np.random.default_rng(0)
    t_n = 600
    boosting = (np.sin(np.arange(t_n) / 9.0) > 0.3).astype(np.float32)  # bursts of ~20 frames
    truth = np.empty(t_n)
    amount = 1.0
    for t in range(t_n):
        truth[t] = amount
        boosting[t] *= amount > 0  # the game stops boosting at zero
        amount = max(amount - BOOST_USED_PER_FRAME * boosting[t], 0.0) + (0.12 if t == 333 else 0.0)
    updates = np.sort(np.concatenate([[0, 334], rng.choice(np.arange(1, t_n), 6, replace=False)]))
    held = hold(updates, truth[updates], t_n)[:, 0]
    boost_tp = np.stack([held, np.full(t_n, np.nan)], 1).astype(np.float32)
    boosting_tp = np.stack([boosting, boosting], 1)
    rebuilt = reconstruct_boost(boost_tp, boosting_tp)
    assert rebuilt.dtype == np.float32 and rebuilt.shape == (t_n, 2)
    assert np.isnan(rebuilt[:, 1]).all()
    np.testing.assert_allclose(rebuilt[updates, 0], truth[updates], atol=1e-6)
    err_rebuilt, err_held = np.abs(rebuilt[:, 0] - truth).mean(), np.abs(held - truth).mean()
    assert err_held > 0.05 and err_rebuilt < 0.1 * err_held, (err_rebuilt, err_held)
    assert (rebuilt[:, 0] <= held + 1e-6).all()  # between updates boost is only used, never gained
    quiet = (boosting == 0) & ~np.isin(np.arange(t_n), updates)  # not boosting, no update: the amount stands
    assert (np.abs(np.diff(rebuilt[:, 0])[quiet[1:]]) < 1e-6).sum() > 0.9 * quiet[1:].sum()


def test_held_positions_move_on_by_their_velocity_until_the_next_sample():
    """A body at constant velocity sampled every 1-4 frames, held as replays do: extrapolated it is where it
    is on every frame; sampled frames are untouched; past MAX_EXTRAPOLATE_S (a reset, a demo) it stays held."""
    from training.replays.frames import MAX_EXTRAPOLATE_S, extrapolate_held, hold
    rng = np.random.default_rng(1)
    time_t = np.arange(300) / 30.0
    vel = np.array([1200.0, -300.0, 50.0])
    truth = 100.0 + time_t[:, None] * vel  # (T, 3)
    samples = np.cumsum(rng.integers(1, 5, 120))
    samples = np.concatenate([[0], samples[samples < 200], [260]])  # then a 2-s gap
    fresh = np.isin(np.arange(300), samples)
    held_pos = hold(samples, truth[samples], 300).astype(np.float32)
    held_vel = np.broadcast_to(vel, (300, 3)).astype(np.float32)
    moved = extrapolate_held(held_pos[:, None], held_vel[:, None], fresh[:, None], time_t)[:, 0]
    assert moved.dtype == np.float32
    np.testing.assert_array_equal(moved[fresh], held_pos[fresh])
    last = samples[samples < 200][-1]
    near = np.arange(300) < last + 1
    np.testing.assert_allclose(moved[near], truth[near], atol=0.05)
    assert np.abs(held_pos[near] - truth[near]).max() > 100  # the held position was behind
    late = time_t - time_t[last] > MAX_EXTRAPOLATE_S
    np.testing.assert_array_equal(moved[late & (np.arange(300) < 260)], held_pos[late & (np.arange(300) < 260)])
