"""Arena speed: ticks/s of a Match with chaser agents vs raw RocketSim ticks/s, measured in the same run.

Usage: python benchmarks/bench_arena.py [--seconds 60] [--repeats 3]
Raw RocketSim = `arena.step(1)` once per tick with controls set every tick and no state reads (the simulator
alone). The arena adds the GameTickPacket build, the agents' get_output calls and the match flow.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import RocketSim as rs  # noqa: E402

from training.agents import driver_factory  # noqa: E402
from training.sim.arena import Match  # noqa: E402
from training.sim.rocketsim import make_arena  # noqa: E402


def raw_ticks_per_second(team_size: int, ticks: int) -> float:
    arena = make_arena(team_size, team_size, seed=0)
    cars = arena.get_cars()
    controls = rs.CarControls(throttle=1.0, steer=0.3)
    start = time.perf_counter()
    for _ in range(ticks):
        for car in cars:
            car.set_controls(controls)
        arena.step(1)
    return ticks / (time.perf_counter() - start)


def arena_ticks_per_second(team_size: int, seconds: float) -> float:
    make = driver_factory("baseline:chaser")
    match = Match([make() for _ in range(team_size)], [make() for _ in range(team_size)], seed=0,
                  countdown_seconds=0.0, record_hz=0)
    start = time.perf_counter()
    result = match.play(seconds)
    return result.ticks / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="game seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| match | raw RocketSim ticks/s | arena ticks/s (2 teams of chasers) | arena / raw | arena x real time |")
    print("|---|---|---|---|---|")
    for size in (1, 3):
        raws, arenas = [], []
        for _ in range(args.repeats):
            raws.append(raw_ticks_per_second(size, int(args.seconds * 120)))
            arenas.append(arena_ticks_per_second(size, args.seconds))
        raw, ar = statistics.median(raws), statistics.median(arenas)
        print(f"| {size}v{size} | {raw:,.0f} | {ar:,.0f} | {ar / raw:.3f} | {ar / 120:.0f}x |")


if __name__ == "__main__":
    main()
