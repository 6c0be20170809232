"""The 90-action lookup table (Nexto's order), its mirror map, nearest-action lookup and equivalence classes.

A table row is the 8 controls [throttle, steer, pitch, yaw, roll, jump, boost, handbrake] with values in
{-1, 0, 1}. Training and the bot both import this module; nothing else builds the table.
"""

import numpy as np

from bot.frame import BOOST, DEMOLISHED, HAS_FLIP, HAS_JUMP, ON_GROUND

# control columns of a table row
THROTTLE, STEER, PITCH, YAW, ROLL, JUMP, BOOST_BUTTON, HANDBRAKE = range(8)
CONTROL_NAMES = ("throttle", "steer", "pitch", "yaw", "roll", "jump", "boost", "handbrake")
NUM_CONTROLS = 8

# Where a car is in a flip, for the equivalence classes. Only the simulator knows it (its flip clock and the
# dodge's torque); replays and packets do not, and their rows get NO_FLIP, which merges nothing more.
# DODGE_*: the dodge's own torque turns the car and the stick acts only when it cancels the flip (pitch against
# the dodge's pitch torque); DODGE_SIDE has no pitch torque, so nothing cancels it. PITCH_LOCKED: a while after a
# dodge's torque ends (or a cancel), pitch does nothing and yaw and roll act.
NO_FLIP, DODGE_SIDE, DODGE_CANCEL_BY_PITCH_UP, DODGE_CANCEL_BY_PITCH_DOWN, PITCH_LOCKED = range(5)
NUM_FLIP_PHASES = 5
EQUIV_RULES = 2  # version of the classes below; 2 added the flip phases (datasets record which they used)


def _build_table() -> np.ndarray:
    """Rows in Nexto's order: 24 ground rows, then 66 aerial rows (nexto-teacher.md §3)."""
    rows = []
    for throttle in (-1, 0, 1):
        for steer in (-1, 0, 1):
            for boost in (0, 1):
                for handbrake in (0, 1):
                    if boost == 1 and throttle != 1:
                        continue
                    rows.append([throttle, steer, 0, steer, 0, 0, boost, handbrake])
    for pitch in (-1, 0, 1):
        for yaw in (-1, 0, 1):
            for roll in (-1, 0, 1):
                for jump in (0, 1):
                    for boost in (0, 1):
                        if jump == 1 and yaw != 0:  # side flips use roll only
                            continue
                        if pitch == roll == jump == 0:  # duplicates of ground rows
                            continue
                        handbrake = int(jump == 1 and (pitch != 0 or yaw != 0 or roll != 0))  # wavedashes
                        rows.append([boost, yaw, pitch, yaw, roll, jump, boost, handbrake])
    return np.array(rows, dtype=np.float32)


ACTION_TABLE = _build_table()  # (A, 8) float32
NUM_ACTIONS = len(ACTION_TABLE)  # 90
NOOP_ACTION = 8  # all zeros; the "previous action" at the start of an episode


def _mirror_map() -> np.ndarray:
    """Left-right reflection: negate steer, yaw and roll, then find that row."""
    mirrored = ACTION_TABLE * np.array([1, -1, 1, -1, -1, 1, 1, 1], np.float32)  # (A, 8)
    match = (mirrored[:, None, :] == ACTION_TABLE[None, :, :]).all(-1)  # (A, A)
    assert (match.sum(1) == 1).all(), "every mirrored row must exist exactly once"
    return match.argmax(1)


MIRROR = _mirror_map()  # (A,) int: index of the left-right mirrored action; an involution


def nearest_action(controls_b8: np.ndarray) -> np.ndarray:
    """(B, 8) controls (analog in [-1, 1], buttons 0/1) -> (B,) int64 index of the closest table row (L2)."""
    controls_b8 = np.clip(np.asarray(controls_b8, np.float32).reshape(-1, NUM_CONTROLS), -1.0, 1.0)
    dist_ba = ((controls_b8[:, None, :] - ACTION_TABLE[None, :, :]) ** 2).sum(-1)  # (B, A)
    return dist_ba.argmin(1)


def effective_controls(cars_bf: np.ndarray, flip_phase_b: np.ndarray | None = None) -> np.ndarray:
    """(B, F) car rows [and (B,) flip phases] -> (B, A, 8): every table row with the controls that cannot act in
    that state zeroed.

    Rules, each from how the game applies controls during one short step:
    - demolished: nothing acts;
    - on the ground without jumping: pitch, yaw and roll do nothing (steer drives the wheels);
    - in the air: steer and handbrake do nothing (yaw steers, and the handbrake only brakes wheels);
    - no boost left: the boost button does nothing;
    - neither a jump nor a flip left: the jump button does nothing;
    - dodging (`flip_phase_b`): pitch, yaw and roll do nothing unless pitch cancels the flip (a cancelling row
      keeps its pitch as the mark of the cancel, and its yaw and roll act); pitch-locked: pitch does nothing.
    Unknown flags (NaN, as in replays) never merge actions. The simulator checks these rules
    (tests/test_actions.py, benchmarks/idm_physics_equiv.py).
    """
    cars_bf = np.asarray(cars_bf, np.float32).reshape(-1, cars_bf.shape[-1])
    eff = np.broadcast_to(ACTION_TABLE, (len(cars_bf), NUM_ACTIONS, NUM_CONTROLS)).copy()  # (B, A, 8)
    demolished = cars_bf[:, DEMOLISHED] == 1
    on_ground = cars_bf[:, ON_GROUND] == 1
    in_air = cars_bf[:, ON_GROUND] == 0
    no_boost = cars_bf[:, BOOST] <= 0
    no_jump = (cars_bf[:, HAS_JUMP] == 0) & (cars_bf[:, HAS_FLIP] == 0)

    jump_ba = eff[..., JUMP] > 0  # (B, A)
    grounded_no_jump = on_ground[:, None] & ~jump_ba
    for col in (PITCH, YAW, ROLL):
        eff[..., col] = np.where(grounded_no_jump, 0.0, eff[..., col])
    eff[in_air, :, STEER] = 0.0
    eff[in_air, :, HANDBRAKE] = 0.0
    eff[no_boost, :, BOOST_BUTTON] = 0.0
    eff[no_jump, :, JUMP] = 0.0
    if flip_phase_b is not None:
        phase = np.asarray(flip_phase_b).reshape(-1, 1)  # (B, 1)
        dodging = (phase == DODGE_SIDE) | (phase == DODGE_CANCEL_BY_PITCH_UP) | (phase == DODGE_CANCEL_BY_PITCH_DOWN)
        cancel_sign = np.where(phase == DODGE_CANCEL_BY_PITCH_UP, 1.0, np.where(phase == DODGE_CANCEL_BY_PITCH_DOWN,
                                                                                  -1.0, 0.0))  # (B, 1)
        cancels = (cancel_sign != 0) & (eff[..., PITCH] == cancel_sign)  # (B, A)
        stick_idle = dodging & ~cancels
        for col in (PITCH, YAW, ROLL):
            eff[..., col] = np.where(stick_idle, 0.0, eff[..., col])
        eff[..., PITCH] = np.where(phase == PITCH_LOCKED, 0.0, eff[..., PITCH])
    eff[demolished] = 0.0
    return eff


def equivalent_actions(action_b: np.ndarray, cars_bf: np.ndarray, flip_phase_b: np.ndarray | None = None) -> np.ndarray:
    """(B,) action indices and (B, F) car rows [and (B,) flip phases] -> (B, A) bool: actions with the same
    effect as the given one."""
    eff = effective_controls(cars_bf, flip_phase_b)  # (B, A, 8)
    action_b = np.asarray(action_b).reshape(-1)
    chosen = eff[np.arange(len(action_b)), action_b]  # (B, 8)
    return (eff == chosen[:, None, :]).all(-1)


def action_to_controls(action: int) -> tuple[float, float, float, float, float, bool, bool, bool]:
    """Table index -> (throttle, steer, pitch, yaw, roll, jump, boost, handbrake) as the game takes them."""
    row = ACTION_TABLE[action]
    return (float(row[THROTTLE]), float(row[STEER]), float(row[PITCH]), float(row[YAW]), float(row[ROLL]),
            bool(row[JUMP] > 0), bool(row[BOOST_BUTTON] > 0), bool(row[HANDBRAKE] > 0))
