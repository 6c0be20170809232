"""Cross-source consistency: RocketSim -> Frames directly equals RocketSim -> GameTickPacket -> rlgym-compat
-> Frames."""

import numpy as np
import pytest

from bot.frame import (
    ANG_VEL, BOOST, DEMOLISHED, FORWARD, HAS_FLIP, HAS_JUMP, KICKOFF_PAUSE, ON_GROUND, POS, UP, VEL,
    to_team_perspective,
)
from bot.packet import PacketDecoder
from tests.conftest import play_random


@pytest.mark.parametrize("team_size", [1, 2, 3])
def test_direct_and_packet_frames_agree(rng, team_size):
    from training.sim.rocketsim import GameClock, field_info_packet, make_arena, sim_to_frame, sim_to_packet
    arena = make_arena(team_size, team_size, seed=team_size)
    decoder = PacketDecoder(field_info_packet(arena))
    clock = GameClock(seconds_remaining=123.0, kickoff_pause=False)
    seen = {"airborne": 0, "no_flip": 0, "pad_taken": 0, "demolished": 0}
    for t in play_random(arena, rng, 1500):
        if t == 700:  # force a demolition, which random play rarely produces
            arena.get_cars()[0].demolish()
        direct = sim_to_frame(arena, clock)
        via_packet = decoder.packet_to_frame(sim_to_packet(arena, clock))
        for team in (0, 1):
            a, b = to_team_perspective(direct, team), to_team_perspective(via_packet, team)
            for cols, tol in ((POS, 1e-2), (VEL, 1e-2), (ANG_VEL, 1e-4), (FORWARD, 1e-5), (UP, 1e-5)):
                np.testing.assert_allclose(a.cars_tpf[..., cols], b.cars_tpf[..., cols], atol=tol)
                np.testing.assert_allclose(a.ball_tf[..., cols], b.ball_tf[..., cols], atol=tol)
            np.testing.assert_allclose(a.cars_tpf[..., BOOST], b.cars_tpf[..., BOOST], atol=0.5 / 100)  # int boost
            for col in (DEMOLISHED, ON_GROUND, HAS_JUMP, HAS_FLIP):
                assert np.array_equal(a.cars_tpf[..., col], b.cars_tpf[..., col]), col
            np.testing.assert_allclose(a.pads_tk, b.pads_tk, atol=1e-4)
            assert np.array_equal(a.game_tf, b.game_tf) and np.array_equal(a.team_p, b.team_p)
            assert np.allclose(a.time_t, b.time_t)
        cars = direct.cars_tpf[0]
        seen["airborne"] += int((cars[:, ON_GROUND] == 0).sum())
        seen["no_flip"] += int((cars[:, HAS_FLIP] == 0).sum())
        seen["pad_taken"] += int((direct.pads_tk > 0).any())
        seen["demolished"] += int(cars[:, DEMOLISHED].any())
    assert all(v > 0 for v in seen.values()), seen  # the comparison covered every kind of moment


def test_direct_and_packet_frames_agree_on_the_kickoff_flag_in_countdown_pause_and_play():
    """Frames flag a kickoff from its countdown on, from every source; the packet keeps RLBot's own flags
    (countdown: neither round active nor kickoff pause)."""
    from training.sim.rocketsim import GameClock, field_info_packet, make_arena, sim_to_frame, sim_to_packet
    arena = make_arena(1, 1, seed=0)  # a kickoff spawn: the ball at rest on the centre spot
    decoder = PacketDecoder(field_info_packet(arena))
    for round_active, pause, flag in ((False, False, 1), (True, True, 1), (True, False, 0)):
        clock = GameClock(kickoff_pause=pause, round_active=round_active)
        packet = sim_to_packet(arena, clock)
        assert (packet.game_info.is_round_active, packet.game_info.is_kickoff_pause) == (round_active, pause)
        assert sim_to_frame(arena, clock).game_tf[0, KICKOFF_PAUSE] == flag
        assert decoder.packet_to_frame(packet).game_tf[0, KICKOFF_PAUSE] == flag
