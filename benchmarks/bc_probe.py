"""Does a BC policy react to the ball? Open-loop on held-out replays and closed-loop in the arena.

    python benchmarks/bc_probe.py models/bc runs/bc-v3/model --seconds 120 --json out/bc_probe.json

For each policy: on held-out replay frames, how often the steer of its action points towards the ball
(cars on the ground with the ball clearly to one side), next to the same figure for the IDM labels; then one
game against baseline:chaser in the arena with the same figure for the bot's own decisions, its touches,
and how often it repeats its previous decision (a policy that copies its last action circles forever).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bot import bot as bot_module
from bot.actions import ACTION_TABLE, NOOP_ACTION, STEER
from bot.obs import C_LOCAL_BALL_POS, C_ON_GROUND, G_PREV_ACTION, G_SELF
from bot.policy import load_policy


def steer_towards_ball(glob_bf: np.ndarray, action_b: np.ndarray) -> tuple[float, int]:
    """Share of steering decisions on the ground that turn towards the ball (side = forward x up = left)."""
    me = glob_bf[:, G_SELF]
    side = me[:, C_LOCAL_BALL_POS][:, 1]  # > 0: the ball is on the car's left
    steer = ACTION_TABLE[action_b, STEER]  # > 0: turn right
    used = (me[:, C_ON_GROUND] > 0.5) & (np.abs(side) > 0.1) & (steer != 0)
    return float(np.mean(np.sign(steer[used]) == -np.sign(side[used]))), int(used.sum())


@torch.no_grad()
def open_loop(folder: Path, replays: Path, labels: Path) -> dict:
    from training.bc_data import is_validation_replay, load_bc_samples
    s = load_bc_samples(replays, labels)
    val = np.array([is_validation_replay(n) for n in s.replays])[s.replay_b]
    glob, others, label = s.glob_bf[val], s.others_bof[val], s.action_b[val]
    policy, config = load_policy(folder)
    if not config["model"].get("previous_action", True):
        glob[:, G_PREV_ACTION] = ACTION_TABLE[NOOP_ACTION]
    pred = torch.cat([policy(torch.from_numpy(glob[i:i + 65536]), torch.from_numpy(others[i:i + 65536])).argmax(-1)
                      for i in range(0, len(glob), 65536)]).numpy()
    label_share, n = steer_towards_ball(glob, label)
    policy_share, _ = steer_towards_ball(glob, pred)
    return {"labels_steer_towards_ball": label_share, "policy_steer_towards_ball": policy_share, "frames": n,
            "top1": float(np.mean(pred == label))}


def closed_loop(folder: Path, seconds: float, seed: int, temperature: float) -> dict:
    """One game as blue against baseline:chaser, recording every observation the bot decided on."""
    from training.baselines import ChaserAgent
    from training.sim.arena import Match
    from training.sim.drivers import InProcessDriver
    bot_module.MODEL_DIR = Path(folder)
    seen, decided = [], []
    build_obs, decide = bot_module.build_obs, bot_module.RLRPTBot.decide

    def spy_obs(*args):
        glob, others = build_obs(*args)
        seen.append(glob.copy())
        return glob, others

    def spy_decide(self, frame):
        decided.append(decide(self, frame))
        return decided[-1]

    bot_module.build_obs, bot_module.RLRPTBot.decide = spy_obs, spy_decide
    bot_module.RLRPTBot.temperature = temperature  # what bot.cfg's `temperature` sets (in-process: no bot.cfg)
    try:
        result = Match([InProcessDriver(bot_module.RLRPTBot, "bot")], [InProcessDriver(ChaserAgent, "chaser")],
                       seed=seed).play(seconds)
    finally:
        bot_module.build_obs, bot_module.RLRPTBot.decide = build_obs, decide
        bot_module.RLRPTBot.temperature = 0.0
    glob, action = np.concatenate(seen), np.array(decided)
    share, n = steer_towards_ball(glob, action)
    return {"steer_towards_ball": share, "frames": n, "touches": result.touches[0], "goals_for": result.blue_goals,
            "goals_against": result.orange_goals, "repeats_previous": float(np.mean(action[1:] == action[:-1])),
            "distinct_actions": int(len(np.unique(action)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", nargs="+", type=Path, help="exported policy folders (models/bc, runs/*/model)")
    parser.add_argument("--replays", type=Path, default=Path("data/replays"))
    parser.add_argument("--labels", type=Path, default=Path("data/labels"))
    parser.add_argument("--seconds", type=float, default=120.0, help="arena game length")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = argmax, 1 = sample as trained")
    parser.add_argument("--games", type=int, default=1, help="arena games (seeds seed, seed+1, ...)")
    parser.add_argument("--arena-only", action="store_true", help="skip the open-loop replay check")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {}
    for folder in args.policies:
        games = [closed_loop(folder, args.seconds, args.seed + i, args.temperature) for i in range(args.games)]
        arena = {k: float(np.mean([g[k] for g in games])) for k in games[0]}  # means over games
        report[str(folder)] = {"arena": arena, "temperature": args.temperature, "games": args.games}
        if not args.arena_only:
            report[str(folder)]["replays"] = open_loop(folder, args.replays, args.labels)
        print(str(folder), json.dumps(report[str(folder)], indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
