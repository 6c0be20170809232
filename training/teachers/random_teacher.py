"""Human-like random play: actions held for random durations, biased towards driving, boosting and jumping.

For coverage of states Nexto never visits, and for users without the Nexto model. On the ground it mostly
drives forward (often boosting), turns, powerslides and jumps; in the air it mostly air-rolls, pitches and
boosts, and sometimes uses its second jump (double jump or dodge).
"""

from dataclasses import dataclass

import numpy as np

from bot.actions import ACTION_TABLE, BOOST_BUTTON, HANDBRAKE, JUMP, NOOP_ACTION, NUM_ACTIONS, PITCH, ROLL, THROTTLE
from bot.frame import ON_GROUND, Frames
from training.teachers import Teacher

FRAME_S = 4 / 120  # one recorded frame, s


@dataclass(frozen=True)
class RandomPlay:
    hold_mean_s: float = 0.3  # mean time an action is held (geometric), s
    forward_weight: float = 4.0  # extra weight of throttle-forward rows on the ground
    boost_weight: float = 2.0  # extra weight of rows that boost
    ground_jump_share: float = 0.08  # share of jump rows when choosing on the ground
    air_jump_share: float = 0.1  # share of jump rows (double jump / dodge) when choosing in the air


def action_weights(play: RandomPlay) -> tuple[np.ndarray, np.ndarray]:
    """(A,) probabilities on the ground and (A,) in the air."""
    t = ACTION_TABLE
    jump = t[:, JUMP] > 0
    ground_rows = np.arange(NUM_ACTIONS) < 24
    base = 1.0 + play.boost_weight * (t[:, BOOST_BUTTON] > 0)
    ground = np.where(ground_rows, base * (1.0 + play.forward_weight * (t[:, THROTTLE] > 0)), 0.0)
    ground[t[:, HANDBRAKE] > 0] *= 0.5
    air = np.where(~ground_rows & ~jump, base * (1.0 + (t[:, PITCH] != 0) + (t[:, ROLL] == 0)), 0.0)

    def with_jumps(w: np.ndarray, share: float) -> np.ndarray:
        w = w / w.sum() * (1 - share)
        jw = np.where(jump, 1.0 + (np.abs(t[:, PITCH]) + np.abs(t[:, ROLL]) == 0) * 2, 0.0)  # plain jumps favoured
        return w + jw / jw.sum() * share

    return with_jumps(ground, play.ground_jump_share), with_jumps(air, play.air_jump_share)


class RandomTeacher(Teacher):
    name = "random"

    def __init__(self, num_arenas: int, num_slots: int, play: RandomPlay = RandomPlay()):
        self.play = play
        self.p_ground, self.p_air = action_weights(play)
        self.action = np.full((num_arenas, num_slots), NOOP_ACTION, np.int64)
        self.frames_left = np.zeros((num_arenas, num_slots), np.int64)

    def start_episodes(self, arenas_g: np.ndarray, frames: Frames, rng: np.random.Generator) -> None:
        self.frames_left[arenas_g] = 0
        self.action[arenas_g] = NOOP_ACTION

    def act(self, frames: Frames, rng: np.random.Generator) -> np.ndarray:
        shape = self.action.shape
        on_ground = frames.cars_tpf[..., ON_GROUND] > 0  # (G, P)
        # draw for every car every frame, so the random stream does not depend on the state
        from_ground = rng.choice(NUM_ACTIONS, size=shape, p=self.p_ground)
        from_air = rng.choice(NUM_ACTIONS, size=shape, p=self.p_air)
        hold = rng.geometric(min(1.0, FRAME_S / self.play.hold_mean_s), size=shape)
        renew = self.frames_left <= 0
        self.action = np.where(renew, np.where(on_ground, from_ground, from_air), self.action)
        self.frames_left = np.where(renew, hold, self.frames_left) - 1
        return self.action.copy()

    def describe(self) -> dict:
        return {"name": self.name, **self.play.__dict__}
