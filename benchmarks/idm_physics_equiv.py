"""Which of the 90 actions really have the same effect? The simulator's answer against the rule-based
equivalence classes the IDM is trained and scored with (bot.actions.effective_controls), and the bundled IDM's
accuracy under each.

    PYTHONPATH=. python benchmarks/idm_physics_equiv.py --teacher-path ../shared/teachers/nexto/nexto-model.pt \
        --checkpoint models/idm --arenas 16 --seconds 30 --every 15 --json idm-physics-equiv.json

One fresh shard of Nexto play is simulated (a seed the datasets do not use). On every `--every`-th step, for
each car of each arena, all 90 actions are applied from that very moment in a copy of the arena (RocketSim
`Arena.clone_into`, which reproduces the real step to float rounding) for the frame's 4 ticks. Two actions are
equivalent when everything comes out the same:
- "full": the car's physics, boost, the jump/flip/handbrake internals and whether jump is held (which decides
  whether the next press is a new one), the ball, and the other cars' physics;
- "next frame": only what the next recorded frame shows (car physics and boost, ball, other cars).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import RocketSim as rs
import torch

from bot.actions import ACTION_TABLE, CONTROL_NAMES, NUM_ACTIONS, equivalent_actions
from bot.frame import DEMOLISHED
from training.idm.data import DEFAULT_BALL_GAPS, DEFAULT_CAR_GAPS, SimDataset
from training.idm.infer import load_idm
from training.idm.metrics import batch_metrics, predict
from training.sim.recorder import CONTROLS, SLOTS, pack_equiv, run_shard, slots_for
from training.simulate import Config, make_teacher
from training.storage import read_json, write_shard

UU_TOL, UNIT_TOL = 1e-2, 1e-4  # uu and uu/s; everything else (radians, rad/s, rotation entries, seconds, flags)
COARSE = 100.0  # "coarse": 1 uu, 1 uu/s, 0.01 elsewhere (below what a replay's quantised physics can show)


def _vec(v) -> list[float]:
    return v.as_numpy().tolist()


def car_state_vector(s: rs.CarState) -> tuple[list[float], list[float]]:
    """(next-frame part, internal part) of a CarState: what a recorded frame shows, and what it does not."""
    shown = _vec(s.pos) + _vec(s.vel) + _vec(s.ang_vel) + s.rot_mat.as_numpy().ravel().tolist() + [s.boost]
    internal = [s.is_on_ground, s.has_jumped, s.has_double_jumped, s.has_flipped, s.is_jumping, s.is_flipping,
                s.jump_time, s.flip_time, *_vec(s.flip_rel_torque), s.handbrake_val, s.boosting_time,
                s.air_time_since_jump, s.is_auto_flipping, s.auto_flip_timer, s.is_demoed, s.last_controls.jump]
    return shown, [float(x) for x in internal]


def outcome(arena: rs.Arena, car_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, tolerances and a next-frame mask for the state after a branch, seen from car `car_id`."""
    values, tol, shown_mask = [], [], []
    for car in arena.get_cars():
        shown, internal = car_state_vector(car.get_state())
        if car.id != car_id:
            internal = []
        values += shown + internal
        tol += [UU_TOL] * 6 + [UNIT_TOL] * (len(shown) - 6) + [UNIT_TOL] * len(internal)
        shown_mask += [True] * len(shown) + [False] * len(internal)
    b = arena.ball.get_state()
    values += _vec(b.pos) + _vec(b.vel) + _vec(b.ang_vel)
    tol += [UU_TOL] * 6 + [UNIT_TOL] * 3
    shown_mask += [True] * 9
    return np.array(values), np.array(tol), np.array(shown_mask)


def situation(s: rs.CarState) -> str:
    if s.is_demoed:
        return "demolished"
    if s.is_on_ground:
        return "ground"
    if s.is_flipping:
        return "air, flipping"
    if s.is_jumping:
        return "air, jumping"
    return "air, other"


class Brancher:
    """The probe for `run_shard`: on sampled steps, the outcome of all 90 actions for every car."""

    def __init__(self, every: int):
        self.every = every
        self.scratch: dict[int, rs.Arena] = {}
        self.records: list[dict] = []  # one per probed car-frame
        self.seconds = 0.0

    def __call__(self, step: int, arenas: list[rs.Arena]) -> None:
        if step % self.every:
            return
        t0 = time.perf_counter()
        for g, arena in enumerate(arenas):
            cars = arena.get_cars()
            if any(c.get_state().is_demoed for c in cars):  # respawns are drawn by our own reader, not here
                continue
            scratch = self.scratch.setdefault(g, arena.clone(False))
            for slot, car in zip(slots_for(len(cars) // 2), cars):
                outs = []
                for a in range(NUM_ACTIONS):
                    arena.clone_into(scratch, False)
                    scratch.get_car_from_id(car.id).set_controls(CONTROLS[a])
                    scratch.step(4)
                    outs.append(outcome(scratch, car.id))
                values = np.stack([o[0] for o in outs])  # (A, V)
                tol, shown = outs[0][1], outs[0][2]
                dist = np.abs(values[:, None, :] - values[None, :, :]) / tol  # (A, A, V) in tolerances
                coarse = dist <= COARSE
                self.records.append({"g": g, "step": step, "slot": int(slot), "situation": situation(car.get_state()),
                                     "full": (dist <= 1).all(-1), "full_coarse": coarse.all(-1),
                                     "next": coarse[..., shown].all(-1)})
        self.seconds += time.perf_counter() - t0


KINDS = ("full", "full_coarse", "next")


def classes_of(cars_nf: np.ndarray, flip_phase_n: np.ndarray | None) -> np.ndarray:
    """(N, A, A): the rule classes of every pair of actions; without flip phases, the rules before version 2."""
    n = len(cars_nf)
    phases = None if flip_phase_n is None else np.repeat(flip_phase_n, NUM_ACTIONS)
    return equivalent_actions(np.tile(np.arange(NUM_ACTIONS), n), np.repeat(cars_nf, NUM_ACTIONS, 0),
                              phases).reshape(n, NUM_ACTIONS, NUM_ACTIONS)


def class_stats(records: list[dict], rule_aa: np.ndarray, v1_aa: np.ndarray) -> dict:
    """Class sizes (over all 90 actions of each car-frame), and how the physics classes differ from the rules
    (version EQUIV_RULES) and from the rules without flip phases (version 1)."""
    out = {"car_frames": len(records), "mean_class_size": {"rule": float(rule_aa.sum(-1).mean()),
                                                           "rule_v1": float(v1_aa.sum(-1).mean())}}
    coarse = np.stack([r["full_coarse"] for r in records])
    out["rule_v1_vs_full_coarse"] = {"equals": float((v1_aa == coarse).all((1, 2)).mean()),
                                     "merges_different": float((v1_aa & ~coarse).any((1, 2)).mean()),
                                     "physics_merges_more": float((coarse & ~v1_aa).any((1, 2)).mean())}
    for kind in KINDS:
        phys = np.stack([r[kind] for r in records])  # (N, A, A)
        out["mean_class_size"][kind] = float(phys.sum(-1).mean())
        out[kind] = {"rule_equals": float((rule_aa == phys).all((1, 2)).mean()),
                     "rule_merges_different": float((rule_aa & ~phys).any((1, 2)).mean()),
                     "merges_more_than_rule": float((phys & ~rule_aa).any((1, 2)).mean())}
    return out


def merged_controls(full: np.ndarray, rule_aa: np.ndarray) -> dict:
    """Per control: share of frames where some pair of actions differing only in it are equivalent by physics
    but not by the rules (the rules miss it), and the other way round."""
    diff = ACTION_TABLE[:, None, :] != ACTION_TABLE[None, :, :]  # (A, A, 8)
    only = diff & (diff.sum(-1, keepdims=True) == 1)  # pairs that differ in exactly that control
    out = {}
    for c, name in enumerate(CONTROL_NAMES):
        pairs = only[..., c]
        missed = (full & ~rule_aa & pairs[None]).any((1, 2))
        over = (rule_aa & ~full & pairs[None]).any((1, 2))
        out[name] = {"physics_only": float(missed.mean()), "rule_only": float(over.mean())}
    return out


def score_idm(checkpoint: Path, class_dirs: list[Path], rows: np.ndarray, slots: np.ndarray,
              masks: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """One IDM on the probed car-frames, clean and corrupted, with the labels' classes of each folder."""
    model, model_cfg = load_idm(checkpoint)
    gaps = read_json(checkpoint / "config.json").get("gaps", {})
    car_gaps, ball_gaps = np.asarray(gaps.get("car", DEFAULT_CAR_GAPS)), np.asarray(gaps.get("ball", DEFAULT_BALL_GAPS))
    scores, by_situation = {}, {}
    for class_dir in class_dirs:
        data = SimDataset([class_dir], "val")
        shard = data.shards[0]
        ids = np.searchsorted(shard.samples[:, 0] * SLOTS + shard.samples[:, 1], rows * SLOTS + slots)
        for corrupt_name, p in (("clean", 0.0), ("corrupt", 1.0)):
            batch = data.batch(np.random.default_rng(1), 0, model_cfg.half_width, p, car_gaps, ball_gaps,
                               ids=ids, motion=model_cfg.motion, boost_update_p=gaps.get("boost_update_p"),
                               interpolate=model_cfg.interpolate_held)
            m = batch_metrics(model, batch, torch.device("cpu"))
            scores[f"{class_dir.name}.{corrupt_name}"] = {k: round(v, 4) for k, v in m.items() if k != "loss"}
            if corrupt_name == "clean":
                pred = predict(model, batch.x_bwf, torch.device("cpu"))[0].argmax(-1)
                ok = batch.equiv_ba[np.arange(len(pred)), pred]
                by_situation[class_dir.name] = {k: round(float(ok[sel].mean()), 4) for k, sel in masks.items()}
    return scores, by_situation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher-path", type=Path, default=Path("../shared/teachers/nexto/nexto-model.pt"))
    ap.add_argument("--teacher", default="nexto")
    ap.add_argument("--checkpoint", type=Path, nargs="+", default=[Path("models/idm")],
                    help="IDM folders to score (each under every kind of class)")
    ap.add_argument("--arenas", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0, help="game seconds per arena")
    ap.add_argument("--every", type=int, default=15, help="probe every k-th step (30 Hz)")
    ap.add_argument("--seed", type=int, default=777, help="a seed no dataset uses")
    ap.add_argument("--json", type=Path, default=Path("idm-physics-equiv.json"))
    args = ap.parse_args()

    cfg = Config(teacher=args.teacher, teacher_path=args.teacher_path, arenas=args.arenas,
                 shard_seconds=args.seconds, seed=args.seed, progress=False)
    teacher = make_teacher(cfg)
    brancher = Brancher(args.every)
    t0 = time.perf_counter()
    arrays, counts = run_shard(cfg, 0, teacher, probe=brancher)
    wall = time.perf_counter() - t0
    steps = int(round(cfg.shard_seconds * 30))
    records = [r for r in brancher.records
               if arrays["cars_tpf"][r["g"] * steps + r["step"], r["slot"], DEMOLISHED] < 0.5]
    rows = np.array([r["g"] * steps + r["step"] for r in records])
    slots = np.array([r["slot"] for r in records])
    action = np.asarray(arrays["action_tp"])[rows, slots].astype(np.int64)
    cars = np.asarray(arrays["cars_tpf"])[rows, slots]  # (N, F)
    rule_aa = classes_of(cars, np.asarray(arrays["flip_phase_tp"])[rows, slots])
    v1_aa = classes_of(cars, None)
    situations = np.array([r["situation"] for r in records])
    masks = {k: situations == k for k in sorted(set(situations))}  # car-frames of each situation
    phys = {kind: np.stack([r[kind] for r in records]) for kind in KINDS}
    report = {"config": {k: str(v) for k, v in vars(args).items()}, "simulated_seconds": counts["game_seconds"],
              "wall_seconds": wall, "branch_seconds": brancher.seconds,
              "all": class_stats(records, rule_aa, v1_aa),
              "controls_merged": {k: merged_controls(phys[k], rule_aa) for k in ("full", "full_coarse")}}
    report["by_situation"] = {}
    for k, sel in masks.items():
        report["by_situation"][k] = class_stats([r for r, s in zip(records, sel) if s], rule_aa[sel],
                                                  v1_aa[sel])
        report["by_situation"][k]["controls_merged"] = merged_controls(phys["full_coarse"][sel], rule_aa[sel])

    # each IDM scored against each kind of class, on the same windows and the same corruption
    label_class = {"rule": rule_aa, "rule_v1": v1_aa, **phys}
    report["idm"], report["idm_clean_by_situation"] = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, classes in label_class.items():
            packed = np.array(arrays["equiv_packed_tpb"])
            packed[rows, slots] = pack_equiv(classes[np.arange(len(rows)), action])
            write_shard(Path(tmp) / name / "shard-00000", {**arrays, "equiv_packed_tpb": packed}, {})
        for checkpoint in args.checkpoint:
            scores, by_situation = score_idm(checkpoint, [Path(tmp) / name for name in label_class], rows, slots,
                                             masks)
            report["idm"][str(checkpoint)], report["idm_clean_by_situation"][str(checkpoint)] = scores, by_situation
    args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=1))


if __name__ == "__main__":
    main()
