"""A RocketSim match hosting RLBot v4 agents exactly as RLBot drives them.

Every tick: build the GameTickPacket from the simulator, hand it to every agent, step physics one tick on the
controls from the *previous* packet, then apply the new controls (RLBot's one-tick input delay). RocketSim
has no match flow, so this module adds it: a kickoff countdown (packets that are neither active play nor
kickoff pause, cars frozen), the kickoff pause until the ball first moves, a game clock that runs only in
play, goal detection and reset, optional overtime. Demolitions, respawns and boost pads are RocketSim's own.
"""

from dataclasses import dataclass, field

import numpy as np
import RocketSim as rs
from rlbot.utils.structures.game_data_struct import GameTickPacket

from bot.constants import TICK_RATE
from training.sim.drivers import Driver
from training.sim.rocketsim import GameClock, field_info_packet, make_arena, sim_to_packet

TOUCH_DEBOUNCE_TICKS = 12  # contacts of one car closer than 0.1 s apart are one touch


@dataclass
class GameResult:
    """What one game produced. Car lists are in packet slot order (blue first)."""

    blue: list[str]
    orange: list[str]
    blue_goals: int = 0
    orange_goals: int = 0
    touches: list[int] = field(default_factory=list)  # per car
    demolitions: list[int] = field(default_factory=list)  # per car: demolitions it caused
    kickoffs: int = 0
    game_seconds: float = 0.0  # simulated time in play and kickoff pauses (countdowns excluded)
    ticks: int = 0  # agent ticks, countdowns included
    overtime: bool = False
    goals: list[list] = field(default_factory=list)  # per goal: [team that scored, seconds since its kickoff]
    kickoff_first_touch: list[int] = field(default_factory=list)  # per kickoff: slot that touched first (-1: none)
    trajectory: dict = field(default_factory=dict, repr=False)  # "ball_t3", "cars_tp3" (uu), "time_t" (s)

    def summary(self) -> dict:
        """The JSON-friendly part (no trajectories)."""
        return {k: v for k, v in self.__dict__.items() if k != "trajectory"}


class Match:
    """One game between drivers seated blue first, then orange (packet slots follow that order)."""

    def __init__(self, blue: list[Driver], orange: list[Driver], seed: int = 0, countdown_seconds: float = 3.0,
                 overtime: bool = False, record_hz: float = 10.0):
        self.drivers = list(blue) + list(orange)
        self.num_blue = len(blue)
        self.seed = seed
        self.countdown_ticks = int(round(countdown_seconds * TICK_RATE))
        self.overtime_allowed = overtime
        self.record_every = max(1, int(round(TICK_RATE / record_hz))) if record_hz > 0 else 0
        self.rng = np.random.default_rng(seed)

    def _reset_kickoff(self, arena: rs.Arena, clock: GameClock, result: GameResult) -> int:
        arena.reset_kickoff(int(self.rng.integers(1 << 31)))
        result.kickoffs += 1
        result.kickoff_first_touch.append(-1)
        for car in arena.get_cars():
            car.set_controls(rs.CarControls())
        clock.kickoff_pause, clock.round_active = False, False
        return self.countdown_ticks

    def play(self, seconds: float) -> GameResult:
        """Play a game of `seconds` of clock time; ends at zero, or at the next goal in overtime."""
        arena = make_arena(self.num_blue, len(self.drivers) - self.num_blue)
        cars = arena.get_cars()
        names = [d.name for d in self.drivers]
        result = GameResult(blue=names[:self.num_blue], orange=names[self.num_blue:],
                            touches=[0] * len(cars), demolitions=[0] * len(cars))
        slot_of = {car.id: i for i, car in enumerate(cars)}
        last_touch = {}

        def on_touch(**kw):
            slot = slot_of.get(kw["car"].id)
            if slot is not None and arena.tick_count - last_touch.get(slot, -10**9) > TOUCH_DEBOUNCE_TICKS:
                result.touches[slot] += 1
            if slot is not None and result.kickoff_first_touch[-1] == -1:
                result.kickoff_first_touch[-1] = slot
            last_touch[slot] = arena.tick_count

        def on_demo(**kw):
            slot = slot_of.get(kw["bumper"].id)
            if slot is not None:
                result.demolitions[slot] += 1

        arena.set_ball_touch_callback(on_touch)
        arena.set_car_demo_callback(on_demo)

        field_info = field_info_packet(arena)
        for i, driver in enumerate(self.drivers):
            driver.start(team=int(i >= self.num_blue), index=i, field_info=field_info, seed=self.seed)
        clock = GameClock(seconds_remaining=float(seconds), elapsed_ticks=0)
        countdown = self._reset_kickoff(arena, clock, result)
        round_start = 0.0  # game_seconds at the current kickoff
        scores = (0, 0)
        packet = GameTickPacket()
        ball_rows, car_rows, times = [], [], []
        while True:
            clock.round_active = countdown == 0
            sim_to_packet(arena, clock, names, packet=packet)
            for driver in self.drivers:
                driver.send(packet)
            controls = [driver.receive() for driver in self.drivers]
            if countdown > 0:  # cars are frozen during the countdown: no physics step
                countdown -= 1
                if countdown == 0:
                    clock.kickoff_pause = True
                    round_start = result.game_seconds
            else:
                arena.step(1)
                result.game_seconds += 1.0 / TICK_RATE
                if not clock.kickoff_pause:
                    clock.seconds_remaining -= 1.0 / TICK_RATE
            for car, c in zip(cars, controls):
                car.set_controls(rs.CarControls(throttle=c[0], steer=c[1], pitch=c[2], yaw=c[3], roll=c[4],
                                                jump=bool(c[5]), boost=bool(c[6]), handbrake=bool(c[7])))
            clock.elapsed_ticks += 1
            result.ticks += 1

            ball = arena.ball.get_state()
            if clock.kickoff_pause and (ball.pos.x != 0 or ball.pos.y != 0 or abs(ball.vel.x) + abs(ball.vel.y) > 1):
                clock.kickoff_pause = False
            if self.record_every and result.ticks % self.record_every == 0:
                ball_rows.append(ball.pos.as_numpy())
                car_rows.append(np.stack([c.get_state().pos.as_numpy() for c in cars]))
                times.append(clock.elapsed_ticks / TICK_RATE)

            new_scores = (arena.blue_score, arena.orange_score)
            if new_scores != scores:
                result.goals.append([int(new_scores[1] != scores[1]), round(result.game_seconds - round_start, 3)])
                scores = new_scores
                if clock.overtime:
                    break
                countdown = self._reset_kickoff(arena, clock, result)
            elif clock.seconds_remaining <= 0 and not clock.kickoff_pause:
                if scores[0] == scores[1] and self.overtime_allowed and not clock.overtime:
                    clock.overtime = result.overtime = True
                    clock.seconds_remaining = 0.0
                elif not clock.overtime:
                    break
            if clock.overtime and result.game_seconds > 4 * seconds + 600:  # a guard against endless overtime
                break
        result.blue_goals, result.orange_goals = scores
        if ball_rows:
            result.trajectory = {"time_t": np.array(times), "ball_t3": np.array(ball_rows),
                                 "cars_tp3": np.array(car_rows)}
        return result
