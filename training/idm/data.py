"""IDM training batches from simulated shards (docs/simulation.md): windows, labels, replay-style corruption.

A sample is (shard, row, car slot) of a present car. Batches are drawn at random; a shard is held out for
validation by a fixed rule on its name, so the split never depends on the number of workers or ranks.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.actions import MIRROR, NO_FLIP, NUM_ACTIONS
from bot.frame import BALL_FRESH, BOOST, FRESH, HAS_FLIP, HAS_JUMP, ON_GROUND, PRESENT
from training.idm.features import hold_frames, sample_fresh_mask, window_features, window_rows
from training.storage import read_shard

# P(next physics update g frames after the last one), g = 1, 2, 3, 4: the fallback when no parsed replays are
# given to measure them from (`idm-train --replays DIR` measures them and records them in the model card).
# Values: rounded from replays.md §3 (cars updated on 43-48% of frames, gaps mostly 2; the ball on 67-84%).
DEFAULT_CAR_GAPS = np.array([0.10, 0.78, 0.11, 0.01])
DEFAULT_BALL_GAPS = np.array([0.55, 0.40, 0.05, 0.0])
# A car's boost amount is replicated far more rarely than its physics: on the 91 parsed replays of
# ../shared/replays (2016-2026 alike), while a car boosts, so that its true amount falls every frame, the recorded
# amount changes on only 0.86% of frames (543,966 frame pairs, measured 2026-12-04): it stands still for seconds
# and then drops by all the boost used since. Updates are drawn as a fresh coin per frame with that rate;
# `idm-train --replays DIR` measures it again.
DEFAULT_BOOST_UPDATE_P = 0.0086


@dataclass
class Batch:
    x_bwf: np.ndarray  # (B, W, F) float32 features
    action_b: np.ndarray  # (B,) int64, mirrored like the features
    equiv_ba: np.ndarray  # (B, A) bool
    flags_b3: np.ndarray  # (B, 3) float32 on_ground, has_jump, has_flip of the centre frame
    corrupted_b: np.ndarray  # (B,) bool
    centre_bf: np.ndarray  # (B, CAR_F) the labelled car's row in the centre frame, unreflected and uncorrupted
    ball_bf: np.ndarray  # (B, BALL_F) the ball's row in the centre frame, likewise
    flip_phase_b: np.ndarray  # (B,) the labelled car's flip phase there (NO_FLIP in data made before flip phases)


def is_validation_shard(name: str, every: int = 10) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % every == 0


def episode_bounds(episode_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,) episode ids of contiguous runs -> per-row start and stop (exclusive) rows of its episode."""
    change = np.flatnonzero(np.diff(episode_t) != 0) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(episode_t)]])
    run = np.repeat(np.arange(len(starts)), stops - starts)
    return starts[run], stops[run]


class SimShard:
    def __init__(self, path: Path):
        arrays, self.meta = read_shard(path)
        self.name = Path(path).name
        self.cars, self.ball, self.team = arrays["cars_tpf"], arrays["ball_tf"], np.asarray(arrays["team_p"])
        self.action = arrays["action_tp"]
        self.equiv_packed = arrays["equiv_packed_tpb"]
        self.flip_phase = arrays.get("flip_phase_tp")  # (T, P); None in data made before flip phases
        self.start, self.stop = episode_bounds(np.asarray(arrays["episode_t"]))
        rows, slots = np.nonzero(np.asarray(self.cars[..., PRESENT]) > 0.5)
        self.samples = np.stack([rows, slots], 1)  # (N, 2)


class SimDataset:
    """All shards of one or more simulate outputs, split into train / validation shards."""

    def __init__(self, roots: list[Path], split: str):
        paths = sorted(p for root in roots for p in Path(root).glob("shard-*") if (p / "meta.json").is_file())
        if not paths:
            raise FileNotFoundError(f"no simulated shards under {', '.join(map(str, roots))}: run "
                                    "`python -m training simulate` first")
        want_val = split == "val"
        chosen = [p for p in paths if is_validation_shard(p.name) == want_val]
        if not chosen:  # tiny datasets: hold out the last shard
            chosen = paths[-1:] if want_val else paths[:-1] or paths
        self.shards = [SimShard(p) for p in chosen]
        self.sizes = np.array([len(s.samples) for s in self.shards])
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def batch(self, rng: np.random.Generator, size: int, half_width: int, corrupt_prob: float,
              car_gaps: np.ndarray = DEFAULT_CAR_GAPS, ball_gaps: np.ndarray = DEFAULT_BALL_GAPS,
              ids: np.ndarray | None = None, motion: bool = False, boost_update_p: float | None = None,
              interpolate: bool = False) -> Batch:
        """A random batch (or the samples `ids`), corrupted with probability corrupt_prob per sample; corrupted
        samples also hold the boost amount, updated with probability `boost_update_p` per frame, when given."""
        ids = rng.integers(0, len(self), size) if ids is None else np.asarray(ids)
        which = np.searchsorted(self.offsets, ids, side="right") - 1
        parts = [self._gather(self.shards[s], ids[which == s] - self.offsets[s], half_width)
                 for s in np.unique(which)]
        cars, ball, target, team, inside, action, equiv, centre, ball_centre, phase = (
            np.concatenate(x) for x in zip(*parts))
        corrupted = rng.random(len(ids)) < corrupt_prob
        if corrupted.any():
            cars, ball = corrupt(rng, cars, ball, corrupted, car_gaps, ball_gaps, boost_update_p)
        x, mirrored = window_features(cars, ball, target, team, inside, motion, interpolate)
        action = np.where(mirrored, MIRROR[action], action)
        equiv = np.where(mirrored[:, None], equiv[:, MIRROR], equiv)
        flags = centre[:, [ON_GROUND, HAS_JUMP, HAS_FLIP]].astype(np.float32)
        return Batch(x, action.astype(np.int64), equiv, flags, corrupted, centre, ball_centre, phase)

    @staticmethod
    def _gather(shard: SimShard, local_ids: np.ndarray, half_width: int):
        rows, slots = shard.samples[local_ids, 0], shard.samples[local_ids, 1]
        win, inside = window_rows(rows, shard.start[rows], shard.stop[rows], half_width)  # (B, W)
        cars = np.asarray(shard.cars[win])  # (B, W, P, F)
        ball = np.asarray(shard.ball[win])  # (B, W, F)
        centre = np.asarray(shard.cars[rows, slots])  # (B, F)
        equiv = np.unpackbits(np.asarray(shard.equiv_packed[rows, slots]), axis=-1, count=NUM_ACTIONS).astype(bool)
        team = np.broadcast_to(shard.team, (len(rows), len(shard.team)))
        phase = np.full(len(rows), NO_FLIP) if shard.flip_phase is None else np.asarray(shard.flip_phase[rows, slots])
        return (cars, ball, slots, team, inside, np.asarray(shard.action[rows, slots]), equiv, centre,
                np.asarray(shard.ball[rows]), phase)


def corrupt(rng: np.random.Generator, cars_bwpf: np.ndarray, ball_bwf: np.ndarray, which_b: np.ndarray,
            car_gaps: np.ndarray, ball_gaps: np.ndarray, boost_update_p: float | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Hold each car's and the ball's rows between simulated network updates, in the samples `which_b`; the
    FRESH / BALL_FRESH columns then say which frames are new samples, as a parsed replay's do. With
    `boost_update_p`, each car's boost amount is held too, between updates of its own that come with that
    probability on each frame (replays replicate it far more rarely than physics, so the IDM must not count on
    seeing the boost used frame by frame)."""
    cars, ball = cars_bwpf.copy(), ball_bwf.copy()
    idx = np.flatnonzero(which_b)
    b, w, p, f = cars[idx].shape
    fresh_bpw = sample_fresh_mask(rng, (b, p, w), car_gaps)
    per_car = cars[idx].transpose(0, 2, 1, 3).reshape(b * p, w, f)  # (B*P, W, F)
    held = hold_frames(per_car, fresh_bpw.reshape(b * p, w))
    held[..., FRESH] = fresh_bpw.reshape(b * p, w) & (held[..., PRESENT] > 0.5)
    if boost_update_p is not None:
        held[..., BOOST] = hold_frames(per_car[..., BOOST], rng.random((b * p, w)) < boost_update_p)
    cars[idx] = held.reshape(b, p, w, f).transpose(0, 2, 1, 3)
    ball_fresh = sample_fresh_mask(rng, (b, w), ball_gaps)
    ball[idx] = hold_frames(ball[idx], ball_fresh)
    ball[idx, :, BALL_FRESH] = ball_fresh
    return cars, ball
