"""The 90-action table, its mirror map, nearest-action lookup and equivalence classes (checked in RocketSim)."""

import numpy as np
import pytest

from bot.actions import (
    ACTION_TABLE, BOOST_BUTTON, JUMP, MIRROR, NOOP_ACTION, NUM_ACTIONS, PITCH, ROLL, STEER, THROTTLE, YAW,
    action_to_controls, equivalent_actions, nearest_action,
)
from bot.frame import BOOST, CAR_F, DEMOLISHED, HAS_FLIP, HAS_JUMP, ON_GROUND

ANCHORS = {  # nexto-teacher.md §3
    0: [-1, -1, 0, -1, 0, 0, 0, 0], 8: [0, 0, 0, 0, 0, 0, 0, 0], 16: [1, 0, 0, 0, 0, 0, 0, 0],
    18: [1, 0, 0, 0, 0, 0, 1, 0], 23: [1, 1, 0, 1, 0, 0, 1, 1], 24: [0, -1, -1, -1, -1, 0, 0, 0],
    56: [0, 0, 0, 0, 0, 1, 0, 0], 57: [1, 0, 0, 0, 0, 1, 1, 0], 89: [1, 1, 1, 1, 1, 0, 1, 0],
}
MIRROR_DOC = [4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7, 20, 21, 22, 23, 16, 17, 18, 19, 12, 13, 14, 15,
              46, 47, 44, 45, 42, 43, 38, 39, 40, 41, 34, 35, 36, 37, 30, 31, 32, 33, 28, 29, 26, 27, 24, 25,
              64, 65, 62, 63, 58, 59, 60, 61, 56, 57, 52, 53, 54, 55, 50, 51, 48, 49,
              88, 89, 86, 87, 84, 85, 80, 81, 82, 83, 76, 77, 78, 79, 72, 73, 74, 75, 70, 71, 68, 69, 66, 67]


def test_table_shape_and_anchor_rows():
    assert ACTION_TABLE.shape == (90, 8) and NUM_ACTIONS == 90
    for i, row in ANCHORS.items():
        assert ACTION_TABLE[i].tolist() == row, i
    assert NOOP_ACTION == 8 and not ACTION_TABLE[NOOP_ACTION].any()
    assert len(np.unique(ACTION_TABLE, axis=0)) == 90  # no duplicate rows
    ground, aerial = ACTION_TABLE[:24], ACTION_TABLE[24:]
    assert (ground[:, YAW] == ground[:, STEER]).all() and not ground[:, [PITCH, ROLL, JUMP]].any()
    assert (aerial[:, THROTTLE] == aerial[:, BOOST_BUTTON]).all() and (aerial[:, STEER] == aerial[:, YAW]).all()
    assert (aerial[:, JUMP] == 0).sum() == 48 and (aerial[:, JUMP] == 1).sum() == 18


def test_table_matches_rlgym_lookup_table():
    from rlgym.rocket_league.action_parsers import LookupTableAction
    assert np.array_equal(LookupTableAction.make_lookup_table(), ACTION_TABLE)


def test_mirror_map():
    assert MIRROR.tolist() == MIRROR_DOC
    assert (MIRROR[MIRROR] == np.arange(90)).all()
    sign = np.array([1, -1, 1, -1, -1, 1, 1, 1])
    assert np.array_equal(ACTION_TABLE[MIRROR], ACTION_TABLE * sign)
    assert set(np.flatnonzero(MIRROR == np.arange(90))) == {2, 3, 8, 9, 16, 17, 18, 19, 34, 35, 36, 37, 56, 57,
                                                              76, 77, 78, 79}


def test_nearest_action_recovers_rows_and_snaps_noisy_controls(rng):
    assert (nearest_action(ACTION_TABLE) == np.arange(90)).all()
    noisy = ACTION_TABLE + rng.uniform(-0.3, 0.3, ACTION_TABLE.shape) * (ACTION_TABLE != 0)
    assert (nearest_action(noisy) == np.arange(90)).all()
    assert nearest_action(np.array([0.9, 0.05, 0, 0, 0, 0, 1, 0])).tolist() == [18]
    assert action_to_controls(18) == (1.0, 0.0, 0.0, 0.0, 0.0, False, True, False)


def car_row(**flags) -> np.ndarray:
    row = np.zeros(CAR_F, np.float32)
    row[[BOOST, ON_GROUND, HAS_JUMP, HAS_FLIP]] = 0.5, 1, 1, 1
    for name, value in flags.items():
        row[{"boost": BOOST, "on_ground": ON_GROUND, "has_jump": HAS_JUMP, "has_flip": HAS_FLIP,
             "demolished": DEMOLISHED}[name]] = value
    return row


def classes(row: np.ndarray, flip_phase: int | None = None) -> np.ndarray:
    """(A, A) bool: equivalence of every pair of actions in this state."""
    phases = None if flip_phase is None else np.full(90, flip_phase)
    return equivalent_actions(np.arange(90), np.repeat(row[None], 90, 0), phases)


def test_equivalence_rules_on_synthetic_states():
    demo = classes(car_row(demolished=1))
    assert demo.all()
    ground = classes(car_row())
    assert (ground == ground.T).all() and ground.diagonal().all()
    # on the ground without jump, an aerial row equals the ground row with the same throttle/steer/boost
    assert ground[16, 24 + 0 * 0 + 0] == (ACTION_TABLE[24, [THROTTLE, STEER, BOOST_BUTTON]].tolist() == [1, 0, 0])
    pitch_only = np.flatnonzero((ACTION_TABLE == [0, 0, 1, 0, 0, 0, 0, 0]).all(1))[0]
    assert ground[NOOP_ACTION, pitch_only] and not ground[NOOP_ACTION, 16]
    assert not ground[NOOP_ACTION, 56]  # jumping matters on the ground
    air = classes(car_row(on_ground=0))
    assert not air[NOOP_ACTION, pitch_only]  # pitch matters in the air
    assert air[0, 1]  # rows 0 and 1 differ only by handbrake: no effect in the air
    no_boost = classes(car_row(boost=0))
    assert no_boost[16, 18] and not ground[16, 18]
    no_jump = classes(car_row(on_ground=0, has_jump=0, has_flip=0))
    assert no_jump[NOOP_ACTION, 56] and not air[NOOP_ACTION, 56]
    unknown = classes(car_row(on_ground=np.nan, has_jump=np.nan, has_flip=np.nan))
    assert unknown.sum() <= ground.sum() and not unknown[NOOP_ACTION, pitch_only] and not unknown[NOOP_ACTION, 56]


def test_every_class_is_an_equivalence_relation(rng):
    rows = np.stack([car_row(on_ground=g, boost=b, has_jump=j, has_flip=f, demolished=d)
                     for g in (0, 1) for b in (0, 0.3) for j in (0, 1) for f in (0, 1) for d in (0, 1)])
    for row in rows:
        c = classes(row)
        assert (c == c.T).all() and c.diagonal().all()
        assert ((c.astype(int) @ c.astype(int) > 0) == c).all()  # transitive


# ---- against the simulator: two equivalent actions from the same state give the same next state ----

def _snapshot(car) -> np.ndarray:
    s = car.get_state()
    return np.concatenate([s.pos.as_numpy(), s.vel.as_numpy(), s.ang_vel.as_numpy(), s.rot_mat.as_numpy().ravel(),
                           [s.boost, s.has_jumped, s.has_double_jumped, s.has_flipped]])


def _outcome(base, action: int, ticks: int) -> np.ndarray:
    import RocketSim as rs
    arena = base.clone(True)
    car = arena.get_cars()[0]
    t, s, p, y, r, j, b, h = action_to_controls(action)
    car.set_controls(rs.CarControls(throttle=t, steer=s, pitch=p, yaw=y, roll=r, jump=j, boost=b, handbrake=h))
    arena.step(ticks)
    return _snapshot(car)


def _scenes():
    """Base arenas in distinct situations, each with one car: (name, arena, car row, flip phase)."""
    import RocketSim as rs

    from training.sim.rocketsim import flip_fields, flip_phases, make_arena, read_cars
    arena = make_arena(1, 0, seed=2)
    car = arena.get_cars()[0]

    def drive(controls: dict, ticks: int):
        car.set_controls(rs.CarControls(**controls))
        arena.step(ticks)
        rows, _, states = read_cars(arena)
        return arena.clone(True), rows[0], int(flip_phases([flip_fields(states[0])])[0])

    scenes = [("ground", *drive({"throttle": 1.0}, 90))]
    state = car.get_state()
    state.boost = 0.0
    car.set_state(state)
    scenes.append(("ground-no-boost", *drive({"throttle": 1.0}, 4)))
    state.boost = 50.0
    car.set_state(state)
    scenes.append(("air-after-jump", *drive({"throttle": 1.0, "jump": True}, 12)))
    drive({"jump": False}, 2)
    scenes.append(("air-after-flip", *drive({"jump": True, "pitch": -1.0}, 4)))  # a front dodge
    # a side dodge and the pitch lock after it, high above the floor so that the car stays in the air
    state = car.get_state()
    state.pos, state.vel, state.ang_vel = rs.Vec(0, 0, 1000), rs.Vec(0, 0, 0), rs.Vec(0, 0, 0)
    state.rot_mat = rs.Angle(0, 0, 0).as_rot_mat()
    state.has_flipped = state.has_double_jumped = state.is_flipping = False
    state.air_time_since_jump = 0.0
    car.set_state(state)
    drive({"jump": False}, 1)
    scenes.append(("air-side-dodge", *drive({"jump": True, "roll": 1.0}, 12)))
    scenes.append(("air-pitch-locked", *drive({"jump": False}, 76)))
    return scenes


@pytest.mark.parametrize("ticks", [1, 4])
def test_equivalent_actions_have_equal_effects_in_rocketsim(ticks):
    from bot.actions import DODGE_CANCEL_BY_PITCH_UP, DODGE_SIDE, NO_FLIP, PITCH_LOCKED
    expected_phase = {"air-after-flip": DODGE_CANCEL_BY_PITCH_UP, "air-side-dodge": DODGE_SIDE,
                      "air-pitch-locked": PITCH_LOCKED}
    checked = 0
    for name, base, row, phase in _scenes():
        assert phase == expected_phase.get(name, NO_FLIP), name
        eq = classes(row, phase)
        outcomes = np.stack([_outcome(base, a, ticks) for a in range(90)])  # (A, F)
        same = (np.abs(outcomes[:, None] - outcomes[None]) < 1e-3).all(-1)  # (A, A)
        assert not (eq & ~same).any(), f"{name}: rules merge actions that act differently"
        assert eq.sum() > 100, f"{name}: the rules merge almost nothing"  # more than the identity
        if phase != NO_FLIP:  # the flip phase merges what the flip's clock makes equal
            assert eq.sum() > 2 * classes(row).sum(), name
        checked += 1
        print(name, ticks, "pairs merged by the rules", int(eq.sum()), "truly equal", int(same.sum()))
    assert checked == 6
