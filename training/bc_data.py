"""Behaviour-cloning samples from parsed replays + IDM labels: observations, targets, filters, split by replay.

Kept: frames in kickoff-to-goal play where the acting player is present, not demolished, labelled, and its
physics were freshly replicated in that frame (FRESH). Dropped: kickoff standing-still frames (ball at the
centre, the car not moving, the label without throttle). Every car's on_ground / has_jump / has_flip comes
from the IDM (replays do not carry them), as the bot will read them from the packet at play time. Optionally
every car's boost amount is rebuilt between the replay's rare updates of it (`reconstruct_boost`) and held
positions are moved on by their velocity (`extrapolate_held`), as the bot reads both at play time.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.actions import ACTION_TABLE, MIRROR, NOOP_ACTION, THROTTLE
from bot.constants import PAD_PERM_FLIP_X
from bot.frame import (
    BALL_FRESH, BOOST, DEMOLISHED, FRESH, HAS_FLIP, HAS_JUMP, IN_BOOST, ON_GROUND, POS, PRESENT, VEL, reflect_rows,
)
from bot.obs import build_obs
from training.replays.frames import extrapolate_held, reconstruct_boost
from training.storage import read_shard


@dataclass
class BCSamples:
    glob_bf: np.ndarray  # (N, GLOBAL_F) float32
    others_bof: np.ndarray  # (N, MAX_OTHERS, OTHER_F) float32
    action_b: np.ndarray  # (N,) int64 IDM label
    replay_b: np.ndarray  # (N,) int32 index into `replays`
    mirrored_b: np.ndarray  # (N,) bool: a left-right mirrored copy (training augmentation, never validated on)
    replays: list[str]

    def __len__(self) -> int:
        return len(self.action_b)


def is_validation_replay(name: str, every: int = 10) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % every == 0


def replay_samples(arrays: dict, labels: dict, mirror: bool = False, reconstruct: bool = False,
                   extrapolate: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations and targets of one replay: (glob (N, G), others (N, O, F), action (N,)).

    `mirror` gives the same play in a world mirrored left-right (x negated, pads and actions mirrored): humans
    are not perfectly symmetric, but the game is, and the mirrored copy doubles the data a small corpus offers.
    `reconstruct` rebuilds every car's boost amount between the replay's updates of it (else: held, stale);
    `extrapolate` moves the ball and every car on from their last physics sample by its velocity.
    """
    cars = np.array(arrays["cars_tpf"], np.float32)  # (T, P, F), a copy: flags are overwritten below
    ball, pads = np.asarray(arrays["ball_tf"]), np.asarray(arrays["pads_tk"])
    team = np.asarray(arrays["team_p"])
    segment_t = np.asarray(arrays["segment_t"])
    action = np.asarray(labels["action_tp"]).astype(np.int64)  # (T, P), -1 = unlabelled
    flags = np.asarray(labels["flags_tp3"], np.float32)  # (T, P, 3)
    cars[..., [ON_GROUND, HAS_JUMP, HAS_FLIP]] = (flags > 0.5).astype(np.float32)
    if reconstruct:
        cars[..., BOOST] = reconstruct_boost(cars[..., BOOST], cars[..., IN_BOOST])
    if extrapolate:
        time_t = np.asarray(arrays["time_t"])
        ball = ball.copy()
        ball[:, POS] = extrapolate_held(ball[:, None, POS], ball[:, None, VEL], ball[:, None, BALL_FRESH] > 0.5,
                                        time_t)[:, 0]
        moved = extrapolate_held(cars[..., POS], cars[..., VEL], cars[..., FRESH] > 0.5, time_t)
        still = (cars[..., DEMOLISHED] > 0.5) | (cars[..., PRESENT] < 0.5)  # a wreck or no car stays put
        cars[..., POS] = np.where(still[..., None], cars[..., POS], moved)

    keep = ((segment_t[:, None] >= 0) & (cars[..., PRESENT] > 0.5) & (cars[..., FRESH] > 0.5)
            & (cars[..., DEMOLISHED] < 0.5) & (action >= 0))  # (T, P)
    standing = ((np.abs(ball[:, None, POS.start]) < 1) & (np.abs(ball[:, None, POS.start + 1]) < 1)
                & (np.linalg.norm(cars[..., VEL][..., :2], axis=-1) < 1)
                & (ACTION_TABLE[np.maximum(action, 0), THROTTLE] == 0))
    rows, slots = np.nonzero(keep & ~standing)
    prev = np.where(rows > 0, action[np.maximum(rows - 1, 0), slots], NOOP_ACTION)
    same_segment = (rows > 0) & (segment_t[np.maximum(rows - 1, 0)] == segment_t[rows])
    prev = np.where(same_segment & (prev >= 0), prev, NOOP_ACTION)
    ball_n, cars_n, pads_n, target = ball[rows], cars[rows], pads[rows], action[rows, slots]
    if mirror:
        ball_n, cars_n = reflect_rows(ball_n, True, False), reflect_rows(cars_n, True, False)
        pads_n = pads_n[:, PAD_PERM_FLIP_X]
        prev, target = MIRROR[prev], MIRROR[target]
    glob, others = build_obs(ball_n, cars_n, pads_n, np.broadcast_to(team, (len(rows), len(team))), slots, prev)
    return glob, others, target


def load_bc_samples(replays: Path, labels: Path, mirror: bool = False, reconstruct: bool = False,
                    extrapolate: bool = False) -> BCSamples:
    """All usable samples of every labelled replay (and their mirrored copies with `mirror`)."""
    names = sorted(p.name for p in Path(labels).iterdir() if (p / "meta.json").is_file())
    if not names:
        raise FileNotFoundError(f"no labelled replays in {labels}: run `python -m training label` first")
    globs, others, actions, replay_ids, mirrored = [], [], [], [], []
    for i, name in enumerate(names):
        arrays, _ = read_shard(Path(replays) / name)
        lab, _ = read_shard(Path(labels) / name)
        for flip in (False, True) if mirror else (False,):
            g, o, a = replay_samples(arrays, lab, mirror=flip, reconstruct=reconstruct, extrapolate=extrapolate)
            globs.append(g)
            others.append(o)
            actions.append(a)
            replay_ids.append(np.full(len(a), i, np.int32))
            mirrored.append(np.full(len(a), flip))
    return BCSamples(np.concatenate(globs), np.concatenate(others), np.concatenate(actions),
                     np.concatenate(replay_ids), np.concatenate(mirrored), names)
