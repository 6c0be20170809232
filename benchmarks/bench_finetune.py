"""Arena fine-tuning speed: learner decisions per wall-second, one process against N under torchrun.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_finetune.py --procs 2 --steps 131072 --repeats 3

Each run is the real `finetune` stage (32 arenas per process, the cpu preset's PPO settings, torch on 1 thread per
process) from models/bc into a scratch folder; its speed is the median of `decisions_per_s` over the run's
updates after the first two (start-up and the first rollout's allocations). The peer, measured in the same run:
bare RocketSim stepping the same number of 1v1 arenas 4 ticks at a time with both cars driving and nothing read,
i.e. the ceiling that the observation, the policy, the chaser and PPO's update are charged against. Medians of
--repeats; the order of the variants alternates between repeats so a busy machine hurts them alike.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import RocketSim as rs

from bot.constants import TICKS_PER_FRAME
from training.sim.rocketsim import make_arena

ROOT = Path(__file__).resolve().parents[1]


def raw_decisions_per_s(arenas: int, decisions: int) -> float:
    """Decisions per second of bare RocketSim: `arenas` 1v1 arenas, each decision = 4 ticks, no reads."""
    pool = [make_arena(1, 1, seed) for seed in range(arenas)]
    for arena in pool:
        for car in arena.get_cars():
            car.set_controls(rs.CarControls(throttle=1.0, steer=0.3, boost=True))
    rounds = decisions // arenas
    start = time.perf_counter()
    for _ in range(rounds):
        for arena in pool:
            arena.step(TICKS_PER_FRAME)
    return rounds * arenas / (time.perf_counter() - start)


def finetune_decisions_per_s(procs: int, steps: int, policy: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["-m", "training", "finetune", "--policy", str(policy), "--out", tmp, "--steps", str(steps),
                "--kl-coef", "0.02", "--lr", "2e-4", "--checkpoint-every", "100000"]
        launcher = [sys.executable] if procs == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        subprocess.run(launcher + args, cwd=ROOT, check=True, capture_output=True, env=env)
        history = json.loads((Path(tmp) / "history.json").read_text())["history"]
    return statistics.median(row["decisions_per_s"] for row in history[2:] or history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=2, help="processes of the torchrun variant")
    parser.add_argument("--steps", type=int, default=131072, help="decisions per single-process run (x procs)")
    parser.add_argument("--policy", type=Path, default=ROOT / "models" / "bc")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"raw": [], "one": [], "many": []}
    for r in range(args.repeats):
        order = ["one", "many"] if r % 2 == 0 else ["many", "one"]
        for name in order:
            procs = 1 if name == "one" else args.procs
            results[name].append(finetune_decisions_per_s(procs, args.steps * procs, args.policy))
        results["raw"].append(raw_decisions_per_s(32, 32 * 1000))
        print(f"repeat {r}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nmedians of {args.repeats} (decisions per wall-second):")
    print(f"  bare RocketSim, 32 1v1 arenas, one core: {med['raw']:,.0f}")
    print(f"  finetune, 1 process:  {med['one']:,.0f} ({med['one'] / med['raw']:.3f} of bare RocketSim)")
    print(f"  finetune, {args.procs} processes: {med['many']:,.0f} ({med['many'] / med['one']:.2f} x 1 process)")


if __name__ == "__main__":
    main()
