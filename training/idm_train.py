"""Train the inverse dynamics model on simulated shards (one CPU by default; many GPUs with torchrun).

    python -m training idm-train --sim data/sim-nexto --replays data/replays --out runs/idm
    torchrun --nproc-per-node 8 -m training idm-train --sim ... --device cuda   # DDP, one process per GPU

Batches are random windows; half of them are corrupted with replay-style holds whose gap statistics are
measured on parsed replays (--replays) when given. Resumes from <out>/checkpoint with --resume; --init starts
from an exported model's weights instead of random ones.
"""

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from bot.frame import BOOST, DEMOLISHED, FRESH, IN_BOOST, PRESENT
from training.checkpoint import (command_line, export_model, load_checkpoint, load_exported, metrics_table,
                                 save_checkpoint)
from training.cli import arg
from training.schedule import cosine_lr
from training.distributed import setup_distributed, teardown_distributed
from training.idm.data import DEFAULT_BALL_GAPS, DEFAULT_BOOST_UPDATE_P, DEFAULT_CAR_GAPS, SimDataset
from training.idm.metrics import batch_metrics
from training.idm.model import IDMConfig, build_idm, idm_loss
from training.storage import read_json, read_shard, sha256_file, write_json


@dataclass(frozen=True)
class Config:
    sim: tuple[Path, ...] = arg((Path("data/sim-nexto"),), "simulate output folder(s)")
    replays: Path | None = arg(None, "parsed replays (`python -m training replays` output) to measure hold gaps on")
    out: Path = arg(Path("runs/idm"), "run folder: checkpoint/, tensorboard/, curves.png, model/")
    arch: str = arg("mlp", "mlp (flattened window), resmlp (the same with residual blocks and layer norm) or tcn "
                           "(temporal convolution)", choices=("mlp", "resmlp", "tcn"))
    half_width: int = arg(20, "frames each side of the labelled one (30 Hz)")
    motion: bool = arg(True, "add the car's own-axes motion and its change to the next frame to every frame")
    interpolate_held: bool = arg(False, "fill in the target car's held frames on the line between its fresh samples")
    hidden: int = arg(512, "hidden width / channels")
    layers: int = arg(4, "hidden layers / conv blocks")
    batch_size: int = arg(512, "samples per step per process")
    steps: int = arg(20000, "optimizer steps")
    lr: float = arg(1e-3, "peak learning rate (AdamW), cosine decay after a 2% warm-up")
    weight_decay: float = arg(1e-4, "AdamW weight decay")
    corrupt_prob: float = arg(0.5, "share of training windows corrupted with replay-style holds")
    hold_boost: bool = arg(True, "corrupted windows also hold the boost amount, which replays update rarely")
    log_every: int = arg(50, "steps between TensorBoard scalars")
    eval_every: int = arg(1000, "steps between validation and checkpoints")
    val_samples: int = arg(8192, "validation windows (clean and corrupted each)")
    seed: int = arg(0, "seed")
    device: str = arg("cpu", "cpu or cuda (with torchrun: one GPU per process)")
    threads: int = arg(0, "torch CPU threads (0 = torch default)")
    resume: bool = arg(False, "continue from <out>/checkpoint")
    init: Path | None = arg(None, "start from this exported IDM's weights (same architecture) with a fresh optimizer "
                                  "and schedule, e.g. to train models/idm longer or on more data")
    export: Path | None = arg(None, "also export the final model here (e.g. models/idm), fp16 safetensors")

    # pipeline stamps of runs before a field existed stay current while it holds this value
    ADDED_LATER: ClassVar[dict] = {"interpolate_held": False}


def measure_hold_gaps(root: Path, max_gap: int = 4) -> tuple[np.ndarray, np.ndarray, dict]:
    """P(gap = 1..max_gap frames between physics updates) for cars and the ball, from parsed replays' FRESH flags
    in kickoff-to-goal play. Longer gaps (demolitions, goal resets, missing data) are not holds: left out.
    Also `boost_update_p`: the share of frames on which a boosting car's recorded boost amount changes (its
    true amount falls every frame then, so each change is an update)."""
    counts = {"car": np.zeros(max_gap), "ball": np.zeros(max_gap)}
    boosting_pairs = boost_changes = 0
    shards = sorted(p for p in Path(root).iterdir() if (p / "meta.json").is_file())
    for path in shards:
        arrays, _ = read_shard(path)
        in_play = np.asarray(arrays["segment_t"]) >= 0
        cars, ball = np.asarray(arrays["cars_tpf"])[in_play], np.asarray(arrays["ball_tf"])[in_play]
        series = [("ball", ball[:, -1] > 0.5)]
        series += [("car", (cars[:, p, FRESH] > 0.5) & (cars[:, p, PRESENT] > 0.5)) for p in range(cars.shape[1])]
        for kind, fresh in series:
            gaps = np.diff(np.flatnonzero(fresh))
            counts[kind] += np.bincount(gaps[gaps <= max_gap], minlength=max_gap + 1)[1:]
        live = (cars[..., PRESENT] > 0.5) & (cars[..., DEMOLISHED] < 0.5) & (cars[..., IN_BOOST] > 0.5)
        live &= cars[..., BOOST] > 0.01  # (T, P): boosting with boost left
        pairs = live[:-1] & live[1:]
        boosting_pairs += int(pairs.sum())
        boost_changes += int((pairs & (cars[1:, :, BOOST] != cars[:-1, :, BOOST])).sum())
    if counts["car"].sum() == 0:
        raise ValueError(f"no parsed replays with fresh flags under {root}")
    car, ball = counts["car"] / counts["car"].sum(), counts["ball"] / max(counts["ball"].sum(), 1)
    boost_p = boost_changes / boosting_pairs if boosting_pairs else DEFAULT_BOOST_UPDATE_P
    return car, ball, {"replays": len(shards), "car_gap_counts": counts["car"].tolist(),
                       "ball_gap_counts": counts["ball"].tolist(), "boost_update_p": boost_p,
                       "boost_pairs": boosting_pairs}


def to_tensors(batch, device: torch.device):
    return (torch.from_numpy(batch.x_bwf).to(device), torch.from_numpy(batch.equiv_ba).to(device),
            torch.from_numpy(batch.flags_b3).to(device))


def data_hashes(roots: tuple[Path, ...]) -> dict[str, str]:
    """sha256 of each input manifest, so a model card pins the data it was trained on."""
    return {str(r): sha256_file(Path(r) / "manifest.json") for r in roots if (Path(r) / "manifest.json").is_file()}


def train(cfg: Config) -> dict:
    # ---- setup: processes, devices, seeds ----
    env = setup_distributed(cfg.device)
    rank, world, device, distributed = env.rank, env.world, env.device, env.world > 1
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    rng = np.random.default_rng([cfg.seed, rank])
    main_process = rank == 0

    car_gaps, ball_gaps, gap_info = DEFAULT_CAR_GAPS, DEFAULT_BALL_GAPS, {"source": "defaults (replays.md §3)",
                                                                          "boost_update_p": DEFAULT_BOOST_UPDATE_P}
    if cfg.replays:
        car_gaps, ball_gaps, gap_info = measure_hold_gaps(cfg.replays)
    if not cfg.hold_boost:
        gap_info.pop("boost_update_p")  # a config without it: boost is held only with the physics
    boost_p = gap_info.get("boost_update_p")
    train_data, val_data = SimDataset(list(cfg.sim), "train"), SimDataset(list(cfg.sim), "val")
    val_rng = np.random.default_rng(12345)  # the same validation windows in every run
    val_ids = val_rng.integers(0, len(val_data), cfg.val_samples)
    val_batches = {name: val_data.batch(np.random.default_rng(7), 0, cfg.half_width, p, car_gaps, ball_gaps,
                                        ids=val_ids, motion=cfg.motion, boost_update_p=boost_p,
                                        interpolate=cfg.interpolate_held)
                   for name, p in (("clean", 0.0), ("corrupt", 1.0))}

    model_cfg = IDMConfig(arch=cfg.arch, half_width=cfg.half_width, hidden=cfg.hidden, layers=cfg.layers,
                          motion=cfg.motion, interpolate_held=cfg.interpolate_held)
    model = build_idm(model_cfg).to(device)
    init_info = load_init(model, model_cfg, cfg.init) if cfg.init else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_dir, out = Path(cfg.out) / "checkpoint", Path(cfg.out)
    step, history = 0, []
    if cfg.resume and (ckpt_dir / "state.json").is_file():
        state = load_checkpoint(ckpt_dir, model, optimizer, rng)
        step, history = state["step"], state["history"]
        if distributed:  # ranks must not share the restored stream
            rng = np.random.default_rng([cfg.seed, rank, step])
    ddp_model = DistributedDataParallel(model) if distributed else model
    writer = None
    if main_process:
        from torch.utils.tensorboard import SummaryWriter
        out.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(out / "tensorboard")
        writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in asdict(cfg).items()), step)
        print(f"idm-train: {len(train_data):,} train / {len(val_data):,} val samples, "
              f"{sum(p.numel() for p in model.parameters()):,} parameters, world size {world}")

    # ---- loop ----
    bar = tqdm(total=cfg.steps, initial=step, desc="idm-train", disable=not main_process, unit="step")
    t_last, samples_since = time.perf_counter(), 0
    while step < cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr)
        model.train()
        batch = train_data.batch(rng, cfg.batch_size, cfg.half_width, cfg.corrupt_prob, car_gaps, ball_gaps,
                                 motion=cfg.motion, boost_update_p=boost_p, interpolate=cfg.interpolate_held)
        x, equiv, flags = to_tensors(batch, device)
        action_logits, flag_logits = ddp_model(x)
        loss, parts = idm_loss(action_logits, flag_logits, equiv, flags)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        samples_since += cfg.batch_size * world
        bar.update(1)
        if main_process and step % cfg.log_every == 0:
            now = time.perf_counter()
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/action_loss", float(parts["action"]), step)
            writer.add_scalar("train/flag_loss", float(parts["flags"]), step)
            writer.add_scalar("train/lr", cosine_lr(step, cfg.steps, cfg.lr), step)
            writer.add_scalar("perf/samples_per_s", samples_since / (now - t_last), step)
            t_last, samples_since = now, 0
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if main_process and (step % cfg.eval_every == 0 or step == cfg.steps):
            row = {"step": step, "train_loss": loss.item()}
            for name, vb in val_batches.items():
                metrics = batch_metrics(model, vb, device)
                row.update({f"{name}.{k}": v for k, v in metrics.items()})
                for k, v in metrics.items():
                    writer.add_scalar(f"val_{name}/{k}", v, step)
            history.append(row)
            save_checkpoint(ckpt_dir, model, optimizer, step, rng, {"history": history, "config": asdict(cfg)})
            tqdm.write(f"step {step}: val clean equiv acc {row['clean.action_equiv_acc']:.3f}, "
                       f"corrupt {row['corrupt.action_equiv_acc']:.3f}")
    bar.close()

    # ---- final save ----
    result = {"history": history, "gaps": {"car": car_gaps.tolist(), "ball": ball_gaps.tolist(), **gap_info}}
    if main_process:
        writer.close()
        write_json(out / "history.json", result)
        from training.plots import plot_curves
        plot_curves(history, out / "curves.png")
        card = model_card(cfg, model_cfg, history, result["gaps"], len(train_data), len(val_data), init_info)
        config = {"model": model_cfg.to_dict(), "gaps": result["gaps"], "data_sha256": data_hashes(cfg.sim),
                  "equiv_rules": equiv_rules_of(cfg.sim), "init": init_info,
                  "final_metrics": history[-1] if history else {}}
        export_model(out / "model", model, config, card)
        if cfg.export:
            export_model(cfg.export, model, config, card, half=True)
    teardown_distributed()
    return result


def load_init(model: torch.nn.Module, model_cfg: IDMConfig, folder: Path) -> dict:
    """Copy an exported IDM's weights into `model`; the architecture flags must match exactly, since a window
    width or feature set that differs would silently mean other inputs. Only `interpolate_held` may differ: it
    changes the values of held frames, not what a column means, so a model can be trained on into it."""
    weights, saved = load_exported(folder)
    saved_cfg = IDMConfig.from_dict(saved["model"])
    if replace(saved_cfg, interpolate_held=model_cfg.interpolate_held) != model_cfg:
        diff = {k: (v, getattr(model_cfg, k)) for k, v in asdict(saved_cfg).items() if getattr(model_cfg, k) != v}
        raise ValueError(f"--init {folder}: its architecture differs from this run's (saved, asked): {diff}")
    model.load_state_dict(weights)
    return {"path": str(folder), "weights_sha256": saved.get("weights_sha256"),
            "steps": saved.get("final_metrics", {}).get("step")}


def equiv_rules_of(roots: list[Path]) -> list[int]:
    """Versions of the equivalence classes (bot/actions.py EQUIV_RULES) the simulated data was labelled with;
    data from before the version was recorded has version 1."""
    found = {read_json(Path(r) / "manifest.json").get("config", {}).get("equiv_rules", 1)
             for r in roots if (Path(r) / "manifest.json").is_file()}
    return sorted(found)


def model_card(cfg: Config, model_cfg: IDMConfig, history: list[dict], gaps: dict, n_train: int, n_val: int,
               init: dict | None = None) -> str:
    last = history[-1] if history else {}
    metrics = metrics_table(last, lambda k: k != "train_loss")
    car_gaps, ball_gaps = np.round(gaps["car"], 4).tolist(), np.round(gaps["ball"], 4).tolist()
    gaps_source = f"{gaps.get('source', 'measured')}; {gaps.get('replays', 0)} replays"
    boost_p = gaps.get("boost_update_p")
    boost_hold = f"updated on {boost_p:.3f} of frames" if boost_p is not None else "held with the physics only"
    start = (f"the weights of {init['path']} (sha256 {init['weights_sha256']}, trained {init['steps']} steps)"
             if init else "random weights")
    held_note = "; held frames filled in between fresh samples (`--interpolate-held`)" \
        if model_cfg.interpolate_held else ""
    return f"""# IDM model card

Inverse dynamics model of RL-RPT: a window of {model_cfg.window} frames (30 Hz) around a moment, seen from one car
-> which of the 90 actions that car took, and its on_ground / has_jump / has_flip.

- Architecture: `{model_cfg.arch}`, hidden {model_cfg.hidden}, layers {model_cfg.layers}{held_note}
- Trained on simulated shards: {', '.join(map(str, cfg.sim))} ({n_train:,} train / {n_val:,} validation samples)
- Data manifests (sha256): {json.dumps(data_hashes(cfg.sim))}
- Equivalence classes of the labels: version {', '.join(map(str, equiv_rules_of(cfg.sim)))} (bot/actions.py
  EQUIV_RULES; 2 knows flips: docs/idm.md)
- Replay-style hold gaps (P of 1..4 frames): cars {car_gaps}, ball {ball_gaps} ({gaps_source}); boost amount
  {boost_hold}
- Started from {start}
- Steps {cfg.steps}, batch {cfg.batch_size}, lr {cfg.lr}, corruption share {cfg.corrupt_prob}
- Command: `{command_line()}`

## Validation metrics (step {last.get('step', 0)})

| metric | value |
|---|---|
{metrics}
"""


def main(cfg: Config) -> None:
    train(cfg)
