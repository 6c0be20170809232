"""`NetworkEvents` (raw replay units) -> `Frames` on the 30 Hz network-frame grid, plus kickoff-to-goal segments.

Conversions (docs/replays.md): angular velocity / 100 -> rad/s, boost byte / 255 -> 0..1, quaternion x,y,z,w
-> forward/up unit vectors, throttle/steer byte (v - 128) / 127, component counters odd = active. Physics
between replicated samples are held (sample-and-hold); FRESH marks the frames that carry a real sample.
"""

from dataclasses import dataclass

import numpy as np

from bot.constants import BOOST_PAD_LOCATIONS, BOOST_PAD_RESPAWN_S, NUM_BOOST_PADS
from bot.frame import (
    ANG_VEL,
    BALL_FRESH,
    BOOST,
    CAR_F,
    DEMOLISHED,
    FORWARD,
    FRESH,
    GAME_F,
    HAS_FLIP,
    HAS_JUMP,
    IN_BOOST,
    IN_DODGE,
    IN_DODGE_TORQUE,
    IN_DOUBLE_JUMP,
    IN_HANDBRAKE,
    IN_JUMP,
    IN_STEER,
    IN_THROTTLE,
    IS_OVERTIME,
    KICKOFF_PAUSE,
    ON_GROUND,
    PHYSICS,
    POS,
    PRESENT,
    RECORDED_INPUTS,
    SECONDS_REMAINING,
    UP,
    VEL,
    Frames,
    empty_frames,
)
from training.replays.network import (
    BALL,
    CAR,
    GAME_COUNTDOWN,
    GAME_KICKOFF_HIT,
    RAW_ANG_VEL,
    RAW_POS,
    RAW_QUAT_XYZW,
    RAW_VEL,
    TEAM0,
    TEAM1,
    NetworkEvents,
)

ANG_VEL_SCALE = 100.0  # replicated angular velocity = rad/s * 100
BOOST_SCALE = 255.0  # replicated boost byte 0..255
LEGACY_ROTATOR_NET = 7  # below this net version rotations are compressed rotators (see legacy_rotator_to_quat)
LEGACY_SCALE_NET = 5  # below this net version positions and velocities are scaled down (boxcars, subtr-actor)
MAX_DEMOLISHED_S = 4.0  # respawn takes 3 s; a demo never lasts longer than this without a new sample
PAD_MATCH_UU = 300.0  # a pickup's car must pass this close (xy) to a standard pad to locate the pad actor
PICKUP_WINDOW = 16  # frames before a pickup event searched for the car's pass over the pad
# held car columns, reset when a new car actor spawns: boost and sticks unknown until replicated, flags off
_DEFAULTS = {BOOST: np.nan, IN_THROTTLE: np.nan, IN_STEER: np.nan, IN_HANDBRAKE: 0.0, IN_BOOST: 0.0, IN_JUMP: 0.0,
             IN_DOUBLE_JUMP: 0.0, IN_DODGE: 0.0, **{c: 0.0 for c in range(IN_DODGE_TORQUE.start, IN_DODGE_TORQUE.stop)}}


@dataclass(frozen=True)
class Player:
    """One car column: a person (or bot) over all of their car and PRI actors."""

    key: str  # platform unique id (or name when the replay has none); hash before storing
    name: str
    team: int  # 0 blue / 1 orange
    car_serials: tuple[int, ...]


def hold(frame_e: np.ndarray, value_ef: np.ndarray, num_frames: int, default: float = np.nan) -> np.ndarray:
    """Sample-and-hold (E,) events at frame indices into (T, F): the last event at or before each frame wins."""
    value_ef = np.asarray(value_ef, np.float64).reshape(len(frame_e), -1)
    out = np.full((num_frames, value_ef.shape[1]), default, np.float64)
    if len(frame_e) == 0:
        return out
    order = np.argsort(frame_e, kind="stable")
    frame_e, value_ef = np.asarray(frame_e)[order], value_ef[order]
    last = np.append(frame_e[1:] != frame_e[:-1], True)  # several events in one frame: the last one counts
    frame_e, value_ef = frame_e[last], value_ef[last]
    pos_t = np.full(num_frames, -1)
    pos_t[frame_e] = np.arange(len(frame_e))
    pos_t = np.maximum.accumulate(pos_t)
    out[pos_t >= 0] = value_ef[pos_t[pos_t >= 0]]
    return out


BOOST_USED_PER_FRAME = 33.3 / 100 / 30  # 0..1 units: a boosting car uses 33.3 boost per second, at 30 Hz


def reconstruct_boost(boost_tp: np.ndarray, boosting_tp: np.ndarray) -> np.ndarray:
    """The boost amount between a replay's rare updates of it, rebuilt from the boost flag it records.

    Replays replicate a car's boost amount on under 1% of the frames where it boosts: the recorded amount stands
    still for seconds, then drops by all the boost used since (docs/idm.md). The bot reads the exact amount from
    the packet; `bc-train --reconstruct-boost` shows the policy this instead (measured, not adopted: docs/bc.md;
    the spread below looks ahead to the next update, which the bot cannot). Between two updates the amount falls
    only on frames the replay records boosting: spread over them when the next update shows a drop (so both
    updates are met exactly), else at the game's rate from the last update (a pad pickup came in between).
    NaN (never replicated) stays NaN. Only for the policy: the IDM must not see it, since it is built from the
    recorded boost flag that the IDM's replay agreement is scored against.
    """
    boost = np.asarray(boost_tp, np.float64)
    t_n, p_n = boost.shape
    t = np.arange(t_n)[:, None]
    prev = np.concatenate([boost[:1], boost[:-1]])
    update = (t == 0) | ((boost != prev) & ~(np.isnan(boost) & np.isnan(prev)))  # (T, P)
    anchor = np.maximum.accumulate(np.where(update, t, 0), axis=0)  # the last update at or before each frame
    nxt = np.minimum.accumulate(np.where(update, t, t_n)[::-1], axis=0)[::-1]  # the first update at or after
    nxt = np.concatenate([nxt[1:], np.full((1, p_n), t_n)])  # ... strictly after each frame (T = none)
    used_before = np.concatenate([np.zeros((1, p_n)), np.cumsum(boosting_tp > 0.5, axis=0)])  # (T + 1, P)
    since = used_before[:-1] - np.take_along_axis(used_before, anchor, 0)  # boosting frames since the update
    total = np.take_along_axis(used_before, nxt, 0) - np.take_along_axis(used_before, anchor, 0)
    a0 = np.take_along_axis(boost, anchor, 0)
    a1 = np.take_along_axis(np.concatenate([boost, np.full((1, p_n), np.nan)]), nxt, 0)
    spread = (a1 < a0) & (total > 0)
    out = np.where(spread, a0 + (a1 - a0) * since / np.maximum(total, 1),
                   np.clip(a0 - BOOST_USED_PER_FRAME * since, 0.0, None))
    return out.astype(np.asarray(boost_tp).dtype)


MAX_EXTRAPOLATE_S = 0.15  # replays update a car's physics every 1-4 frames; longer gaps are resets and demos


def extrapolate_held(pos_tn3: np.ndarray, vel_tn3: np.ndarray, fresh_tn: np.ndarray, time_t: np.ndarray
                     ) -> np.ndarray:
    """Positions moved on by their held velocity between a replay's physics samples (dead reckoning).

    A replay holds a body's last sample until the next one, 1-4 frames later, so a held car is up to ~120 uu
    behind where it is (benchmarks/replay_reconstruction.py); the bot sees every body where it is. Frames more than
    MAX_EXTRAPOLATE_S after their sample (or before any) keep the held position. N = bodies (ball or cars).
    """
    t_n = len(time_t)
    last = np.maximum.accumulate(np.where(fresh_tn, np.arange(t_n)[:, None], -1), axis=0)  # (T, N)
    dt = time_t[:, None] - time_t[np.maximum(last, 0)]
    dt = np.where((last >= 0) & (dt <= MAX_EXTRAPOLATE_S), dt, 0.0)
    return (pos_tn3 + vel_tn3 * dt[..., None]).astype(pos_tn3.dtype)


def quat_to_forward_up(q_n4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) quaternions x, y, z, w -> forward (N, 3) = R @ x-axis and up (N, 3) = R @ z-axis, unit length."""
    q = q_n4 / np.maximum(np.linalg.norm(q_n4, axis=1, keepdims=True), 1e-9)
    x, y, z, w = q.T
    forward = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], 1)
    up = np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], 1)
    return forward, up


def legacy_rotator_to_quat(rot_n3: np.ndarray) -> np.ndarray:
    """Replays before net version 7 replicate a compressed rotator: x = pitch / pi, y = yaw / pi, z = roll / pi.
    Returns (N, 4) quaternions x, y, z, w = Rz(yaw) Ry(pitch) Rx(-roll) (matches subtr-actor's normalisation)."""
    half = 0.5 * np.pi * rot_n3  # (N, 3) half angles
    cp, sp = np.cos(half[:, 0]), np.sin(half[:, 0])  # pitch, about y
    cy, sy = np.cos(half[:, 1]), np.sin(half[:, 1])  # yaw, about z
    cr, sr = np.cos(-half[:, 2]), np.sin(-half[:, 2])  # roll, about x
    return np.stack([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy], 1)


def _physics(serials: list[int], ev: NetworkEvents, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Rigid-body samples of these actors -> held physics (T, 15) in our units and fresh (T,) bool."""
    fresh_t = np.zeros(num_frames, bool)
    frame_e = np.array([f for s in serials for f in ev.rb.get(s, ([], []))[0]], np.int64)
    if len(frame_e) == 0:
        return np.zeros((num_frames, PHYSICS.stop)), fresh_t
    raw_e = np.array([v for s in serials for v in ev.rb.get(s, ([], []))[1]], np.float64).reshape(-1, 13)
    if ev.net_version < LEGACY_ROTATOR_NET:
        raw_e[:, RAW_QUAT_XYZW] = legacy_rotator_to_quat(raw_e[:, RAW_QUAT_XYZW][:, :3])
    if ev.net_version < LEGACY_SCALE_NET:  # positions were sent in 100 uu, velocities in 10 uu/s
        raw_e[:, RAW_POS] *= 100.0
        raw_e[:, RAW_VEL] *= 10.0
        raw_e[:, RAW_ANG_VEL] *= 10.0
    phys_e = np.zeros((len(raw_e), PHYSICS.stop))  # (E, 15)
    phys_e[:, POS], phys_e[:, VEL] = raw_e[:, RAW_POS], raw_e[:, RAW_VEL]
    phys_e[:, ANG_VEL] = raw_e[:, RAW_ANG_VEL] / ANG_VEL_SCALE
    phys_e[:, FORWARD], phys_e[:, UP] = quat_to_forward_up(raw_e[:, RAW_QUAT_XYZW])
    fresh_t[frame_e] = True
    return np.nan_to_num(hold(frame_e, phys_e, num_frames)), fresh_t


def _players(ev: NetworkEvents) -> list[Player]:
    """Group car actors by the person driving them (PRI unique id), blue first, then by first appearance."""
    groups: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    teams: dict[str, list[int]] = {}
    for car in sorted(ev.rb):
        if ev.actor_class[car] != CAR or car not in ev.car_pri:
            continue
        info = ev.pri_info.get(ev.car_pri[car], {})
        key = info.get("uid") or f"name:{info.get('name')}"
        groups.setdefault(key, []).append(car)
        names[key] = info.get("name") or names.get(key, "")
        team_cls = ev.actor_class[info["team_serial"]] if info.get("team_serial") is not None else None
        if team_cls in (TEAM0, TEAM1):
            teams.setdefault(key, []).append(team_cls - TEAM0)
    players = [Player(k, names[k], int(round(np.mean(teams[k]))) if k in teams else -1, tuple(cars))
               for k, cars in groups.items()]
    return sorted([p for p in players if p.team >= 0], key=lambda p: (p.team, ev.actor_span[p.car_serials[0]][0]))


def _car_columns(ev: NetworkEvents, player: Player, num_frames: int, demos: list, car_comps: dict) -> np.ndarray:
    """(T, CAR_F) for one player; PRESENT only while a car of theirs exists (or is demolished)."""
    car_tf = np.zeros((num_frames, CAR_F), np.float64)
    car_tf[:, PHYSICS], fresh_t = _physics(sorted(player.car_serials), ev, num_frames)
    present_t = np.zeros(num_frames, bool)
    events = []  # (frame, column, value) for held scalar columns, reset to defaults when a new car spawns
    for car in player.car_serials:
        first = min(ev.rb[car][0], default=ev.actor_span[car][1])
        present_t[first:ev.actor_span[car][1]] = True
        events += [(ev.actor_span[car][0], col, default) for col, default in _DEFAULTS.items()]
        events += ev.car_values.get(car, [])
        for comp in car_comps.get(car, []):
            events += ev.comp_values.get(comp, [])
    frame_e, col_e, value_e = (np.array(x) for x in zip(*events))
    for col in np.unique(col_e):
        car_tf[:, col] = hold(frame_e[col_e == col], value_e[col_e == col], num_frames)[:, 0]
    car_tf[:, BOOST] /= BOOST_SCALE
    for col in (IN_THROTTLE, IN_STEER):
        car_tf[:, col] = np.clip((car_tf[:, col] - 128.0) / 127.0, -1.0, 1.0)
    dodging_t = car_tf[:, IN_DODGE] == 1  # the recorded torque only means something during a dodge
    car_tf[~dodging_t, IN_DODGE_TORQUE] = 0.0
    fresh_frames = np.flatnonzero(fresh_t)
    for frame in demos:  # demolished until the car's next replicated sample (its respawn), at most 4 s
        nxt = fresh_frames[np.searchsorted(fresh_frames, frame, side="right"):]
        limit = int(np.searchsorted(ev.time_t, ev.time_t[frame] + MAX_DEMOLISHED_S))
        stop = min(int(nxt[0]) if len(nxt) else num_frames, limit)
        car_tf[frame:stop, DEMOLISHED] = 1.0
        present_t[frame:stop] = True
    car_tf[:, FRESH] = fresh_t & present_t
    car_tf[:, PRESENT] = present_t
    car_tf[:, [ON_GROUND, HAS_JUMP, HAS_FLIP]] = np.nan  # not in replays; the IDM fills them
    car_tf[~present_t, PHYSICS] = empty_frames(1, np.zeros(1)).cars_tpf[0, 0, PHYSICS]  # zeros, identity rotation
    car_tf[~present_t, RECORDED_INPUTS] = np.nan
    return car_tf


def _pad_timers(ev: NetworkEvents, cars_tpf: np.ndarray, car_player: dict, time_t: np.ndarray) -> np.ndarray:
    """(T, K) seconds until each pad is available, from pickups. Pad actors carry no location and the pickup
    reaches the replay up to ~0.5 s after the car drove over the pad, so each pickup is placed at the car's
    closest approach to a standard pad within the preceding PICKUP_WINDOW frames, and each pad actor is
    matched (by actor name) to the pad most of its pickups were closest to."""
    pickups = [(f, pad, car_player[car]) for f, pad, car in ev.pickups if car in car_player]
    t_n = len(time_t)
    last_pickup_tk = np.full((t_n, NUM_BOOST_PADS), -np.inf)
    if not pickups:
        return np.zeros((t_n, NUM_BOOST_PADS), np.float32)
    frame_e, pad_e, player_e = (np.array(x) for x in zip(*pickups))
    window_ew = np.clip(frame_e[:, None] - np.arange(PICKUP_WINDOW)[None, :], 0, None)  # (E, W) frames
    xy_ew2 = cars_tpf[window_ew, player_e[:, None], POS][..., :2]
    dist_ewk = np.linalg.norm(xy_ew2[:, :, None, :] - BOOST_PAD_LOCATIONS[None, None, :, :2], axis=3)
    dist_ek = dist_ewk.min(1)
    name_e = [ev.actor_name[pad] for pad in pad_e.tolist()]  # pad actors are re-created under the same name
    votes: dict[str, list[int]] = {}
    for name, k, dist in zip(name_e, dist_ek.argmin(1).tolist(), dist_ek.min(1).tolist()):
        if dist < PAD_MATCH_UU:
            votes.setdefault(name, []).append(k)
    pad_index = {name: int(np.bincount(v).argmax()) for name, v in votes.items()}
    k_e = np.array([pad_index.get(name, -1) for name in name_e])
    e = np.flatnonzero(k_e >= 0)
    when_e = window_ew[e, dist_ewk[e, :, k_e[e]].argmin(1)]  # frame of closest approach to the matched pad
    for k in np.unique(k_e[e]):
        frames = when_e[k_e[e] == k]
        last_pickup_tk[:, k] = hold(frames, time_t[frames], t_n, -np.inf)[:, 0]
    return np.clip(BOOST_PAD_RESPAWN_S - (time_t[:, None] - last_pickup_tk), 0.0, None).astype(np.float32)


def _game_columns(ev: NetworkEvents, num_frames: int) -> np.ndarray:
    """(T, GAME_F): scores, clock, overtime held from their replicated values; KICKOFF_PAUSE from the round
    countdown starting until the ball is first hit."""
    game_tf = np.zeros((num_frames, GAME_F))
    for col in range(GAME_F):
        sel = [(f, v) for f, c, v in ev.game if c == col]
        if sel:
            held = hold(np.array([f for f, _ in sel]), np.array([v for _, v in sel]), num_frames)[:, 0]
            first = held[np.isfinite(held)][0]
            game_tf[:, col] = np.where(np.isnan(held), first if col == SECONDS_REMAINING else 0.0, held)
    pause = [(f, 1.0) for f, c, v in ev.game if c == GAME_COUNTDOWN and v > 0]
    pause += [(f, 1.0 - v) for f, c, v in ev.game if c == GAME_KICKOFF_HIT]
    if pause:
        pause.sort(key=lambda e: e[0])
        game_tf[:, KICKOFF_PAUSE] = hold(np.array([f for f, _ in pause]), np.array([v for _, v in pause]),
                                         num_frames, 1.0)[:, 0]
    game_tf[:, IS_OVERTIME] = game_tf[:, IS_OVERTIME] > 0
    return game_tf


def _segments(ev: NetworkEvents, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Kickoff-to-goal play: segment_t (T,) int16 id or -1 (countdown, goal replays, resets) and
    segments (S, 3) int32 [start, stop (exclusive), scoring team or -1 when the play ended without a goal]."""
    starts = [f for f, c, v in ev.game if c == GAME_COUNTDOWN and v == 0]
    countdowns = [f for f, c, v in ev.game if c == GAME_COUNTDOWN and v > 0]
    last_score = {0: 0, 1: 0}
    goals = []
    for frame, team, score in ev.team_scores:
        if score > last_score[team]:
            goals.append((frame, team))
        last_score[team] = score
    if not starts:  # a clip without a kickoff: one segment from the first frame
        starts = [0]
    segs = []
    for i, start in enumerate(starts):
        bound = min([f for f in countdowns if f > start] + [starts[i + 1] if i + 1 < len(starts) else num_frames])
        goal = next(((f, team) for f, team in goals if start <= f < bound), None)
        segs.append((start, goal[0] + 1 if goal else bound, goal[1] if goal else -1))
    segment_t = np.full(num_frames, -1, np.int16)
    for i, (start, stop, _) in enumerate(segs):
        segment_t[start:stop] = i
    return segment_t, np.array(segs, np.int32).reshape(-1, 3)


def events_to_frames(ev: NetworkEvents) -> tuple[Frames, np.ndarray, np.ndarray, list[Player]]:
    """Frames (T frames, P players), segment_t (T,), segments (S, 3) and the players in column order."""
    t_n = len(ev.time_t)
    players = _players(ev)
    frames = empty_frames(t_n, np.array([p.team for p in players], np.int8))
    time_t = ev.time_t - ev.time_t[0]
    balls = sorted(s for s in ev.rb if ev.actor_class[s] == BALL)
    ball_phys, ball_fresh = _physics(balls, ev, t_n)
    frames.ball_tf[:, PHYSICS] = ball_phys
    frames.ball_tf[:, BALL_FRESH] = ball_fresh
    car_player = {car: i for i, p in enumerate(players) for car in p.car_serials}
    demos: dict[int, list[int]] = {}
    for frame, car in ev.demolitions:
        if car in car_player:
            demos.setdefault(car_player[car], []).append(frame)
    car_comps: dict[int, list[int]] = {}
    for comp, car in ev.comp_car.items():
        car_comps.setdefault(car, []).append(comp)
    for i, player in enumerate(players):
        frames.cars_tpf[:, i] = _car_columns(ev, player, t_n, demos.get(i, []), car_comps)
    segment_t, segments = _segments(ev, t_n)
    frames = Frames(time_t=time_t, game_tf=_game_columns(ev, t_n).astype(np.float32), ball_tf=frames.ball_tf,
                    cars_tpf=frames.cars_tpf, pads_tk=_pad_timers(ev, frames.cars_tpf, car_player, time_t),
                    team_p=frames.team_p)
    return frames, segment_t, segments, players

