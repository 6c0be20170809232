"""Game constants and units, in one place.

Units everywhere in the project: positions in unreal units (uu), velocities in uu/s, angular velocities in
rad/s, time in seconds, boost in 0..1. World frame as in RLBot and RocketSim: blue defends -y, +x is left
from blue's view, z is up.
"""

import numpy as np

TICK_RATE = 120  # physics ticks per second (Rocket League, RocketSim)
FRAME_RATE = 30  # replay and training frame rate, frames per second
TICKS_PER_FRAME = TICK_RATE // FRAME_RATE  # 4 physics ticks per recorded frame

BLUE_TEAM, ORANGE_TEAM = 0, 1
MAX_PLAYERS_PER_TEAM = 3  # the observation and models support 1v1 to 3v3

# Field (uu)
SIDE_WALL_X = 4096.0
BACK_WALL_Y = 5120.0
CEILING_Z = 2044.0
GOAL_LINE_Y = 5120.0  # the ball's centre crosses |y| > 5124.25 + ball radius in the game
BALL_RADIUS = 91.25
BALL_REST_Z = 93.15  # RocketSim; the game reports 92.75

# Car limits
CAR_MAX_SPEED = 2300.0  # uu/s
CAR_MAX_ANG_VEL = 5.5  # rad/s
BALL_MAX_SPEED = 6000.0  # uu/s
BALL_MAX_ANG_VEL = 6.0  # rad/s

# Boost pads, in the standard RLBot / RocketSim order (nexto-teacher.md §10). z = 73 for big pads.
BOOST_PAD_LOCATIONS = np.array([
    (0, -4240, 70), (-1792, -4184, 70), (1792, -4184, 70), (-3072, -4096, 73), (3072, -4096, 73),
    (-940, -3308, 70), (940, -3308, 70), (0, -2816, 70), (-3584, -2484, 70), (3584, -2484, 70),
    (-1788, -2300, 70), (1788, -2300, 70), (-2048, -1036, 70), (0, -1024, 70), (2048, -1036, 70),
    (-3584, 0, 73), (-1024, 0, 70), (1024, 0, 70), (3584, 0, 73), (-2048, 1036, 70), (0, 1024, 70),
    (2048, 1036, 70), (-1788, 2300, 70), (1788, 2300, 70), (-3584, 2484, 70), (3584, 2484, 70),
    (0, 2816, 70), (-940, 3308, 70), (940, 3308, 70), (-3072, 4096, 73), (3072, 4096, 73),
    (-1792, 4184, 70), (1792, 4184, 70), (0, 4240, 70),
], dtype=np.float32)  # (K, 3) uu
NUM_BOOST_PADS = len(BOOST_PAD_LOCATIONS)
BOOST_PAD_IS_BIG = BOOST_PAD_LOCATIONS[:, 2] > 72  # (K,) bool
BOOST_PAD_RESPAWN_S = np.where(BOOST_PAD_IS_BIG, 10.0, 4.0).astype(np.float32)  # (K,) s


def _pad_permutation(sign_x: float, sign_y: float) -> np.ndarray:
    """Index map j -> the pad sitting at (sign_x * x_j, sign_y * y_j)."""
    target = BOOST_PAD_LOCATIONS[:, :2] * np.array([sign_x, sign_y], dtype=np.float32)
    dist = np.abs(target[:, None, :] - BOOST_PAD_LOCATIONS[None, :, :2]).sum(-1)  # (K, K)
    return dist.argmin(1)


# Pad permutations under the field's symmetries: pads[PAD_PERM_FLIP_X] is the pad vector seen in a world
# reflected left-right. Rotating 180 degrees (the orange view) reverses the standard order.
PAD_PERM_FLIP_X = _pad_permutation(-1, 1)
PAD_PERM_FLIP_Y = _pad_permutation(1, -1)
PAD_PERM_ROTATE_180 = _pad_permutation(-1, -1)

SEED_ENV = "RLRPT_SEED"  # a game seed that the simulated arena hands its agents (bot.bot.agent_rng); RLBot sets none
