"""Built-in RLBot v4 baselines for the arena: `chaser` (drives at the ball) and `random` (random inputs)."""

import math

import numpy as np
from rlbot.agents.base_agent import BaseAgent, SimpleControllerState
from rlbot.utils.structures.game_data_struct import GameTickPacket

from bot.constants import BACK_WALL_Y, ORANGE_TEAM


class ChaserAgent(BaseAgent):
    """Drives at a point just behind the ball (as seen from the opponent's goal), boosts when facing it on the
    ground, and jumps at a ball that bounces close in front of it."""

    def get_output(self, packet: GameTickPacket) -> SimpleControllerState:
        car = packet.game_cars[self.index]
        ball = packet.game_ball.physics.location
        goal_y = BACK_WALL_Y if car.team != ORANGE_TEAM else -BACK_WALL_Y
        to_goal = np.array([-ball.x, goal_y - ball.y])
        to_goal /= max(np.linalg.norm(to_goal), 1.0)
        target = np.array([ball.x, ball.y]) - 120.0 * to_goal  # push the ball towards the goal
        loc, rot = car.physics.location, car.physics.rotation
        angle = math.atan2(target[1] - loc.y, target[0] - loc.x) - rot.yaw
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        distance = math.hypot(ball.x - loc.x, ball.y - loc.y)
        controls = SimpleControllerState()
        controls.throttle = 1.0
        controls.steer = max(-1.0, min(1.0, 3.0 * angle))
        controls.handbrake = abs(angle) > 2.0 and car.has_wheel_contact
        controls.boost = abs(angle) < 0.3 and car.has_wheel_contact and not car.is_super_sonic
        controls.jump = car.has_wheel_contact and distance < 300 and 130 < ball.z < 300 and abs(angle) < 0.5
        return controls


class RandomAgent(BaseAgent):
    """Random analog and button inputs, each held for a random 0.1-1 s."""

    def initialize_agent(self) -> None:
        self.rng = np.random.default_rng(1000 + self.index)
        self.controls = SimpleControllerState()
        self.hold_until = -1.0

    def get_output(self, packet: GameTickPacket) -> SimpleControllerState:
        now = packet.game_info.seconds_elapsed
        if now >= self.hold_until:
            axes = self.rng.uniform(-1, 1, 5)
            buttons = self.rng.random(3) < (0.1, 0.3, 0.1)
            self.controls = SimpleControllerState(steer=axes[1], throttle=axes[0], pitch=axes[2], yaw=axes[3],
                                                  roll=axes[4], jump=bool(buttons[0]), boost=bool(buttons[1]),
                                                  handbrake=bool(buttons[2]))
            self.hold_until = now + self.rng.uniform(0.1, 1.0)
        return self.controls
