"""Simulate teacher play in RocketSim and record IDM training data (every car at 30 Hz with its applied action).

    python -m training simulate --teacher nexto --seconds 72000 --out data/sim-nexto
    python -m training simulate --teacher random --seconds 3600 --out data/sim-random --shard 0/2

The job is split into shards of `--arenas` lockstep arenas x `--shard-seconds` game seconds. Each shard is a
pure function of (config, seed, shard index), written atomically; a rerun skips finished shards.
Layout and the meaning of every array: docs/simulation.md.
"""

import gc
import math
import multiprocessing as mp
import os
import shutil
from dataclasses import asdict, dataclass
from typing import ClassVar
from pathlib import Path

from tqdm import tqdm

from bot.actions import EQUIV_RULES
from training.cli import arg, check_choices, parse_shard
from training.storage import SCHEMA_VERSION, read_json, shard_exists, write_json, write_shard

TEACHERS = ("nexto", "random")
# flags that do not change the data (a resumed or split job may change them)
_RUN_ONLY = ("workers", "shard", "out", "progress")


@dataclass(frozen=True)
class Config:
    teacher: str = arg("nexto", "who plays: nexto (TorchScript model, see --teacher-path) or random",
                       choices=TEACHERS)
    teacher_path: Path = arg(Path("../shared/teachers/nexto/nexto-model.pt"),
                             "Nexto model file (relative paths: from the repo root); sha256-checked")
    seconds: float = arg(3600.0, "total game seconds to simulate (summed over arenas); rounded up to whole shards")
    workers: int = arg(0, "worker processes (0 = one per CPU core)")
    seed: int = arg(0, "job seed: shard k is determined by (seed, k) and the config")
    out: Path = arg(Path("data/sim-nexto"), "output folder (shard-XXXXX/ folders + manifest.json)")
    shard: str = arg("0/1", "i/n: this machine does every n-th shard starting at i")
    arenas: int = arg(32, "arenas stepped in lockstep per shard (one batched Nexto call for all their cars)")
    shard_seconds: float = arg(60.0, "game seconds per arena per shard")
    team_size_weights: tuple[float, ...] = arg((0.4, 0.3, 0.3), "relative frequency of 1v1, 2v2, 3v3 arenas")
    kickoff_share: float = arg(0.3, "share of episodes that start on a kickoff (the rest: random states)")
    car_ground_share: float = arg(0.6, "random starts: share of cars on the floor")
    car_wall_share: float = arg(0.15, "random starts: share of cars on a side wall (the rest are in the air)")
    ball_speed_max: float = arg(2500.0, "random starts: ball speed is uniform in [0, this], uu/s")
    episode_seconds_min: float = arg(10.0, "episode time limit is uniform in [min, max] s; goals end it sooner")
    episode_seconds_max: float = arg(60.0, "see --episode-seconds-min")
    nexto_betas: tuple[float, ...] = arg((1.0, 1.0, 0.9, 0.7),
                                         "Nexto beta drawn per car and episode: 1 argmax, <1 samples (§8)")
    epsilon_max: float = arg(0.05, "Nexto: per car and episode epsilon ~ U[0, this]; a decision is replaced "
                                   "by a uniform random action with that probability")
    lag_ticks: int = arg(4, "Nexto: ticks from observation to action (0, 4 or 8; its RLBot bot has 7)")
    random_hold_mean_s: float = arg(0.3, "random teacher: mean time an action is held, s")
    analog_share: float = arg(0.0, "share of decisions on a ground row (the 24 driving rows) whose steer/yaw and "
                                   "throttle are scaled by U[0.15, 1] each, as human sticks and triggers move "
                                   "partway; the label stays the row, i.e. the inputs' signs")
    progress: bool = arg(True, "show a tqdm progress bar")

    ADDED_LATER: ClassVar[dict] = {"analog_share": 0.0}  # field -> the value that reproduces the data of before
    # what else makes the data and is no flag: the version of the equivalence classes (bot/actions.py). Data of
    # another version is a different job, and the pipeline's stamp changes with it.
    CODE_VERSIONS: ClassVar[dict] = {"equiv_rules": EQUIV_RULES}


def resolve_path(path: Path) -> Path:
    from training.teachers.nexto import REPO_ROOT
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def make_teacher(cfg: Config):
    from training.sim.recorder import SLOTS
    if cfg.teacher == "nexto":
        from training.teachers.nexto import NextoTeacher
        return NextoTeacher(cfg.arenas, SLOTS, resolve_path(cfg.teacher_path), betas=cfg.nexto_betas,
                            epsilon_max=cfg.epsilon_max, lag_ticks=cfg.lag_ticks)
    if cfg.teacher == "random":
        from training.teachers.random_teacher import RandomPlay, RandomTeacher
        return RandomTeacher(cfg.arenas, SLOTS, RandomPlay(hold_mean_s=cfg.random_hold_mean_s))
    raise ValueError(f"--teacher must be one of {TEACHERS}, got {cfg.teacher!r}")


def num_shards(cfg: Config) -> int:
    return max(1, math.ceil(cfg.seconds / (cfg.arenas * cfg.shard_seconds) - 1e-9))


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def data_config(cfg: Config) -> dict:
    """The config fields that determine the data (compared when a job resumes). Fields added later are left out
    while they hold the value that makes the data of before (Config.ADDED_LATER), so older jobs stay current."""
    d = {k: v for k, v in asdict(cfg).items()
         if k not in _RUN_ONLY and not (k in cfg.ADDED_LATER and v == cfg.ADDED_LATER[k])}
    d["teacher_path"] = str(d["teacher_path"])
    d["team_size_weights"], d["nexto_betas"] = list(cfg.team_size_weights), list(cfg.nexto_betas)
    return {**d, **cfg.CODE_VERSIONS}


def simulate_shard(cfg: Config, index: int) -> dict:
    """Worker: record shard `index` into cfg.out (atomic) and return its meta."""
    import torch
    torch.set_num_threads(1)
    from training.sim.recorder import run_shard
    teacher = make_teacher(cfg)
    gc.freeze()  # the recorder makes many small objects; full GC passes over torch's ~170k objects cost ~2%
    arrays, counts = run_shard(cfg, index, teacher)
    meta = {"shard": index, "seed": [cfg.seed, index], "teacher": teacher.describe(), "counts": counts}
    if hasattr(teacher, "inference_s"):
        meta["inference_s"] = teacher.inference_s
    return write_shard(cfg.out / shard_name(index), arrays, meta)


def _work(job: tuple[Config, int]) -> dict:
    return simulate_shard(*job)


def write_manifest(cfg: Config, total: int) -> dict:
    """manifest.json from the shards present in cfg.out (all machines' shards, if they share the folder)."""
    shards = {}
    for index in range(total):
        path = cfg.out / shard_name(index)
        if shard_exists(path):
            meta = read_json(path / "meta.json")
            shards[shard_name(index)] = {"counts": meta["counts"], "sha256": meta["sha256"], "seed": meta["seed"]}
    keys = ("frames", "car_frames", "episodes", "goals", "game_seconds")
    totals = {k: sum(s["counts"][k] for s in shards.values()) for k in keys}
    teacher = next(iter(shards.values()), None) and read_json(cfg.out / next(iter(shards)) / "meta.json")["teacher"]
    manifest = {"schema_version": SCHEMA_VERSION, "kind": "sim-idm", "teacher": teacher, "config": data_config(cfg),
                "seed": cfg.seed, "num_shards": total, "complete": len(shards) == total, "counts": totals,
                "shards": shards}
    write_json(cfg.out / "manifest.json", manifest)
    return manifest


def main(cfg: Config) -> dict:
    check_choices(cfg)
    if cfg.teacher == "nexto":  # fail fast, in the parent, on a missing or wrong model
        from training.teachers.nexto import load_nexto
        load_nexto(resolve_path(cfg.teacher_path))
    part = parse_shard(cfg.shard)
    total = num_shards(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    manifest_path = cfg.out / "manifest.json"
    if manifest_path.is_file():
        old = read_json(manifest_path)
        if old.get("config") != data_config(cfg) or old.get("schema_version") != SCHEMA_VERSION:
            raise SystemExit(f"{cfg.out} holds a different job (config or schema differs); use another --out")
    else:
        write_manifest(cfg, total)
    for stale in cfg.out.glob("shard-*.tmp-*"):  # left by a killed worker; its shard is redone below
        shutil.rmtree(stale, ignore_errors=True)
    todo = [i for i in range(total)[part[0]::part[1]] if not shard_exists(cfg.out / shard_name(i))]
    workers = min(cfg.workers or os.cpu_count() or 1, max(1, len(todo)))
    bar = tqdm(total=len(todo), desc=f"simulate {cfg.teacher}", unit="shard", disable=not cfg.progress)
    if workers == 1:
        for i in todo:
            _work((cfg, i))
            bar.update()
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_work, [(cfg, i) for i in todo]):
                bar.update()
    bar.close()
    manifest = write_manifest(cfg, total)
    print(f"{cfg.out}: {len(manifest['shards'])}/{total} shards, {manifest['counts']['game_seconds'] / 3600:.2f} "
          f"game-hours, {manifest['counts']['car_frames']} car-frames, {manifest['counts']['episodes']} episodes")
    return manifest
