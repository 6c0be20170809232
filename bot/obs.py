"""The policy's observation: one function for training (replay frames + IDM flags) and play (live packets).

Everything is in the acting player's team perspective (orange: every vector rotated 180 degrees about z,
forward and up included, pad order reversed), so blue and orange see the same game the same way.
Other cars come in fixed slots, teammates first then opponents, each with an explicit teammate flag and a
presence flag, so 1v1 to 3v3 share one shape.
"""

import numpy as np

from bot.actions import ACTION_TABLE
from bot.constants import BOOST_PAD_RESPAWN_S, CAR_MAX_ANG_VEL, CAR_MAX_SPEED, MAX_PLAYERS_PER_TEAM, ORANGE_TEAM
from bot.constants import PAD_PERM_ROTATE_180 as PAD_ORANGE_ORDER
from bot.frame import (
    ANG_VEL, BALL_F, BOOST, CAR_F, DEMOLISHED, FORWARD, HAS_FLIP, HAS_JUMP, ON_GROUND, POS, PRESENT, UP, VEL,
    reflect_rows,
)

POS_NORM, VEL_NORM, ANG_NORM = 2300.0, CAR_MAX_SPEED, CAR_MAX_ANG_VEL
MAX_OTHERS = 2 * MAX_PLAYERS_PER_TEAM - 1  # 5 other cars at most (3v3)
MATE_SLOTS = MAX_PLAYERS_PER_TEAM - 1  # slots 0-1 teammates, 2-4 opponents

# global block columns
G_BALL_POS, G_BALL_VEL, G_BALL_ANG_VEL = slice(0, 3), slice(3, 6), slice(6, 9)
G_PREV_ACTION = slice(9, 17)
G_PADS = slice(17, 51)  # seconds until available / respawn time, 0 = available
G_SELF = slice(51, 95)  # the player's own car block (CAR_OBS_F)
GLOBAL_F = 95

# car block columns (self and each other car)
C_POS, C_VEL, C_FORWARD, C_UP, C_ANG_VEL = (slice(i, i + 3) for i in range(0, 15, 3))
C_BOOST, C_ON_GROUND, C_HAS_JUMP, C_HAS_FLIP, C_DEMOLISHED = 15, 16, 17, 18, 19
C_BALL_REL_POS, C_BALL_REL_VEL = slice(20, 23), slice(23, 26)  # ball minus car
C_SELF_REL_POS = slice(26, 29)  # car minus the acting player's car (0 for self)
# The same relations in a car's own axes (forward, side = forward x up, up), so "the ball is to my left" is
# one number instead of a product the network has to learn. Side flips sign under a mirror, as it should.
C_LOCAL_BALL_POS, C_LOCAL_BALL_VEL, C_LOCAL_VEL = slice(29, 32), slice(32, 35), slice(35, 38)  # in this car's axes
C_LOCAL_REL_POS, C_LOCAL_REL_VEL = slice(38, 41), slice(41, 44)  # car minus me, in my axes (0 for self)
CAR_OBS_F = 44
# other-car extra columns
O_IS_MATE, O_PRESENT = 44, 45
OTHER_F = 46

# Team perspective as one multiply: the signs reflect_rows gives a 180-degree rotation (1 where it changes nothing).
ORANGE_SIGN_BALL_F = reflect_rows(np.ones(BALL_F, np.float32), True, True)
ORANGE_SIGN_CAR_F = reflect_rows(np.ones(CAR_F, np.float32), True, True)


# Columns of a car block copied from the Frames row, and the scale each gets (one gather and one multiply).
CAR_COPY_COLS = np.r_[POS, VEL, FORWARD, UP, ANG_VEL, BOOST, ON_GROUND, HAS_JUMP, HAS_FLIP, DEMOLISHED]
CAR_COPY_SCALE = np.r_[[1 / POS_NORM] * 3, [1 / VEL_NORM] * 3, [1.0] * 6, [1 / ANG_NORM] * 3,
                       [1.0] * 5].astype(np.float32)
C_COPIED = slice(0, C_DEMOLISHED + 1)  # C_POS .. C_DEMOLISHED, in CAR_COPY_COLS order
C_BALL_REL = slice(C_BALL_REL_POS.start, C_BALL_REL_VEL.stop)
POS_VEL = slice(0, 6)  # POS then VEL, in both ball and car rows
assert (POS.stop, VEL.stop, ANG_VEL.stop) == (3, 6, 9) and C_BALL_REL_POS.start == C_DEMOLISHED + 1
POS_VEL_SCALE = np.r_[[1 / POS_NORM] * 3, [1 / VEL_NORM] * 3].astype(np.float32)
BALL_COPY_SCALE = np.r_[POS_VEL_SCALE, [1 / ANG_NORM] * 3].astype(np.float32)  # ball POS, VEL, ANG_VEL
# ball minus car (position, velocity) and the car's own velocity, the three vectors put into the car's axes
TO_CAR_AXES_COLS = np.r_[C_BALL_REL_POS, C_BALL_REL_VEL, C_VEL]
_NEXT, _PREV = np.array([1, 2, 0]), np.array([2, 0, 1])  # cross product index rotations


def _finite_or_zero(x: np.ndarray) -> np.ndarray:
    """float32 copy with NaN (unknown replay fields) and infinities (broken input) set to 0."""
    x = x.astype(np.float32)
    return np.where(np.isfinite(x), x, np.float32(0))


def _car_blocks(cars_bnf: np.ndarray, ball_bf: np.ndarray, self_b: np.ndarray) -> np.ndarray:
    """(B, N, CAR_F) car rows in team perspective, the acting car's index into N (B,) -> (B, N, CAR_OBS_F).

    One call covers every car, the acting one included, in few numpy calls: the bot builds one observation per
    decision, and at batch 1 numpy costs per call, not per number.
    """
    b, n = cars_bnf.shape[:2]
    ar = np.arange(b)
    out = np.empty((b, n, CAR_OBS_F), np.float32)
    out[..., C_COPIED] = cars_bnf[..., CAR_COPY_COLS] * CAR_COPY_SCALE
    out[..., C_BALL_REL] = (ball_bf[:, None, POS_VEL] - cars_bnf[..., POS_VEL]) * POS_VEL_SCALE
    me = cars_bnf[ar, self_b]  # (B, CAR_F)
    rel_me = (cars_bnf[..., POS_VEL] - me[:, None, POS_VEL]) * POS_VEL_SCALE  # (B, N, 6) car minus me
    out[..., C_SELF_REL_POS] = rel_me[..., :3]
    fwd, up = cars_bnf[..., FORWARD], cars_bnf[..., UP]  # (B, N, 3)
    side = fwd[..., _NEXT] * up[..., _PREV] - fwd[..., _PREV] * up[..., _NEXT]  # forward x up
    axes = np.concatenate([fwd, side, up], -1).reshape(b, n, 3, 3)  # (B, N, 3, 3) rows: forward, side, up
    vectors = out[..., TO_CAR_AXES_COLS].reshape(b, n, 3, 3)  # (B, N, K, 3)
    out[..., C_LOCAL_BALL_POS.start:C_LOCAL_VEL.stop] = np.einsum("bnkj,bnij->bnki", vectors, axes).reshape(b, n, 9)
    my_axes = axes[ar, self_b]  # (B, 3, 3)
    out[..., C_LOCAL_REL_POS.start:C_LOCAL_REL_VEL.stop] = np.einsum(
        "bnkj,bij->bnki", rel_me.reshape(b, n, 2, 3), my_axes).reshape(b, n, 6)
    return out


def build_obs(ball_bf: np.ndarray, cars_bpf: np.ndarray, pads_bk: np.ndarray, team_bp: np.ndarray,
              self_b: np.ndarray, prev_action_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """B moments -> (global (B, GLOBAL_F), others (B, MAX_OTHERS, OTHER_F)) float32.

    ball_bf (B, BALL_F) and cars_bpf (B, P, CAR_F) are world-frame Frames rows (P <= 6 cars, PRESENT marks
    real ones); pads_bk (B, 34) seconds until available; team_bp (B, P); self_b (B,) acting car slot;
    prev_action_b (B,) the action index taken in the previous step. Unknown flags (NaN) and non-finite values
    become 0.
    """
    b, p = cars_bpf.shape[:2]
    ar = np.arange(b)
    my_team = team_bp[ar, self_b]  # (B,)
    orange = my_team == ORANGE_TEAM
    sign_car = np.where(orange[:, None, None], ORANGE_SIGN_CAR_F, np.float32(1))  # (B, 1, CAR_F)
    sign_ball = np.where(orange[:, None], ORANGE_SIGN_BALL_F, np.float32(1))  # (B, BALL_F)
    cars = _finite_or_zero(cars_bpf) * sign_car  # (B, P, CAR_F)
    ball = _finite_or_zero(ball_bf) * sign_ball  # (B, BALL_F)
    pads = np.where(orange[:, None], pads_bk[:, PAD_ORANGE_ORDER], pads_bk) / BOOST_PAD_RESPAWN_S  # (B, K)

    blocks = _car_blocks(cars, ball, self_b)  # (B, P, CAR_OBS_F)
    glob = np.zeros((b, GLOBAL_F), np.float32)
    glob[:, G_BALL_POS.start:G_BALL_ANG_VEL.stop] = ball[:, :ANG_VEL.stop] * BALL_COPY_SCALE
    glob[:, G_PREV_ACTION] = ACTION_TABLE[prev_action_b]
    glob[:, G_PADS] = pads
    glob[:, G_SELF] = blocks[ar, self_b]

    # other cars into fixed slots: teammates (by slot order) in 0..1, opponents in 2..4
    present = (cars[..., PRESENT] > 0.5) & (np.arange(p)[None, :] != self_b[:, None])  # (B, P)
    mate = team_bp == my_team[:, None]  # (B, P)
    rank_mate = np.cumsum(present & mate, 1) - 1  # (B, P) order among present teammates
    rank_opp = np.cumsum(present & ~mate, 1) - 1
    slot = np.where(mate, rank_mate, MATE_SLOTS + rank_opp)  # (B, P)
    keep = present & (np.where(mate, rank_mate < MATE_SLOTS, rank_opp < MAX_PLAYERS_PER_TEAM))
    others = np.zeros((b, MAX_OTHERS, OTHER_F), np.float32)
    bi, pi = np.nonzero(keep)
    others[bi, slot[bi, pi], :CAR_OBS_F] = blocks[bi, pi]
    others[bi, slot[bi, pi], O_IS_MATE] = mate[bi, pi]
    others[bi, slot[bi, pi], O_PRESENT] = 1.0
    return glob, others
