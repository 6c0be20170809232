"""Training and play see one observation: a replay moment turned into BC samples (`replay_samples`) gives, for
every player of both teams, the observation the bot builds (`RLRPTBot.decide`) from the same moment written
into a GameTickPacket (`frames_to_packet`) and decoded again (`PacketDecoder`).

Replays carry no on_ground / has_jump / has_flip; the BC path takes them from IDM labels, so the test hands
both paths the same definite flags (as labels, and as the packet's has_wheel_contact / jumped / double_jumped).

Tolerances, and why they are not zero:
- 1e-5 on everything else: the rotation goes forward/up (float32) -> Rotator (float32 angles) -> forward/up,
  a few 1e-7 per component, and local-axis columns multiply that by distances up to ~5 in obs units
  (10^4 uu / 2300); measured worst case on these replays 5e-7. Everything else survives a packet exactly.
- boost 0.005: RLBot v4 reports boost as an integer 0..100, replays in steps of 1/255.
- pads: a pad the replay says respawns in under one tick (0 < t < 1/120 s) comes back from a packet as
  1/120 s, because the decoder never reports an inactive pad as available (`pad_timers_from_active`).
"""

from dataclasses import replace

import numpy as np
import pytest
from rlgym_compat.physics_object import PhysicsObject

from bot.actions import ACTION_TABLE, THROTTLE
from bot.constants import BOOST_PAD_RESPAWN_S, ORANGE_TEAM, TICK_RATE
from bot.constants import PAD_PERM_ROTATE_180 as PAD_ORANGE_ORDER
from bot.frame import BOOST, DEMOLISHED, FRESH, HAS_FLIP, HAS_JUMP, KICKOFF_PAUSE, ON_GROUND, POS, PRESENT
from bot.obs import C_BOOST, C_DEMOLISHED, G_PADS, G_SELF, O_PRESENT
from bot.packet import PacketDecoder, basis_to_euler, default_field_info, frames_to_packet
from tests.conftest import REPLAYS

REPLAY_FILES = {  # 1v1, 2v2 and a 3v3 with many demolitions
    "duel": "post-eac-ranked-duel-2026-04-28-a.replay",
    "2v2": "replay-format-2026-03-03-v868-32-net11-dodge-refresh-counter.replay",
    "3v3-demos": "replay-format-2026-01-14-v868-32-net10-demolish-extended.replay",
}
ATOL, BOOST_ATOL = 1e-5, 0.5 / 100 + 1e-6
NUM_MOMENTS = 40
# labels of the moment before and of the moment itself, one per car slot, so each BC sample tells its (row, slot)
THROTTLING = np.flatnonzero(ACTION_TABLE[:, THROTTLE] != 0)  # never dropped as "standing at kickoff"
PREV_CODES, CUR_CODES = THROTTLING[:6], THROTTLING[6:12]


@pytest.fixture(scope="module", params=list(REPLAY_FILES))
def parsed(request):
    """(frames, segment_t) of a real replay, parsed with the project's parser (as tests/test_replays.py does)."""
    path = REPLAYS / "good" / REPLAY_FILES[request.param]
    if not path.is_file():
        pytest.skip("../shared/replays is absent")
    from training.replays.replay import replay_to_frames
    frames, segment_t, _, _ = replay_to_frames(path)
    return frames, segment_t


def pick_moments(frames, segment_t, rng: np.random.Generator) -> np.ndarray:
    """In-play moments with every car present (a packet has no absent cars), spread over the game, plus the
    rare kinds: a demolished car, a pad respawning within a tick, the kickoff pause, unknown (NaN) boost."""
    cars = frames.cars_tpf
    ok = np.zeros(frames.num_frames, bool)
    ok[1:] = (segment_t[1:] >= 0) & (segment_t[1:] == segment_t[:-1]) & (cars[1:, :, PRESENT] > 0.5).all(1)
    special = [(cars[:, :, DEMOLISHED] > 0.5).any(1), ((frames.pads_tk > 0) & (frames.pads_tk < 1 / TICK_RATE)).any(1),
               frames.game_tf[:, KICKOFF_PAUSE] > 0.5, np.isnan(cars[:, :, BOOST]).any(1)]
    picks = [np.flatnonzero(ok)[np.linspace(0, ok.sum() - 1, NUM_MOMENTS).astype(int)]]
    for mask in special:
        idx = np.flatnonzero(ok & mask)
        picks.append(rng.choice(idx, min(3, len(idx)), replace=False))
    return np.unique(np.concatenate(picks))


def definite_flags(frames, rng: np.random.Generator) -> np.ndarray:
    """(T, P, 3) on_ground / has_jump / has_flip as an IDM would label them: on the ground near the floor,
    jump and flip drawn at random so every combination occurs."""
    t, p = frames.cars_tpf.shape[:2]
    on_ground = frames.cars_tpf[..., POS.start + 2] < 20
    has_jump = on_ground | (rng.random((t, p)) < 0.3)
    has_flip = rng.random((t, p)) < 0.6
    return np.stack([on_ground, has_jump, has_flip], -1).astype(np.float32)


class RecordingPolicy:
    """Stands in for the network inside `RLRPTBot.decide`, keeping the observation it was given."""

    def __call__(self, glob, others):
        self.glob, self.others = glob.copy(), others.copy()
        return np.zeros(len(ACTION_TABLE), np.float32)


def bot_observation(frame, index: int, prev_action: int) -> tuple[np.ndarray, np.ndarray]:
    """The observation the bot's `decide` builds for car `index` from a decoded frame."""
    from bot.bot import RLRPTBot
    bot = RLRPTBot.__new__(RLRPTBot)  # no framework: only what `decide` reads
    bot.index, bot.prev_action, bot.feed_previous_action, bot.temperature = index, prev_action, True, 0.0
    bot.rng = np.random.default_rng(0)
    bot.policy = RecordingPolicy()
    bot.decide(frame)
    return bot.policy.glob, bot.policy.others


def expected_pads_from_packet(pads_k: np.ndarray, team: int) -> np.ndarray:
    """The replay's pad obs columns as a packet can carry them: timers under one tick become one tick."""
    pads = np.where((pads_k > 0) & (pads_k < 1 / TICK_RATE), np.float32(1 / TICK_RATE), pads_k)
    return (pads[PAD_ORANGE_ORDER] if team == ORANGE_TEAM else pads) / BOOST_PAD_RESPAWN_S


def rotator_to_basis(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and up (S, 3) of RLBot Rotator angles through rlgym-compat's PhysicsObject, the rotation the
    packet decoder (`physics_row`) uses, kept in float64 (the packet's own fields are float32)."""
    mats = np.array([PhysicsObject(euler_angles=[p, y, r]).rotation_mtx() for p, y, r in zip(pitch, yaw, roll)])
    return mats[..., 0], mats[..., 2]  # columns: forward, left, up


def test_rotator_round_trip(rng):
    """basis_to_euler inverts the decoder's Rotator -> basis, gimbal lock (pitch = +-90 degrees) included."""
    pitch = np.r_[rng.uniform(-np.pi / 2, np.pi / 2, 2000), np.pi / 2, -np.pi / 2, np.pi / 2 - 1e-7]
    yaw, roll = rng.uniform(-np.pi, np.pi, (2, len(pitch)))
    forward, up = rotator_to_basis(pitch, yaw, roll)
    forward2, up2 = rotator_to_basis(*basis_to_euler(forward, up))
    np.testing.assert_allclose(forward2, forward, atol=1e-12)
    np.testing.assert_allclose(up2, up, atol=1e-12)


def test_one_moment_gives_the_same_observation_as_a_batch(parsed, rng):
    """The bot builds one observation at a time (B = 1), training builds batches: same numbers, bit for bit,
    for every player of both teams."""
    from bot.obs import build_obs
    frames, segment_t = parsed
    t_n = np.repeat(pick_moments(frames, segment_t, rng), frames.num_cars)
    slot_n = np.tile(np.arange(frames.num_cars), len(t_n) // frames.num_cars)
    args = (frames.ball_tf[t_n], frames.cars_tpf[t_n], frames.pads_tk[t_n],
            np.broadcast_to(frames.team_p, (len(t_n), frames.num_cars)), slot_n, rng.integers(0, 90, len(t_n)))
    glob_n, others_n = build_obs(*args)
    assert set(frames.team_p[slot_n]) == {0, 1}
    for i in range(len(t_n)):
        glob, others = build_obs(*(a[i:i + 1] for a in args))
        assert np.array_equal(glob[0], glob_n[i]) and np.array_equal(others[0], others_n[i]), (t_n[i], slot_n[i])


def test_replay_and_packet_give_the_same_observation(parsed, rng):
    from training.bc_data import replay_samples
    from training.storage import frames_to_arrays
    frames, segment_t = parsed
    flags_tp3 = definite_flags(frames, rng)
    decoder = PacketDecoder(default_field_info())  # one decoder for the game, as the bot keeps it
    p = frames.num_cars
    acted = np.zeros(p, bool)
    seen = {"airborne": 0, "demolished other": 0, "pad taken": 0, "pad under a tick": 0, "kickoff": 0,
            "nan boost": 0}
    moments = pick_moments(frames, segment_t, rng)
    for t in moments:
        # the BC path: a two-frame window (the label of row 0 is the previous action of row 1)
        window = frames[t - 1:t + 1]
        arrays = frames_to_arrays(window) | {"segment_t": segment_t[t - 1:t + 1]}
        labels = {"action_tp": np.stack([PREV_CODES[:p], CUR_CODES[:p]]), "flags_tp3": flags_tp3[t - 1:t + 1]}
        # the moment as recorded: rebuilding boost or held positions changes the moment itself (tests/test_bc.py)
        glob_n, others_n, action_n = replay_samples(arrays, labels, reconstruct=False, extrapolate=False)
        # the play path: the same moment with the same flags, through a packet
        cars = frames.cars_tpf[t:t + 1].copy()
        cars[..., [ON_GROUND, HAS_JUMP, HAS_FLIP]] = flags_tp3[t:t + 1]
        decoded = decoder.packet_to_frame(frames_to_packet(replace(frames[t], cars_tpf=cars)))
        assert np.array_equal(decoded.team_p, frames.team_p)
        np.testing.assert_allclose(decoded.game_tf, frames.game_tf[t:t + 1], atol=1e-4)  # kickoff, clock, score

        is_current = np.isin(action_n, CUR_CODES)
        acting = (frames.cars_tpf[t, :, FRESH] > 0.5) & (frames.cars_tpf[t, :, DEMOLISHED] < 0.5)
        assert np.array_equal(np.flatnonzero(np.isin(CUR_CODES, action_n[is_current])), np.flatnonzero(acting))
        for glob_r, others_r, code in zip(glob_n[is_current], others_n[is_current], action_n[is_current]):
            slot = int(np.flatnonzero(CUR_CODES == code)[0])
            glob_p, others_p = bot_observation(decoded, slot, int(PREV_CODES[slot]))
            where = f"{frames.num_cars} cars, frame {t}, slot {slot} (team {frames.team_p[slot]})"
            boost_cols = np.zeros(glob_r.shape, bool)
            boost_cols[G_SELF.start + C_BOOST] = True
            boost_cols[G_PADS] = True  # compared below
            np.testing.assert_allclose(glob_p[~boost_cols], glob_r[~boost_cols], atol=ATOL, err_msg=where)
            np.testing.assert_allclose(glob_p[G_SELF.start + C_BOOST], glob_r[G_SELF.start + C_BOOST],
                                       atol=BOOST_ATOL, err_msg=where)
            np.testing.assert_allclose(glob_p[G_PADS], expected_pads_from_packet(frames.pads_tk[t],
                                       frames.team_p[slot]), atol=ATOL, err_msg=where)
            other_cols = np.arange(others_r.shape[-1]) != C_BOOST
            np.testing.assert_allclose(others_p[:, other_cols], others_r[:, other_cols], atol=ATOL, err_msg=where)
            np.testing.assert_allclose(others_p[:, C_BOOST], others_r[:, C_BOOST], atol=BOOST_ATOL, err_msg=where)
            acted[slot] = True
            seen["airborne"] += int(frames.cars_tpf[t, slot, POS.start + 2] > 300)
            seen["demolished other"] += int((others_r[:, C_DEMOLISHED] * others_r[:, O_PRESENT]).sum() > 0)
            seen["pad taken"] += int((glob_r[G_PADS] > 0).any())
            seen["pad under a tick"] += int(((frames.pads_tk[t] > 0) & (frames.pads_tk[t] < 1 / TICK_RATE)).any())
            seen["kickoff"] += int(frames.game_tf[t, KICKOFF_PAUSE] > 0.5)
            seen["nan boost"] += int(np.isnan(frames.cars_tpf[t, :, BOOST]).any())
    assert acted.all(), acted  # every player of both teams was compared at least once
    in_play = frames.cars_tpf[segment_t >= 0]
    possible = {"demolished other": (in_play[..., DEMOLISHED] > 0.5).any(),
                "nan boost": np.isnan(in_play[..., BOOST]).any()}
    assert all(v > 0 for k, v in seen.items() if possible.get(k, True)), seen  # every kind of moment this game has
    assert frames.num_cars < 6 or seen["demolished other"] > 0  # the 3v3 has demolitions
