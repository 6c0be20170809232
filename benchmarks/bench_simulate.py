"""Simulated IDM data speed: game-seconds per wall-second on one core, per teacher, against raw RocketSim.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_simulate.py --repeats 3

Raw RocketSim = the same arenas stepped 4 ticks at a time with every state read (cars, ball, pads), nothing
else; it is measured in the same run, so the ratio is robust to a busy machine. It keeps the per-arena readers
(`read_cars`, `read_ball`, `read_pads`) so that ratios stay comparable across versions; the recorder itself reads
with `BatchReader`, about 2x cheaper, which is why the random teacher can come close to raw. "Nexto share" is
the part of the Nexto recorder's wall time spent inside the model call. One process, torch on 1 thread. Medians
of --repeats.
"""

import argparse
import gc
import statistics
import time
from dataclasses import replace

import numpy as np
import RocketSim as rs
import torch

from bot.constants import FRAME_RATE, TICKS_PER_FRAME
from training.sim.recorder import make_light_arena, run_shard
from training.sim.rocketsim import read_ball, read_cars, read_pads
from training.simulate import Config, make_teacher

MODES = {"1v1": (1.0, 0.0, 0.0), "3v3": (0.0, 0.0, 1.0), "mix": Config().team_size_weights}


def raw_speed(weights: tuple[float, ...], arenas: int, seconds: float, seed: int) -> float:
    """Game-seconds per wall-second of bare RocketSim: step(4) + read all states, same arenas (LIGHT mode)."""
    rng = np.random.default_rng(seed)
    w = np.asarray(weights) / sum(weights)
    sizes = 1 + rng.choice(3, size=arenas, p=w)
    pool = [make_light_arena(int(n), i) for i, n in enumerate(sizes)]
    for a in pool:
        for c in a.get_cars():
            c.set_controls(rs.CarControls(throttle=1.0, steer=0.2, boost=True))
    steps = int(seconds * FRAME_RATE)
    start = time.perf_counter()
    for _ in range(steps):
        for a in pool:
            a.step(TICKS_PER_FRAME)
            read_cars(a), read_ball(a), read_pads(a)
    return arenas * seconds / (time.perf_counter() - start)


def recorder_speed(cfg: Config) -> tuple[float, float]:
    """(game-seconds per wall-second, share of wall time in Nexto inference) of one shard."""
    teacher = make_teacher(cfg)
    gc.freeze()  # as the simulate worker does
    start = time.perf_counter()
    _, counts = run_shard(cfg, 0, teacher)
    wall = time.perf_counter() - start
    return counts["game_seconds"] / wall, getattr(teacher, "inference_s", 0.0) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arenas", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="game seconds per arena per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'mode':<5} {'teacher':<7} {'game-s/wall-s':>13} {'x raw':>6} {'nexto share':>11}   (medians of "
          f"{args.repeats}; raw RocketSim step+read in the same run)")
    for mode in args.modes:
        base = Config(arenas=args.arenas, shard_seconds=args.seconds, team_size_weights=MODES[mode], progress=False)
        runs = {"raw": [], "random": [], "nexto": []}
        shares = []
        for r in range(args.repeats):
            runs["raw"].append(raw_speed(MODES[mode], args.arenas, args.seconds, r))
            runs["random"].append(recorder_speed(replace(base, teacher="random", seed=r))[0])
            speed, share = recorder_speed(replace(base, teacher="nexto", seed=r))
            runs["nexto"].append(speed)
            shares.append(share)
        raw = statistics.median(runs["raw"])
        print(f"{mode:<5} {'raw':<7} {raw:>13.0f} {1.0:>6.2f}")
        for name in ("random", "nexto"):
            speed = statistics.median(runs[name])
            share = f"{statistics.median(shares):>11.0%}" if name == "nexto" else ""
            print(f"{mode:<5} {name:<7} {speed:>13.0f} {speed / raw:>6.2f} {share}", flush=True)


if __name__ == "__main__":
    main()
