"""The policy observation: team perspective, fixed teammate/opponent slots, one shape for 1v1-3v3."""

import numpy as np

from bot.frame import POS, PRESENT, empty_frames, reflect
from bot.obs import (
    C_POS, G_BALL_POS, G_PADS, G_SELF, GLOBAL_F, MAX_OTHERS, O_IS_MATE, O_PRESENT, OTHER_F, build_obs,
)


def scene(rng, teams):
    f = empty_frames(1, np.array(teams))
    f.cars_tpf[..., :15] = rng.normal(size=f.cars_tpf[..., :15].shape) * 800
    f.ball_tf[..., :15] = rng.normal(size=f.ball_tf[..., :15].shape) * 800
    f.pads_tk[...] = rng.uniform(0, 4, f.pads_tk.shape) * (rng.random(f.pads_tk.shape) < 0.3)
    return f


def obs_of(f, me, prev=8):
    return build_obs(f.ball_tf, f.cars_tpf, f.pads_tk, f.team_p[None], np.array([me]), np.array([prev]))


def test_orange_sees_the_rotated_game_exactly_as_blue_sees_the_original(rng):
    f = scene(rng, [0, 0, 1, 1])
    rotated = reflect(f, True, True)
    swapped = empty_frames(1, 1 - f.team_p)
    swapped = swapped.__class__(time_t=rotated.time_t, game_tf=rotated.game_tf, ball_tf=rotated.ball_tf,
                                cars_tpf=rotated.cars_tpf, pads_tk=rotated.pads_tk,
                                team_p=(1 - f.team_p).astype(np.int8))
    for me in range(4):
        g1, o1 = obs_of(f, me)
        g2, o2 = obs_of(swapped, me)
        np.testing.assert_allclose(g1, g2, atol=1e-5)
        np.testing.assert_allclose(o1, o2, atol=1e-5)


def test_slots_put_teammates_first_and_mark_presence(rng):
    f = scene(rng, [0, 0, 0, 1, 1, 1])
    f.cars_tpf[0, 4, PRESENT] = 0.0  # an opponent left
    g, o = obs_of(f, 1)
    assert g.shape == (1, GLOBAL_F) and o.shape == (1, MAX_OTHERS, OTHER_F)
    assert o[0, :, O_IS_MATE].tolist() == [1, 1, 0, 0, 0]
    assert o[0, :, O_PRESENT].tolist() == [1, 1, 1, 1, 0]
    np.testing.assert_allclose(o[0, 0, C_POS] * 2300, f.cars_tpf[0, 0, POS], rtol=1e-5)  # first teammate = slot 0
    np.testing.assert_allclose(o[0, 2, C_POS] * 2300, f.cars_tpf[0, 3, POS], rtol=1e-5)  # first opponent
    np.testing.assert_allclose(g[0, G_SELF][C_POS] * 2300, f.cars_tpf[0, 1, POS], rtol=1e-5)
    one = scene(rng, [0, 1])
    g, o = obs_of(one, 0)
    assert o[0, :, O_PRESENT].tolist() == [0, 0, 1, 0, 0]


def test_orange_pads_and_ball_are_in_its_own_perspective(rng):
    f = scene(rng, [0, 1])
    g_blue, _ = obs_of(f, 0)
    g_orange, _ = obs_of(f, 1)
    np.testing.assert_allclose(g_orange[0, G_BALL_POS], g_blue[0, G_BALL_POS] * [-1, -1, 1], atol=1e-6)
    from bot.constants import BOOST_PAD_RESPAWN_S
    np.testing.assert_allclose(g_orange[0, G_PADS], (f.pads_tk[0] / BOOST_PAD_RESPAWN_S)[::-1], atol=1e-6)


def test_ball_and_cars_in_the_cars_own_axes():
    from bot.frame import FORWARD, UP, VEL
    from bot.obs import C_LOCAL_BALL_POS, C_LOCAL_REL_POS, C_LOCAL_REL_VEL, C_LOCAL_VEL
    f = empty_frames(1, np.array([0, 1]))
    f.cars_tpf[0, 0, FORWARD], f.cars_tpf[0, 0, UP] = [0, 1, 0], [0, 0, 1]  # blue car facing +y (attacking)
    f.cars_tpf[0, 0, VEL] = [0, 1000, 0]
    f.ball_tf[0, POS] = [460, 0, 0]  # +x: to the blue car's left
    f.cars_tpf[0, 1, POS], f.cars_tpf[0, 1, FORWARD], f.cars_tpf[0, 1, UP] = [0, 2300, 0], [0, -1, 0], [0, 0, 1]
    g, o = obs_of(f, 0)
    me = g[0, G_SELF]
    np.testing.assert_allclose(me[C_LOCAL_BALL_POS], [0, 0.2, 0], atol=1e-6)  # side = forward x up = left
    assert me[C_LOCAL_VEL][0] > 0 and abs(me[C_LOCAL_VEL][1]) < 1e-6
    np.testing.assert_allclose(o[0, 2, C_LOCAL_REL_POS], [1, 0, 0], atol=1e-6)  # the opponent is straight ahead
    assert o[0, 2, C_LOCAL_REL_VEL][0] < 0  # and, standing still, closes in on a car driving at it
    g2, _ = obs_of(f, 1)  # orange faces blue's goal: the ball is ahead and to its right
    np.testing.assert_allclose(g2[0, G_SELF][C_LOCAL_BALL_POS], [1, -0.2, 0], atol=1e-6)


def test_unknown_and_broken_values_become_zero_and_leave_the_rest_alone(rng):
    """Replays leave flags unknown (NaN); a broken source may send infinities. Either reads as 0, elsewhere the
    observation is what it would be with a 0 there."""
    from bot.frame import HAS_FLIP, VEL
    f = scene(rng, [0, 1])
    clean = f.cars_tpf.copy()
    clean[0, 0, HAS_FLIP], clean[0, 1, VEL.start] = 0.0, 0.0
    f.cars_tpf[0, 0, HAS_FLIP], f.cars_tpf[0, 1, VEL.start] = np.nan, np.inf
    g, o = obs_of(f, 0)
    assert np.isfinite(g).all() and np.isfinite(o).all()
    g_clean, o_clean = build_obs(f.ball_tf, clean, f.pads_tk, f.team_p[None], np.array([0]), np.array([8]))
    np.testing.assert_array_equal(g, g_clean)
    np.testing.assert_array_equal(o, o_clean)
