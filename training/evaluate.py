"""Play games between two agents in the simulated arena and report goals, touches, demos and kickoffs."""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from training.agents import driver_factory
from training.cli import arg
from training.sim.arena import Match
from training.storage import write_json


@dataclass(frozen=True)
class Config:
    blue: str = arg("baseline:chaser",
                    "agent spec A (blue in game 1): baseline:chaser|baseline:random|nexto[:PATH]|path/to/bot.cfg")
    orange: str = arg("baseline:random", "agent spec B (orange in game 1)")
    games: int = arg(4, "number of games")
    seconds: float = arg(300.0, "game clock per game, s")
    team_size: int = arg(1, "cars per team (1-3)")
    seed: int = arg(0, "seed for kickoff spawns")
    swap_sides: bool = arg(True, "swap colours every other game, so neither agent keeps one side")
    overtime: bool = arg(False, "play overtime (next goal wins) instead of ending tied games as draws")
    countdown: float = arg(3.0, "kickoff countdown, s (cars frozen, as in the game)")
    json: Path | None = arg(None, "write the per-game results and the summary to this JSON file")
    plot: Path | None = arg(None, "folder for a top-down PNG of each game's trajectories")
    gif: Path | None = arg(None, "write an animated top-down GIF of game 0 here (training/animate.py)")


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (draws may count as half a success)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


QUICK_GOAL_S = 10.0  # a goal this soon after its kickoff came from the kickoff play


def summarise(games: list[dict], spec_a: str, spec_b: str) -> dict:
    """Win/draw/loss of agent A against B with a Wilson interval, goals per game, per-side goal totals, and the
    kickoffs: who touched the ball first and how many goals came within QUICK_GOAL_S of a kickoff."""
    wins = draws = losses = goals_a = goals_b = quick_a = quick_b = first_a = first_b = 0
    for g in games:
        a_team = 0 if g["a_side"] == "blue" else 1
        a, b = (g["blue_goals"], g["orange_goals"]) if a_team == 0 else (g["orange_goals"], g["blue_goals"])
        goals_a, goals_b = goals_a + a, goals_b + b
        wins, draws, losses = wins + (a > b), draws + (a == b), losses + (a < b)
        quick = [team for team, seconds in g.get("goals", []) if seconds < QUICK_GOAL_S]  # teams that scored
        first = [int(slot >= len(g["blue"])) for slot in g.get("kickoff_first_touch", []) if slot >= 0]  # teams
        quick_a, quick_b = quick_a + quick.count(a_team), quick_b + len(quick) - quick.count(a_team)
        first_a, first_b = first_a + first.count(a_team), first_b + len(first) - first.count(a_team)
    n = len(games)
    lo, hi = wilson_interval(wins + 0.5 * draws, n)
    return {"a": spec_a, "b": spec_b, "games": n, "a_wins": wins, "draws": draws, "a_losses": losses,
            "a_score_rate": (wins + 0.5 * draws) / max(n, 1), "a_score_rate_ci95": [lo, hi],
            "a_goals_per_game": goals_a / max(n, 1), "b_goals_per_game": goals_b / max(n, 1),
            "blue_goals": sum(g["blue_goals"] for g in games), "orange_goals": sum(g["orange_goals"] for g in games),
            "a_kickoff_first_touch_rate": first_a / max(first_a + first_b, 1),
            "a_quick_goals": quick_a, "b_quick_goals": quick_b}


def main(cfg: Config) -> dict:
    if not 1 <= cfg.team_size <= 3:
        raise SystemExit("--team-size must be 1, 2 or 3")
    make_a, make_b = driver_factory(cfg.blue), driver_factory(cfg.orange)
    drivers_a = [make_a() for _ in range(cfg.team_size)]
    drivers_b = [make_b() for _ in range(cfg.team_size)]
    games = []

    def report(complete: bool) -> dict:
        return {"config": asdict(cfg), "complete": complete, "summary": summarise(games, cfg.blue, cfg.orange),
                "games": games}

    try:
        for g in tqdm(range(cfg.games), desc="games", unit="game"):
            a_blue = not (cfg.swap_sides and g % 2 == 1)
            blue, orange = (drivers_a, drivers_b) if a_blue else (drivers_b, drivers_a)
            match = Match(blue, orange, seed=cfg.seed * 1000 + g, countdown_seconds=cfg.countdown,
                          overtime=cfg.overtime)
            result = match.play(cfg.seconds)
            row = {"game": g, "a_side": "blue" if a_blue else "orange", **result.summary()}
            games.append(row)
            tqdm.write(f"game {g}: {'+'.join(result.blue)} (blue) {result.blue_goals} - {result.orange_goals} "
                       f"{'+'.join(result.orange)} (orange); touches {result.touches}, demos {result.demolitions}, "
                       f"kickoffs {result.kickoffs}")
            if cfg.plot and result.trajectory:
                from training.plots import plot_game
                teams = [0] * len(result.blue) + [1] * len(result.orange)
                plot_game(result.trajectory, teams, result.blue + result.orange,
                          f"game {g}: blue {result.blue_goals} - {result.orange_goals} orange",
                          Path(cfg.plot) / f"game-{g:03d}.png")
            if cfg.gif and g == 0 and result.trajectory:
                from training.animate import animate_game
                animate_game(result.trajectory, [0] * len(result.blue) + [1] * len(result.orange), result.blue
                             + result.orange, f"final {result.blue_goals}-{result.orange_goals}", cfg.gif)
            if cfg.json:  # after every game, so a stopped run keeps what it played
                write_json(Path(cfg.json), report(complete=False))
    finally:
        for d in drivers_a + drivers_b:
            d.close()
    final = report(complete=True)
    print(json.dumps(final["summary"], indent=2))
    if cfg.json:
        write_json(Path(cfg.json), final)
    return final
