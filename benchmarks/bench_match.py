"""Match strength: several policies against one opponent, over several seeds, pooled with a confidence interval.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_match.py --policy bundled=models/bc \
        --policy new=out/exp/policy-60m --seeds 0 1 2 3 --jobs 2 --out out/bench-match

Why: one 20-game `evaluate` has a 95% interval of about +-0.2 on its score rate, and two runs of the same policy
with different seeds have differed by 13 wins (docs/benchmarks.md), so a policy is only compared with its peers
played in the same run, over the same seeds, and pooled. Each policy becomes a copy of the shipped bot (bot.cfg +
bot/ + that policy as models/bc, training.pipeline.prepare_bot), optionally at another temperature
(`NAME=PATH@0.25`), so the games are played exactly as RLBotGUI would load the bot. Every (policy, seed) pair is
one `python -m training evaluate --games G --seed S` process; --jobs of them run at once, policies alternating, so
a busy machine hurts them alike. A pair whose JSON in --out is complete, with the same opponent, games, seconds,
seed and team size, is not played again (rerun to resume; give changed policies a new --out or name). With
`--team-size 2` or 3 every car of the bot's team is a copy of the bot, every car of the other team the opponent.
Prints and writes summary-vs-<opponent>[-NvN].md: per-seed W / D / L and the pooled wins, win rate and score rate
with 95% Wilson intervals, goals per game.
"""

import argparse
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from training.evaluate import wilson_interval
from training.pipeline import prepare_bot

ROOT = Path(__file__).resolve().parents[1]


def parse_policy(spec: str) -> tuple[str, Path, float | None]:
    """'NAME=PATH' or 'NAME=PATH@TEMPERATURE' -> (name, policy folder, temperature or None for bot.cfg's)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise SystemExit(f"--policy {spec!r}: expected NAME=PATH or NAME=PATH@TEMPERATURE")
    path, _, temp = rest.partition("@")
    if not (Path(path) / "config.json").is_file():
        raise SystemExit(f"--policy {spec!r}: {path} is not a policy folder (no config.json)")
    return name, Path(path), float(temp) if temp else None


def make_bot(folder: Path, policy: Path, temperature: float | None) -> Path:
    """A bot copy playing `policy`; its bot.cfg's temperature replaced when one is given."""
    cfg = prepare_bot(folder, policy)
    if temperature is not None:
        text, n = re.subn(r"(?m)^temperature = .*$", f"temperature = {temperature}", cfg.read_text())
        if n != 1:
            raise SystemExit(f"{cfg}: no 'temperature = ' line to set")
        cfg.write_text(text)
    return cfg


def play(bot_cfg: Path, opponent: str, games: int, seconds: float, seed: int, team_size: int, out: Path) -> dict:
    """One evaluate process (skipped when `out` already holds a complete run of these settings) -> its summary."""
    wanted = {"orange": opponent, "games": games, "seconds": seconds, "seed": seed, "team_size": team_size}
    if out.is_file() and (played := json.loads(out.read_text())).get("complete") and all(
            played["config"].get(k) == v for k, v in wanted.items()):
        return played["summary"]
    cmd = [sys.executable, "-m", "training", "evaluate", "--blue", str(bot_cfg), "--orange", opponent,
           "--games", str(games), "--seconds", str(seconds), "--seed", str(seed), "--team-size", str(team_size),
           "--json", str(out)]
    with open(out.with_suffix(".log"), "w") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    return json.loads(out.read_text())["summary"]


def table(names: list[str], seeds: list[int], results: dict[tuple[str, int], dict]) -> str:
    """Markdown: per-seed W / D / L, then pooled counts, rates with 95% Wilson intervals and goals per game."""
    head = ["policy", *[f"seed {s}" for s in seeds], "pooled W / D / L", "win rate (95% CI)",
            "score rate (95% CI)", "goals for - against"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        runs = [results[name, s] for s in seeds]
        w, d, l = (sum(r[k] for r in runs) for k in ("a_wins", "draws", "a_losses"))
        n = w + d + l
        win_lo, win_hi = wilson_interval(w, n)
        score_lo, score_hi = wilson_interval(w + 0.5 * d, n)
        goals_for = sum(r["a_goals_per_game"] * r["games"] for r in runs) / n
        goals_against = sum(r["b_goals_per_game"] * r["games"] for r in runs) / n
        cells = [name, *[f"{r['a_wins']} / {r['draws']} / {r['a_losses']}" for r in runs], f"{w} / {d} / {l}",
                 f"{w / n:.3f} ({win_lo:.2f}-{win_hi:.2f})", f"{(w + 0.5 * d) / n:.3f} ({score_lo:.2f}-{score_hi:.2f})",
                 f"{goals_for:.2f} - {goals_against:.2f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", action="append", required=True, help="NAME=PATH[@TEMPERATURE], repeatable")
    p.add_argument("--opponent", default="baseline:chaser", help="agent spec, e.g. nexto:PATH/nexto-model.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--games", type=int, default=20, help="games per (policy, seed)")
    p.add_argument("--seconds", type=float, default=300.0)
    p.add_argument("--team-size", type=int, default=1, choices=(1, 2, 3), help="cars per team (both teams)")
    p.add_argument("--jobs", type=int, default=2, help="evaluate processes at once (one core each)")
    p.add_argument("--out", type=Path, default=Path("out/bench-match"))
    args = p.parse_args()

    policies = [parse_policy(s) for s in args.policy]
    names = [name for name, _, _ in policies]
    if len(set(names)) != len(names):
        raise SystemExit("--policy names must differ")
    args.out.mkdir(parents=True, exist_ok=True)
    opponent_tag = re.sub(r"[^a-z0-9]+", "-", args.opponent.split("/")[-1].lower()).strip("-")
    if args.team_size > 1:  # 1v1 keeps its plain names, so runs from before this option are reused
        opponent_tag += f"-{args.team_size}v{args.team_size}"
    # one bot copy per (policy, opponent): a run against another opponent may share --out while this one plays
    bots = {name: make_bot(args.out / "bots" / f"{name}-vs-{opponent_tag}", path, temp)
            for name, path, temp in policies}
    pairs = [(name, seed) for seed in args.seeds for name in names]  # policies alternate
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {(name, seed): pool.submit(play, bots[name], args.opponent, args.games, args.seconds, seed,
                                             args.team_size, args.out / f"{name}-vs-{opponent_tag}-s{seed}.json")
                   for name, seed in pairs}
        results = {pair: future.result() for pair, future in futures.items()}
    report = (f"{len(names)} policies against `{args.opponent}`, {args.team_size}v{args.team_size}, {args.games} games "
              f"of {args.seconds:.0f} s per seed, sides swapped every game\n\n" + table(names, args.seeds, results))
    print(report)
    (args.out / f"summary-vs-{opponent_tag}.md").write_text(report)


if __name__ == "__main__":
    main()
