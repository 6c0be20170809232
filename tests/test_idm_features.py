"""IDM window features: quadrant normalisation, edge padding, replay-style holds."""

import numpy as np

from bot.frame import POS, empty_frames, reflect
from training.idm.features import (
    IDM_F, IN_EPISODE, OTHER_IS_MATE, SELF_POS, hold_frames, sample_fresh_mask, window_features, window_rows,
)


def test_window_rows_edge_pads_inside_the_episode():
    rows, inside = window_rows(np.array([0, 5, 9]), np.array([0, 0, 0]), np.array([10, 10, 10]), 2)
    assert rows[0].tolist() == [0, 0, 0, 1, 2] and inside[0].tolist() == [False, False, True, True, True]
    assert rows[2].tolist() == [7, 8, 9, 9, 9] and rows[1].tolist() == [3, 4, 5, 6, 7]


def test_features_are_quadrant_normalised_and_invariant_to_the_reflection(rng):
    f = empty_frames(7, np.array([0, 0, 1, 1]))
    f.cars_tpf[..., :15] = rng.normal(size=(7, 4, 15)) * 1000
    f.ball_tf[..., :15] = rng.normal(size=(7, 15)) * 1000
    target = np.array([1])
    x, mirrored = window_features(f.cars_tpf[None], f.ball_tf[None], target, f.team_p, np.ones((1, 7)))
    assert x.shape == (1, 7, IDM_F) and (x[0, 3, SELF_POS][:2] >= 0).all()
    for fx, fy in [(True, False), (False, True), (True, True)]:
        g = reflect(f, fx, fy)
        y, m2 = window_features(g.cars_tpf[None], g.ball_tf[None], target, g.team_p, np.ones((1, 7)))
        np.testing.assert_allclose(x, y, atol=1e-5)  # same normalised window whatever the original quadrant
        assert m2[0] == (mirrored[0] ^ (fx != fy))
    assert x[0, :, IN_EPISODE].all() and set(np.unique(x[0, :, OTHER_IS_MATE])) <= {0.0, 1.0}


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
