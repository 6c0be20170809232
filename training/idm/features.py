"""IDM input: a window of frames around the labelled moment, seen from one car, built from Frames rows.

One function (`window_features`) serves simulated and replay data. Per frame the features are the target car
(absolute position, so walls and ceiling are visible), the ball and the nearest other car relative to it.
Quadrant normalisation: the whole window is reflected so the target car sits at x >= 0, y >= 0 in the centre
frame; when exactly one axis was flipped, left and right swapped, so labels go through `MIRROR`.
`hold_frames` imitates replays, where a car's physics repeat between network updates.

With `motion=True` each frame also gets the target car's motion in its own axes (forward, side, up): its
velocity and spin, their change to the next frame with the boost it used, and whether the frame is a fresh
sample. An action shows up as exactly these changes (throttle and boost along forward, steer and handbrake as
yaw rate and side slip, air controls as spin changes), which an MLP on absolute world vectors has to learn to
subtract and rotate by itself.
"""

import numpy as np

from bot.constants import BALL_RADIUS, CAR_MAX_ANG_VEL, CAR_MAX_SPEED
from bot.frame import ANG_VEL, BOOST, DEMOLISHED, FORWARD, FRESH, POS, PRESENT, UP, VEL, reflect_rows

POS_NORM = 2300.0  # uu
VEL_NORM = CAR_MAX_SPEED  # uu/s
ANG_NORM = CAR_MAX_ANG_VEL  # rad/s
BALL_NEAR_UU = 4 * BALL_RADIUS
CAR_NEAR_UU = 300.0

# per-frame IDM feature columns
SELF_POS, SELF_VEL, SELF_FORWARD, SELF_UP, SELF_ANG_VEL = (slice(i, i + 3) for i in range(0, 15, 3))
SELF_BOOST, SELF_DEMOLISHED, IN_EPISODE = 15, 16, 17
BALL_REL_POS, BALL_VEL, BALL_ANG_VEL = slice(18, 21), slice(21, 24), slice(24, 27)
BALL_NEAR = 27
OTHER_REL_POS, OTHER_VEL, OTHER_FORWARD, OTHER_UP, OTHER_ANG_VEL = (slice(i, i + 3) for i in range(28, 43, 3))
OTHER_NEAR, OTHER_IS_MATE = 43, 44
IDM_F = 45
# motion columns (motion=True), in the car's own axes (forward, side = forward x up, up)
LOCAL_VEL, LOCAL_ANG_VEL, NEXT_DVEL, NEXT_DANG_VEL = (slice(i, i + 3) for i in range(45, 57, 3))
NEXT_DBOOST = 57
SELF_FRESH = 58  # 1 where the car's physics are a new sample (replays' FRESH flag; 0 on held frames)
MOTION_IDM_F = 59
DVEL_NORM = 100.0  # uu/s per frame: boost ~33, throttle up to ~53, a jump ~290
DANG_NORM = 1.0  # rad/s per frame: air pitch ~0.4, yaw ~0.3, roll ~1.3
DBOOST_NORM = 0.01  # boost (0..1) per frame: boosting uses ~0.011; pickups are clipped


def window_rows(t_b: np.ndarray, start_b: np.ndarray, stop_b: np.ndarray, half_width: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (B, W) of the window around rows t_b, edge-padded inside [start, stop), and (B, W) bool
    marking real (unpadded) frames. W = 2 * half_width + 1."""
    offsets = np.arange(-half_width, half_width + 1)
    rows = t_b[:, None] + offsets[None, :]  # (B, W)
    inside = (rows >= start_b[:, None]) & (rows < stop_b[:, None])
    return np.clip(rows, start_b[:, None], stop_b[:, None] - 1), inside


def last_fresh(fresh_bw: np.ndarray) -> np.ndarray:
    """(B, W) index of the latest fresh frame at or before each frame (the first frame always counts as fresh)."""
    fresh = fresh_bw.copy()
    fresh[:, 0] = True
    return np.maximum.accumulate(np.where(fresh, np.arange(fresh.shape[1])[None, :], 0), axis=1)


def hold_frames(x_bw_: np.ndarray, fresh_bw: np.ndarray) -> np.ndarray:
    """Replace every non-fresh frame by the last fresh one before it (the first frame always counts as fresh).
    x is (B, W, ...); fresh_bw is (B, W) bool."""
    return x_bw_[np.arange(len(fresh_bw))[:, None], last_fresh(fresh_bw)]


def interpolate_held(x_bwf: np.ndarray, fresh_bw: np.ndarray, columns: list[slice]) -> np.ndarray:
    """Held frames' `columns` replaced by the straight line between the fresh samples on either side (frames after
    the window's last fresh sample stay held; the first frame counts as fresh, as in `hold_frames`).

    Why: in a held stretch the motion shows as nothing and then all at once on the next fresh frame; a line spreads
    it back over the frames it happened in, which is the best guess of the motion at each of them."""
    b, w = fresh_bw.shape
    frame = np.arange(w)[None, :]
    last = last_fresh(fresh_bw)  # (B, W)
    after = np.minimum.accumulate(np.where(fresh_bw, frame, w)[:, ::-1], axis=1)[:, ::-1]  # first fresh at or after
    alpha = np.where(after < w, (frame - last) / np.maximum(after - last, 1), 0.0)[..., None]  # (B, W, 1)
    rows = np.arange(b)[:, None]
    before, later = x_bwf[rows, last], x_bwf[rows, np.minimum(after, w - 1)]  # (B, W, F) each
    out = x_bwf.copy()
    for col in columns:
        out[..., col] = (1 - alpha) * before[..., col] + alpha * later[..., col]
    return out


def sample_fresh_mask(rng: np.random.Generator, shape: tuple[int, ...], gap_probs: np.ndarray) -> np.ndarray:
    """(..., W) bool: fresh frames separated by gaps drawn from gap_probs[g-1] = P(next update g frames later)."""
    *lead, w = shape
    n = int(np.prod(lead)) if lead else 1
    gaps = rng.choice(np.arange(1, len(gap_probs) + 1), size=(n, w), p=gap_probs)  # (N, W) more than enough
    phase = rng.integers(0, len(gap_probs), size=(n, 1))  # start mid-gap
    pos = np.cumsum(gaps, axis=1) - phase  # update frame positions
    fresh = np.zeros((n, w), bool)
    rows, cols = np.nonzero((pos >= 0) & (pos < w))
    fresh[rows, pos[rows, cols]] = True
    return fresh.reshape(*lead, w)


def in_axes(axes_bw33: np.ndarray, v_bw3: np.ndarray) -> np.ndarray:
    """World vectors (B, W, 3) -> their components along the rows of axes (B, W, 3, 3)."""
    return np.einsum("bwij,bwj->bwi", axes_bw33, v_bw3)


def window_features(cars_bwpf: np.ndarray, ball_bwf: np.ndarray, target_b: np.ndarray, team_p: np.ndarray,
                    in_episode_bw: np.ndarray, motion: bool = False, interpolate: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Frames rows of B windows -> IDM features (B, W, IDM_F or MOTION_IDM_F) float32 and (B,) bool "labels
    must be mirrored". With `interpolate`, the target car's held frames (FRESH = 0) are first filled in on the line
    between its fresh samples (`interpolate_held`); clean windows are unchanged.

    cars_bwpf: (B, W, P, CAR_F); ball_bwf: (B, W, BALL_F); target_b: (B,) car slot; team_p: (P,) or (B, P).
    """
    b, w, p, _ = cars_bwpf.shape
    centre = w // 2
    arange_b = np.arange(b)
    centre_pos = cars_bwpf[arange_b, centre, target_b][:, POS]  # (B, 3)
    flip_x, flip_y = centre_pos[:, 0] < 0, centre_pos[:, 1] < 0
    cars = reflect_rows(np.nan_to_num(cars_bwpf), flip_x[:, None, None], flip_y[:, None, None])  # (B, W, P, F)
    ball = reflect_rows(np.nan_to_num(ball_bwf), flip_x[:, None], flip_y[:, None])  # (B, W, F)
    me = cars[arange_b, :, target_b]  # (B, W, F)
    if interpolate:
        me = interpolate_held(me, me[..., FRESH] > 0.5, [POS, VEL, ANG_VEL, FORWARD, UP])
        for axis in (FORWARD, UP):
            me[..., axis] /= np.maximum(np.linalg.norm(me[..., axis], axis=-1, keepdims=True), 1e-6)

    out = np.zeros((b, w, MOTION_IDM_F if motion else IDM_F), np.float32)
    out[..., SELF_POS] = me[..., POS] / POS_NORM
    out[..., SELF_VEL] = me[..., VEL] / VEL_NORM
    out[..., SELF_FORWARD] = me[..., FORWARD]
    out[..., SELF_UP] = me[..., UP]
    out[..., SELF_ANG_VEL] = me[..., ANG_VEL] / ANG_NORM
    out[..., SELF_BOOST] = me[..., BOOST]
    out[..., SELF_DEMOLISHED] = me[..., DEMOLISHED]
    out[..., IN_EPISODE] = in_episode_bw

    ball_rel = ball[..., POS] - me[..., POS]  # (B, W, 3)
    out[..., BALL_REL_POS] = ball_rel / POS_NORM
    out[..., BALL_VEL] = ball[..., VEL] / VEL_NORM
    out[..., BALL_ANG_VEL] = ball[..., ANG_VEL] / ANG_NORM
    out[..., BALL_NEAR] = np.linalg.norm(ball_rel, axis=-1) < BALL_NEAR_UU

    rel = cars[..., POS] - me[:, :, None, POS]  # (B, W, P, 3)
    dist = np.linalg.norm(rel, axis=-1)  # (B, W, P)
    dist[cars[..., PRESENT] < 0.5] = np.inf
    dist[arange_b, :, target_b] = np.inf
    nearest = dist.argmin(-1)  # (B, W)
    has_other = np.isfinite(dist.min(-1))  # (B, W)
    bi, wi = np.meshgrid(arange_b, np.arange(w), indexing="ij")
    other = cars[bi, wi, nearest]  # (B, W, F)
    keep = has_other[..., None].astype(np.float32)
    out[..., OTHER_REL_POS] = rel[bi, wi, nearest] / POS_NORM * keep
    out[..., OTHER_VEL] = other[..., VEL] / VEL_NORM * keep
    out[..., OTHER_FORWARD] = other[..., FORWARD] * keep
    out[..., OTHER_UP] = other[..., UP] * keep
    out[..., OTHER_ANG_VEL] = other[..., ANG_VEL] / ANG_NORM * keep
    out[..., OTHER_NEAR] = has_other & (dist[bi, wi, nearest] < CAR_NEAR_UU)
    team = np.broadcast_to(team_p, (b, p))
    out[..., OTHER_IS_MATE] = has_other & (team[bi, nearest] == team[arange_b, target_b][:, None])
    if motion:  # the target car's motion in its own axes, and its change to the next frame (0 on the last)
        axes = np.stack([me[..., FORWARD], np.cross(me[..., FORWARD], me[..., UP]), me[..., UP]], -2)  # (B, W, 3, 3)
        vel, spin = me[..., VEL], me[..., ANG_VEL]
        out[..., LOCAL_VEL] = in_axes(axes, vel) / VEL_NORM
        out[..., LOCAL_ANG_VEL] = in_axes(axes, spin) / ANG_NORM
        out[:, :-1, NEXT_DVEL] = in_axes(axes[:, :-1], np.diff(vel, axis=1)) / DVEL_NORM
        out[:, :-1, NEXT_DANG_VEL] = in_axes(axes[:, :-1], np.diff(spin, axis=1)) / DANG_NORM
        out[:, :-1, NEXT_DBOOST] = np.clip(np.diff(me[..., BOOST], axis=1) / DBOOST_NORM, -3.0, 3.0)
        out[..., SELF_FRESH] = me[..., FRESH]
    return out, flip_x ^ flip_y
