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
    ANG_VEL, BOOST, DEMOLISHED, FORWARD, HAS_FLIP, HAS_JUMP, ON_GROUND, POS, PRESENT, UP, VEL, reflect_rows,
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


def _to_local(v_bn3: np.ndarray, forward_bn3: np.ndarray, up_bn3: np.ndarray) -> np.ndarray:
    """Vectors in the world frame -> components along (forward, forward x up, up) of the given cars."""
    side = np.cross(forward_bn3, up_bn3)
    return np.stack([(v_bn3 * forward_bn3).sum(-1), (v_bn3 * side).sum(-1), (v_bn3 * up_bn3).sum(-1)], -1)


def _car_blocks(cars_bnf: np.ndarray, ball_bf: np.ndarray, me_bf: np.ndarray) -> np.ndarray:
    """(B, N, CAR_F) car rows in team perspective, and the acting car's row (B, CAR_F) -> (B, N, CAR_OBS_F)."""
    out = np.zeros(cars_bnf.shape[:2] + (CAR_OBS_F,), np.float32)
    out[..., C_POS] = cars_bnf[..., POS] / POS_NORM
    out[..., C_VEL] = cars_bnf[..., VEL] / VEL_NORM
    out[..., C_FORWARD] = cars_bnf[..., FORWARD]
    out[..., C_UP] = cars_bnf[..., UP]
    out[..., C_ANG_VEL] = cars_bnf[..., ANG_VEL] / ANG_NORM
    out[..., C_BOOST] = cars_bnf[..., BOOST]
    out[..., C_ON_GROUND] = cars_bnf[..., ON_GROUND]
    out[..., C_HAS_JUMP] = cars_bnf[..., HAS_JUMP]
    out[..., C_HAS_FLIP] = cars_bnf[..., HAS_FLIP]
    out[..., C_DEMOLISHED] = cars_bnf[..., DEMOLISHED]
    out[..., C_BALL_REL_POS] = (ball_bf[:, None, POS] - cars_bnf[..., POS]) / POS_NORM
    out[..., C_BALL_REL_VEL] = (ball_bf[:, None, VEL] - cars_bnf[..., VEL]) / VEL_NORM
    out[..., C_SELF_REL_POS] = (cars_bnf[..., POS] - me_bf[:, None, POS]) / POS_NORM
    fwd, up = cars_bnf[..., FORWARD], cars_bnf[..., UP]
    out[..., C_LOCAL_BALL_POS] = _to_local(out[..., C_BALL_REL_POS], fwd, up)
    out[..., C_LOCAL_BALL_VEL] = _to_local(out[..., C_BALL_REL_VEL], fwd, up)
    out[..., C_LOCAL_VEL] = _to_local(out[..., C_VEL], fwd, up)
    my_fwd, my_up = np.broadcast_to(me_bf[:, None, FORWARD], fwd.shape), np.broadcast_to(me_bf[:, None, UP], up.shape)
    out[..., C_LOCAL_REL_POS] = _to_local(out[..., C_SELF_REL_POS], my_fwd, my_up)
    out[..., C_LOCAL_REL_VEL] = _to_local((cars_bnf[..., VEL] - me_bf[:, None, VEL]) / VEL_NORM, my_fwd, my_up)
    return out


def build_obs(ball_bf: np.ndarray, cars_bpf: np.ndarray, pads_bk: np.ndarray, team_bp: np.ndarray,
              self_b: np.ndarray, prev_action_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """B moments -> (global (B, GLOBAL_F), others (B, MAX_OTHERS, OTHER_F)) float32.

    ball_bf (B, BALL_F) and cars_bpf (B, P, CAR_F) are world-frame Frames rows (P <= 6 cars, PRESENT marks
    real ones); pads_bk (B, 34) seconds until available; team_bp (B, P); self_b (B,) acting car slot;
    prev_action_b (B,) the action index taken in the previous step. Unknown flags (NaN) become 0.
    """
    b, p = cars_bpf.shape[:2]
    ar = np.arange(b)
    my_team = team_bp[ar, self_b]  # (B,)
    orange = my_team == ORANGE_TEAM
    cars = reflect_rows(np.nan_to_num(cars_bpf.astype(np.float32)), orange[:, None], orange[:, None])  # (B, P, F)
    ball = reflect_rows(np.nan_to_num(ball_bf.astype(np.float32)), orange, orange)  # (B, F)
    pads = np.where(orange[:, None], pads_bk[:, PAD_ORANGE_ORDER], pads_bk) / BOOST_PAD_RESPAWN_S  # (B, K)

    me = cars[ar, self_b]  # (B, F)
    glob = np.zeros((b, GLOBAL_F), np.float32)
    glob[:, G_BALL_POS] = ball[:, POS] / POS_NORM
    glob[:, G_BALL_VEL] = ball[:, VEL] / VEL_NORM
    glob[:, G_BALL_ANG_VEL] = ball[:, ANG_VEL] / ANG_NORM
    glob[:, G_PREV_ACTION] = ACTION_TABLE[prev_action_b]
    glob[:, G_PADS] = pads
    glob[:, G_SELF] = _car_blocks(me[:, None], ball, me)[:, 0]

    # other cars into fixed slots: teammates (by slot order) in 0..1, opponents in 2..4
    present = (cars[..., PRESENT] > 0.5) & (np.arange(p)[None, :] != self_b[:, None])  # (B, P)
    mate = team_bp == my_team[:, None]  # (B, P)
    rank_mate = np.cumsum(present & mate, 1) - 1  # (B, P) order among present teammates
    rank_opp = np.cumsum(present & ~mate, 1) - 1
    slot = np.where(mate, rank_mate, MATE_SLOTS + rank_opp)  # (B, P)
    keep = present & (np.where(mate, rank_mate < MATE_SLOTS, rank_opp < MAX_PLAYERS_PER_TEAM))
    others = np.zeros((b, MAX_OTHERS, OTHER_F), np.float32)
    blocks = _car_blocks(cars, ball, me)  # (B, P, CAR_OBS_F)
    bi, pi = np.nonzero(keep)
    others[bi, slot[bi, pi], :CAR_OBS_F] = blocks[bi, pi]
    others[bi, slot[bi, pi], O_IS_MATE] = mate[bi, pi]
    others[bi, slot[bi, pi], O_PRESENT] = 1.0
    return glob, others
