"""The simulated arena hosts RLBot agents like RLBot does: packets, countdown, kickoff pause, input delay, goals."""

import json

import numpy as np
import pytest
from rlbot.agents.base_agent import BaseAgent, SimpleControllerState
from rlbot.utils.structures.game_data_struct import GameTickPacket

from bot.frame import KICKOFF_PAUSE
from bot.packet import PacketDecoder

from training.sim.arena import Match
from training.sim.drivers import InProcessDriver, SubprocessDriver, sanitise


class Probe(BaseAgent):
    """Records every packet it sees and presses full throttle from its 10th packet of active play on."""

    log: list = []  # blue's packets

    def initialize_agent(self):
        self.active = 0

    def get_output(self, packet):
        gi = packet.game_info
        car = packet.game_cars[self.index]
        if self.index == 0:
            Probe.log.append((gi.is_round_active, gi.is_kickoff_pause, car.physics.location.x,
                              car.physics.location.y, car.physics.velocity.x, car.physics.velocity.y,
                              gi.seconds_elapsed))
        self.active += bool(gi.is_round_active)
        return SimpleControllerState(throttle=1.0 if self.active >= 10 else 0.0)


def test_countdown_kickoff_pause_and_one_tick_input_delay():
    Probe.log = []
    Match([InProcessDriver(Probe, "probe")], [InProcessDriver(Probe, "probe")], countdown_seconds=0.5,
          record_hz=0).play(seconds=2.0)
    log = np.array(Probe.log, float)
    countdown = log[:60]
    assert not countdown[:, 0].any() and not countdown[:, 1].any()  # neither active play nor kickoff pause
    assert np.ptp(countdown[:, 2]) == 0 and np.ptp(countdown[:, 3]) == 0  # cars frozen
    assert np.allclose(np.diff(log[:, 6]), 1 / 120, atol=1e-5)  # packets tick at 120 Hz throughout (float32)
    play = log[60:]
    assert play[0, 0] and play[0, 1]  # kickoff pause once the countdown ends
    speed = np.hypot(play[:, 4], play[:, 5])  # cars settle on their suspension at first: a few uu/s
    # throttle is returned for active packet 10 (index 9). RLBot's delay: the step after packet 10 still runs
    # on the old controls. RocketSim's own response: a car at rest shows throttle in the velocity one step after
    # the step that applied it (raw RocketSim: 0.0, 13.3, 26.7 uu/s). So the speed rises at index 12.
    assert speed[:12].max() < 3 and speed[12] > 10


class KickoffFlagProbe(BaseAgent):
    """Decodes every packet as the bot does and records the frame's kickoff flag beside the packet's own."""

    log: list = []

    def initialize_agent(self):
        self.decoder = PacketDecoder()

    def get_output(self, packet):
        frame = self.decoder.packet_to_frame(packet)
        if self.index == 0:
            KickoffFlagProbe.log.append((packet.game_info.is_round_active, packet.game_info.is_kickoff_pause,
                                         frame.game_tf[0, KICKOFF_PAUSE]))
        return SimpleControllerState(throttle=1.0, boost=True)


def test_packet_frames_count_the_countdown_as_kickoff_as_replay_frames_do():
    """Replay frames flag the kickoff from the countdown on (training/replays/frames.py); packet frames must too,
    or the bot's kickoff rule (no throttle-less actions) would not hold for the controls the cars start with."""
    KickoffFlagProbe.log = []
    Match([InProcessDriver(KickoffFlagProbe, "a")], [InProcessDriver(KickoffFlagProbe, "b")], countdown_seconds=0.5,
          record_hz=0).play(seconds=4.0)
    log = np.array(KickoffFlagProbe.log, float)
    countdown, pause, play = log[:60], log[60:][log[60:, 1] == 1], log[60:][log[60:, 1] == 0]
    assert not countdown[:, :2].any() and (countdown[:, 2] == 1).all()  # the packet says neither; the frame: kickoff
    assert len(pause) > 0 and (pause[:, 2] == 1).all()
    assert len(play) > 0 and play[:, 0].all() and not play[:, 2].any()  # after the first touch: no kickoff

    packet = GameTickPacket()
    packet.num_cars, packet.game_info.is_round_active = 1, False  # between rounds, the ball elsewhere: no kickoff
    packet.game_ball.physics.location.x, packet.game_ball.physics.location.z = 800.0, 93.0
    assert PacketDecoder().packet_to_frame(packet).game_tf[0, KICKOFF_PAUSE] == 0
    packet.game_ball.physics.location.x = 0.0  # at rest on the centre spot: the countdown
    assert PacketDecoder().packet_to_frame(packet).game_tf[0, KICKOFF_PAUSE] == 1
    packet.game_ball.physics.velocity.z = -300.0  # falling onto the spot: not a countdown
    assert PacketDecoder().packet_to_frame(packet).game_tf[0, KICKOFF_PAUSE] == 0


def test_chaser_beats_random_and_goals_reset_to_kickoff():
    from training.agents import driver_factory
    chaser, rand = driver_factory("baseline:chaser")(), driver_factory("baseline:random")()
    result = Match([chaser], [rand], seed=0).play(seconds=120.0)
    assert result.blue_goals > result.orange_goals
    assert result.kickoffs == result.blue_goals + result.orange_goals + 1
    assert [team for team, _ in result.goals].count(0) == result.blue_goals
    assert [team for team, _ in result.goals].count(1) == result.orange_goals
    assert all(0 < seconds < result.game_seconds for _, seconds in result.goals)
    assert sum(seconds for _, seconds in result.goals) <= result.game_seconds  # each since its own kickoff
    assert len(result.kickoff_first_touch) == result.kickoffs
    assert result.kickoff_first_touch.count(0) > result.kickoff_first_touch.count(1)  # chaser gets there first
    assert result.touches[0] > result.touches[1] and result.touches[0] >= 5
    assert result.trajectory["cars_tp3"].shape[1:] == (2, 3)


def test_sanitise_replaces_nan_none_and_clamps():
    assert sanitise(None) == (0.0, 0.0, 0.0, 0.0, 0.0, False, False, False)
    out = sanitise(SimpleControllerState(steer=float("nan"), throttle=3.0, jump=1))
    assert out[:2] == (1.0, 0.0) and out[5] is True


class Crasher(BaseAgent):
    def get_output(self, packet):
        raise RuntimeError("boom")


def test_a_crashing_agent_gets_neutral_controls_and_the_game_goes_on():
    result = Match([InProcessDriver(Crasher, "crasher")], [InProcessDriver(Probe, "probe")],
                   countdown_seconds=0.1).play(seconds=1.0)
    assert result.ticks > 120


def test_evaluate_cli_writes_json_and_pictures(tmp_path):
    from training.evaluate import Config, main
    report = main(Config(blue="baseline:chaser", orange="baseline:random", games=2, seconds=20.0,
                         json=tmp_path / "r.json", plot=tmp_path / "png"))
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["summary"]["games"] == 2 and [g["a_side"] for g in saved["games"]] == ["blue", "orange"]
    assert report["summary"]["a_wins"] + report["summary"]["draws"] + report["summary"]["a_losses"] == 2
    assert (tmp_path / "png" / "game-000.png").stat().st_size > 10_000
    assert saved["complete"]


def test_summary_counts_kickoffs_and_quick_goals_from_agent_a_side():
    """A plays blue in game 0 and orange (slots 2-3 of a 2v2) in game 1; the counts follow A, not the colour."""
    from training.evaluate import summarise
    games = [{"a_side": "blue", "blue": ["a", "a"], "blue_goals": 2, "orange_goals": 1,
              "goals": [[0, 4.0], [1, 30.0], [0, 12.0]], "kickoff_first_touch": [1, 2, 0, -1]},
             {"a_side": "orange", "blue": ["b", "b"], "blue_goals": 1, "orange_goals": 0,
              "goals": [[0, 3.0]], "kickoff_first_touch": [3, 0]}]
    s = summarise(games, "a", "b")
    assert (s["a_wins"], s["a_losses"], s["a_goals_per_game"], s["b_goals_per_game"]) == (1, 1, 1.0, 1.0)
    assert (s["a_quick_goals"], s["b_quick_goals"]) == (1, 1)
    assert s["a_kickoff_first_touch_rate"] == 3 / 5  # A first: slots 1, 0 (blue) and 3 (orange); B: 2, 0


def test_evaluate_keeps_finished_games_when_stopped(tmp_path, monkeypatch):
    from training import evaluate
    real_play, played = evaluate.Match.play, []

    def play_then_stop(match, seconds):
        if played:
            raise KeyboardInterrupt  # the user stops the run during game 1
        played.append(1)
        return real_play(match, seconds)

    monkeypatch.setattr(evaluate.Match, "play", play_then_stop)
    with pytest.raises(KeyboardInterrupt):
        evaluate.main(evaluate.Config(blue="baseline:chaser", orange="baseline:random", games=3, seconds=5.0,
                                      json=tmp_path / "r.json"))
    saved = json.loads((tmp_path / "r.json").read_text())
    assert not saved["complete"] and saved["summary"]["games"] == 1 and len(saved["games"]) == 1


def test_bot_cfg_plays_through_the_rlbotgui_loading_path(tmp_path):
    """Our bot.cfg, loaded in a child process by rlbot's bundle + importer, plays a short 2v2 in both colours."""
    from tests.conftest import ROOT
    drivers = [SubprocessDriver(ROOT / "bot.cfg") for _ in range(2)]
    try:
        assert drivers[0].name == "RL-RPT"
        from training.agents import driver_factory
        chasers = [driver_factory("baseline:chaser")() for _ in range(2)]
        r1 = Match(drivers, chasers, countdown_seconds=0.2).play(seconds=3.0)
        r2 = Match(chasers, drivers, countdown_seconds=0.2).play(seconds=3.0)
        assert r1.ticks > 300 and r2.ticks > 300
    finally:
        for d in drivers:
            d.close()


def test_a_bot_cfg_that_cannot_load_is_a_clear_error(tmp_path):
    import pytest
    cfg = tmp_path / "bot.cfg"
    (tmp_path / "appearance.cfg").write_text("[Bot Loadout]\n")
    cfg.write_text("[Locations]\nlooks_config = ./appearance.cfg\npython_file = ./missing.py\nname = Ghost\n")
    with pytest.raises(RuntimeError, match="failed to load"):
        SubprocessDriver(cfg)


class Rammer(BaseAgent):
    """Boosts straight at the first opponent."""

    def get_output(self, packet):
        import math
        me = packet.game_cars[self.index]
        other = next(packet.game_cars[i] for i in range(packet.num_cars) if packet.game_cars[i].team != self.team)
        loc, target = me.physics.location, other.physics.location
        angle = math.atan2(target.y - loc.y, target.x - loc.x) - me.physics.rotation.yaw
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        return SimpleControllerState(throttle=1.0, steer=max(-1.0, min(1.0, 3 * angle)), boost=True)


class Victim(BaseAgent):
    """Sits still and records whether the packet shows it demolished."""

    demolished: list = []

    def get_output(self, packet):
        Victim.demolished.append(bool(packet.game_cars[self.index].is_demolished))
        return SimpleControllerState()


def test_demolitions_are_counted_and_the_victim_respawns():
    Victim.demolished = []
    result = Match([InProcessDriver(Rammer, "rammer")], [InProcessDriver(Victim, "victim")], seed=0,
                   countdown_seconds=0.0).play(seconds=30.0)
    assert result.demolitions == [1, 0]
    flags = np.array(Victim.demolished)
    assert flags.sum() > 60 and not flags[-1]  # packets show the victim demolished for a while, then back


class Dice(BaseAgent):
    """Draws from the sampling stream our agents use (bot.bot.agent_rng) once it is initialised."""

    draws: dict = {}

    def initialize_agent(self):
        from bot.bot import agent_rng
        Dice.draws[(self.index, len(Dice.draws))] = agent_rng(self.index).random()

    def get_output(self, packet):
        return SimpleControllerState()


def test_each_game_seed_reaches_the_agents_random_stream(monkeypatch):
    """Games of an evaluation must not repeat each other: the match seed reaches each agent's sampling stream
    (with its index), the same seed gives the same stream, and outside the arena (RLBotGUI) it is fresh."""
    import os

    from bot.bot import agent_rng
    from bot.constants import SEED_ENV
    monkeypatch.delenv(SEED_ENV, raising=False)
    Dice.draws = {}
    for seed in (7, 7, 8):
        Match([InProcessDriver(Dice, "a")], [InProcessDriver(Dice, "b")], seed=seed, countdown_seconds=0.0).play(1.0)
    d = list(Dice.draws.values())  # blue, orange per game
    assert d[0] == d[2] and d[1] == d[3]  # same seed: same streams
    assert d[0] != d[1] and d[4] != d[0] and d[5] != d[1]  # other index or other seed: other streams
    assert d[0] == np.random.default_rng([7, 0]).random()
    assert SEED_ENV not in os.environ  # restored after each start
    assert agent_rng(0).random() != agent_rng(0).random()  # no seed set: fresh entropy each time
    monkeypatch.setenv(SEED_ENV, "not a number")
    assert agent_rng(0).random() != agent_rng(0).random()  # a broken value is ignored, not raised
