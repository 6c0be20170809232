"""Build the pipeline's report: <work>/report/report.md plus PNG plots, from what the stages wrote.

    python -m training report --work out/pipeline-tiny

Sections: stage times (stamps), data sizes (manifests), IDM accuracy per control and flag and agreement with
the inputs replays record (idm-eval JSON), IDM and BC curves (history.json / curves.png), arena fine-tuning
(finetune history), match results (evaluate JSON, per-game pictures, the GIF). A section whose inputs are
missing says so instead of failing.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.cli import arg
from training.storage import atomic_write_text, read_json


@dataclass(frozen=True)
class Config:
    work: Path = arg(Path("out/pipeline-tiny"), "pipeline work folder (python -m training pipeline --work)")


def _json(path: Path) -> dict | None:
    return read_json(path) if Path(path).is_file() else None


def _folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e6 if Path(path).is_dir() else 0.0


def _save(fig, path: Path) -> str:
    from training.plots import plt
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def _bars(ax, labels: list[str], series: dict[str, list[float]], ylabel: str) -> None:
    """Grouped vertical bars, one group per label, one bar per series."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(labels))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)


def section_stages(work: Path) -> str:
    rows = []
    for stamp in sorted((work / "stamps").glob("*.json")):
        if stamp.stem == "report":  # being written right now
            continue
        s = read_json(stamp)
        rows.append(f"| {stamp.stem} | {'done' if s.get('done') else 'unfinished'} | {s.get('seconds', '')} | "
                    f"{s.get('finished', '')} |")
    if not rows:
        return "## Stages\n\nNo stage has run in this folder yet."
    return "## Stages\n\n| stage | state | seconds (last run) | finished |\n|---|---|---|---|\n" + "\n".join(rows)


def section_data(work: Path, out: Path) -> str:
    from training.plots import plt
    sim, reps, labels = (_json(work / p / "manifest.json") for p in ("sim", "replays", "labels"))
    if not (sim or reps):
        return "## Data\n\nNo manifests yet."
    used = [e for e in (reps or {}).get("replays", []) if e.get("status") in ("parsed", "cached")]
    rep_hours = sum(e.get("duration_s") or 0 for e in used) / 3600
    rep_frames = sum(e.get("num_frames") or 0 for e in used)
    sim_c, teacher = (sim or {}).get("counts", {}), ((sim or {}).get("teacher") or {}).get("name")
    lines = ["## Data", "", "| dataset | size |", "|---|---|",
             f"| simulated ({teacher} teacher) | {sim_c.get('game_seconds', 0) / 3600:.2f} "
             f"game-hours, {sim_c.get('car_frames', 0):,} car-frames, {sim_c.get('episodes', 0):,} episodes, "
             f"{_folder_mb(work / 'sim'):.0f} MB |",
             f"| replays | {(reps or {}).get('counts', {})}: {len(used)} used, {rep_hours:.2f} hours, "
             f"{rep_frames:,} frames, {_folder_mb(work / 'replays'):.0f} MB |",
             f"| labels | {(labels or {}).get('labelled_frames', 0):,} labelled player-frames in "
             f"{len((labels or {}).get('shards', {}))} replays |"]
    fig, (ax_h, ax_f) = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    _bars(ax_h, ["simulated", "replays"], {"hours": [sim_c.get("game_seconds", 0) / 3600, rep_hours]}, "hours")
    _bars(ax_f, ["sim car-frames", "replay frames", "labelled player-frames"],
          {"frames": [sim_c.get("car_frames", 0), rep_frames, (labels or {}).get("labelled_frames", 0)]}, "frames")
    lines += ["", f"![data sizes]({_save(fig, out / 'data.png')})"]
    return "\n".join(lines)


def section_idm(work: Path, out: Path) -> str:
    from training.idm_eval import situations_plot_path
    from training.plots import plt
    ev = _json(work / "idm-eval" / "idm-eval.json")
    lines = ["## Inverse dynamics model"]
    if (work / "idm" / "curves.png").is_file():
        shutil.copy2(work / "idm" / "curves.png", out / "idm-curves.png")
        lines += ["", "Training curves: ![IDM curves](idm-curves.png)"]
    if not ev or "sim_clean" not in ev:
        return "\n".join(lines + ["", "No idm-eval results yet."])
    keys = [k for k in ev["sim_clean"] if k.startswith(("control_acc.", "flag_acc."))]
    lines += ["", "Held-out simulation, accuracy per control and per flag:", "",
              "| metric | clean | corrupted |", "|---|---|---|"]
    for k in ("action_equiv_acc", "action_exact_acc", *keys):
        lines.append(f"| {k} | {ev['sim_clean'][k]:.3f} | {ev['sim_corrupt'][k]:.3f} |")
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    _bars(ax, [k.split(".", 1)[1] for k in keys], {"clean": [ev["sim_clean"][k] for k in keys],
                                                    "corrupted": [ev["sim_corrupt"][k] for k in keys]}, "accuracy")
    ax.set_ylim(0, 1)
    lines += ["", f"![IDM accuracy]({_save(fig, out / 'idm-accuracy.png')})"]
    if (work / "idm-eval" / "confusion.png").is_file():
        shutil.copy2(work / "idm-eval" / "confusion.png", out / "idm-confusion.png")
        lines += ["", "Per-control confusion (corrupted windows): ![confusion](idm-confusion.png)"]
    situations = situations_plot_path(work / "idm-eval" / "confusion.png")
    if situations.is_file():
        shutil.copy2(situations, out / "idm-situations.png")
        lines += ["", "Where the errors are (accuracy by situation of the labelled frame): "
                      "![situations](idm-situations.png)"]
    return "\n".join(lines + ["", section_replay_agreement(ev.get("replay"), out)])


def section_replay_agreement(rep: dict | None, out: Path) -> str:
    from training.plots import plt
    if not rep:
        return "### Agreement with recorded replay inputs\n\nNot evaluated."
    keys = [k for k in rep if k.endswith("_agree") and rep[k] is not None
            and not k.endswith(("_ground_agree", "_air_agree"))]

    def cell(key: str) -> str:
        return f"{rep[key]:.3f}" if rep.get(key) is not None else "–"

    lines = ["### Agreement with recorded replay inputs", "",
             f"{rep.get('replays', 0)} replays, {rep.get('frames', 0):,} player-frames (lag 0; ground / air by the "
             "IDM's on_ground):", "", "| input | agreement | on the ground | in the air |", "|---|---|---|---|"]
    lines += [f"| {k[:-6]} | {rep[k]:.3f} | {cell(k[:-6] + '_ground_agree')} | {cell(k[:-6] + '_air_agree')} |"
              for k in keys]
    fig, (ax_b, ax_l) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    _bars(ax_b, [k[:-6] for k in keys], {"agreement": [rep[k] for k in keys]}, "agreement")
    ax_b.set_ylim(0, 1)
    lags = sorted(rep.get("lag_scan", {}), key=int)
    for k in keys:
        ax_l.plot([int(lag) for lag in lags], [rep["lag_scan"][lag].get(k[:-6]) or np.nan for lag in lags], marker=".",
                  label=k[:-6])
    ax_l.set_xlabel("recorded inputs shifted by (frames)")
    ax_l.set_ylabel("agreement")
    ax_l.legend(fontsize=7)
    ax_l.grid(alpha=0.3)
    return "\n".join(lines + ["", f"![replay agreement]({_save(fig, out / 'replay-agreement.png')})"])


def section_bc(work: Path, out: Path) -> str:
    hist = _json(work / "bc" / "history.json")
    if not hist or not hist.get("history"):
        return "## Behaviour cloning\n\nNo bc-train history yet."
    last = hist["history"][-1]
    lines = ["## Behaviour cloning", "", f"Held-out replays at step {last['step']}:", "", "| metric | value |",
             "|---|---|"] + [f"| {k} | {v:.3f} |" for k, v in last.items() if k.startswith("val.")]
    if (work / "bc" / "curves.png").is_file():
        shutil.copy2(work / "bc" / "curves.png", out / "bc-curves.png")
        lines += ["", "![BC curves](bc-curves.png)"]
    return "\n".join(lines)


def section_finetune(work: Path, out: Path) -> str:
    hist = _json(work / "finetune" / "history.json")
    if not hist or not hist.get("history"):
        return "## Arena fine-tuning\n\nNo finetune history (the clone plays as trained)."
    rows, last = hist["history"], hist["history"][-1]
    first = rows[:max(1, len(rows) // 10)]
    final = rows[-max(1, len(rows) // 10):]

    def mean(part: list[dict], key: str) -> float:
        return sum(r[key] for r in part) / len(part)

    lines = ["## Arena fine-tuning", "", f"PPO against the chaser baseline for {last['step']:,} learner decisions, "
             "KL to the clone in the loss. Averages over the first and the last tenth of the updates:", "",
             "| | goals for / game-minute | goals against / game-minute | KL to the clone |", "|---|---|---|---|"]
    for name, part in (("start", first), ("end", final)):
        lines.append(f"| {name} | {mean(part, 'goals_for_per_minute'):.2f} | "
                     f"{mean(part, 'goals_against_per_minute'):.2f} | {mean(part, 'kl_clone'):.3f} |")
    if (work / "finetune" / "curves.png").is_file():
        shutil.copy2(work / "finetune" / "curves.png", out / "finetune-curves.png")
        lines += ["", "![fine-tuning curves](finetune-curves.png)"]
    return "\n".join(lines)


def kickoff_line(s: dict) -> str:
    """Who reaches the ball first after kickoffs, and goals scored within 10 s of one (results from before
    2026-12-04 lack these keys)."""
    if "a_kickoff_first_touch_rate" not in s:
        return ""
    return (f" Ours touched the ball first after {s['a_kickoff_first_touch_rate']:.0%} of kickoffs; goals within "
            f"10 s of a kickoff: {s['a_quick_goals']} ours, {s['b_quick_goals']} theirs.")


def section_matches(work: Path, out: Path) -> str:
    res = _json(work / "evaluate" / "results.json")
    if not res:
        return "## Matches\n\nNo evaluate results yet."
    s = res["summary"]
    lines = ["## Matches in the simulated arena", "",
             f"{s['a']} against {s['b']}: {s['games']} games, {s['a_wins']} wins, {s['draws']} draws, "
             f"{s['a_losses']} losses; score rate {s['a_score_rate']:.2f} (95% CI {s['a_score_rate_ci95'][0]:.2f}-"
             f"{s['a_score_rate_ci95'][1]:.2f}); goals per game {s['a_goals_per_game']:.2f} - "
             f"{s['b_goals_per_game']:.2f}.{kickoff_line(s)}", "",
             "| game | ours plays | blue | orange | touches | kickoffs |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {g['game']} | {g['a_side']} | {g['blue_goals']} | {g['orange_goals']} | {g['touches']} | "
              f"{g['kickoffs']} |" for g in res["games"]]
    for png in sorted((work / "evaluate").glob("game-*.png")):
        shutil.copy2(png, out / png.name)
        lines += ["", f"![{png.stem}]({png.name})"]
    if (work / "evaluate" / "game.gif").is_file():
        shutil.copy2(work / "evaluate" / "game.gif", out / "game.gif")
        lines += ["", "Game 0, animated: ![game 0](game.gif)"]
    return "\n".join(lines)


def build_report(work_dir: Path) -> Path:
    """Write <work>/report/report.md and its plots; returns the path of report.md."""
    work = Path(work_dir)
    out = work / "report"
    out.mkdir(parents=True, exist_ok=True)
    sections = [section_stages(work), section_data(work, out), section_idm(work, out), section_bc(work, out),
                section_finetune(work, out), section_matches(work, out)]
    path = out / "report.md"
    atomic_write_text(path, f"# RL-RPT pipeline report: {work}\n\n" + "\n\n".join(sections) + "\n")
    return path


def main(cfg: Config) -> None:
    print(f"report: {build_report(cfg.work)}")
