"""Arena fine-tuning: the vectorised chaser is the arena's chaser, goals reward the right side, a run resumes,
and it runs as several DDP processes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import RocketSim as rs
import torch

from bot.actions import ACTION_TABLE, NOOP_ACTION
from bot.frame import POS, VEL
from bot.obs import O_PRESENT, build_obs
from bot.policy import load_policy
from tests.conftest import NEXTO_MODEL, ROOT
from training.baselines import ChaserAgent
from training.finetune import (OPPONENT_SLOT, ArenaBatch, Config, ReturnScale, _set_controls, arena_team_sizes,
                               chaser_controls, main, masked_logits, nexto_epsilon_bound)
from training.sim.rocketsim import GameClock, _controls, make_arena, read_ball, read_cars, sim_to_packet

needs_nexto = pytest.mark.skipif(not NEXTO_MODEL.is_file(), reason="Nexto model not present")


def test_vectorised_chaser_matches_the_baseline_agent():
    rng = np.random.default_rng(0)
    agree = 0
    for seed in range(6):
        arena = make_arena(1, 1, seed)
        for car in arena.get_cars():  # drive somewhere first, so headings and speeds differ
            car.set_controls(rs.CarControls(throttle=1.0, steer=float(rng.uniform(-1, 1)), boost=seed % 2 == 0))
        arena.step(int(rng.integers(30, 240)))
        cars, teams, _ = read_cars(arena)
        packet = sim_to_packet(arena, GameClock())
        ours = chaser_controls(cars, np.repeat(read_ball(arena)[None], 2, 0), teams)
        for i in range(2):
            c = ChaserAgent("chaser", int(teams[i]), i).get_output(packet)
            theirs = np.array([c.throttle, c.steer, c.pitch, c.yaw, c.roll, c.jump, c.boost, c.handbrake], np.float32)
            np.testing.assert_allclose(ours[i], theirs, atol=1e-4)
            agree += 1
    assert agree == 12


def test_the_arena_chaser_acts_on_every_tick_as_in_evaluate():
    """ArenaBatch's chaser answers every tick's packet one tick later, as `evaluate`'s ChaserAgent does, not
    only the learner's decision ticks: replayed tick by tick with the real agent, its car ends where it did."""
    env = ArenaBatch(1, episode_seconds=90, rng=np.random.default_rng(1))
    ref = make_arena(1, 1, 0)
    for src, dst in zip(env.cars[0], ref.get_cars()):
        dst.set_state(src.get_state())
    ref.ball.set_state(env.arenas[0].ball.get_state())
    learner, chaser = ref.get_cars()  # the learner is blue in arena 0
    start = chaser.get_state().pos.as_numpy()
    agent = ChaserAgent("chaser", 1, 1)
    actions = np.random.default_rng(1).integers(0, 90, 120)
    for action in actions:
        env.step(np.array([action]))
        for tick in range(4):
            c = agent.get_output(sim_to_packet(ref, GameClock(kickoff_pause=False)))
            ref.step(1)
            if tick == 0:
                _set_controls(learner, ACTION_TABLE[action])
            _set_controls(chaser, np.array([c.throttle, c.steer, c.pitch, c.yaw, c.roll, c.jump, c.boost,
                                            c.handbrake], np.float32))
    ours, theirs = env.cars[0][1].get_state(), chaser.get_state()
    # (acting only on the learner's decision ticks it ends 15 uu and 10 uu/s off after these 4 s)
    assert np.linalg.norm(ours.pos.as_numpy() - theirs.pos.as_numpy()) < 1.0
    assert np.linalg.norm(ours.vel.as_numpy() - theirs.vel.as_numpy()) < 2.0
    assert np.linalg.norm(theirs.pos.as_numpy() - start) > 500  # it did drive: agreeing at rest would prove nothing


def test_a_goal_rewards_the_scorer_and_restarts_from_a_kickoff():
    env = ArenaBatch(2, episode_seconds=90, rng=np.random.default_rng(0))
    for arena in env.arenas:  # the ball flies into orange's goal in both arenas
        ball = arena.ball.get_state()
        ball.pos, ball.vel = rs.Vec(0.0, 4900.0, 300.0), rs.Vec(0.0, 3000.0, 0.0)
        arena.ball.set_state(ball)
    scored_seen = np.zeros(2)
    for _ in range(30):
        parts, done, scored = env.step(np.full(2, 8))
        scored_seen += scored
        if done.any():
            assert np.abs(env.ball_gf[done][:, POS][:, :2]).max() == 0 and (env.ball_gf[done][:, VEL] == 0).all()
            assert env.kickoff_pause[done].all()
    # the learner is blue in arena 0 (it scored) and orange in arena 1 (it conceded)
    np.testing.assert_array_equal(scored_seen, [1, -1])


def test_the_policy_sees_only_the_opponent_slot_and_gives_the_same_logits():
    env = ArenaBatch(4, 90.0, np.random.default_rng(3))
    for _ in range(20):  # a little play, so the cars are not at their kickoff spots
        env.step(np.random.default_rng(4).integers(len(ACTION_TABLE), size=4))
    glob, others = (torch.from_numpy(x) for x in env.observe())
    filled = others[..., O_PRESENT] > 0
    assert filled[:, OPPONENT_SLOT].all() and filled.sum() == len(filled)  # only the opponent's slot, always
    policy, _ = load_policy(ROOT / "models" / "bc")
    with torch.no_grad():
        torch.testing.assert_close(policy(glob, others[:, OPPONENT_SLOT]), policy(glob, others), rtol=1e-5, atol=1e-5)


def test_finetune_exports_a_policy_and_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "finetune", "--policy", str(ROOT / "models" / "bc"), "--out", str(out),
           "--arenas", "2", "--rollout", "16", "--minibatch", "16", "--checkpoint-every", "1", "--lr", "1e-3"]
    first = subprocess.run(cmd + ["--steps", "32"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    tuned, config = load_policy(out / "model")
    clone, clone_config = load_policy(ROOT / "models" / "bc")
    moved = [not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), clone.state_dict().values())]
    assert any(moved)
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert config["finetune"]["config"]["steps"] == 32 and "PPO" in card
    # a start that was itself fine-tuned keeps its history: config and card name every earlier round
    assert config["finetune"]["from_policy_sha256"] == clone_config["weights_sha256"]
    assert config["finetune"]["previous"] == clone_config.get("finetune")
    earlier = clone_config.get("finetune")
    while earlier:
        assert earlier["from_policy_sha256"] in card
        earlier = earlier.get("previous")
    second = subprocess.run(cmd + ["--steps", "64"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed at step 32" in second.stdout
    history = (out / "history.json").read_text()
    assert '"step": 64' in history and '"step": 32' in history


def _ranks_log(proc: subprocess.CompletedProcess) -> str:
    """What the processes under torchrun said about a failure: their '[rankN]:' lines, then the launcher's tail."""
    text = proc.stdout + proc.stderr
    ranks = "\n".join(line for line in text.splitlines() if line.startswith("[rank"))
    return ranks[-4000:] + "\n...\n" + text[-12000:]


def test_finetune_in_two_processes_counts_both_and_resumes(tmp_path):
    """--procs 2 relaunches under torchrun: one update takes both processes' arenas, rank 0 writes the run."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "finetune", "--policy", str(ROOT / "models" / "bc"), "--out", str(out),
           "--arenas", "2", "--rollout", "16", "--minibatch", "16", "--checkpoint-every", "1", "--procs", "2"]
    first = subprocess.run(cmd + ["--steps", "64"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, _ranks_log(first)
    assert "world size 2, 4 arenas in all" in first.stdout
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["step"] for row in history] == [64]  # 2 processes x 2 arenas x 16 decisions
    _, config = load_policy(out / "model")
    assert config["finetune"]["processes"] == 2
    assert "torchrun --nproc-per-node 2 -m training finetune" in (out / "model" / "MODEL_CARD.md").read_text()
    second = subprocess.run(cmd + ["--steps", "128"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, _ranks_log(second)
    assert "resumed at step 64" in second.stdout
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["step"] for row in history] == [64, 128]


def test_team_arenas_give_every_learner_car_its_own_decision():
    """--team-sizes 2 3: the learner drives every car of its team (one batch row each, its own observation), the
    chasers every car of the other; a goal counts once per arena and rewards each car of the team."""
    env = ArenaBatch(3, 90.0, np.random.default_rng(7), team_sizes=(2, 3))
    assert env.size.tolist() == [2, 3, 2] and env.agents == 7
    assert env.agent_g.tolist() == [0, 0, 1, 1, 1, 2, 2] and env.agent_slot.tolist() == [0, 1, 3, 4, 5, 0, 1]
    assert env.chaser_slot.tolist() == [2, 3, 0, 1, 2, 2, 3]  # the other team's cars, blue first in arena 1
    glob, others = env.observe()
    present = others[..., O_PRESENT] > 0.5  # (L, 5): teammate slots 0-1, opponents 2-4
    assert present[:, :2].sum(1).tolist() == [1, 1, 2, 2, 2, 1, 1]
    assert present[:, 2:].sum(1).tolist() == [2, 2, 3, 3, 3, 2, 2]
    # each agent's own car block is its own car: the agents of one arena see different selves
    for g in range(3):
        selves = glob[env.agent_g == g, 51:54]
        assert len(np.unique(selves, axis=0)) == len(selves)

    full_throttle = int(np.flatnonzero((ACTION_TABLE[:, 0] == 1) & (ACTION_TABLE[:, 1:].sum(1) == 0))[0])
    actions = np.full(7, NOOP_ACTION)
    actions[[1, 4]] = full_throttle  # the second car of arena 0 and the third of arena 1 drive, the others idle
    env.step(actions)
    throttle = [[c.get_controls().throttle for c in cars] for cars in env.cars]
    assert throttle[0] == [0.0, 1.0, 1.0, 1.0] and throttle[1] == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]

    for arena in env.arenas:  # the ball flies into orange's goal in every arena
        ball = arena.ball.get_state()
        ball.pos, ball.vel = rs.Vec(0, 4900, 200), rs.Vec(0, 3000, 0)
        arena.ball.set_state(ball)
    for _ in range(20):
        parts, done, scored = env.step(np.full(7, NOOP_ACTION))
        if done.any():
            break
    assert scored.tolist() == [1, -1, 1]  # blue learners in arenas 0 and 2, orange in 1
    assert done.all() and parts[:, 0].tolist() == [1, 1, -1, -1, -1, 1, 1]


def test_a_touch_rewards_the_learner_car_that_made_it():
    env = ArenaBatch(2, 90.0, np.random.default_rng(7), team_sizes=(2,))
    assert env.agent_slot.tolist() == [0, 1, 2, 3]  # arena 0: blue cars 0 and 1; arena 1: orange cars 2 and 3
    for g, slot in [(0, 1), (1, 2)]:  # the ball drops onto one learner car in each arena
        car, ball = env.cars[g][slot].get_state(), env.arenas[g].ball.get_state()
        ball.pos, ball.vel = rs.Vec(car.pos.x, car.pos.y, car.pos.z + 120), rs.Vec(0, 0, -500)
        env.arenas[g].ball.set_state(ball)
    parts = env.step(np.full(env.agents, NOOP_ACTION))[0]
    assert parts[:, 1].tolist() == [0, 1, 1, 0]


def test_team_sizes_cycle_over_the_chaser_arenas_only():
    assert arena_team_sizes(6, 2, (1, 2, 3)).tolist() == [1, 1, 1, 2, 3, 1]
    with pytest.raises(ValueError, match="1 to 3"):
        arena_team_sizes(4, 0, (4,))


def test_finetune_in_team_arenas_exports_and_counts_game_time(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "finetune", "--policy", str(ROOT / "models" / "bc"), "--out", str(out),
           "--arenas", "2", "--team-sizes", "1", "3", "--rollout", "8", "--minibatch", "16", "--steps", "32"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["step"] for row in history] == [32]  # 1 + 3 learner cars x 8 decisions
    assert history[0]["game_minutes"] == pytest.approx(2 * 8 * 4 / 120 / 60)  # two arenas' game time
    row = history[0]  # apart by team size, one arena of each here: the two sizes' goals add up to the run's
    for side in ("for", "against"):
        apart = row[f"goals_{side}_per_minute_1v1"] + row[f"goals_{side}_per_minute_3v3"]
        assert apart / 2 == pytest.approx(row[f"goals_{side}_per_minute"])
    assert "1v1/3v3 in turn" in (out / "model" / "MODEL_CARD.md").read_text()


def test_value_warmup_trains_the_value_net_alone(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "finetune", "--policy", str(ROOT / "models" / "bc"), "--out", str(out),
           "--arenas", "2", "--rollout", "16", "--minibatch", "16", "--steps", "32", "--value-warmup", "32"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    tuned, _ = load_policy(out / "model")
    start, _ = load_policy(ROOT / "models" / "bc")
    for a, b in zip(tuned.state_dict().values(), start.state_dict().values()):
        torch.testing.assert_close(a, b.to(a.dtype))  # the policy did not move (its export is fp32 of the fp16 start)
    assert json.loads((out / "history.json").read_text())["history"][0]["value_loss"] > 0
    assert "only the new value network learned" in (out / "model" / "MODEL_CARD.md").read_text()


def test_procs_must_match_the_torchrun_world(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="--procs 3"):
        main(Config(out=tmp_path, procs=2))


def test_return_scale_is_the_std_of_every_discounted_return_seen_so_far(rng):
    gamma, games, steps = 0.9, 4, 300
    scale = ReturnScale(games, gamma)
    rewards = rng.normal(1.0, 2.0, (steps, games))
    done = rng.random((steps, games)) < 0.05
    ret, seen = np.zeros(games), []
    for t in range(steps):
        scale.update(rewards[t], done[t])
        ret = ret * gamma + rewards[t]
        seen.append(ret.copy())
        ret[done[t]] = 0.0
    np.testing.assert_allclose(scale.std, np.std(seen), rtol=1e-6)
    again = ReturnScale(games, gamma)
    again.load(scale.state())  # what a checkpoint carries
    assert again.std == scale.std and np.array_equal(again.ret, scale.ret)


@needs_nexto
def test_nexto_drives_the_opponent_in_its_arenas_eight_ticks_late():
    """With --nexto-arenas, Nexto drives the learner's opponent (blue or orange) in the first arenas: each of its
    decisions (every 8 ticks) is applied 8 ticks later and held 8 ticks, the learner's car is never touched, and
    against an idle learner it scores from both ends (a wrong team flip in its observation would not)."""
    env = ArenaBatch(3, 90.0, np.random.default_rng(5), NEXTO_MODEL, nexto_arenas=2)
    idle = np.full(3, NOOP_ACTION)
    decisions = []  # Nexto's newest decision per Nexto arena after each call
    for call in range(60):  # 2 s: no goal yet, so nothing restarts and the lag is plain
        env.step(idle)
        decisions.append(env.nexto.prev_action[np.arange(2), 1 - env.me[:2]].copy())
        applied = np.full(2, NOOP_ACTION) if call < 2 else decisions[call - 2 - call % 2]  # made 2 calls before
        for g in range(2):
            opponent, learner = env.cars[g][1 - env.me[g]].get_state(), env.cars[g][env.me[g]].get_state()
            np.testing.assert_allclose(_controls(opponent.last_controls), ACTION_TABLE[applied[g]], atol=1e-6)
            np.testing.assert_allclose(_controls(learner.last_controls), ACTION_TABLE[NOOP_ACTION], atol=1e-6)
    assert len({tuple(d) for d in decisions}) > 3  # it did decide, and not one thing throughout
    conceded = np.zeros(3)
    for _ in range(600):  # 20 s more
        conceded -= env.step(idle)[2]
    assert (conceded[:2] >= 1).all(), conceded  # Nexto as orange (arena 0) and as blue (arena 1)


def test_nexto_arenas_need_the_model_and_fit_in_the_arenas():
    with pytest.raises(ValueError, match="--nexto PATH"):
        ArenaBatch(2, 90.0, np.random.default_rng(0), None, nexto_arenas=1)
    with pytest.raises(ValueError, match="together at most --arenas 2"):
        ArenaBatch(2, 90.0, np.random.default_rng(0), Path("nexto.pt"), nexto_arenas=3)


def test_the_nexto_curriculum_bound_falls_linearly_and_needs_nexto_arenas():
    cfg = Config(nexto=Path("nexto.pt"), nexto_arenas=8, nexto_epsilon=0.8, nexto_epsilon_from=100,
                 nexto_epsilon_until=300)
    assert [nexto_epsilon_bound(cfg, s) for s in (0, 100, 200, 300, 1000)] == pytest.approx([0.8, 0.8, 0.4, 0, 0])
    assert nexto_epsilon_bound(Config(nexto_epsilon=0.3), 10**9) == 0.3  # no --nexto-epsilon-until: constant
    with pytest.raises(ValueError, match="needs --nexto PATH --nexto-arenas K"):
        main(Config(nexto_epsilon=0.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        main(Config(nexto=Path("nexto.pt"), nexto_arenas=1, nexto_epsilon=1.5))


@needs_nexto
def test_a_weakened_nexto_draws_its_epsilon_from_the_first_episode_on():
    env = ArenaBatch(3, 90.0, np.random.default_rng(2), NEXTO_MODEL, nexto_arenas=2, nexto_epsilon=0.6)
    driven = env.nexto.epsilon[np.arange(2), 1 - env.me[:2]]
    assert ((driven > 0) & (driven <= 0.6)).all()
    env.nexto.epsilon_max = 0.0  # the bound falls: episodes that start from now on play Nexto at full strength
    while not (done := env.step(np.zeros(3, np.int64))[1])[:2].any():
        pass
    restarted = np.flatnonzero(done[:2])
    assert (env.nexto.epsilon[restarted, 1 - env.me[restarted]] == 0).all()


@needs_nexto
def test_nexto_episode_seconds_make_the_nexto_arenas_kickoff_contests():
    """--nexto-episode-seconds 1: the Nexto arena restarts from a kickoff every 30 decisions, the chaser arena
    keeps the long episode."""
    env = ArenaBatch(2, 90.0, np.random.default_rng(3), NEXTO_MODEL, nexto_arenas=1, nexto_episode_seconds=1.0)
    ends = [np.flatnonzero(env.step(np.full(2, NOOP_ACTION))[1]).tolist() for _ in range(90)]
    assert [t for t, done in enumerate(ends) if done] == [29, 59, 89]  # no goal within 1 s of a kickoff
    assert all(done == [0] for done in ends if done)
    assert env.kickoff_pause[0] and not env.kickoff_pause[1]  # arena 0 just restarted; arena 1's chaser hit the ball
    with pytest.raises(ValueError, match="needs --nexto PATH --nexto-arenas K"):
        main(Config(nexto_episode_seconds=10.0))
    with pytest.raises(ValueError, match="must not be negative"):
        main(Config(nexto=Path("nexto.pt"), nexto_arenas=1, nexto_episode_seconds=-1.0))


@needs_nexto
def test_finetune_with_nexto_arenas_logs_them_apart_and_says_so(tmp_path):
    """Also the curriculum (Nexto's random-action bound falls from 1 at decision 0 to 0 at decision 64) and the
    kickoff contests (Nexto's episodes cut 0.5 s after their kickoff)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "finetune", "--policy", str(ROOT / "models" / "bc"), "--out", str(out),
           "--arenas", "2", "--rollout", "16", "--minibatch", "16", "--steps", "64", "--nexto", str(NEXTO_MODEL),
           "--nexto-arenas", "1", "--nexto-epsilon", "1", "--nexto-epsilon-until", "64",
           "--nexto-episode-seconds", "0.5"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history) == 2 and all(row["nexto_goals_against_per_minute"] >= 0 for row in history)
    for row in history:  # the two kinds of arena are each half of the game time
        for side in ("for", "against"):
            assert row[f"goals_{side}_per_minute"] == pytest.approx(
                (row[f"nexto_goals_{side}_per_minute"] + row[f"chaser_goals_{side}_per_minute"]) / 2)
    assert "against Nexto" in run.stdout + run.stderr
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert "with Nexto in its place in 1 of every 2 arenas" in card and "in the Nexto arenas" in card
    assert "of those decisions" not in card  # all 64 had Nexto arenas
    assert [row["nexto_epsilon_max"] for row in history] == [1.0, 0.5]  # set before each 32-decision rollout
    assert "random with a probability drawn per episode up to 1.0, falling linearly to 0 between 0 and 64" in card
    assert "there each episode ended 0.5 s after its kickoff" in card
    assert sum(row["episodes"] for row in history) >= 2  # the Nexto arena's 32 decisions: 15-decision episodes
    assert (out / "curves.png").stat().st_size > 10_000


def test_an_opponent_policy_drives_the_opponent_as_the_bot_would():
    """--opponent-policy: in its arenas the frozen policy decides on the learner's decision ticks from its own side's
    observation, one tick late (at a near-zero temperature: its argmax, recomputed here), the learner's car is never
    touched, and the chaser keeps the rest. At the bot's temperature, against an idle learner, it drives the ball
    towards the learner's goal as orange and as blue (4 seeds x 2 sides tried: +90 to +290 uu/s on average in all 8;
    with the sides swapped in its observation, negative in 7 of 8)."""
    policy, _ = load_policy(ROOT / "models" / "bc")
    torch.manual_seed(0)
    env = ArenaBatch(5, 90.0, np.random.default_rng(6), opponent=policy, opponent_arenas=4, temperature=1e-6)
    assert env.policy_arenas.tolist() == [0, 1, 2, 3] and env.chasers.tolist() == [4]
    idle, s = np.full(5, NOOP_ACTION), slice(0, 4)
    for _ in range(30):
        them = 1 - env.me[s]
        glob, others = build_obs(env.ball_gf[s], env.cars_gpf[s], env.pads_gk[s], env.team[s], them,
                                 np.full(4, NOOP_ACTION))
        with torch.no_grad():
            logits = masked_logits(policy(torch.from_numpy(glob), torch.from_numpy(others)[:, OPPONENT_SLOT]),
                                   torch.from_numpy(env.kickoff_pause[s]), 1.0)
        env.step(idle)
        for g in range(4):
            opponent, learner = env.cars[g][them[g]].get_state(), env.cars[g][env.me[g]].get_state()
            np.testing.assert_allclose(_controls(opponent.last_controls), ACTION_TABLE[int(logits[g].argmax())],
                                       atol=1e-6)
            np.testing.assert_allclose(_controls(learner.last_controls), ACTION_TABLE[NOOP_ACTION], atol=1e-6)
    env.temperature = 0.5
    towards_learner = np.where(env.me == 0, -1.0, 1.0)  # the learner defends -y as blue, +y as orange
    attack = np.zeros(5)
    for _ in range(600):  # 20 s
        env.step(idle)
        attack += towards_learner * env.ball_gf[:, VEL][:, 1] / 600
    assert attack[[0, 2]].mean() > 0 and attack[[1, 3]].mean() > 0, attack  # as orange (arenas 0, 2) and as blue


def test_opponent_arenas_need_a_policy_and_fit_beside_the_nexto_arenas():
    policy, _ = load_policy(ROOT / "models" / "bc")
    with pytest.raises(ValueError, match="needs --opponent-policy DIR"):
        ArenaBatch(2, 90.0, np.random.default_rng(0), opponent_arenas=1)
    with pytest.raises(ValueError, match="together at most --arenas 2"):
        ArenaBatch(2, 90.0, np.random.default_rng(0), Path("nexto.pt"), nexto_arenas=1, opponent=policy,
                   opponent_arenas=2)
    with pytest.raises(ValueError, match="needs --opponent-policy DIR"):
        main(Config(opponent_arenas=4))
    with pytest.raises(ValueError, match="needs --opponent-arenas K"):
        main(Config(opponent_policy=ROOT / "models" / "bc"))
    with pytest.raises(FileNotFoundError, match="no policy there"):
        main(Config(opponent_policy=Path("no/such/policy"), opponent_arenas=4))


def test_finetune_with_opponent_policy_arenas_logs_them_apart_and_says_so(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "finetune", "--policy", str(ROOT / "models" / "bc"), "--out", str(out),
           "--arenas", "2", "--rollout", "16", "--minibatch", "16", "--steps", "32",
           "--opponent-policy", str(ROOT / "models" / "bc"), "--opponent-arenas", "1"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    [row] = json.loads((out / "history.json").read_text())["history"]
    for side in ("for", "against"):  # the two kinds of arena are each half of the game time
        assert row[f"goals_{side}_per_minute"] == pytest.approx(
            (row[f"policy_goals_{side}_per_minute"] + row[f"chaser_goals_{side}_per_minute"]) / 2)
    assert "nexto_goals_for_per_minute" not in row and "against --opponent-policy" in run.stdout + run.stderr
    config = json.loads((out / "model" / "config.json").read_text())
    sha = json.loads((ROOT / "models" / "bc" / "config.json").read_text())["weights_sha256"]
    assert config["finetune"]["opponent_policy_sha256"] == sha
    card = (out / "model" / "MODEL_CARD.md").read_text()
    assert f"with the frozen policy {sha} (self-play) in its place in 1 of every 2 arenas" in card
    assert "in the --opponent-policy arenas" in card
    assert (out / "curves.png").stat().st_size > 10_000
