"""Nexto observation anchors (nexto-teacher.md §11) and the actor. Model tests skip when the file is absent."""

import numpy as np
import pytest

from bot.actions import ACTION_TABLE, NOOP_ACTION
from bot.frame import FORWARD, POS, PRESENT, Frames
from training.sim.rocketsim import make_arena, sim_to_frame
from training.teachers.nexto import (
    DEFAULT_NEXTO_PATH, F_FORWARD, F_POS, IS_BALL, IS_BOOST, IS_MATE, IS_OPP, IS_SELF, NUM_FEATURES, OnGroundGrace,
    Q_SELF, choose_actions, load_nexto, nexto_observation, num_entities,
)

needs_model = pytest.mark.skipif(not DEFAULT_NEXTO_PATH.is_file(), reason="Nexto model not present")


def _moving_frame(blue: int, orange: int, seed: int = 3, ticks: int = 90) -> Frames:
    arena = make_arena(blue, orange, seed)
    import RocketSim as rs
    for i, car in enumerate(arena.get_cars()):
        car.set_controls(rs.CarControls(throttle=1.0, steer=0.3 * (i - 1), boost=True))
    arena.step(ticks)
    return sim_to_frame(arena)


def _all_observers(frames: Frames):
    p = frames.num_cars
    noop = np.repeat(ACTION_TABLE[NOOP_ACTION][None], p, 0)
    return nexto_observation(frames, noop, np.zeros(p, int), np.arange(p))


@pytest.mark.parametrize("blue,orange", [(1, 1), (2, 2), (3, 3)])
def test_anchors(blue, orange):
    frames = _moving_frame(blue, orange)
    q, kv, mask = _all_observers(frames)
    p = blue + orange
    assert kv.shape == (p, num_entities(p), NUM_FEATURES) and q.shape == (p, 1, 32) and mask.shape == kv.shape[:2]
    if p == 2:
        assert kv.shape[1] == 37
    assert (q[:, 0, IS_SELF] == 1).all() and (q[:, 0, IS_MATE] == 1).all()
    np.testing.assert_allclose(kv[:, 0, F_POS], 0.0, atol=1e-6)  # self at the origin after the transform
    np.testing.assert_allclose(kv[:, 0, F_FORWARD.start], 0.0, atol=1e-6)  # self forward along +y
    assert (kv[:, 0, F_FORWARD.start + 1] >= 0).all()
    assert (kv[:, :p, IS_MATE].sum(1) == blue).all() if blue == orange else True
    assert (kv[:, :p, IS_OPP].sum(1) == orange).all()
    assert (kv[:, p, IS_BALL] == 1).all() and (kv[:, p + 1:, IS_BOOST] == 1).all()
    assert (mask == 0).all()


def test_orange_flip():
    """An orange car sees the world rotated by 180 degrees: its query equals the blue view of the rotated game."""
    frames = _moving_frame(1, 1)
    q, _, _ = _all_observers(frames)
    orange_pos = frames.cars_tpf[0, 1, POS]
    np.testing.assert_allclose(q[1, 0, F_POS], orange_pos * np.array([-1, -1, 1]) / 2300.0, rtol=1e-6)
    np.testing.assert_allclose(q[1, 0, F_FORWARD], frames.cars_tpf[0, 1, FORWARD] * np.array([-1, -1, 1]),
                               rtol=1e-6)
    # on kickoff spawns the two cars mirror each other, so both queries are the same in their team frames
    kick = sim_to_frame(make_arena(1, 1, seed=0))
    qk, kvk, _ = _all_observers(kick)
    np.testing.assert_allclose(qk[0, 0, Q_SELF], qk[1, 0, Q_SELF], atol=1e-5)
    np.testing.assert_allclose(kvk[0, :3], kvk[1, :3], atol=1e-5)  # cars and ball
    np.testing.assert_allclose(kvk[0, 3:], kvk[1, 3:][::-1], atol=1e-5)  # pads keep packet order (§6)


def test_batched_equals_single_and_padding():
    """Stacked rows give the same rows as one at a time; absent slots are masked with -inf."""
    frames = _moving_frame(1, 1)
    two = Frames(time_t=np.zeros(2), game_tf=np.repeat(frames.game_tf, 2, 0), ball_tf=np.repeat(frames.ball_tf, 2, 0),
                 cars_tpf=np.repeat(frames.cars_tpf, 2, 0), pads_tk=np.repeat(frames.pads_tk, 2, 0),
                 team_p=frames.team_p)
    noop = np.repeat(ACTION_TABLE[NOOP_ACTION][None], 4, 0)
    q2, kv2, _ = nexto_observation(two, noop, np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    q1, kv1, _ = _all_observers(frames)
    np.testing.assert_array_equal(kv2[:2], kv1)
    np.testing.assert_array_equal(kv2[2:], kv1)
    padded = frames.select_cars(np.array([0, 0, 0, 1, 1, 1]))
    padded.cars_tpf[0, [1, 2, 4, 5], PRESENT] = 0
    qp, kvp, maskp = nexto_observation(padded, noop[:2], np.zeros(2, int), np.array([0, 3]))
    np.testing.assert_array_equal(qp, q1)
    assert np.isinf(maskp[:, 2:6]).all() and (maskp[:, :2] == 0).all() and (maskp[:, 6:] == 0).all()
    np.testing.assert_allclose(kvp[:, :2], kv1[:, :2], atol=1e-7)


def test_on_ground_grace():
    grace = OnGroundGrace((1,))
    seen = [grace.update(np.array([c]), 1)[0] for c in [0] * 6 + [0] + [1] + [0] * 7]
    assert seen == [1] * 6 + [0] + [1] + [1] * 6 + [0]


def test_choose_actions_beta():
    rng = np.random.default_rng(0)
    logits = np.random.default_rng(1).normal(size=(5, 90)).astype(np.float32)
    assert (choose_actions(logits, 1.0, rng) == logits.argmax(1)).all()
    assert (choose_actions(logits, -1.0, rng) == logits.argmin(1)).all()
    peaked = logits[:1].copy()
    peaked[0, 7] += 3.0  # a clear favourite
    sharp = choose_actions(np.repeat(peaked, 2000, 0), 0.999, rng)
    soft = choose_actions(np.repeat(peaked, 2000, 0), 0.5, rng)
    p7 = np.exp(peaked[0, 7]) / np.exp(peaked[0]).sum()  # beta 0.5 samples softmax(logits * 1)
    assert (sharp == 7).mean() > 0.95 and abs((soft == 7).mean() - p7) < 0.04
    uniform = choose_actions(np.repeat(logits[:1], 9000, 0), 0.0, rng)
    assert len(np.unique(uniform)) == 90


def test_missing_or_wrong_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_nexto(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="sha256"):
        load_nexto(bad)
    with pytest.raises(ValueError, match="TorchScript"):
        load_nexto(bad, check_sha256=False)


@needs_model
def test_model_runs_and_masking_equals_removal():
    from training.teachers.nexto import NextoPolicy
    policy = NextoPolicy()
    frames = _moving_frame(1, 1)
    q, kv, mask = _all_observers(frames)
    logits = policy.logits(q, kv, mask)
    assert logits.shape == (2, 90) and np.isfinite(logits).all()
    padded = frames.select_cars(np.array([0, 0, 0, 1, 1, 1]))
    padded.cars_tpf[0, [1, 2, 4, 5], PRESENT] = 0
    noop = np.repeat(ACTION_TABLE[NOOP_ACTION][None], 2, 0)
    lp = policy.logits(*nexto_observation(padded, noop, np.zeros(2, int), np.array([0, 3])))
    np.testing.assert_allclose(lp, logits, atol=1e-4)


@needs_model
def test_fast_forward_picks_the_same_actions_as_torchscript():
    """FastNextoForward (used by NextoPolicy.logits) against the plain TorchScript call, on recorded observations."""
    from dataclasses import replace

    from training.sim.recorder import run_shard
    from training.simulate import Config, make_teacher
    cfg = Config(teacher="nexto", arenas=6, shard_seconds=3.0, progress=False, team_size_weights=(1.0, 1.0, 1.0),
                 episode_seconds_min=1.0, episode_seconds_max=2.0)
    teacher = make_teacher(replace(cfg, seed=3))
    policy, seen = teacher.policy, []
    fast = policy.logits

    def capture(q, kv, mask):
        seen.append((q, kv, mask))
        return fast(q, kv, mask)

    policy.logits = capture
    run_shard(cfg, 0, teacher)  # 1v1 to 3v3 arenas: absent slots carry the -inf mask
    q, kv, mask = (np.concatenate(x) for x in zip(*seen))  # one batch of M > FastNextoForward.CHUNK rows
    assert len(q) > 2 * policy.forward.CHUNK and np.isinf(mask).any()
    ref, out = policy.reference_logits(q, kv, mask), fast(q, kv, mask)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-3 * np.abs(ref).max())
    assert (out.argmax(1) == ref.argmax(1)).all()
    for beta in (0.9, 0.5):
        picks = [choose_actions(x, beta, np.random.default_rng(1)) for x in (out, ref)]
        assert (picks[0] == picks[1]).all()
    single = fast(q[:1], kv[:1], mask[:1])  # one row, as NextoAgent calls it
    np.testing.assert_allclose(single, ref[:1], rtol=0, atol=1e-3 * np.abs(ref).max())
