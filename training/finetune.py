"""Fine-tune the cloned policy in the arena with PPO, held close to the clone by a KL penalty (VPT's last step).

Why: the clone imitates humans well open-loop but loses the thread in closed loop (docs/bc.md). Playing itself
and being rewarded for goals, touches and moving the ball towards the opponent's goal fixes what imitation
cannot see, while KL(policy || clone) keeps it playing like the humans it learned from.

The environment is `arenas` RocketSim games stepped in lockstep (training/sim/rocketsim.py BatchReader):
the learner drives one team (blue in even arenas, orange in odd ones), `baseline:chaser`'s rule, vectorised
here, drives the other and answers every tick, as it does in `evaluate` (an earlier version let it act only on
the learner's decision ticks, a weaker opponent than the one the bot is measured against). Games are 1v1 unless
`--team-sizes 1 2 3` cycles 1v1, 2v2 and 3v3 over the chaser arenas: then every car of the learner's team is a
copy of the learner, each deciding on its own observation as the bot's copies do in RLBot team games. The learner sees
exactly the bot's observation (bot/obs.py build_obs), decides every 4 ticks with RLBot's one-tick input delay,
samples from softmax(logits / temperature) at the temperature bot.cfg plays with, and rules out throttle-less
actions in the kickoff pause, as bot/bot.py does.
`--nexto PATH --nexto-arenas K` puts Nexto (training/teachers/nexto.py) in the opponent's seat of K arenas per
process: the chaser alone never shows it a defence worth beating (docs/bc.md). `--nexto-epsilon E` starts with a
weaker Nexto, whose decisions are random with a probability drawn per episode up to a bound that falls from E to 0
between two decision counts (a curriculum: goals against full-strength Nexto were too rare to learn from).
An episode ends at a goal or after `episode_seconds`, and restarts from a kickoff. `--nexto-episode-seconds S`
ends the Nexto arenas' episodes S seconds after their kickoff, so each is a kickoff contest scored by the goals
within S seconds of it (in matches against Nexto nearly all of the bot's goals came that soon after a kickoff).
`--opponent-policy DIR --opponent-arenas K` is self-play against a frozen policy (e.g. the bundled models/bc): in the
K arenas after the Nexto ones it drives the opponent as the bot would (bot/obs.py from its own side, every 4 ticks
with the same one-tick delay, sampled at --temperature), a defender between the chaser and Nexto.

More decisions are what it lacks most (docs/bc.md), so it scales over CPU cores and machines with torchrun:
`--procs N` relaunches the command as `torchrun --standalone --nproc-per-node N` (or launch torchrun yourself,
e.g. across machines), N processes each step their own `arenas` (their own kickoff seeds), and DDP averages their
gradients, so one update sees N x arenas x rollout decisions. `--steps` counts the decisions of all processes
together; rank 0 writes checkpoints, logs and the model.
"""

import math
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import RocketSim as rs
import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from bot.actions import ACTION_TABLE, NOOP_ACTION, THROTTLE
from bot.constants import BACK_WALL_Y, CAR_MAX_SPEED, MAX_PLAYERS_PER_TEAM, NUM_BOOST_PADS, TICKS_PER_FRAME
from bot.frame import BALL_F, CAR_F, FORWARD, GAME_F, KICKOFF_PAUSE, ON_GROUND, POS, VEL, Frames
from bot.obs import GLOBAL_F, MATE_SLOTS, MAX_OTHERS, OTHER_F, build_obs
from bot.policy import Policy, PolicyConfig, load_policy
from training.checkpoint import command_line, export_model, load_checkpoint, save_checkpoint
from training.cli import arg, torchrun_command
from training.distributed import setup_distributed, teardown_distributed
from training.sim.rocketsim import BatchReader, make_arena
from training.storage import write_json

BALL_MAX_SPEED = 6000.0  # uu/s
NO_THROTTLE = torch.from_numpy(ACTION_TABLE[:, THROTTLE] <= 0)  # (A,) ruled out in the kickoff pause
# In 1v1 of the observation's five other-car slots only the opponent's (the first opponent slot) is ever filled,
# and the policy pools over filled slots only, so it sees just that one: the same logits (tests/test_finetune.py)
# for 43% fewer multiply-adds. Runs with team arenas give it every slot. The value net reads every slot.
OPPONENT_SLOT = slice(MATE_SLOTS, MATE_SLOTS + 1)


@dataclass(frozen=True)
class Config:
    policy: Path = arg(Path("models/bc"), "cloned policy folder to start from and to stay close to")
    anchor: Path | None = arg(None, "policy folder the KL term holds it close to (default: --policy); e.g. the "
                                    "clone, when --policy is an already fine-tuned policy to train further")
    out: Path = arg(Path("runs/finetune"), "run folder: checkpoint, TensorBoard logs, history, model/")
    export: Path | None = arg(None, "also write the fine-tuned policy (fp16) to this folder, e.g. models/bc")
    steps: int = arg(2_000_000, "learner decisions (30 per game-second) to train on, all processes together")
    arenas: int = arg(32, "arenas stepped in lockstep (per process under torchrun)")
    team_sizes: tuple[int, ...] = arg((1,), "cars per team in the chaser arenas, cycled over them (1 2 3: 1v1, 2v2 "
                                            "and 3v3 in turn); the learner drives every car of its team. Nexto and "
                                            "--opponent-policy arenas are 1v1")
    rollout: int = arg(128, "decisions per arena between updates")
    temperature: float = arg(0.5, "the bot's sampling temperature: the policy trained is softmax(logits / T)")
    kl_coef: float = arg(0.1, "weight of KL(policy || clone) in the loss")
    lr: float = arg(5e-5, "Adam learning rate of the policy")
    value_lr: float = arg(5e-4, "Adam learning rate of the value network")
    value_warmup: int = arg(0, "decisions (as --steps counts, from the run's start) in which only the value network "
                               "learns: a new value net's advantages are noise at first, and the policy drifts on them")
    gamma: float = arg(0.995, "discount per decision (30 Hz)")
    gae_lambda: float = arg(0.95, "GAE lambda")
    clip: float = arg(0.2, "PPO ratio clip")
    epochs: int = arg(2, "passes over each rollout")
    minibatch: int = arg(1024, "samples per gradient step")
    goal_reward: float = arg(10.0, "reward for scoring (minus for conceding)")
    touch_reward: float = arg(0.5, "reward per decision in which the learner touches the ball")
    ball_to_goal_reward: float = arg(0.05, "x ball velocity towards the opponent goal / 6000 uu/s, per decision")
    car_to_ball_reward: float = arg(0.02, "x learner velocity towards the ball / 2300 uu/s, per decision")
    scale_rewards: bool = arg(False, "divide rewards by the running std of the discounted return (ReturnScale)")
    episode_seconds: float = arg(90.0, "an episode without a goal ends after this much game time")
    seed: int = arg(0, "seed for kickoffs, sampling and initialisation")
    procs: int = arg(1, "processes, each with its own arenas, gradients averaged (DDP): > 1 relaunches the command "
                        "under torchrun on this machine; under your own torchrun, 1 or the world size")
    threads: int = arg(1, "torch CPU threads per process (0 = torch's default)")
    checkpoint_every: int = arg(10, "updates between checkpoints (resume with the same command)")
    nexto: Path | None = arg(None, "Nexto's TorchScript model (never shipped): it drives the opponent in the first "
                                   "--nexto-arenas arenas of each process, the chaser in the rest")
    nexto_arenas: int = arg(0, "arenas per process where Nexto (--nexto) is the opponent")
    nexto_epsilon: float = arg(0.0, "a weaker Nexto to start with: per episode it replaces each decision by a random "
                                    "action with a probability drawn from [0, this], a bound that falls linearly to 0 "
                                    "between --nexto-epsilon-from and --nexto-epsilon-until decisions")
    nexto_epsilon_from: int = arg(0, "decision count (as --steps counts) where --nexto-epsilon starts to fall")
    nexto_epsilon_until: int = arg(0, "decision count where --nexto-epsilon has fallen to 0 (0: it never falls)")
    nexto_episode_seconds: float = arg(0.0, "episode length in the Nexto arenas (0: --episode-seconds); a short one "
                                            "makes each a kickoff contest: the goals within this long of a kickoff")
    opponent_policy: Path | None = arg(None, "a frozen policy folder (e.g. models/bc) that drives the opponent in the "
                                             "--opponent-arenas arenas after the Nexto ones: self-play")
    opponent_arenas: int = arg(0, "arenas per process where --opponent-policy is the opponent")

    # pipeline stamps of runs before a field existed stay current while it holds this value
    ADDED_LATER: ClassVar[dict] = {"procs": 1, "team_sizes": (1,), "value_warmup": 0, "nexto": None,
                                   "nexto_arenas": 0, "nexto_epsilon": 0.0, "nexto_epsilon_from": 0,
                                   "nexto_epsilon_until": 0, "nexto_episode_seconds": 0.0, "opponent_policy": None,
                                   "opponent_arenas": 0}


def nexto_epsilon_bound(cfg: Config, step: int) -> float:
    """The curriculum's bound on Nexto's random-action probability after `step` decisions: --nexto-epsilon until
    --nexto-epsilon-from, 0 from --nexto-epsilon-until on, linear between (Nexto strengthens over the run)."""
    if cfg.nexto_epsilon_until <= cfg.nexto_epsilon_from:
        return cfg.nexto_epsilon
    done = (step - cfg.nexto_epsilon_from) / (cfg.nexto_epsilon_until - cfg.nexto_epsilon_from)
    return cfg.nexto_epsilon * float(np.clip(1.0 - done, 0.0, 1.0))


def arena_team_sizes(arenas: int, one_v_one: int, team_sizes: tuple[int, ...]) -> np.ndarray:
    """(G,) cars per team: 1 in the first `one_v_one` arenas (Nexto's and the frozen policy's), then team_sizes
    cycled over the rest (the chaser arenas)."""
    if not team_sizes or min(team_sizes) < 1 or max(team_sizes) > MAX_PLAYERS_PER_TEAM:
        raise ValueError(f"--team-sizes {' '.join(map(str, team_sizes))}: each must be 1 to {MAX_PLAYERS_PER_TEAM}")
    sizes = np.ones(arenas, np.int64)
    sizes[one_v_one:] = np.resize(np.asarray(team_sizes, np.int64), max(arenas - one_v_one, 0))
    return sizes


def policy_slots(cfg: "Config") -> slice:
    """The other-car slots the learner's policy is given: the opponent's alone in 1v1-only runs (OPPONENT_SLOT)."""
    return OPPONENT_SLOT if max(cfg.team_sizes) == 1 else slice(None)


class ValueNet(nn.Module):
    """State value from the same observation: an MLP over the global block and the flattened car slots."""

    def __init__(self, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(GLOBAL_F + MAX_OTHERS * OTHER_F, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, glob_bf: torch.Tensor, others_bof: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([glob_bf, others_bof.flatten(1)], 1))[:, 0]


def chaser_controls(me_gf: np.ndarray, ball_gf: np.ndarray, team_g: np.ndarray) -> np.ndarray:
    """training/baselines.py ChaserAgent for G cars at once, from world-frame rows -> (G, 8) controls."""
    goal_y = np.where(team_g == 0, BACK_WALL_Y, -BACK_WALL_Y)
    to_goal = np.stack([-ball_gf[:, 0], goal_y - ball_gf[:, 1]], 1)
    to_goal /= np.maximum(np.linalg.norm(to_goal, axis=1, keepdims=True), 1.0)
    target = ball_gf[:, :2] - 120.0 * to_goal
    yaw = np.arctan2(me_gf[:, FORWARD][:, 1], me_gf[:, FORWARD][:, 0])
    angle = np.arctan2(target[:, 1] - me_gf[:, 1], target[:, 0] - me_gf[:, 0]) - yaw
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    distance = np.hypot(ball_gf[:, 0] - me_gf[:, 0], ball_gf[:, 1] - me_gf[:, 1])
    ground = me_gf[:, ON_GROUND] > 0.5
    speed = np.linalg.norm(me_gf[:, VEL], axis=1)
    controls = np.zeros((len(me_gf), 8), np.float32)
    controls[:, 0] = 1.0
    controls[:, 1] = np.clip(3.0 * angle, -1.0, 1.0)
    controls[:, 5] = ground & (distance < 300) & (130 < ball_gf[:, 2]) & (ball_gf[:, 2] < 300) & (np.abs(angle) < 0.5)
    controls[:, 6] = (np.abs(angle) < 0.3) & ground & (speed < 2200)
    controls[:, 7] = (np.abs(angle) > 2.0) & ground
    return controls


def _set_controls(car: rs.Car, c: np.ndarray) -> None:
    car.set_controls(rs.CarControls(throttle=float(c[0]), steer=float(c[1]), pitch=float(c[2]), yaw=float(c[3]),
                                    roll=float(c[4]), jump=bool(c[5]), boost=bool(c[6]), handbrake=bool(c[7])))


class ArenaBatch:
    """G arenas; the learner drives every car of team g % 2 (blue in even arenas), one "agent" per car, so the
    learner's batch has L = sum of the team sizes rows. Nexto drives the other car in the first `nexto_arenas`
    arenas (deciding every 8 ticks, acting 8 ticks later, argmax but beta 0.5 in the kickoff pause, as NextoAgent
    plays in `evaluate`), a frozen `opponent` policy in the next `opponent_arenas` (as the bot plays: every 4
    ticks, one tick late, sampled at `temperature`), chasers drive every car of the other team in the rest. The
    Nexto and frozen-policy arenas are 1v1; the chaser arenas cycle through `team_sizes`."""

    def __init__(self, games: int, episode_seconds: float, rng: np.random.Generator,
                 nexto_path: Path | None = None, nexto_arenas: int = 0, nexto_epsilon: float = 0.0,
                 nexto_episode_seconds: float = 0.0, opponent: Policy | None = None, opponent_arenas: int = 0,
                 temperature: float = 0.5, team_sizes: tuple[int, ...] = (1,)):
        if nexto_arenas and nexto_path is None:
            raise ValueError("--nexto-arenas needs --nexto PATH (Nexto's TorchScript model)")
        if opponent_arenas and opponent is None:
            raise ValueError("--opponent-arenas needs --opponent-policy DIR (a policy folder, e.g. models/bc)")
        if min(nexto_arenas, opponent_arenas) < 0 or nexto_arenas + opponent_arenas > games:
            raise ValueError(f"--nexto-arenas {nexto_arenas} and --opponent-arenas {opponent_arenas} must not be "
                             f"negative, and together at most --arenas {games}")
        self.rng = rng
        self.size = arena_team_sizes(games, nexto_arenas + opponent_arenas, team_sizes)  # (G,) cars per team
        self.arenas = [make_arena(n, n, int(rng.integers(1 << 31))) for n in self.size]
        self.cars = [a.get_cars() for a in self.arenas]  # blue then orange: car slot = car id - 1
        self.reader = BatchReader(self.arenas, [np.arange(2 * n) for n in self.size], rng)
        p = 2 * int(self.size.max())  # car rows per arena; smaller games leave rows absent (PRESENT 0)
        self.learner_team = np.arange(games) % 2
        self.me = self.learner_team * self.size  # (G,) the learner's first car slot (its only one in 1v1)
        self.team = np.zeros((games, p), np.int8)
        for g, n in enumerate(self.size):
            self.team[g, n:2 * n] = 1
        # the learner's cars ("agents", L of them) and the chasers' cars, as (arena, slot) pairs
        self.agent_g = np.repeat(np.arange(games), self.size)
        self.agent_slot = np.concatenate([self.me[g] + np.arange(n) for g, n in enumerate(self.size)])
        self.first_agent = np.cumsum(self.size) - self.size  # (G,) each arena's first agent
        self.nexto_arenas = nexto_arenas
        self.policy_arenas = np.arange(nexto_arenas, nexto_arenas + opponent_arenas)
        self.chasers = np.arange(nexto_arenas + opponent_arenas, games)
        self.chaser_g = np.repeat(self.chasers, self.size[self.chasers])
        self.chaser_slot = np.concatenate([(1 - self.learner_team[g]) * self.size[g] + np.arange(self.size[g])
                                           for g in self.chasers] or [np.zeros(0, np.int64)])
        self.agent_of_car = [{} for _ in range(games)]  # arena -> {car id: agent index}
        for i, (g, slot) in enumerate(zip(self.agent_g, self.agent_slot)):
            self.agent_of_car[g][self.cars[g][slot].id] = i
        self.cars_gpf = np.zeros((games, p, CAR_F), np.float32)
        self.ball_gf = np.zeros((games, BALL_F), np.float32)
        self.pads_gk = np.zeros((games, NUM_BOOST_PADS), np.float32)
        self.touched = np.zeros(len(self.agent_g), bool)  # per agent, in the last decision
        self.kickoff_pause = np.ones(games, bool)
        self.steps_left = np.zeros(games, np.int64)
        seconds = np.full(games, episode_seconds)
        seconds[:nexto_arenas] = nexto_episode_seconds or episode_seconds
        self.max_steps = (seconds * 120 / TICKS_PER_FRAME).astype(np.int64)  # decisions per episode, per arena
        self.scores = np.zeros((games, 2), np.int64)
        self.opponent, self.temperature = opponent, temperature
        self.nexto = None
        if nexto_arenas:
            from training.teachers.nexto import NextoTeacher
            drives = np.arange(2)[None, :] != self.me[:nexto_arenas, None]
            self.nexto = NextoTeacher(nexto_arenas, 2, nexto_path, epsilon_max=nexto_epsilon, lag_ticks=8,
                                      drives_gp=drives, kickoff_beta=0.5)
        for g, arena in enumerate(self.arenas):
            arena.set_ball_touch_callback(self._on_touch, g)
            self._reset(g)
        self.reader.read(list(range(games)), self.cars_gpf, self.ball_gf, self.pads_gk)
        if nexto_epsilon:  # the first episodes draw Nexto's epsilon too (later ones do at each restart); only
            # then, so that runs without a curriculum keep the random stream they had
            self.nexto.start_episodes(np.arange(nexto_arenas), self._nexto_frames(), rng)

    @property
    def agents(self) -> int:
        """Learner cars in all arenas: the learner's batch size per decision."""
        return len(self.agent_g)

    def _on_touch(self, arena, car, data) -> None:
        agent = self.agent_of_car[data].get(car.id)
        if agent is not None:
            self.touched[agent] = True

    def _reset(self, g: int) -> None:
        self.arenas[g].reset_kickoff(int(self.rng.integers(1 << 31)))
        for car in self.cars[g]:
            car.set_controls(rs.CarControls())
        self.kickoff_pause[g] = True
        self.steps_left[g] = self.max_steps[g]

    def _chaser_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The chasers' car rows and their arenas' ball rows between decisions: only the columns chaser_controls
        reads."""
        car_cf = np.zeros((len(self.chaser_g), CAR_F), np.float32)
        ball_cf = np.zeros((len(self.chaser_g), BALL_F), np.float32)
        for i, (g, slot) in enumerate(zip(self.chaser_g, self.chaser_slot)):
            state = self.cars[g][slot].get_state()
            car_cf[i, POS], car_cf[i, VEL] = state.pos.as_numpy(), state.vel.as_numpy()
            car_cf[i, FORWARD], car_cf[i, ON_GROUND] = state.rot_mat.forward.as_numpy(), state.is_on_ground
            ball_cf[i, POS] = self.arenas[g].ball.get_state().pos.as_numpy()
        return car_cf, ball_cf

    def _nexto_frames(self) -> Frames:
        """The Nexto arenas' current moments, one per row of T, as NextoTeacher reads them (1v1: two car rows)."""
        k = self.nexto_arenas
        game_kf = np.zeros((k, GAME_F), np.float32)
        game_kf[:, KICKOFF_PAUSE] = self.kickoff_pause[:k]
        return Frames(time_t=np.zeros(k), game_tf=game_kf, ball_tf=self.ball_gf[:k], cars_tpf=self.cars_gpf[:k, :2],
                      pads_tk=self.pads_gk[:k], team_p=self.team[0, :2])

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """Every agent's observation of this moment, from its own car: (L, GLOBAL_F), (L, MAX_OTHERS, OTHER_F)."""
        a = self.agent_g
        return build_obs(self.ball_gf[a], self.cars_gpf[a], self.pads_gk[a], self.team[a], self.agent_slot,
                         np.full(len(a), NOOP_ACTION))

    def _opponent_actions(self, them: np.ndarray) -> np.ndarray:
        """The frozen opponent policy's actions in its arenas, from its own side's observation of this moment."""
        s = self.policy_arenas
        glob, others = build_obs(self.ball_gf[s], self.cars_gpf[s], self.pads_gk[s], self.team[s], them[s],
                                 np.full(len(s), NOOP_ACTION))
        with torch.inference_mode():
            logits = self.opponent(torch.from_numpy(glob), torch.from_numpy(others)[:, OPPONENT_SLOT])
            logits = masked_logits(logits, torch.from_numpy(self.kickoff_pause[s]), self.temperature)
            return torch.distributions.Categorical(logits=logits).sample().numpy()

    def step(self, action_l: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply the agents' actions (L,) (and the opponents') for one decision -> reward parts (L, 4) and done (L,)
        per agent, and the goal (G,) per arena: +1 the learner's team scored, -1 it conceded."""
        g_all, k, s = np.arange(len(self.arenas)), self.nexto_arenas, self.policy_arenas
        them = 1 - self.me  # the opponent's car in the 1v1 arenas (Nexto's and the frozen policy's)
        mine = ACTION_TABLE[action_l]
        theirs = ACTION_TABLE[self._opponent_actions(them)] if len(s) else None  # the same moment the learner saw
        chaser_team = 1 - self.learner_team[self.chaser_g]
        self.touched[:] = False
        if self.nexto is not None:  # a decision 8 ticks old (NextoTeacher's lag), set now: it acts from this tick
            nexto = ACTION_TABLE[self.nexto.act(self._nexto_frames(), self.rng)[np.arange(k), them[:k]]]
            for g in range(k):
                _set_controls(self.cars[g][them[g]], nexto[g])
        # RLBot applies new controls one tick after the packet they answer: each tick steps with what was set
        # after the previous one. The learner decides on the first tick's packet; the chaser, as in `evaluate`,
        # on every tick's packet. The last tick also reads every arena into the rows for the next decision.
        for tick in range(TICKS_PER_FRAME):
            rows = ((self.cars_gpf[self.chaser_g, self.chaser_slot], self.ball_gf[self.chaser_g]) if tick == 0
                    else self._chaser_rows())
            chaser = chaser_controls(*rows, chaser_team)
            if tick < TICKS_PER_FRAME - 1:
                for g in g_all:
                    self.reader.advance(g, 1)
            else:
                self.reader.step(1, self.cars_gpf, self.ball_gf, self.pads_gk)
            if tick == 0:
                for i, (g, slot) in enumerate(zip(self.agent_g, self.agent_slot)):
                    _set_controls(self.cars[g][slot], mine[i])
                for i, g in enumerate(s):
                    _set_controls(self.cars[g][them[g]], theirs[i])
            for i, (g, slot) in enumerate(zip(self.chaser_g, self.chaser_slot)):
                _set_controls(self.cars[g][slot], chaser[i])

        scores = np.array([(a.blue_score, a.orange_score) for a in self.arenas])
        goal = scores - self.scores  # (G, 2)
        self.scores = scores
        mine_t = self.learner_team
        sign = np.where(mine_t == 0, 1.0, -1.0)  # team perspective: the opponent's goal is at +y
        scored = goal[g_all, mine_t] - goal[g_all, 1 - mine_t]  # +1 scored, -1 conceded
        ball = self.ball_gf
        to_goal = np.stack([-ball[:, 0], sign * BACK_WALL_Y - ball[:, 1], -ball[:, 2]], 1)
        to_goal /= np.maximum(np.linalg.norm(to_goal, axis=1, keepdims=True), 1.0)
        a = self.agent_g
        car = self.cars_gpf[a, self.agent_slot]  # (L, CAR_F)
        to_ball = ball[a][:, POS] - car[:, POS]
        to_ball /= np.maximum(np.linalg.norm(to_ball, axis=1, keepdims=True), 1.0)
        parts = np.stack([scored[a], self.touched,
                          ((ball[:, VEL] * to_goal).sum(1) / BALL_MAX_SPEED)[a],
                          (car[:, VEL] * to_ball).sum(1) / CAR_MAX_SPEED], 1).astype(np.float32)

        moved = (np.abs(ball[:, 0]) + np.abs(ball[:, 1]) > 1) | (np.abs(ball[:, VEL][:, :2]).sum(1) > 1)
        self.kickoff_pause &= ~moved
        self.steps_left -= 1
        done = (scored != 0) | (self.steps_left <= 0)
        for g in np.flatnonzero(done):
            self._reset(int(g))
        if done.any():
            self.reader.read(np.flatnonzero(done).tolist(), self.cars_gpf, self.ball_gf, self.pads_gk)
            if self.nexto is not None and done[:k].any():
                self.nexto.start_episodes(done[:k], self._nexto_frames(), self.rng)
        return parts, done[a], scored


class ReturnScale:
    """Running standard deviation of each learner car's discounted return, which rewards are divided by before GAE,
    so the value net fits returns of order 1 whatever the reward weights (a return of ~45 from a dense reward
    alone left its loss at 30-40 for 400k decisions, and the advantages noisy)."""

    def __init__(self, cars: int, gamma: float):
        self.gamma, self.ret = gamma, np.zeros(cars)
        self.count, self.mean, self.var = 0.0, 0.0, 1.0

    def update(self, reward_g: np.ndarray, done_g: np.ndarray) -> None:
        self.ret = self.ret * self.gamma + reward_g
        n, mean, var = len(reward_g), float(self.ret.mean()), float(self.ret.var())
        total = self.count + n  # Chan et al.'s parallel merge of two (count, mean, variance) summaries
        delta = mean - self.mean
        self.var = (self.var * self.count + var * n + delta ** 2 * self.count * n / total) / total
        self.mean, self.count = self.mean + delta * n / total, total
        self.ret[done_g > 0] = 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.var) + 1e-8 if self.count else 1.0

    def state(self) -> dict:
        return {"ret": self.ret.tolist(), "count": self.count, "mean": self.mean, "var": self.var}

    def load(self, state: dict) -> None:
        """The saved summary; the running returns too when they are of as many cars (a resume with other arenas
        keeps the statistics and starts every car's return at 0)."""
        if len(state["ret"]) == len(self.ret):
            self.ret = np.array(state["ret"])
        self.count, self.mean, self.var = state["count"], state["mean"], state["var"]


def masked_logits(logits: torch.Tensor, kickoff: torch.Tensor, temperature: float) -> torch.Tensor:
    """The bot's sampling distribution as logits: logits / T, throttle-less actions removed in the kickoff pause."""
    return torch.where(kickoff[:, None] & NO_THROTTLE[None], torch.finfo(logits.dtype).min, logits / temperature)


def train(cfg: Config) -> dict:
    ddp = setup_distributed("cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the same value net on every rank (DDP also broadcasts rank 0's)
    rng = np.random.default_rng(cfg.seed)
    start, start_config = load_policy(cfg.policy)
    anchor, anchor_config = load_policy(cfg.anchor) if cfg.anchor else (start, start_config)
    policy = Policy(PolicyConfig(**start_config["model"]))
    policy.load_state_dict(start.state_dict())
    for p in anchor.parameters():
        p.requires_grad_(False)
    model = nn.ModuleDict({"policy": policy, "value": ValueNet()})
    optimizer = torch.optim.Adam([{"params": policy.parameters(), "lr": cfg.lr},
                                  {"params": model["value"].parameters(), "lr": cfg.value_lr}])
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    step, history, saved_scale = 0, [], None
    if (out / "checkpoint" / "state.json").is_file():
        state = load_checkpoint(out / "checkpoint", model, optimizer, rng)
        step, history, saved_scale = state["step"], state["history"], state.get("return_scale")
        if ddp.is_main:
            print(f"finetune: resumed at step {step:,} (arenas restart from kickoffs)")
    if ddp.rank > 0:  # rank 0 keeps one process's streams (and the checkpoint's); the others draw their own
        rng = np.random.default_rng([cfg.seed, ddp.rank, step])  # kickoffs
        torch.manual_seed(int(rng.integers(1 << 62)))  # action sampling
    writer = None
    if ddp.is_main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(out / "tensorboard")
        if ddp.world > 1:
            print(f"finetune: world size {ddp.world}, {ddp.world * cfg.arenas} arenas in all")
    # the update runs the two nets through DDP wrappers (gradients averaged over ranks); rollouts use them bare
    train_policy = DistributedDataParallel(policy) if ddp.world > 1 else policy
    train_value = DistributedDataParallel(model["value"]) if ddp.world > 1 else model["value"]
    opponent, opponent_config = load_policy(cfg.opponent_policy) if cfg.opponent_policy else (None, {})
    env = ArenaBatch(cfg.arenas, cfg.episode_seconds, rng, cfg.nexto, cfg.nexto_arenas,
                     nexto_epsilon_bound(cfg, step), cfg.nexto_episode_seconds, opponent, cfg.opponent_arenas,
                     cfg.temperature, cfg.team_sizes)
    n_nexto, seen = cfg.nexto_arenas, policy_slots(cfg)
    chaser_size = env.size[env.chasers] - 1  # team size - 1 of each chaser arena, for the tallies by size
    scale = ReturnScale(env.agents, cfg.gamma)  # one return per learner car
    if saved_scale:
        scale.load(saved_scale)
    weights = np.array([cfg.goal_reward, cfg.touch_reward, cfg.ball_to_goal_reward, cfg.car_to_ball_reward],
                       np.float32)
    g, t_len = env.agents, cfg.rollout  # the learner's batch: one row per learner car
    bar = tqdm(total=cfg.steps, initial=step, desc="finetune", unit="decision", unit_scale=True,
               disable=not ddp.is_main)
    updates = 0
    while step < cfg.steps:
        if env.nexto is not None:  # episodes that start from now on draw their epsilon below this bound
            env.nexto.epsilon_max = nexto_epsilon_bound(cfg, step)
        # ---- rollout: t_len decisions in every arena ----
        t0 = time.perf_counter()
        buf_glob = np.zeros((t_len, g, GLOBAL_F), np.float32)
        buf_others = np.zeros((t_len, g, MAX_OTHERS, OTHER_F), np.float32)
        buf = {k: np.zeros((t_len, g), np.float32) for k in ("logp", "value", "reward", "done")}
        buf_action = np.zeros((t_len, g), np.int64)
        buf_kickoff = np.zeros((t_len, g), bool)
        parts_sum, goals_for, goals_against, episodes = np.zeros(4), 0, 0, 0
        nexto_for, nexto_against = 0, 0  # of those, in the arenas where Nexto is the opponent
        policy_for, policy_against = 0, 0  # and where --opponent-policy is
        # and in the chaser arenas by team size (the Nexto and --opponent-policy arenas are tallied above)
        size_for, size_against = np.zeros(MAX_PLAYERS_PER_TEAM), np.zeros(MAX_PLAYERS_PER_TEAM)
        with torch.inference_mode():
            for t in range(t_len):
                glob, others = env.observe()
                kickoff = env.kickoff_pause[env.agent_g]
                buf_glob[t], buf_others[t], buf_kickoff[t] = glob, others, kickoff
                gt, ot = torch.from_numpy(glob), torch.from_numpy(others)
                dist = torch.distributions.Categorical(
                    logits=masked_logits(policy(gt, ot[:, seen]), torch.from_numpy(kickoff), cfg.temperature))
                action = dist.sample()
                buf_action[t], buf["logp"][t] = action.numpy(), dist.log_prob(action).numpy()
                buf["value"][t] = model["value"](gt, ot).numpy()
                parts, done, scored = env.step(action.numpy())
                buf["reward"][t], buf["done"][t] = parts @ weights, done
                scale.update(buf["reward"][t], done)
                parts_sum += parts.sum(0)
                goals_for, goals_against = goals_for + int((scored > 0).sum()), goals_against + int((scored < 0).sum())
                nexto_for += int((scored[:n_nexto] > 0).sum())
                nexto_against += int((scored[:n_nexto] < 0).sum())
                policy_for += int((scored[env.policy_arenas] > 0).sum())
                policy_against += int((scored[env.policy_arenas] < 0).sum())
                size_for += np.bincount(chaser_size, scored[env.chasers] > 0, MAX_PLAYERS_PER_TEAM)
                size_against += np.bincount(chaser_size, scored[env.chasers] < 0, MAX_PLAYERS_PER_TEAM)
                episodes += int(done[env.first_agent].sum())
            last_value = model["value"](*(torch.from_numpy(x) for x in env.observe())).numpy()
        sim_seconds = time.perf_counter() - t0

        # ---- advantages (GAE) ----
        reward = buf["reward"] / np.float32(scale.std) if cfg.scale_rewards else buf["reward"]
        adv = np.zeros((t_len, g), np.float32)
        next_adv, next_value = np.zeros(g, np.float32), last_value
        for t in reversed(range(t_len)):
            live = 1.0 - buf["done"][t]
            delta = reward[t] + cfg.gamma * next_value * live - buf["value"][t]
            next_adv = delta + cfg.gamma * cfg.gae_lambda * live * next_adv
            adv[t], next_value = next_adv, buf["value"][t]
        ret = adv + buf["value"]

        # ---- PPO update with the KL-to-anchor penalty ----
        n = t_len * g
        flat = {"glob": torch.from_numpy(buf_glob.reshape(n, GLOBAL_F)),
                "others": torch.from_numpy(buf_others.reshape(n, MAX_OTHERS, OTHER_F)),
                "action": torch.from_numpy(buf_action.reshape(n)), "kickoff": torch.from_numpy(buf_kickoff.reshape(n)),
                "logp": torch.from_numpy(buf["logp"].reshape(n)), "adv": torch.from_numpy(adv.reshape(n)),
                "ret": torch.from_numpy(ret.reshape(n))}
        with torch.no_grad():  # the anchor does not change during the update: once per rollout, not per epoch
            flat["anchor_logp"] = torch.cat([torch.log_softmax(masked_logits(
                anchor(flat["glob"][i:i + cfg.minibatch], flat["others"][i:i + cfg.minibatch, seen]),
                flat["kickoff"][i:i + cfg.minibatch], cfg.temperature), 1) for i in range(0, n, cfg.minibatch)])
        optimizer.param_groups[0]["lr"] = 0.0 if step < cfg.value_warmup else cfg.lr  # the policy's group
        stats = {"kl_clone": 0.0, "clip_frac": 0.0, "value_loss": 0.0, "entropy": 0.0}
        batches = 0
        for _ in range(cfg.epochs):
            for idx in torch.from_numpy(rng.permutation(n)).split(cfg.minibatch):
                b = {k: v[idx] for k, v in flat.items()}
                logits = masked_logits(train_policy(b["glob"], b["others"][:, seen]), b["kickoff"],
                                       cfg.temperature)
                logp_all = torch.log_softmax(logits, 1)
                logp = logp_all.gather(1, b["action"][:, None])[:, 0]
                ratio = torch.exp(logp - b["logp"])
                a = (b["adv"] - b["adv"].mean()) / (b["adv"].std() + 1e-8)
                pg_loss = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
                probs = logp_all.exp()
                kl = (probs * (logp_all - b["anchor_logp"])).sum(1).mean()
                value_loss = (train_value(b["glob"], b["others"]) - b["ret"]).pow(2).mean()
                loss = pg_loss + cfg.kl_coef * kl + 0.5 * value_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for part in model.values():  # apart: a large value gradient must not shrink the policy's step
                    nn.utils.clip_grad_norm_(part.parameters(), 1.0)
                optimizer.step()
                stats["kl_clone"] += kl.item()
                stats["clip_frac"] += ((ratio - 1).abs() > cfg.clip).float().mean().item()
                stats["value_loss"] += value_loss.item()
                stats["entropy"] += -(probs * logp_all).sum(1).mean().item()
                batches += 1
        # every rank's rollout counts: sum the tallies over ranks (the loss statistics are averaged)
        tally = np.array([*parts_sum, goals_for, goals_against, episodes, float(buf["reward"].sum()),
                          nexto_for, nexto_against, policy_for, policy_against, *size_for, *size_against,
                          *(v / batches for v in stats.values())])
        if ddp.world > 1:
            tally_t = torch.from_numpy(tally)
            torch_dist.all_reduce(tally_t)
            tally = tally_t.numpy()
            tally[-len(stats):] /= ddp.world
        parts_sum, (goals_for, goals_against, episodes, reward_sum) = tally[:4], tally[4:8]
        nexto_for, nexto_against, policy_for, policy_against = tally[8:12]
        size_for, size_against = np.split(tally[12:12 + 2 * MAX_PLAYERS_PER_TEAM], 2)
        n_all = n * ddp.world
        step += n_all
        updates += 1
        bar.update(n_all)
        game_minutes = t_len * cfg.arenas * ddp.world * TICKS_PER_FRAME / 120 / 60
        row = {"step": step, **dict(zip(stats, tally[-len(stats):].tolist())),
               "reward_per_decision": float(reward_sum / n_all), "return_std": scale.std,
               "goals_for_per_minute": float(goals_for / game_minutes),
               "goals_against_per_minute": float(goals_against / game_minutes),
               "touch_share": float(parts_sum[1] / n_all), "ball_to_goal": float(parts_sum[2] / n_all),
               "car_to_ball": float(parts_sum[3] / n_all), "episodes": int(episodes),
               "game_minutes": float(game_minutes),
               "decisions_per_s": n_all / (time.perf_counter() - t0),
               "rollout_share": sim_seconds / (time.perf_counter() - t0)}
        # per game-minute in the Nexto arenas alone, the --opponent-policy arenas alone and the chaser arenas alone
        if n_nexto:
            nexto_minutes = game_minutes * n_nexto / cfg.arenas
            row.update(nexto_goals_for_per_minute=float(nexto_for / nexto_minutes),
                       nexto_goals_against_per_minute=float(nexto_against / nexto_minutes),
                       nexto_epsilon_max=env.nexto.epsilon_max)
        if cfg.opponent_arenas:
            policy_minutes = game_minutes * cfg.opponent_arenas / cfg.arenas
            row.update(policy_goals_for_per_minute=float(policy_for / policy_minutes),
                       policy_goals_against_per_minute=float(policy_against / policy_minutes))
        if 0 < n_nexto + cfg.opponent_arenas < cfg.arenas:
            chaser_minutes = game_minutes * (cfg.arenas - n_nexto - cfg.opponent_arenas) / cfg.arenas
            row.update(chaser_goals_for_per_minute=float((goals_for - nexto_for - policy_for) / chaser_minutes),
                       chaser_goals_against_per_minute=float((goals_against - nexto_against - policy_against)
                                                             / chaser_minutes))
        if max(cfg.team_sizes) > 1:  # the chaser arenas by team size: goals_for_per_minute_2v2, ...
            arenas_of = np.bincount(chaser_size, minlength=MAX_PLAYERS_PER_TEAM)
            for n in np.flatnonzero(arenas_of):
                minutes = game_minutes * arenas_of[n] / cfg.arenas
                row[f"goals_for_per_minute_{n + 1}v{n + 1}"] = float(size_for[n] / minutes)
                row[f"goals_against_per_minute_{n + 1}v{n + 1}"] = float(size_against[n] / minutes)
        history.append(row)
        if not ddp.is_main:
            continue
        for k, v in row.items():
            if k != "step":
                writer.add_scalar(f"finetune/{k}", v, step)
        bar.set_postfix(gf=f"{row['goals_for_per_minute']:.2f}", ga=f"{row['goals_against_per_minute']:.2f}",
                        kl=f"{row['kl_clone']:.3f}")
        if updates % cfg.checkpoint_every == 0 or step >= cfg.steps:
            save_checkpoint(out / "checkpoint", model, optimizer, step, rng,
                            {"history": history, "config": asdict(cfg), "return_scale": scale.state()})
            apart = (f" (against Nexto {row['nexto_goals_for_per_minute']:.2f} / "
                     f"{row['nexto_goals_against_per_minute']:.2f})" if n_nexto else "")
            apart += (f" (against --opponent-policy {row['policy_goals_for_per_minute']:.2f} / "
                      f"{row['policy_goals_against_per_minute']:.2f})" if cfg.opponent_arenas else "")
            tqdm.write(f"step {step:,}: goals for {row['goals_for_per_minute']:.2f} / against "
                       f"{row['goals_against_per_minute']:.2f} per minute{apart}, touches {row['touch_share']:.4f}, "
                       f"kl {row['kl_clone']:.3f}, {row['decisions_per_s']:.0f} decisions/s")
    bar.close()
    teardown_distributed()
    if not ddp.is_main:
        return {"history": history}
    writer.close()
    write_json(out / "history.json", {"history": history})
    if history:
        from training.plots import plot_finetune
        plot_finetune(history, out / "curves.png")
    config = {**start_config, "finetune": {"from_policy_sha256": start_config.get("weights_sha256"),
                                           "anchor_sha256": anchor_config.get("weights_sha256"),
                                           "previous": start_config.get("finetune"), "chaser_acts": "every tick",
                                           "opponent_policy_sha256": opponent_config.get("weights_sha256"),
                                           "processes": ddp.world,
                                           "config": asdict(cfg), "final": history[-1] if history else {}}}
    card = model_card(cfg, config, history)
    export_model(out / "model", policy, config, card)
    if cfg.export:
        export_model(cfg.export, policy, config, card, half=True)
    return {"history": history}


def model_card(cfg: Config, config: dict, history: list[dict]) -> str:
    last = history[-1] if history else {}
    recent = history[-max(1, len(history) // 20):]  # the last 5% of updates: one update is ~2 game-minutes
    minutes = (sum(row["game_minutes"] for row in history) if all("game_minutes" in row for row in history)
               else last.get("step", 0) * TICKS_PER_FRAME / 120 / 60)  # rows before team arenas: 1v1 only
    tune = config["finetune"]
    earlier, rounds = tune.get("previous"), []
    while earlier:  # an already fine-tuned start: every earlier round, newest first
        nexto_arenas = earlier["config"].get("nexto_arenas", 0)
        with_nexto = f", Nexto in {nexto_arenas} of {earlier['config']['arenas']} arenas" if nexto_arenas else ""
        if earlier["config"].get("opponent_arenas"):
            with_nexto += (f", the frozen policy {earlier.get('opponent_policy_sha256')} in "
                           f"{earlier['config']['opponent_arenas']} of {earlier['config']['arenas']} arenas")
        rounds.append(f"{earlier['config']['steps']:,} decisions (KL weight {earlier['config']['kl_coef']}, chaser "
                      f"acting {earlier.get('chaser_acts', 'on the learner decision ticks only')}{with_nexto}) from "
                      f"{earlier['from_policy_sha256']}")
        earlier = earlier.get("previous")
    start = (f"the behaviour-cloned policy (weights sha256 {tune['from_policy_sha256']})" if not rounds else
             f"the policy with weights sha256 {tune['from_policy_sha256']}, itself fine-tuned in the arena before "
             f"(newest round first: {'; '.join(rounds)}); the first of those rounds started from the "
             "behaviour-cloned policy")
    anchor = ("that policy" if tune.get("anchor_sha256") in (None, tune["from_policy_sha256"])
              else f"the policy {tune['anchor_sha256']}")
    mean = {k: float(np.mean([row[k] for row in recent if k in row] or [math.nan]))
            for k in ("goals_for_per_minute", "goals_against_per_minute", "kl_clone",
                      "nexto_goals_for_per_minute", "nexto_goals_against_per_minute",
                      "policy_goals_for_per_minute", "policy_goals_against_per_minute")}
    recent_decisions = last.get("step", 0) - (history[-len(recent) - 1]["step"] if len(history) > len(recent) else 0)
    warmup = (f" In its first {cfg.value_warmup:,} decisions only the new value network learned (the policy's "
              "learning rate 0)." if cfg.value_warmup else "")
    scaled = " (divided by the running std of the discounted return)" if cfg.scale_rewards else ""
    opponent = "the chaser baseline (acting every tick)"
    games = ("1v1" if max(cfg.team_sizes) == 1 else
             "/".join(f"{n}v{n}" for n in cfg.team_sizes) + " in turn (the learner driving every car of its team)")
    steps = [0] + [row["step"] for row in history]  # from the rows, so a run resumed with other settings reads right
    with_nexto = sum(b - a for a, b, row in zip(steps, steps[1:], history) if "nexto_goals_for_per_minute" in row)
    if with_nexto:
        share = f"{cfg.nexto_arenas} of every {cfg.arenas}" if cfg.nexto_arenas else "some"
        opponent += (f", with Nexto in its place in {share} arenas"
                     + (f" for {with_nexto:,} of those decisions" if with_nexto < last["step"] else ""))
        if cfg.nexto_epsilon:
            falls = (f", falling linearly to 0 between {cfg.nexto_epsilon_from:,} and {cfg.nexto_epsilon_until:,} "
                     "decisions" if cfg.nexto_epsilon_until > cfg.nexto_epsilon_from else "")
            opponent += (f" (a weaker Nexto at first: each of its decisions random with a probability drawn per "
                         f"episode up to {cfg.nexto_epsilon}{falls})")
        if cfg.nexto_episode_seconds:
            opponent += (f"; there each episode ended {cfg.nexto_episode_seconds:g} s after its kickoff (a kickoff "
                         "contest)")
    if cfg.opponent_arenas:
        opponent += (f", with the frozen policy {tune.get('opponent_policy_sha256')} (self-play) in its place in "
                     f"{cfg.opponent_arenas} of every {cfg.arenas} arenas")
    apart = (f"; in the Nexto arenas {mean['nexto_goals_for_per_minute']:.2f} / "
             f"{mean['nexto_goals_against_per_minute']:.2f}" if "nexto_goals_for_per_minute" in last else "")
    apart += (f"; in the --opponent-policy arenas {mean['policy_goals_for_per_minute']:.2f} / "
              f"{mean['policy_goals_against_per_minute']:.2f}" if "policy_goals_for_per_minute" in last else "")
    return f"""# BC policy model card (fine-tuned in the arena)

The policy the RL-RPT bot plays with: replay-style observation (bot/obs.py) -> one of the 90 actions.
It starts from {start}, trained on {config['data']['replays']} replays labelled by the IDM
{config['data']['idm_weights_sha256']}. This round trained it with PPO for {last.get('step', 0):,} decisions
({minutes:,.0f} game-minutes) of {games} against {opponent} in RocketSim, with
KL(policy || {anchor}) weighted {cfg.kl_coef} keeping it close to it.{warmup}

- rewards: goal {cfg.goal_reward}, touch {cfg.touch_reward}, ball towards goal {cfg.ball_to_goal_reward},
  car towards ball {cfg.car_to_ball_reward}{scaled};
  actions sampled at temperature {cfg.temperature} (bot.cfg's `temperature` sets how it plays: compare in matches)
- mean of the last {len(recent)} updates ({recent_decisions:,} decisions): goals for
  {mean['goals_for_per_minute']:.2f} / against {mean['goals_against_per_minute']:.2f} per game-minute{apart}, KL to
  the anchor {mean['kl_clone']:.3f}
- Command: `{command_line()}`
"""


def main(cfg: Config) -> None:
    world = int(os.environ.get("WORLD_SIZE", "0"))
    if not 0.0 <= cfg.nexto_epsilon <= 1.0:
        raise ValueError(f"--nexto-epsilon {cfg.nexto_epsilon} is a probability: between 0 and 1")
    if cfg.nexto_epsilon and not cfg.nexto_arenas:
        raise ValueError("--nexto-epsilon weakens Nexto in its arenas: it needs --nexto PATH --nexto-arenas K")
    if cfg.nexto_episode_seconds < 0:
        raise ValueError(f"--nexto-episode-seconds {cfg.nexto_episode_seconds} must not be negative "
                         "(0: --episode-seconds)")
    if cfg.nexto_episode_seconds and not cfg.nexto_arenas:
        raise ValueError("--nexto-episode-seconds sets the Nexto arenas' episodes: it needs --nexto PATH "
                         "--nexto-arenas K")
    if cfg.opponent_arenas and cfg.opponent_policy is None:
        raise ValueError("--opponent-arenas needs --opponent-policy DIR (a policy folder, e.g. models/bc)")
    if cfg.opponent_policy is not None and not cfg.opponent_arenas:
        raise ValueError("--opponent-policy plays in the opponent's seat of some arenas: it needs --opponent-arenas K")
    if cfg.opponent_policy is not None and not (Path(cfg.opponent_policy) / "config.json").is_file():
        raise FileNotFoundError(f"--opponent-policy {cfg.opponent_policy}: no policy there (a folder with "
                                "config.json and model.safetensors, e.g. models/bc)")
    if cfg.procs > 1 and not world:
        cmd = torchrun_command("finetune", cfg, cfg.procs)
        print("+ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(max(cfg.threads, 1))})
        return
    if world and cfg.procs not in (1, world):
        raise ValueError(f"--procs {cfg.procs} under torchrun with world size {world}: pass --procs {world} (or 1)")
    train(cfg)
