"""Evaluate an IDM on held-out simulated data (clean and corrupted) and against the inputs replays record.

    python -m training idm-eval --checkpoint models/idm --sim data/sim-nexto --replays data/replays --json idm-eval.json
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bot.actions import ACTION_TABLE
from bot.frame import DEMOLISHED, FRESH
from training.cli import arg, check_choices
from training.idm.data import DEFAULT_BALL_GAPS, DEFAULT_CAR_GAPS, SimDataset
from training.idm.infer import ACTION_COLUMN, DECODES, label_arrays, load_idm, recorded_values, replay_targets
from training.idm.metrics import SITUATIONS, batch_metrics, per_control_match, predict, situation_of
from training.storage import read_json, read_shard, write_json

@dataclass(frozen=True)
class Config:
    checkpoint: Path = arg(Path("models/idm"), "exported IDM folder (config.json + model.safetensors)")
    sim: tuple[Path, ...] = arg((), "simulate output folder(s); their validation shards are used")
    replays: Path | None = arg(None, "parsed replays (`python -m training replays` output)")
    json: Path = arg(Path("idm-eval.json"), "write the metrics here")
    plot: Path | None = arg(None, "write the confusion picture here (PNG), and the accuracy by situation beside it "
                                  "(<name>-situations.png)")
    samples: int = arg(20000, "simulated windows evaluated (clean and corrupted each)")
    max_lag: int = arg(3, "also score recorded inputs shifted by -max_lag..max_lag frames")
    seed: int = arg(0, "seed of the evaluated windows and their corruption")
    decode: str = arg("argmax", "how replay frames are labelled for the agreement: argmax (the IDM's single most "
                                "probable action) or class (what `label` writes by default)",
                       choices=DECODES)


def replay_agreement(action: np.ndarray, cars: np.ndarray, rows: np.ndarray, slots: np.ndarray,
                     lag: int = 0, ground: np.ndarray | None = None) -> dict[str, tuple[int, int]]:
    """(agreeing, counted) per input on fresh frames of non-demolished cars, recorded inputs taken `lag` frames
    after the labelled frame. Recorded values are read as labelling reads them (`recorded_values`: jump as
    presses); `jump_component` scores jump against any active jump component instead (the reading before
    2026-12-04). With `ground` (T, P) bool, each input is also scored on the ground and in the air apart
    (`<input>_ground`, `<input>_air`): in the air the table ties throttle to boost and steer to yaw."""
    src = rows + lag
    ok = (src >= 0) & (src < len(cars))
    rows, slots, src = rows[ok], slots[ok], src[ok]
    car, rec, prev = cars[rows, slots], cars[src, slots], cars[np.maximum(src - 1, 0), slots]
    keep = (car[:, FRESH] > 0.5) & (car[:, DEMOLISHED] < 0.5) & (action[rows, slots] >= 0)
    pred = ACTION_TABLE[action[rows, slots]]  # (N, 8)
    values = recorded_values(rec, prev)
    values["jump_component"] = recorded_values(rec)["jump"]
    on = ground[rows, slots] if ground is not None else None
    out = {}
    for name, value in values.items():
        column = ACTION_COLUMN["jump" if name == "jump_component" else name]
        agree = pred[:, column] == value
        counted = keep & np.isfinite(value)
        out[name] = (int((agree & counted).sum()), int(counted.sum()))
        if on is not None and name != "jump_component":
            for where, mask in (("ground", on), ("air", ~on)):
                out[f"{name}_{where}"] = (int((agree & counted & mask).sum()), int((counted & mask).sum()))
    return out


def evaluate_replays(model, cfg_model, root: Path, max_lag: int, device, decode: str = "argmax") -> dict:
    shards = sorted(p for p in Path(root).iterdir() if (p / "meta.json").is_file())
    totals = {lag: {} for lag in range(-max_lag, max_lag + 1)}
    per_replay = {}
    for path in tqdm(shards, desc="replays", unit="replay"):
        arrays, meta = read_shard(path)
        labels = label_arrays(model, cfg_model, arrays, device, decode=decode)
        rows, slots, _, _ = replay_targets(arrays)
        cars = np.asarray(arrays["cars_tpf"])
        ground = labels["flags_tp3"][..., 0] > 0.5  # the IDM's own on_ground: replays do not record it
        for lag in totals:
            scores = replay_agreement(labels["action_tp"], cars, rows, slots, lag, ground)
            for name, (a, n) in scores.items():
                prev = totals[lag].get(name, (0, 0))
                totals[lag][name] = (prev[0] + a, prev[1] + n)
            if lag == 0:
                per_replay[path.name] = {f"{k}_agree": a / n if n else None for k, (a, n) in scores.items()}
                per_replay[path.name]["frames"] = max(n for _, n in scores.values())
    overall = {f"{k}_agree": a / n if n else None for k, (a, n) in totals[0].items()}
    overall["frames"] = max((n for _, n in totals[0].values()), default=0)
    overall["replays"] = len(shards)
    overall["lag_scan"] = {str(lag): {k: a / n if n else None for k, (a, n) in t.items()} for lag, t in totals.items()}
    overall["per_replay"] = per_replay
    return overall


def plot_control_confusion(pred: np.ndarray, equiv: np.ndarray, path: Path) -> None:
    """One 3x3 matrix per control: predicted value vs the label's value (label = nearest equivalent row)."""
    from training.plots import plt, save_figure
    rows = ACTION_TABLE[pred]
    agree = per_control_match(pred, equiv)
    # the label's value per control = predicted value where it matched, else the closest equivalent row's value
    score = np.where(equiv, (ACTION_TABLE[None] == rows[:, None]).sum(-1), -1)
    label_rows = ACTION_TABLE[score.argmax(-1)]
    from bot.actions import CONTROL_NAMES
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.5), dpi=100)
    for c, ax in enumerate(axes.ravel()):
        values = (-1, 0, 1)
        m = np.array([[np.sum((label_rows[:, c] == lv) & (rows[:, c] == pv)) for pv in values] for lv in values])
        frac = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
        for i in range(3):
            for j in range(3):
                ax.text(j, i, f"{frac[i, j]:.2f}\n({m[i, j]})", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(3), values)
        ax.set_yticks(range(3), values)
        ax.set_title(f"{CONTROL_NAMES[c]}: {agree[:, c].mean():.3f}", fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("label", fontsize=8)
    save_figure(fig, path)


def situations_plot_path(plot: Path) -> Path:
    return Path(plot).with_name(f"{Path(plot).stem}-situations.png")


def plot_situations(report: dict, path: Path) -> None:
    """Accuracy by situation, clean and corrupted, beside each situation's share of frames and of errors."""
    from training.plots import plt, save_figure
    clean, corrupt = report["sim_clean"]["by_situation"], report["sim_corrupt"]["by_situation"]
    names = [n for n in SITUATIONS if n in clean]
    y = np.arange(len(names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.5 * len(names) + 1.6), dpi=100, sharey=True)
    for ax, key, title in ((left, "accuracy", "equivalence-aware accuracy"), (right, None, "share of frames / errors")):
        bars = ({"clean": [clean[n][key] for n in names], "corrupted": [corrupt[n][key] for n in names]} if key else
                {"frames": [clean[n]["share"] for n in names],
                 "errors, clean": [clean[n]["error_share"] for n in names],
                 "errors, corrupted": [corrupt[n]["error_share"] for n in names]})
        colours = ["C0", "C1"] if key else ["0.6", "C0", "C1"]  # clean blue and corrupted orange in both panels
        h = 0.8 / len(bars)
        for i, ((label, values), colour) in enumerate(zip(bars.items(), colours)):
            ax.barh(y + (i - (len(bars) - 1) / 2) * h, values, h, label=label, color=colour)
            for yi, v in zip(y + (i - (len(bars) - 1) / 2) * h, values):
                ax.text(v, yi, f" {v:.2f}", va="center", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    left.axvline(0.95, color="grey", lw=0.8, ls="--")
    left.axvline(0.90, color="grey", lw=0.8, ls=":")
    left.set_xlim(0, 1.12)
    left.set_yticks(y, names, fontsize=8)
    left.invert_yaxis()
    fig.suptitle(f"IDM on held-out simulation: clean {report['sim_clean']['action_equiv_acc']:.3f}, "
                 f"corrupted {report['sim_corrupt']['action_equiv_acc']:.3f} (targets 0.95 / 0.90, dashed / dotted)",
                 fontsize=10)
    save_figure(fig, path)


def main(cfg: Config) -> dict:
    check_choices(cfg)  # before minutes of simulated windows, not after
    device = torch.device("cpu")
    model, model_cfg = load_idm(cfg.checkpoint, device)
    report: dict = {"config": asdict(cfg), "model": model_cfg.to_dict()}
    if cfg.sim:
        data = SimDataset(list(cfg.sim), "val")
        ids = np.random.default_rng(cfg.seed).integers(0, len(data), cfg.samples)
        gaps = read_json(Path(cfg.checkpoint) / "config.json").get("gaps", {})  # the holds it was trained with
        car_gaps = np.asarray(gaps.get("car", DEFAULT_CAR_GAPS))
        ball_gaps = np.asarray(gaps.get("ball", DEFAULT_BALL_GAPS))
        boost_p = gaps.get("boost_update_p")  # None for models trained before boost holds: not held then
        report["corrupt_gaps"] = {"car": car_gaps.tolist(), "ball": ball_gaps.tolist(), "boost_update_p": boost_p}
        for name, p in (("sim_clean", 0.0), ("sim_corrupt", 1.0)):
            batch = data.batch(np.random.default_rng(cfg.seed + 1), 0, model_cfg.half_width, p, car_gaps, ball_gaps,
                               ids=ids, motion=model_cfg.motion, boost_update_p=boost_p,
                               interpolate=model_cfg.interpolate_held)
            report[name] = batch_metrics(model, batch, device,
                                         situation_of(batch.centre_bf, batch.ball_bf, batch.flip_phase_b))
            if name == "sim_corrupt" and cfg.plot:
                probs, _ = predict(model, batch.x_bwf, device)
                plot_control_confusion(probs.argmax(-1), batch.equiv_ba, cfg.plot)
        if cfg.plot:
            plot_situations(report, situations_plot_path(cfg.plot))
    if cfg.replays:
        report["replay"] = evaluate_replays(model, model_cfg, cfg.replays, cfg.max_lag, device, cfg.decode)
    write_json(cfg.json, report)
    summary = {k: {m: x for m, x in v.items() if m != "by_situation"} for k, v in report.items()
               if k in ("sim_clean", "sim_corrupt")}
    if "replay" in report:
        summary["replay"] = {k: v for k, v in report["replay"].items() if k not in ("per_replay", "lag_scan")}
    print(json.dumps(summary, indent=2))
    return report
