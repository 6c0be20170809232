"""Behaviour cloning: train the bot's policy on IDM-labelled replays (one CPU by default; GPUs with torchrun).

    python -m training bc-train --replays data/replays --labels data/labels --out runs/bc --export models/bc

Samples are fresh frames of the acting player (bc_data.py); replays are split into train / validation by a
hash of their name. Metrics: top-1 / top-5 action accuracy and per-control accuracy on held-out replays.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from bot.actions import ACTION_TABLE, CONTROL_NAMES, NOOP_ACTION
from bot.obs import C_ANG_VEL, C_LOCAL_VEL, G_PREV_ACTION, G_SELF
from bot.policy import Policy, PolicyConfig
from training.bc_data import is_validation_replay, load_bc_samples
from training.checkpoint import command_line, export_model, load_checkpoint, metrics_table, save_checkpoint
from training.cli import arg
from training.schedule import cosine_lr
from training.distributed import setup_distributed, teardown_distributed
from training.storage import read_json, sha256_file, write_json


SELF_ANG_VEL = slice(G_SELF.start + C_ANG_VEL.start, G_SELF.start + C_ANG_VEL.stop)  # global-block columns
SELF_SLIP = G_SELF.start + C_LOCAL_VEL.start + 1  # the player's sideways velocity in its own axes


@dataclass(frozen=True)
class Config:
    replays: Path = arg(Path("data/replays"), "parsed replays (`python -m training replays` output)")
    labels: Path = arg(Path("data/labels"), "IDM labels (`python -m training label` output)")
    out: Path = arg(Path("runs/bc"), "run folder: checkpoint/, tensorboard/, curves.png, model/")
    hidden: int = arg(256, "hidden width")
    layers: int = arg(3, "trunk layers after pooling")
    previous_action: bool = arg(False, "show the policy the previous action (it then mostly copies it and, in play, "
                                       "keeps repeating one action: see docs/bc.md)")
    mirror: bool = arg(True, "also train on left-right mirrored copies of every replay")
    self_motion_noise: float = arg(0.0, "std of Gaussian noise added to the player's own angular velocity "
                                        "(normalised units) in training batches, against copying the last input "
                                        "(docs/bc.md)")
    slip_noise: float = arg(0.0, "the same for the player's sideways velocity in its own axes (reveals powerslides)")
    reconstruct_boost: bool = arg(False, "show every car's boost amount rebuilt between the replay's rare updates "
                                         "from its recorded boost flag, as the bot reads it exactly at play time "
                                         "(measured, not adopted: docs/bc.md)")
    extrapolate_held: bool = arg(False, "move the ball and every car on by its velocity from its last physics sample "
                                        "where the replay holds it (1-4 frames), as the bot sees them where they are "
                                        "(measured, not adopted: docs/bc.md)")
    batch_size: int = arg(512, "samples per step per process")
    steps: int = arg(10000, "optimizer steps")
    lr: float = arg(1e-3, "peak learning rate (AdamW), cosine decay after a 2 percent warm-up")
    weight_decay: float = arg(1e-4, "AdamW weight decay")
    log_every: int = arg(50, "steps between TensorBoard scalars")
    eval_every: int = arg(1000, "steps between validation and checkpoints")
    seed: int = arg(0, "seed")
    device: str = arg("cpu", "cpu or cuda (with torchrun: one GPU per process)")
    threads: int = arg(0, "torch CPU threads (0 = torch default)")
    resume: bool = arg(False, "continue from <out>/checkpoint")
    export: Path | None = arg(None, "also export the final policy here (models/bc for the bot), fp16")

    # field -> the value that reproduces the runs of before it, so their pipeline stamps stay current
    ADDED_LATER: ClassVar[dict] = {"reconstruct_boost": False, "extrapolate_held": False}


def add_self_motion_noise(glob_bf: torch.Tensor, spin_std: float, slip_std: float = 0.0) -> None:
    """Blur the player's own angular velocity and sideways slip in place. In human play a turning car keeps
    turning, so a clone that sees its exact spin learns to keep doing what it is doing (docs/bc.md)."""
    if spin_std > 0:
        glob_bf[:, SELF_ANG_VEL] += spin_std * torch.randn_like(glob_bf[:, SELF_ANG_VEL])
    if slip_std > 0:
        glob_bf[:, SELF_SLIP] += slip_std * torch.randn_like(glob_bf[:, SELF_SLIP])


@torch.no_grad()
def evaluate(model: torch.nn.Module, glob: torch.Tensor, others: torch.Tensor, action: torch.Tensor) -> dict:
    model.eval()
    logits = torch.cat([model(glob[i:i + 8192], others[i:i + 8192]) for i in range(0, len(glob), 8192)])
    loss = torch.nn.functional.cross_entropy(logits, action).item()
    top5 = logits.topk(5, -1).indices
    pred = top5[:, 0]
    out = {"loss": loss, "top1": (pred == action).float().mean().item(),
           "top5": (top5 == action[:, None]).any(-1).float().mean().item()}
    table = torch.from_numpy(ACTION_TABLE)
    match = (table[pred] == table[action]).float().mean(0)
    out.update({f"control_acc.{n}": match[i].item() for i, n in enumerate(CONTROL_NAMES)})
    return out


def train(cfg: Config) -> dict:
    # ---- setup ----
    env = setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + env.rank)
    rng = np.random.default_rng([cfg.seed, env.rank])
    data = load_bc_samples(cfg.replays, cfg.labels, mirror=cfg.mirror, reconstruct=cfg.reconstruct_boost,
                           extrapolate=cfg.extrapolate_held)
    val_replay = np.array([is_validation_replay(n) for n in data.replays])
    if not val_replay.any() or val_replay.all():  # tiny corpora: hold out the smallest replay
        val_replay[:] = False
        val_replay[np.bincount(data.replay_b, minlength=len(data.replays)).argmin()] = True
    is_val = val_replay[data.replay_b]
    if len(data.replays) == 1:  # a single replay: hold out its last 10% of play instead
        n = int((~data.mirrored_b).sum())  # samples per copy: [original..., mirrored...]
        is_val = np.arange(len(data)) % n >= 0.9 * n
    to_t = torch.from_numpy
    train_idx = np.flatnonzero(~is_val)
    is_val &= ~data.mirrored_b  # validate on play as it happened
    if not cfg.previous_action:  # the no-op row: what the bot will feed too (PolicyConfig.previous_action)
        data.glob_bf[:, G_PREV_ACTION] = ACTION_TABLE[NOOP_ACTION]
    glob, others, action = to_t(data.glob_bf), to_t(data.others_bof), to_t(data.action_b)
    val = (glob[is_val].to(env.device), others[is_val].to(env.device), action[is_val].to(env.device))

    model_cfg = PolicyConfig(hidden=cfg.hidden, layers=cfg.layers, previous_action=cfg.previous_action)
    model = Policy(model_cfg).to(env.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    out = Path(cfg.out)
    step, history = 0, []
    if cfg.resume and (out / "checkpoint" / "state.json").is_file():
        state = load_checkpoint(out / "checkpoint", model, optimizer, rng)
        step, history = state["step"], state["history"]
    ddp_model = DistributedDataParallel(model) if env.world > 1 else model
    writer = None
    if env.is_main:
        from torch.utils.tensorboard import SummaryWriter
        out.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(out / "tensorboard")
        writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in asdict(cfg).items()), step)
        print(f"bc-train: {len(train_idx):,} train / {int(is_val.sum()):,} val samples from "
              f"{int((~val_replay).sum())} / {int(val_replay.sum())} replays, "
              f"{sum(p.numel() for p in model.parameters()):,} parameters, world size {env.world}")

    # ---- loop ----
    bar = tqdm(total=cfg.steps, initial=step, desc="bc-train", disable=not env.is_main, unit="step")
    t_last, seen = time.perf_counter(), 0
    while step < cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr)
        model.train()
        idx = torch.from_numpy(rng.choice(train_idx, cfg.batch_size))
        glob_batch = glob[idx].to(env.device)
        add_self_motion_noise(glob_batch, cfg.self_motion_noise, cfg.slip_noise)
        logits = ddp_model(glob_batch, others[idx].to(env.device))
        loss = torch.nn.functional.cross_entropy(logits, action[idx].to(env.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        seen += cfg.batch_size * env.world
        bar.update(1)
        if env.is_main and step % cfg.log_every == 0:
            now = time.perf_counter()
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/lr", cosine_lr(step, cfg.steps, cfg.lr), step)
            writer.add_scalar("perf/samples_per_s", seen / (now - t_last), step)
            t_last, seen = now, 0
        if env.is_main and (step % cfg.eval_every == 0 or step == cfg.steps):
            row = {"step": step, "train_loss": loss.item(), **{f"val.{k}": v for k, v in evaluate(model, *val).items()}}
            for k, v in row.items():
                if k.startswith("val."):
                    writer.add_scalar(k.replace("val.", "val/"), v, step)
            history.append(row)
            save_checkpoint(out / "checkpoint", model, optimizer, step, rng,
                            {"history": history, "config": asdict(cfg)})
            tqdm.write(f"step {step}: val top1 {row['val.top1']:.3f} top5 {row['val.top5']:.3f}")
    bar.close()

    # ---- final save ----
    if env.is_main:
        writer.close()
        write_json(out / "history.json", {"history": history})
        from training.plots import plot_curves
        plot_curves(history, out / "curves.png", keys=("val.top1", "val.top5", "val.control_acc.throttle",
                                                       "val.control_acc.steer"))
        config = {"model": model_cfg.to_dict(), "data": data_provenance(cfg, data.replays),
                  "final_metrics": history[-1] if history else {}}
        card = model_card(cfg, config, len(train_idx), int(is_val.sum()))
        export_model(out / "model", model, config, card)
        if cfg.export:
            export_model(cfg.export, model, config, card, half=True)
    teardown_distributed()
    return {"history": history}


def data_provenance(cfg: Config, replays: list[str]) -> dict:
    labels_manifest = Path(cfg.labels) / "manifest.json"
    idm = read_json(labels_manifest).get("idm_weights_sha256") if labels_manifest.is_file() else None
    return {"replays": len(replays), "replay_sha256": replays, "idm_weights_sha256": idm,
            "labels_manifest_sha256": sha256_file(labels_manifest) if labels_manifest.is_file() else None}


def model_card(cfg: Config, config: dict, n_train: int, n_val: int) -> str:
    last = config["final_metrics"]
    rows = metrics_table(last, lambda k: k.startswith("val."))
    return f"""# BC policy model card

The policy the RL-RPT bot plays with: replay-style observation (bot/obs.py) -> one of the 90 actions.

- Trained on {config['data']['replays']} labelled replays ({n_train:,} train / {n_val:,} validation samples:
  fresh frames of the acting player, kickoff standing-still frames dropped, split by replay)
- IDM that labelled them (weights sha256): {config['data']['idm_weights_sha256']}
- Labels manifest sha256: {config['data']['labels_manifest_sha256']}
- hidden {cfg.hidden}, layers {cfg.layers}, previous action shown: {cfg.previous_action},
  mirrored copies: {cfg.mirror}, self-motion noise: {cfg.self_motion_noise}, slip noise: {cfg.slip_noise},
  boost amounts rebuilt between the replay's updates: {cfg.reconstruct_boost}, held positions extrapolated:
  {cfg.extrapolate_held}, steps {cfg.steps}, batch {cfg.batch_size}, lr {cfg.lr}
- Command: `{command_line()}`

## Held-out metrics (step {last.get('step', 0)})

| metric | value |
|---|---|
{rows}
"""


def main(cfg: Config) -> None:
    train(cfg)
