"""Episode start states for simulated IDM data: kickoffs, or randomised cars (ground, wall, air) and ball.

Everything is drawn from the episode's own random generator, so an episode restarts exactly from
(arena history, generator state); see training/sim/recorder.py.
"""

from dataclasses import dataclass

import numpy as np
import RocketSim as rs

from bot.constants import BALL_RADIUS, CAR_MAX_SPEED, SIDE_WALL_X

KICKOFF, RANDOM = 0, 1  # start kinds, stored per episode
CAR_REST_Z = 17.0  # uu, an Octane's centre height at rest on the floor
FIELD_X, FIELD_Y, FIELD_Z = 3600.0, 4600.0, 1900.0  # uu, where random positions may fall (inside the walls)


@dataclass(frozen=True)
class StartMix:
    """Probabilities of each start; the recorder's Config fills it from its flags."""

    kickoff: float = 0.3  # share of episodes that start on a kickoff
    car_ground: float = 0.6  # per car in a random start: on the floor...
    car_wall: float = 0.15  # ...on a side wall...
    # ...else in the air
    ball_speed_max: float = 2500.0  # uu/s, random ball speed is uniform below this
    car_speed_max: float = CAR_MAX_SPEED  # uu/s


def _vec(a) -> rs.Vec:
    return rs.Vec(float(a[0]), float(a[1]), float(a[2]))


def _random_direction(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _set_car(car: rs.Car, rng: np.random.Generator, mix: StartMix) -> None:
    """One car on the floor, on a side wall or in the air, with random speed, spin and boost."""
    state = car.get_state()
    kind = rng.choice(3, p=[mix.car_ground, mix.car_wall, 1 - mix.car_ground - mix.car_wall])
    speed = rng.uniform(0, mix.car_speed_max)
    if kind == 0:  # floor: upright, any heading, moving along the nose
        yaw = rng.uniform(-np.pi, np.pi)
        angle = rs.Angle(yaw, 0.0, 0.0)
        pos = np.array([rng.uniform(-FIELD_X, FIELD_X), rng.uniform(-FIELD_Y, FIELD_Y), CAR_REST_Z])
        ang_vel = np.zeros(3)
    elif kind == 1:  # side wall: wheels on the wall, nose along the wall at a random angle
        side = rng.choice([-1.0, 1.0])
        heading = rng.uniform(-np.pi, np.pi)  # in the wall plane, 0 = along +y
        up = np.array([-side, 0.0, 0.0])
        forward = np.array([0.0, np.cos(heading), np.sin(heading)])
        right = np.cross(up, forward)  # RocketSim: right = up x forward for a right-handed (forward, right, up)
        pos = np.array([side * (SIDE_WALL_X - CAR_REST_Z), rng.uniform(-3500, 3500), rng.uniform(300, 1600)])
        state.rot_mat = rs.RotMat(_vec(forward), _vec(right), _vec(up))
        angle = None
        ang_vel = np.zeros(3)
    else:  # air: any orientation, spinning, jump used
        angle = rs.Angle(rng.uniform(-np.pi, np.pi), rng.uniform(-1.5, 1.5), rng.uniform(-np.pi, np.pi))
        pos = np.array([rng.uniform(-FIELD_X, FIELD_X), rng.uniform(-FIELD_Y, FIELD_Y), rng.uniform(150, FIELD_Z)])
        ang_vel = rng.normal(scale=2.0, size=3)
        state.has_jumped = True
        state.has_double_jumped = bool(rng.random() < 0.5)
    if angle is not None:
        state.rot_mat = angle.as_rot_mat()
    forward = state.rot_mat.forward.as_numpy()
    vel = forward * speed if kind < 2 else _random_direction(rng) * speed
    state.pos, state.vel, state.ang_vel = _vec(pos), _vec(vel), _vec(ang_vel)
    state.boost = float(rng.uniform(0, 100))
    car.set_state(state)


def deterministic_kickoff(arena: rs.Arena, rng: np.random.Generator) -> None:
    """`reset_kickoff`, with the spawns given to the cars in an order drawn from `rng`.

    RocketSim's own assignment of spawns to cars varies between runs even with a fixed seed (it follows the
    iteration order of a container), which would break the same-seed-same-data rule.
    """
    arena.reset_kickoff(int(rng.integers(1 << 31)))
    cars = arena.get_cars()
    for team in (rs.Team.BLUE, rs.Team.ORANGE):
        team_cars = [c for c in cars if c.team == team]
        states = [c.get_state() for c in team_cars]
        states.sort(key=lambda st: (round(st.pos.x), round(st.pos.y)))  # canonical order of the spawns
        for car, j in zip(team_cars, rng.permutation(len(states))):
            car.set_state(states[j])


def reset_arena(arena: rs.Arena, rng: np.random.Generator, mix: StartMix) -> int:
    """Put the arena into a new start state; returns KICKOFF or RANDOM."""
    deterministic_kickoff(arena, rng)
    if rng.random() < mix.kickoff:
        return KICKOFF
    ball = arena.ball.get_state()
    ball.pos = _vec([rng.uniform(-FIELD_X, FIELD_X), rng.uniform(-FIELD_Y, FIELD_Y),
                     rng.uniform(BALL_RADIUS + 2, FIELD_Z)])
    ball.vel = _vec(_random_direction(rng) * rng.uniform(0, mix.ball_speed_max))
    ball.ang_vel = _vec(rng.normal(scale=1.5, size=3))
    arena.ball.set_state(ball)
    for car in arena.get_cars():
        _set_car(car, rng, mix)
    return RANDOM
