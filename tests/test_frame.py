"""The frame schema's conventions: reflections, the orange perspective and pad timers, checked in RocketSim."""

import numpy as np
import pytest

from bot.constants import BOOST_PAD_LOCATIONS, BOOST_PAD_RESPAWN_S
from bot.frame import (
    ANG_VEL, BOOST, CAR_F, FORWARD, POS, UP, VEL, Frames, concat_frames, empty_frames, pad_timers_from_active, reflect,
    to_team_perspective,
)
from tests.conftest import play_random


def random_frames(rng, t=5, p=4) -> Frames:
    f = empty_frames(t, np.array([0, 0, 1, 1][:p]))
    f.cars_tpf[...] = rng.normal(size=f.cars_tpf.shape)
    f.ball_tf[...] = rng.normal(size=f.ball_tf.shape)
    f.pads_tk[...] = rng.uniform(0, 10, f.pads_tk.shape)
    return f


def test_reflections_are_involutions_and_compose_to_the_rotation(rng):
    f = random_frames(rng)
    for fx, fy in [(True, False), (False, True), (True, True)]:
        back = reflect(reflect(f, fx, fy), fx, fy)
        assert np.array_equal(back.cars_tpf, f.cars_tpf) and np.array_equal(back.pads_tk, f.pads_tk)
    both = reflect(reflect(f, True, False), False, True)
    rot = reflect(f, True, True)
    assert np.allclose(both.cars_tpf, rot.cars_tpf) and np.array_equal(both.pads_tk, rot.pads_tk)


def test_orange_perspective_negates_x_and_y_of_every_vector(rng):
    f = random_frames(rng)
    o = to_team_perspective(f, 1)
    for cols in (POS, VEL, ANG_VEL, FORWARD, UP):
        assert np.allclose(o.cars_tpf[..., cols], f.cars_tpf[..., cols] * [-1, -1, 1])
        assert np.allclose(o.ball_tf[..., cols], f.ball_tf[..., cols] * [-1, -1, 1])
    assert np.array_equal(o.cars_tpf[..., BOOST], f.cars_tpf[..., BOOST])
    assert np.array_equal(o.pads_tk, f.pads_tk[:, ::-1])  # pad 33-j sits where pad j is, rotated
    assert np.allclose(BOOST_PAD_LOCATIONS[::-1, :2], -BOOST_PAD_LOCATIONS[:, :2])
    assert to_team_perspective(f, 0) is f


def test_frames_slicing_and_concatenation(rng):
    f = random_frames(rng, t=6)
    assert f[2].num_frames == 1 and f[1:4].num_frames == 3 and f[-1].num_frames == 1
    joined = concat_frames([f[:2], f[2:]])
    assert np.array_equal(joined.cars_tpf, f.cars_tpf) and np.array_equal(joined.time_t, f.time_t)
    with pytest.raises(AssertionError):
        Frames(time_t=f.time_t, game_tf=f.game_tf, ball_tf=f.ball_tf, cars_tpf=f.cars_tpf[:, :, :CAR_F - 1],
               pads_tk=f.pads_tk, team_p=f.team_p)


def test_pad_timers():
    active = np.ones(34, bool)
    active[[3, 5]] = False
    timers = pad_timers_from_active(active, np.where(active, 0.0, 1.5))
    assert timers[3] == pytest.approx(10 - 1.5) and timers[5] == pytest.approx(4 - 1.5) and timers[0] == 0
    assert pad_timers_from_active(active)[3] == BOOST_PAD_RESPAWN_S[3]
    assert pad_timers_from_active(active, np.full(34, 20.0))[3] > 0  # an inactive pad never reads as available


def _mirrored_state(state, flip_x: bool, flip_y: bool):
    """A RocketSim car or ball state reflected like `reflect` does (right vector = up x forward keeps it proper)."""
    import RocketSim as rs
    s = np.array([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, 1.0])
    det = s[0] * s[1]
    state.pos = rs.Vec(*(state.pos.as_numpy() * s))
    state.vel = rs.Vec(*(state.vel.as_numpy() * s))
    state.ang_vel = rs.Vec(*(state.ang_vel.as_numpy() * s * det))
    fwd, up = state.rot_mat.forward.as_numpy() * s, state.rot_mat.up.as_numpy() * s
    right = np.cross(up, fwd)
    state.rot_mat = rs.RotMat(rs.Vec(*fwd), rs.Vec(*right), rs.Vec(*up))
    if det < 0 and hasattr(state, "flip_rel_torque"):  # a dodge's torque is in the car's frame: roll and yaw flip
        state.flip_rel_torque = rs.Vec(*(state.flip_rel_torque.as_numpy() * [-1, 1, -1]))
    return state


@pytest.mark.parametrize("flip_x,flip_y", [(True, False), (False, True), (True, True)])
def test_reflection_matches_the_physics_of_the_mirrored_world(rng, flip_x, flip_y):
    """Play a scene, mirror it into a second arena with mirrored controls, and compare 30 ticks later."""
    import RocketSim as rs

    from bot.actions import MIRROR, action_to_controls
    from training.sim.rocketsim import make_arena, sim_to_frame
    source = make_arena(1, 1, seed=5)
    for _ in play_random(source, rng, 150):
        pass
    # both copies are made by set_state (which leaves some hidden state behind), one of them mirrored
    a, b = make_arena(1, 1, seed=5), make_arena(1, 1, seed=5)
    for src, car_a, car_b in zip(source.get_cars(), a.get_cars(), b.get_cars()):
        car_a.set_state(src.get_state())
        car_b.set_state(_mirrored_state(src.get_state(), flip_x, flip_y))
    a.ball.set_state(source.ball.get_state())
    b.ball.set_state(_mirrored_state(source.ball.get_state(), flip_x, flip_y))
    actions = rng.integers(0, 90, 2)
    swap = flip_x != flip_y  # one reflection swaps left and right
    for car_a, car_b, action in zip(a.get_cars(), b.get_cars(), actions):
        for car, act in ((car_a, action), (car_b, MIRROR[action] if swap else action)):
            t, s, p, y, r, j, bo, h = action_to_controls(int(act))
            car.set_controls(rs.CarControls(throttle=t, steer=s, pitch=p, yaw=y, roll=r, jump=j, boost=bo, handbrake=h))
    a.step(30)
    b.step(30)
    fa, fb = reflect(sim_to_frame(a), flip_x, flip_y), sim_to_frame(b)
    assert np.allclose(fa.cars_tpf[..., :15], fb.cars_tpf[..., :15], atol=2.0, rtol=1e-3)
    assert np.allclose(fa.ball_tf[..., :9], fb.ball_tf[..., :9], atol=2.0, rtol=1e-3)
