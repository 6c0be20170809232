"""The game moment: one schema for ball, cars and pads, fed by the simulator, replays and live packets.

A `Frames` holds T consecutive moments of one game with P cars, as plain numpy arrays, so a single moment is
simply T = 1. Columns are named slices defined here and nowhere else.

Axis letters used in array names across the project:
    B batch, T frames (time), P players (cars), E entities, F features, K boost pads (34), A actions (90).

Conventions: world frame of RLBot/RocketSim (blue defends -y, +x is left from blue's view), units of
bot/constants.py. Team perspective for orange = rotate the world 180 degrees about z (negate x and y of
every vector, forward and up included) and reverse the pad order; see `to_team_perspective`.
"""

from dataclasses import dataclass, replace

import numpy as np

from bot.constants import (
    BOOST_PAD_RESPAWN_S, NUM_BOOST_PADS, ORANGE_TEAM, PAD_PERM_FLIP_X, PAD_PERM_FLIP_Y, PAD_PERM_ROTATE_180,
    TICK_RATE,
)

# ---- physics block, shared by ball and cars (columns 0:15) ----
POS = slice(0, 3)  # position, uu
VEL = slice(3, 6)  # linear velocity, uu/s
ANG_VEL = slice(6, 9)  # angular velocity, rad/s (a pseudovector: see `reflect`)
FORWARD = slice(9, 12)  # unit vector along the car's nose (ball: its body x axis)
UP = slice(12, 15)  # unit vector out of the car's roof (ball: its body z axis)
PHYSICS = slice(0, 15)
LINEAR_VECTORS = (POS, VEL, FORWARD, UP)  # transform like positions under reflections
ANGULAR_VECTORS = (ANG_VEL,)

# ---- ball columns ----
BALL_FRESH = 15  # 1 if the ball's physics were replicated in this frame (always 1 in simulation)
BALL_F = 16

# ---- car columns ----
BOOST = 15  # boost amount, 0..1
DEMOLISHED = 16  # 0/1
ON_GROUND = 17  # 0/1: at least three wheels touching a surface (RocketSim is_on_ground, RLBot has_wheel_contact)
HAS_JUMP = 18  # 0/1: the first jump is still available; NaN where unknown (replays)
HAS_FLIP = 19  # 0/1: a second jump or dodge is still available; NaN where unknown (replays)
FRESH = 20  # 1 if this car's physics were freshly replicated in this frame (always 1 in simulation)
PRESENT = 21  # 1 if the car exists in this frame (replays: not yet joined, left, or between goal resets)
# Inputs as the replay records them; NaN where unknown (always NaN for simulator and packets).
IN_THROTTLE = 22  # -1..1
IN_STEER = 23  # -1..1
IN_HANDBRAKE = 24  # 0/1 (powerslide active)
IN_BOOST = 25  # 0/1 (boost active)
IN_JUMP = 26  # 0/1 (first jump component active)
IN_DOUBLE_JUMP = 27  # 0/1
IN_DODGE = 28  # 0/1
IN_DODGE_TORQUE = slice(29, 32)  # dodge torque the replay records while dodging, car frame
RECORDED_INPUTS = slice(22, 32)
CAR_F = 32

# ---- game columns ----
BLUE_SCORE = 0
ORANGE_SCORE = 1
SECONDS_REMAINING = 2  # game clock, s
KICKOFF_PAUSE = 3  # 0/1: a kickoff, from its countdown until the ball is first hit
IS_OVERTIME = 4  # 0/1
GAME_F = 5


@dataclass(frozen=True)
class Frames:
    """T moments of one game with P cars. Float arrays are float32 except `time_t` (float64 s)."""

    time_t: np.ndarray  # (T,) float64, seconds since the recording started
    game_tf: np.ndarray  # (T, GAME_F) float32, columns above
    ball_tf: np.ndarray  # (T, BALL_F) float32
    cars_tpf: np.ndarray  # (T, P, CAR_F) float32
    pads_tk: np.ndarray  # (T, K) float32, seconds until each pad is available again (0 = available)
    team_p: np.ndarray  # (P,) int8, 0 blue / 1 orange

    def __post_init__(self) -> None:
        t, p = self.cars_tpf.shape[:2]
        assert self.time_t.shape == (t,), self.time_t.shape
        assert self.game_tf.shape == (t, GAME_F), self.game_tf.shape
        assert self.ball_tf.shape == (t, BALL_F), self.ball_tf.shape
        assert self.cars_tpf.shape == (t, p, CAR_F), self.cars_tpf.shape
        assert self.pads_tk.shape == (t, NUM_BOOST_PADS), self.pads_tk.shape
        assert self.team_p.shape == (p,), self.team_p.shape

    @property
    def num_frames(self) -> int:
        return self.cars_tpf.shape[0]

    @property
    def num_cars(self) -> int:
        return self.cars_tpf.shape[1]

    def __getitem__(self, index) -> "Frames":
        """Slice along time: frames[10:20], frames[mask], frames[[3]] (always keeps the T axis)."""
        if isinstance(index, (int, np.integer)):
            index = slice(index, index + 1 if index != -1 else None)
        return replace(self, time_t=self.time_t[index], game_tf=self.game_tf[index], ball_tf=self.ball_tf[index],
                       cars_tpf=self.cars_tpf[index], pads_tk=self.pads_tk[index])

    def select_cars(self, order: np.ndarray) -> "Frames":
        """Reorder or subset cars along P."""
        return replace(self, cars_tpf=self.cars_tpf[:, order], team_p=self.team_p[order])

    def pads_available_tk(self) -> np.ndarray:
        """(T, K) float32 0/1: the pad can be picked up now."""
        return (self.pads_tk <= 0).astype(np.float32)


def empty_frames(num_frames: int, team_p: np.ndarray) -> Frames:
    """Zeroed frames with unknown replay-only fields set to NaN and identity rotations (forward +x, up +z)."""
    t, p = num_frames, len(team_p)
    ball = np.zeros((t, BALL_F), np.float32)
    cars = np.zeros((t, p, CAR_F), np.float32)
    for arr in (ball, cars):
        arr[..., FORWARD.start] = 1.0
        arr[..., UP.stop - 1] = 1.0
    ball[:, BALL_FRESH] = 1.0
    cars[..., FRESH] = 1.0
    cars[..., PRESENT] = 1.0
    cars[..., RECORDED_INPUTS] = np.nan
    return Frames(time_t=np.zeros(t), game_tf=np.zeros((t, GAME_F), np.float32), ball_tf=ball, cars_tpf=cars,
                  pads_tk=np.zeros((t, NUM_BOOST_PADS), np.float32), team_p=np.asarray(team_p, np.int8))


def concat_frames(parts: list[Frames]) -> Frames:
    """Join frame sequences of the same game (same cars) along time."""
    return Frames(time_t=np.concatenate([f.time_t for f in parts]),
                  game_tf=np.concatenate([f.game_tf for f in parts]),
                  ball_tf=np.concatenate([f.ball_tf for f in parts]),
                  cars_tpf=np.concatenate([f.cars_tpf for f in parts]),
                  pads_tk=np.concatenate([f.pads_tk for f in parts]), team_p=parts[0].team_p)


def reflect_rows(x_f: np.ndarray, flip_x, flip_y) -> np.ndarray:
    """Reflect the physics block of ball or car rows (..., F). `flip_x`/`flip_y` are bools or bool arrays that
    broadcast against x_f[..., 0] (one choice per sample). Angular velocity is a pseudovector: it also picks up
    the determinant sx * sy."""
    sx = np.where(flip_x, -1.0, 1.0).astype(np.float32)[..., None]  # (..., 1)
    sy = np.where(flip_y, -1.0, 1.0).astype(np.float32)[..., None]
    sign = np.concatenate([sx, sy, np.ones_like(sx)], -1)  # (..., 3)
    out = x_f.copy()
    for cols in LINEAR_VECTORS:
        out[..., cols] *= sign
    for cols in ANGULAR_VECTORS:
        out[..., cols] *= sx * sy * sign
    return out


def reflect(frames: Frames, flip_x: bool, flip_y: bool) -> Frames:
    """The same game in a world mirrored in x and/or y. Both flips together = rotation by 180 degrees.

    A single flip swaps left and right, so actions must be mirrored with `bot.actions.MIRROR` too.
    """
    if not (flip_x or flip_y):
        return frames
    perm = PAD_PERM_ROTATE_180 if (flip_x and flip_y) else (PAD_PERM_FLIP_X if flip_x else PAD_PERM_FLIP_Y)
    return replace(frames, ball_tf=reflect_rows(frames.ball_tf, flip_x, flip_y),
                   cars_tpf=reflect_rows(frames.cars_tpf, flip_x, flip_y), pads_tk=frames.pads_tk[:, perm])


def to_team_perspective(frames: Frames, team: int) -> Frames:
    """The game as `team` sees it: unchanged for blue; for orange rotated 180 degrees (every vector, forward
    and up included) with the pad order reversed, so orange also defends -y."""
    return reflect(frames, True, True) if team == ORANGE_TEAM else frames


def pad_timers_from_active(active_k: np.ndarray, seconds_since_pickup_k: np.ndarray | None = None) -> np.ndarray:
    """(K,) seconds until available from is_active flags and, when known, the time since each pickup."""
    active_k = np.asarray(active_k, bool)
    if seconds_since_pickup_k is None:
        remaining = BOOST_PAD_RESPAWN_S
    else:
        remaining = BOOST_PAD_RESPAWN_S - np.asarray(seconds_since_pickup_k, np.float32)
    # an inactive pad is never reported as available, even when its timer has just run out
    return np.where(active_k, 0.0, np.clip(remaining, 1.0 / TICK_RATE, None)).astype(np.float32)
