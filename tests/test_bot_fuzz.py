"""Fuzz: 100,000 random or broken packets; the bot (with a policy loaded) always returns valid controls."""

import math

import numpy as np
import pytest
import torch
from rlbot.agents.base_agent import SimpleControllerState
from rlbot.utils.structures.game_data_struct import GameTickPacket

from bot.policy import Policy, PolicyConfig
from training.checkpoint import export_model

PACKETS = 100_000


@pytest.fixture
def bot_with_random_policy(tmp_path, monkeypatch):
    return make_bot(tmp_path, monkeypatch)


def make_bot(tmp_path, monkeypatch):
    import bot.bot as bot_module
    torch.manual_seed(0)
    export_model(tmp_path / "bc", Policy(PolicyConfig(hidden=32, layers=1)), {"model": {"hidden": 32, "layers": 1}},
                 "test policy", half=True)
    monkeypatch.setattr(bot_module, "MODEL_DIR", tmp_path / "bc")
    from training.sim.drivers import prepare_agent
    agent = bot_module.RLRPTBot("fuzz", 0, 0)
    prepare_agent(agent, __import__("bot.packet", fromlist=["x"]).default_field_info(), [None])
    assert agent.policy is not None
    return agent


def random_packet(rng: np.random.Generator, packet: GameTickPacket) -> None:
    """Overwrite a packet with random, often broken, content."""
    packet.num_cars = int(rng.integers(0, 9))
    packet.num_boost = int(rng.choice([0, 34, 34, 34, 50]))
    weird = [float("nan"), float("inf"), -float("inf"), 1e30, 0.0]
    for i in range(packet.num_cars):
        car = packet.game_cars[i]
        values = rng.normal(0, 3000, 12)
        if rng.random() < 0.1:
            values[rng.integers(0, 12)] = weird[rng.integers(0, len(weird))]
        p = car.physics
        p.location.x, p.location.y, p.location.z = values[0:3]
        p.velocity.x, p.velocity.y, p.velocity.z = values[3:6]
        p.angular_velocity.x, p.angular_velocity.y, p.angular_velocity.z = values[6:9] / 500
        p.rotation.pitch, p.rotation.yaw, p.rotation.roll = values[9:12] / 1000
        car.team = int(rng.integers(0, 3))  # includes an invalid team
        car.boost = int(rng.integers(-10, 120))
        car.is_demolished = bool(rng.random() < 0.2)
        car.has_wheel_contact = bool(rng.random() < 0.5)
        car.jumped, car.double_jumped = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    for j in range(packet.num_boost):
        packet.game_boosts[j].is_active = bool(rng.random() < 0.7)
        packet.game_boosts[j].timer = float(rng.uniform(-1, 12))
    ball = packet.game_ball.physics
    if rng.random() < 0.1:  # missing ball
        ball.location.x = ball.location.y = ball.location.z = float("nan")
    else:
        ball.location.x, ball.location.y, ball.location.z = rng.normal(0, 3000, 3)
    gi = packet.game_info
    gi.seconds_elapsed = float(gi.seconds_elapsed + rng.choice([1 / 120, 0.0, -1.0, 5.0, 1 / 60]))
    gi.is_kickoff_pause, gi.is_round_active = bool(rng.random() < 0.2), bool(rng.random() < 0.9)


def valid(out) -> bool:
    if not isinstance(out, SimpleControllerState):
        return False
    axes = (out.throttle, out.steer, out.pitch, out.yaw, out.roll)
    return all(isinstance(a, float) and math.isfinite(a) and -1 <= a <= 1 for a in axes) and all(
        isinstance(b, bool) for b in (out.jump, out.boost, out.handbrake))


def test_get_output_survives_100k_random_and_broken_packets(bot_with_random_policy):
    agent = bot_with_random_policy
    rng = np.random.default_rng(0)
    packet = GameTickPacket()
    bad = acted = 0
    for _ in range(PACKETS):
        random_packet(rng, packet)
        agent.index = int(rng.integers(-1, 9)) if rng.random() < 0.05 else agent.index if agent.index in range(8) else 0
        agent.team = int(rng.integers(0, 2)) if rng.random() < 0.01 else agent.team  # team changes
        if rng.random() < 0.75:  # the bot reads packets only when it decides: make most packets a decision
            agent.ticks_to_decision = 0
        out = agent.get_output(packet)
        bad += not valid(out)
        acted += out.throttle != 0 or out.steer != 0 or out.boost or out.jump or out.pitch != 0
    assert bad == 0
    assert acted > 0.3 * PACKETS  # the policy really ran on most packets (not only the neutral fallback)
    assert not agent._logged, agent._logged  # no internal failure at all, not even a caught one


def test_the_bot_reads_the_packet_only_when_it_decides_and_holds_the_action_between(bot_with_random_policy):
    """30 Hz decisions at 120 ticks per second: every 4th packet is decoded, the 3 between keep the controls."""
    from training.sim.rocketsim import GameClock, make_arena, sim_to_packet
    agent = bot_with_random_policy
    decoded = []
    decode = agent.decoder.packet_to_frame
    agent.decoder.packet_to_frame = lambda packet: decoded.append(packet.game_info.frame_num) or decode(packet)
    arena, clock = make_arena(1, 1, seed=0), GameClock(kickoff_pause=False)
    outputs = []
    for tick in range(40):
        arena.step(1)
        packet = sim_to_packet(arena, clock)
        packet.game_info.seconds_elapsed = tick / 120
        packet.game_info.frame_num = tick
        outputs.append(agent.get_output(packet))
    assert decoded == list(range(0, 40, 4))
    for tick, out in enumerate(outputs):
        assert out is outputs[tick - tick % 4]  # held, not recomputed


def test_the_bot_still_plays_when_blas_threads_cannot_be_limited(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails, as with the package missing
    agent = make_bot(tmp_path, monkeypatch)
    assert "blas" in agent._logged
    assert valid(agent.get_output(GameTickPacket()))
