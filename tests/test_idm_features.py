"""IDM window features: quadrant normalisation, edge padding, replay-style holds."""

import numpy as np
import pytest

from bot.frame import ANG_VEL, BALL_F, BOOST, CAR_F, FORWARD, POS, UP, VEL, empty_frames, reflect
from training.idm.features import (
    DANG_NORM, DBOOST_NORM, DVEL_NORM, IDM_F, IN_EPISODE, LOCAL_ANG_VEL, LOCAL_VEL, MOTION_IDM_F, NEXT_DANG_VEL,
    NEXT_DBOOST, NEXT_DVEL, OTHER_IS_MATE, SELF_POS, hold_frames, sample_fresh_mask, window_features, window_rows,
)


def test_window_rows_edge_pads_inside_the_episode():
    rows, inside = window_rows(np.array([0, 5, 9]), np.array([0, 0, 0]), np.array([10, 10, 10]), 2)
    assert rows[0].tolist() == [0, 0, 0, 1, 2] and inside[0].tolist() == [False, False, True, True, True]
    assert rows[2].tolist() == [7, 8, 9, 9, 9] and rows[1].tolist() == [3, 4, 5, 6, 7]


@pytest.mark.parametrize("motion", [False, True])
def test_features_are_quadrant_normalised_and_invariant_to_the_reflection(rng, motion):
    f = empty_frames(7, np.array([0, 0, 1, 1]))
    f.cars_tpf[..., :15] = rng.normal(size=(7, 4, 15)) * 1000
    f.ball_tf[..., :15] = rng.normal(size=(7, 15)) * 1000
    target = np.array([1])
    x, mirrored = window_features(f.cars_tpf[None], f.ball_tf[None], target, f.team_p, np.ones((1, 7)), motion)
    assert x.shape == (1, 7, MOTION_IDM_F if motion else IDM_F) and (x[0, 3, SELF_POS][:2] >= 0).all()
    for fx, fy in [(True, False), (False, True), (True, True)]:
        g = reflect(f, fx, fy)
        y, m2 = window_features(g.cars_tpf[None], g.ball_tf[None], target, g.team_p, np.ones((1, 7)), motion)
        np.testing.assert_allclose(x, y, atol=1e-4)  # same normalised window whatever the original quadrant
        assert m2[0] == (mirrored[0] ^ (fx != fy))
    assert x[0, :, IN_EPISODE].all() and set(np.unique(x[0, :, OTHER_IS_MATE])) <= {0.0, 1.0}


def test_motion_columns_are_the_cars_own_axes_and_its_change_to_the_next_frame():
    """A car facing +y (so its forward is world y and its side, forward x up, is world +x) speeds up, starts to
    yaw and uses boost between frames 1 and 2; frame 2 is then held (a replay repeat): no change to frame 3."""
    f = empty_frames(4, np.array([0, 1]))
    f.cars_tpf[:, 0, POS] = [500.0, 1000.0, 17.0]
    f.cars_tpf[:, 0, FORWARD], f.cars_tpf[:, 0, UP] = [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    f.cars_tpf[:, 0, VEL] = [[0, 1000, 0], [0, 1000, 0], [0, 1030, 0], [0, 1030, 0]]
    f.cars_tpf[:, 0, ANG_VEL] = [[0, 0, 0], [0, 0, 0], [0, 0, 0.5], [0, 0, 0.5]]
    f.cars_tpf[:, 0, BOOST] = [0.5, 0.5, 0.489, 0.489]
    x, mirrored = window_features(f.cars_tpf[None], f.ball_tf[None], np.array([0]), f.team_p, np.ones((1, 4)), True)
    assert not mirrored[0]  # the car is already at x >= 0, y >= 0
    np.testing.assert_allclose(x[0, 1, LOCAL_VEL] * 2300, [1000, 0, 0], atol=1e-2)
    np.testing.assert_allclose(x[0, 2, LOCAL_ANG_VEL] * 5.5, [0, 0, 0.5], atol=1e-5)
    np.testing.assert_allclose(x[0, 1, NEXT_DVEL] * DVEL_NORM, [30, 0, 0], atol=1e-2)
    np.testing.assert_allclose(x[0, 1, NEXT_DANG_VEL] * DANG_NORM, [0, 0, 0.5], atol=1e-5)
    assert x[0, 1, NEXT_DBOOST] * DBOOST_NORM == pytest.approx(-0.011, abs=1e-5)
    assert (x[0, 2, NEXT_DVEL] == 0).all() and (x[0, 2, NEXT_DANG_VEL] == 0).all() and x[0, 2, NEXT_DBOOST] == 0
    assert (x[0, 3, NEXT_DVEL] == 0).all()  # the last frame has no next one
    # sideways motion: a slide to the car's side axis (world +x here) shows as the side component
    f.cars_tpf[2:, 0, VEL] = [200.0, 1000.0, 0.0]
    x, _ = window_features(f.cars_tpf[None], f.ball_tf[None], np.array([0]), f.team_p, np.ones((1, 4)), True)
    np.testing.assert_allclose(x[0, 1, NEXT_DVEL] * DVEL_NORM, [0, 200, 0], atol=1e-2)


def test_hold_frames_repeats_the_last_fresh_value():
    x = np.arange(6, dtype=float)[None, :, None]  # (1, 6, 1)
    fresh = np.array([[False, True, False, False, True, False]])
    assert hold_frames(x, fresh)[0, :, 0].tolist() == [0, 1, 1, 1, 4, 4]


def test_sampled_fresh_masks_follow_the_gap_distribution(rng):
    probs = np.array([0.1, 0.7, 0.2])
    mask = sample_fresh_mask(rng, (2000, 61), probs)
    rate = mask.mean()
    assert abs(rate - 1 / (probs * [1, 2, 3]).sum()) < 0.02
    gaps = np.diff(np.flatnonzero(mask[0]))
    assert set(gaps) <= {1, 2, 3}


def test_position_column_is_used(rng):
    f = empty_frames(3, np.array([0, 1]))
    f.cars_tpf[:, 0, POS] = [100.0, -200.0, 17.0]
    x, mirrored = window_features(f.cars_tpf[None], f.ball_tf[None], np.array([0]), f.team_p, np.ones((1, 3)))
    np.testing.assert_allclose(x[0, 1, SELF_POS] * 2300, [100, 200, 17], atol=1e-3)
    assert mirrored[0]  # only y was flipped


def test_corruption_marks_held_frames_as_not_fresh(rng):
    """Corrupted windows carry the FRESH flags a parsed replay would: 1 on new samples, 0 on repeats."""
    from bot.frame import BALL_FRESH, FRESH, PRESENT
    from training.idm.data import corrupt
    f = empty_frames(31, np.array([0, 1]))
    f.cars_tpf[..., :15] = rng.normal(size=(31, 2, 15))
    f.cars_tpf[..., FRESH] = f.cars_tpf[..., PRESENT] = 1.0
    f.ball_tf[:, :15], f.ball_tf[:, BALL_FRESH] = rng.normal(size=(31, 15)), 1.0
    cars, ball = corrupt(rng, f.cars_tpf[None].repeat(8, 0), f.ball_tf[None].repeat(8, 0), np.ones(8, bool),
                         np.array([0.2, 0.6, 0.2]), np.array([0.5, 0.5]))
    fresh = cars[..., FRESH] > 0.5  # (8, 31, 2)
    assert 0.3 < fresh.mean() < 0.8
    moved = np.abs(np.diff(cars[..., :15], axis=1)).sum(-1) > 0  # (8, 30, 2): the row changed from the last
    np.testing.assert_array_equal(moved, fresh[:, 1:])  # a row changes exactly where a new sample arrives
    ball_moved = np.abs(np.diff(ball[..., :15], axis=1)).sum(-1) > 0
    np.testing.assert_array_equal(ball_moved, ball[:, 1:, BALL_FRESH] > 0.5)
    x, _ = window_features(cars, ball, np.zeros(8, int), f.team_p, np.ones((8, 31)), True)
    from training.idm.features import SELF_FRESH
    np.testing.assert_array_equal(x[..., SELF_FRESH] > 0.5, fresh[..., 0])


def test_configs_saved_before_the_motion_columns_still_load():
    from training.idm.model import IDMConfig, build_idm
    old = IDMConfig.from_dict({"arch": "mlp", "features": 45, "half_width": 10, "hidden": 8, "layers": 1})
    assert not old.motion and build_idm(old).body[0].in_features == 21 * IDM_F
    new = IDMConfig(arch="mlp", half_width=10, hidden=8, layers=1, motion=True)
    assert new.features == MOTION_IDM_F and build_idm(new).body[0].in_features == 21 * MOTION_IDM_F
    assert IDMConfig.from_dict(new.to_dict()) == new
    with pytest.raises(ValueError, match="does not match"):
        IDMConfig.from_dict({"arch": "mlp", "features": 45, "motion": True})


def test_corruption_holds_boost_between_its_own_rarer_updates(rng):
    """With boost_update_p the boost amount changes only on its own update frames (about that share of them),
    takes the true value there, and is otherwise untouched by the physics holds; without it, it follows them."""
    from bot.frame import FRESH, PRESENT
    from training.idm.data import corrupt
    f = empty_frames(41, np.array([0, 1]))
    f.cars_tpf[..., :15] = rng.normal(size=(41, 2, 15))
    f.cars_tpf[..., BOOST] = np.linspace(1.0, 0.2, 41)[:, None]  # boosting: falls every frame
    f.cars_tpf[..., FRESH] = f.cars_tpf[..., PRESENT] = 1.0
    cars_bwpf, ball_bwf = f.cars_tpf[None].repeat(400, 0), f.ball_tf[None].repeat(400, 0)
    gaps = np.array([0.2, 0.6, 0.2]), np.array([0.5, 0.5])
    cars, _ = corrupt(rng, cars_bwpf, ball_bwf, np.ones(400, bool), *gaps, boost_update_p=0.1)
    boost = cars[..., BOOST]  # (400, 41, 2)
    changed = np.diff(boost, axis=1) != 0
    assert 0.07 < changed.mean() < 0.13  # updates at the asked rate, not with the physics (~0.5)
    true = f.cars_tpf[:, 0, BOOST]
    assert np.isin(boost, true).all() and (np.diff(boost, axis=1) <= 0).all()  # true values, never from the future
    plain, _ = corrupt(rng, cars_bwpf, ball_bwf, np.ones(400, bool), *gaps)
    np.testing.assert_array_equal(np.diff(plain[..., BOOST], axis=1) != 0, plain[:, 1:, :, FRESH] > 0.5)


def test_boost_update_rate_measured_from_replays(tmp_path):
    """measure_hold_gaps counts a boosting car's recorded boost changes per frame pair: here 1 change in 9."""
    from bot.frame import FRESH, IN_BOOST, PRESENT
    from training.idm_train import measure_hold_gaps
    from training.storage import write_shard
    t = 10
    cars = np.zeros((t, 1, CAR_F), np.float32)
    cars[..., PRESENT] = cars[..., FRESH] = cars[..., IN_BOOST] = 1.0
    cars[:, 0, BOOST] = [0.5] * 5 + [0.4] * 5  # one update inside 9 boosting frame pairs
    ball = np.zeros((t, BALL_F), np.float32)
    ball[:, -1] = 1.0
    write_shard(tmp_path / "r", {"cars_tpf": cars, "ball_tf": ball, "segment_t": np.zeros(t, np.int32)}, {})
    _, _, info = measure_hold_gaps(tmp_path)
    assert info["boost_pairs"] == 9 and abs(info["boost_update_p"] - 1 / 9) < 1e-9


def test_situations_sort_frames_by_what_else_moves_the_car():
    from bot.actions import DODGE_SIDE, NO_FLIP
    from bot.frame import DEMOLISHED, ON_GROUND
    from training.idm.metrics import SITUATIONS, situation_of

    def car(pos, vel=(0, 0, 0), ground=0, spin=(0, 0, 0), demolished=0):
        row = np.zeros(CAR_F, np.float32)
        row[POS], row[VEL], row[ANG_VEL] = pos, vel, spin
        row[FORWARD], row[UP] = (0, 1, 0), (0, 0, 1)
        row[ON_GROUND], row[DEMOLISHED] = ground, demolished
        return row

    cases = {  # car row, ball position, flip phase -> situation
        "demolished": (car((0, 0, 17), demolished=1), (0, 0, 93), NO_FLIP),
        "flipping (dodge or pitch lock)": (car((0, 0, 300)), (0, 3000, 93), DODGE_SIDE),
        "ball within 300 uu": (car((0, 0, 17), (0, 900, 0), ground=1), (0, 200, 93), NO_FLIP),
        "ground, under 1400 uu/s": (car((0, 0, 17), (0, -1300, 0), ground=1), (0, 3000, 93), NO_FLIP),
        "ground, 1400 uu/s or faster": (car((0, 0, 17), (0, 1800, 0), ground=1), (0, 3000, 93), NO_FLIP),
        "air, within 200 uu of a surface": (car((3950, 0, 800)), (0, 3000, 93), NO_FLIP),
        "air, spin at the 5.5 rad/s cap": (car((0, 0, 800), spin=(0, 5.5, 0)), (0, 3000, 93), NO_FLIP),
        "air, free flight": (car((0, 0, 800), spin=(0, 3, 0)), (0, 3000, 93), NO_FLIP),
    }
    assert set(cases) == set(SITUATIONS)
    cars = np.stack([c for c, _, _ in cases.values()])
    ball = np.zeros((len(cases), BALL_F), np.float32)
    ball[:, POS] = [b for _, b, _ in cases.values()]
    phases = np.array([p for _, _, p in cases.values()])
    assert [SITUATIONS[i] for i in situation_of(cars, ball, phases)] == list(cases)
    # data without flip phases: the dodging car counts by its other traits (here: in free flight)
    assert SITUATIONS[situation_of(cars, ball)[1]] == "air, free flight"


def test_interpolation_spreads_a_held_stretch_over_its_frames_and_leaves_fresh_frames_alone():
    from training.idm.features import interpolate_held
    truth = np.stack([np.arange(7.0), np.arange(7.0) ** 2], -1)[None]  # (1, W=7, 2): a line and a curve
    fresh = np.array([[1, 0, 0, 1, 1, 0, 0]], bool)
    held = hold_frames(truth, fresh)  # what a replay shows
    filled = interpolate_held(held, fresh, [slice(0, 2)])
    assert np.allclose(filled[0, :5, 0], truth[0, :5, 0])  # a line between fresh samples comes back exactly
    assert np.allclose(filled[0, [0, 3, 4]], truth[0, [0, 3, 4]])  # fresh frames untouched
    assert np.allclose(filled[0, 1:3, 1], [3, 6])  # the curve: on the chord from 0 to 9
    assert np.allclose(filled[0, 5:], held[0, 5:])  # after the last fresh sample nothing is known: still held
    assert np.allclose(interpolate_held(truth, np.ones((1, 7), bool), [slice(0, 2)]), truth)  # clean: unchanged


def test_interpolation_changes_only_held_windows(rng):
    from bot.frame import FRESH
    f = empty_frames(9, np.array([0, 0, 1, 1]))
    f.cars_tpf[..., :9] = rng.normal(size=(9, 4, 9)) * 1000
    for axis in (FORWARD, UP):
        v = rng.normal(size=(9, 4, 3))
        f.cars_tpf[..., axis] = v / np.linalg.norm(v, axis=-1, keepdims=True)
    f.cars_tpf[..., FRESH] = 1
    args = (f.ball_tf[None], np.array([1]), f.team_p, np.ones((1, 9)), True)
    clean = window_features(f.cars_tpf[None], *args)[0]
    np.testing.assert_allclose(window_features(f.cars_tpf[None], *args, interpolate=True)[0], clean, atol=1e-3)
    held = f.cars_tpf.copy()
    held[2:4, 1] = held[1, 1]  # the target car held for two frames, as a replay would show it
    held[2:4, 1, FRESH] = 0
    plain, filled = (window_features(held[None], *args, interpolate=i)[0] for i in (False, True))
    np.testing.assert_allclose(plain[0, 4:], filled[0, 4:], atol=1e-3)  # after the stretch: nothing changes
    np.testing.assert_allclose(plain[0, :2, :IDM_F], filled[0, :2, :IDM_F], atol=1e-3)  # before it, the state alone
    assert not np.allclose(plain[0, 1, NEXT_DVEL], filled[0, 1, NEXT_DVEL])  # its change is spread over the stretch
    assert not np.allclose(plain[0, 2:4, SELF_POS], filled[0, 2:4, SELF_POS])
