"""get_output cost per tick on one CPU thread: our bot vs Nexto's agent, on the same packets, same run.

Usage: python benchmarks/bench_bot.py [--ticks 3000] [--team-size 1] [--model models/bc]
Packets come from a simulated game between two chasers. Without models/bc, a randomly initialised policy of
the default size is timed (the cost does not depend on the weights). The bot decides every 4th tick and only
then reads the packet, so p99 is a decision's cost; a second table splits one decision into its parts (median
and p99 over the same packets).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rlbot.utils.structures.game_data_struct import GameTickPacket  # noqa: E402

import bot.bot as bot_module  # noqa: E402
from bot.frame import KICKOFF_PAUSE  # noqa: E402
from bot.obs import build_obs  # noqa: E402
from bot.policy import Policy, PolicyConfig  # noqa: E402
from training.checkpoint import export_model  # noqa: E402
from training.sim.drivers import prepare_agent  # noqa: E402
from training.sim.rocketsim import GameClock, field_info_packet, make_arena, sim_to_packet  # noqa: E402


def record_packets(team_size: int, ticks: int) -> tuple[list[bytes], object]:
    import RocketSim as rs
    arena = make_arena(team_size, team_size, seed=0)
    rng = np.random.default_rng(0)
    clock = GameClock(kickoff_pause=False)
    packets = []
    for t in range(ticks):
        if t % 30 == 0:
            for car in arena.get_cars():
                car.set_controls(rs.CarControls(throttle=1.0, steer=float(rng.uniform(-1, 1)),
                                                boost=bool(rng.random() < 0.5)))
        arena.step(1)
        packets.append(bytes(sim_to_packet(arena, clock)))
    return packets, field_info_packet(arena)


def time_agent(agent, packets: list[bytes]) -> np.ndarray:
    times = []
    for raw in packets:
        pkt = GameTickPacket.from_buffer_copy(raw)
        start = time.perf_counter()
        agent.get_output(pkt)
        times.append(time.perf_counter() - start)
    return np.array(times[100:]) * 1000  # ms, warm-up dropped


def profile_decision(bot, packets: list[bytes]) -> dict[str, np.ndarray]:
    """ms per part of `RLRPTBot.decide` (and the packet decode every tick pays), each timed on its own."""
    parts = {name: [] for name in ("decode", "build_obs", "forward", "sample", "decide")}
    for raw in packets[100:]:
        pkt = GameTickPacket.from_buffer_copy(raw)
        t0 = time.perf_counter()
        frame = bot.decoder.packet_to_frame(pkt)
        t1 = time.perf_counter()
        glob, others = build_obs(frame.ball_tf, frame.cars_tpf, frame.pads_tk, frame.team_p[None],
                                 np.array([bot.index]), np.array([bot.prev_action]))
        t2 = time.perf_counter()
        logits = bot.policy(glob[0], others[0])
        if frame.game_tf[0, KICKOFF_PAUSE] > 0:
            logits = np.where(bot_module.NO_THROTTLE, -np.inf, logits)
        t3 = time.perf_counter()
        bot_module.sample_action(logits, bot.temperature, bot.rng)
        t4 = time.perf_counter()
        bot.decide(frame)
        t5 = time.perf_counter()
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            parts[name].append(dt * 1000)
    return {name: np.array(ts) for name, ts in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--team-size", type=int, default=1)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "bc")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=0.0, help="as bot.cfg sets it (0 = argmax)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    packets, field_info = record_packets(args.team_size, args.ticks)
    model_dir = args.model
    if not (model_dir / "model.safetensors").is_file():
        model_dir = Path(tempfile.mkdtemp()) / "bc"
        export_model(model_dir, Policy(PolicyConfig()), {"model": PolicyConfig().to_dict()}, "benchmark", half=True)
        print(f"(no bundled policy: timing a random {PolicyConfig()} policy)")
    bot_module.MODEL_DIR = model_dir
    ours = bot_module.RLRPTBot("rl-rpt", 0, 0)
    ours.temperature = args.temperature
    prepare_agent(ours, field_info, [None])
    agents = {"rl-rpt": ours}
    try:
        from training.teachers.nexto import NextoAgent
        nexto = NextoAgent("nexto", 0, 0)
        prepare_agent(nexto, field_info, [None])
        agents["nexto"] = nexto
    except (FileNotFoundError, ValueError) as err:
        print(f"(Nexto not timed: {err})")
    results = {name: [] for name in agents}
    parts = []
    for _ in range(args.repeats):
        for name, agent in agents.items():
            results[name].append(time_agent(agent, packets))
        parts.append(profile_decision(ours, packets))
    print(f"| agent ({args.team_size}v{args.team_size}) | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    summary = {}
    for name, runs in results.items():
        p50 = statistics.median(float(np.percentile(r, 50)) for r in runs)
        p99 = statistics.median(float(np.percentile(r, 99)) for r in runs)
        mean = statistics.median(float(r.mean()) for r in runs)
        summary[name] = (p50, p99, mean)
        print(f"| {name} | {p50:.3f} | {p99:.3f} | {mean:.3f} |")
    if "nexto" in summary:
        a, b = summary["rl-rpt"], summary["nexto"]
        print(f"ratio rl-rpt / nexto: p50 {a[0] / b[0]:.2f}, p99 {a[1] / b[1]:.2f}, mean {a[2] / b[2]:.2f}")
    print("\n| rl-rpt part | p50 ms | p99 ms |\n|---|---|---|")
    for name in parts[0]:
        p50 = statistics.median(float(np.percentile(r[name], 50)) for r in parts)
        p99 = statistics.median(float(np.percentile(r[name], 99)) for r in parts)
        print(f"| {name} | {p50:.3f} | {p99:.3f} |")


if __name__ == "__main__":
    main()
