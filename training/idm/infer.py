"""Run an exported IDM over parsed replays: every present player-frame in play gets an action and flags."""

from pathlib import Path

import numpy as np
import torch

from bot.actions import (ACTION_TABLE, BOOST_BUTTON, HANDBRAKE, JUMP, MIRROR, NUM_ACTIONS, STEER, THROTTLE,
                         effective_controls)
from bot.frame import (HAS_FLIP, HAS_JUMP, IN_BOOST, IN_DODGE, IN_DOUBLE_JUMP, IN_HANDBRAKE, IN_JUMP, IN_STEER,
                       IN_THROTTLE, ON_GROUND, PRESENT)
from training.checkpoint import load_exported
from training.idm.features import window_features, window_rows
from training.idm.model import IDMConfig, build_idm


def load_idm(folder: Path, device: torch.device | None = None) -> tuple[torch.nn.Module, IDMConfig]:
    """An exported IDM (models/idm or <run>/model) ready for inference (on the CPU unless `device`)."""
    folder = Path(folder)
    device = device or torch.device("cpu")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no exported IDM (config.json + model.safetensors); train one "
                                "with `python -m training idm-train` or use models/idm")
    weights, config = load_exported(folder)
    cfg = IDMConfig.from_dict(config["model"])
    model = build_idm(cfg)
    model.load_state_dict(weights)
    return model.to(device).eval(), cfg


def replay_targets(arrays: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows, car slots and their segment's [start, stop) for every present car in kickoff-to-goal play."""
    segment_t = np.asarray(arrays["segment_t"])
    segments = np.asarray(arrays["segments"]).reshape(-1, 3)
    present = np.asarray(arrays["cars_tpf"][..., PRESENT]) > 0.5  # (T, P)
    rows, slots = np.nonzero(present & (segment_t[:, None] >= 0))
    seg = segment_t[rows]
    return rows, slots, segments[seg, 0], segments[seg, 1]


CONSTRAINABLE = ("throttle", "steer", "boost", "jump", "handbrake")  # recorded inputs that can constrain labels
AXIS_DEADZONE = 0.1  # recorded analog inputs closer to 0 than this count as 0 (labelling and idm_eval)
_GROUND = np.arange(NUM_ACTIONS) < 24  # the 24 ground rows choose throttle, steer and handbrake freely


def _free_rows() -> dict[str, np.ndarray]:
    """(A,) bool per input: rows whose value of that control is a free choice. The aerial rows tie throttle to
    boost, steer to yaw (0 on every jump row) and handbrake to wavedashes, so a recorded throttle, steer or
    handbrake says nothing about them; constraining them would mostly leave no action at all."""
    steer_free = _GROUND | (ACTION_TABLE[:, JUMP] == 0)
    return {"throttle": _GROUND, "steer": steer_free, "boost": np.ones(NUM_ACTIONS, bool),
            "jump": np.ones(NUM_ACTIONS, bool), "handbrake": _GROUND}


FREE_ROWS = _free_rows()


def parse_constrain(values: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """'throttle,steer' / ('throttle', 'steer') / 'none' -> canonical tuple in CONSTRAINABLE order (so the same
    setting always hashes the same in label metadata)."""
    if isinstance(values, str):
        values = (values,)
    names = {v.strip() for text in values for v in text.split(",") if v.strip() and v.strip() != "none"}
    unknown = names - set(CONSTRAINABLE)
    if unknown:
        raise ValueError(f"cannot constrain on {sorted(unknown)}: choose from {', '.join(CONSTRAINABLE)} or none")
    return tuple(n for n in CONSTRAINABLE if n in names)


def recorded_values(rec_nf: np.ndarray, prev_nf: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(N, F) car rows -> per input (N,) float: the recorded value in the table's terms (-1/0/1 or 0/1, to compare
    with ACTION_TABLE[:, ACTION_COLUMN[name]]), NaN where unknown.

    Jump is read off the jump components, which replays record instead of the button: the first jump's is
    active while the button is held (1-6 frames on the corpus), but a double jump's or a dodge's stays active
    for the whole move after one press (~3 and ~15 frames). Given `prev_nf` (the same cars one frame earlier),
    those two count only on the frame they start, as the button does; without it any active component counts."""
    rec_nf = np.asarray(rec_nf, np.float32)

    def axis(x: np.ndarray) -> np.ndarray:
        return np.where(np.abs(x) < AXIS_DEADZONE, 0.0, np.sign(x))  # NaN stays NaN

    def button(x: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(x), (x > 0.5).astype(np.float32), np.nan)

    jumps = rec_nf[:, [IN_JUMP, IN_DOUBLE_JUMP, IN_DODGE]]
    active = np.nan_to_num(jumps) > 0.5
    if prev_nf is not None:  # double jump and dodge: only their first frame is a press
        active[:, 1:] &= ~(np.nan_to_num(np.asarray(prev_nf, np.float32)[:, [IN_DOUBLE_JUMP, IN_DODGE]]) > 0.5)
    jump = np.where(np.isfinite(jumps).any(-1), active.any(-1).astype(np.float32), np.nan)
    return {"throttle": axis(rec_nf[:, IN_THROTTLE]), "steer": axis(rec_nf[:, IN_STEER]),
            "boost": button(rec_nf[:, IN_BOOST]), "jump": jump, "handbrake": button(rec_nf[:, IN_HANDBRAKE])}


ACTION_COLUMN = {"throttle": THROTTLE, "steer": STEER, "boost": BOOST_BUTTON, "jump": JUMP, "handbrake": HANDBRAKE}


def consistent_actions(rec_nf: np.ndarray, constrain: tuple[str, ...], prev_nf: np.ndarray | None = None
                       ) -> np.ndarray:
    """(N, F) recorded car rows (and the same cars a frame earlier, for jump presses: `recorded_values`) ->
    (N, A) bool: actions agreeing with every constrained input that is known (finite) in that row; rows that do
    not choose an input freely (FREE_ROWS) are not restricted by it."""
    values = recorded_values(rec_nf, prev_nf)
    allowed = np.ones((len(rec_nf), NUM_ACTIONS), bool)
    for name in parse_constrain(constrain):
        v = values[name][:, None]  # (N, 1)
        match = (ACTION_TABLE[None, :, ACTION_COLUMN[name]] == v) | ~FREE_ROWS[name][None] | ~np.isfinite(v)
        allowed &= match
    return allowed


def constrained_argmax(p: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax of p (N, A) over the allowed actions; rows where none is allowed fall back to the plain argmax.
    Returns (action (N,), survived (N,) bool)."""
    survived = allowed.any(-1)
    masked = np.where(allowed | ~survived[:, None], p, -np.inf)
    return masked.argmax(-1), survived


DECODES = ("argmax", "class")


def class_mass(p: np.ndarray, cars_nf: np.ndarray, flags_n3: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """(N, A) action probabilities -> (N, A): the probability of each action's equivalence class (bot/actions.py
    rules, outside flips), the classes taken in the state the IDM itself predicts (on_ground, has_jump, has_flip;
    replays do not record them). Every member of a class gets the same sum, bit for bit, so `argmax` of it
    picks the class with the most mass and, within it, the lowest action index: one fixed label per class."""
    if len(p) > chunk:  # bounded memory: (chunk, A, 8) effects at a time
        return np.concatenate([class_mass(p[i:i + chunk], cars_nf[i:i + chunk], flags_n3[i:i + chunk], chunk)
                               for i in range(0, len(p), chunk)])
    rows = np.array(cars_nf, np.float32)
    rows[:, [ON_GROUND, HAS_JUMP, HAS_FLIP]] = (np.asarray(flags_n3) > 0.5).astype(np.float32)
    eff = effective_controls(rows)  # (N, A, 8), every control in {-1, 0, 1}
    code = ((eff + 1).astype(np.int64) * 3 ** np.arange(eff.shape[-1])).sum(-1)  # (N, A): one number per effect
    order = np.argsort(code, axis=1, kind="stable")  # members of a class side by side
    sorted_code = np.take_along_axis(code, order, 1)
    starts = np.ones(code.shape, bool)
    starts[:, 1:] = sorted_code[:, 1:] != sorted_code[:, :-1]
    cls = np.cumsum(starts, 1) - 1 + np.arange(len(code))[:, None] * code.shape[1]  # (N, A) class id, unique per row
    totals = np.bincount(cls.ravel(), np.take_along_axis(p, order, 1).ravel(), minlength=code.size)
    mass = np.empty(p.shape, np.float32)
    np.put_along_axis(mass, order, totals[cls].astype(np.float32), 1)
    return mass


@torch.no_grad()
def replay_probs(model: torch.nn.Module, cfg: IDMConfig, arrays: dict, device: torch.device,
                 chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IDM output for every labelled player-frame of a parsed replay: rows, slots, world-frame action
    probabilities (N, A) float32 and flag probabilities (N, 3)."""
    cars, ball, team = arrays["cars_tpf"], arrays["ball_tf"], np.asarray(arrays["team_p"])
    rows, slots, start, stop = replay_targets(arrays)
    probs = np.zeros((len(rows), NUM_ACTIONS), np.float32)
    flags = np.zeros((len(rows), 3), np.float32)
    for i in range(0, len(rows), chunk):
        r, s = rows[i:i + chunk], slots[i:i + chunk]
        win, inside = window_rows(r, start[i:i + chunk], stop[i:i + chunk], cfg.half_width)
        x, mirrored = window_features(np.asarray(cars[win]), np.asarray(ball[win]), s, team, inside, cfg.motion,
                                      cfg.interpolate_held)
        logits, flag_logits = model(torch.from_numpy(x).to(device))
        p = torch.softmax(logits.float(), -1).cpu().numpy()  # (B, A) in the normalised frame
        probs[i:i + chunk] = np.where(mirrored[:, None], p[:, MIRROR], p)  # back to the world frame
        flags[i:i + chunk] = torch.sigmoid(flag_logits.float()).cpu().numpy()
    return rows, slots, probs, flags


def label_arrays(model: torch.nn.Module, cfg: IDMConfig, arrays: dict, device: torch.device,
                 chunk: int = 2048, constrain: tuple[str, ...] = (), decode: str = "argmax") -> dict[str, np.ndarray]:
    """IDM output for one parsed replay: action_tp (T, P) int16 (-1 = not labelled), action_prob_tp and
    flags_tp3 (on_ground, has_jump, has_flip probabilities), float16. Labels are in the world frame.

    `constrain` names recorded inputs (CONSTRAINABLE) the label must agree with where the replay knows them:
    the argmax is taken over the consistent actions only, or over all where none is consistent.
    `decode`: "argmax" labels the single most probable action; "class" the most probable equivalence class, as
    one fixed member of it (class_mass); the stored probability is then the class's."""
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {DECODES}, not {decode!r}")
    cars = arrays["cars_tpf"]
    t_n, p_n = cars.shape[:2]
    action = np.full((t_n, p_n), -1, np.int16)
    prob = np.zeros((t_n, p_n), np.float16)
    flags = np.zeros((t_n, p_n, 3), np.float16)
    rows, slots, p, f = replay_probs(model, cfg, arrays, device, chunk)
    if decode == "class":
        p = class_mass(p, np.asarray(cars[rows, slots]), f)
    if constrain:
        prev = np.asarray(cars[np.maximum(rows - 1, 0), slots])
        best, _ = constrained_argmax(p, consistent_actions(np.asarray(cars[rows, slots]), constrain, prev))
    else:
        best = p.argmax(-1)
    action[rows, slots] = best
    prob[rows, slots] = p[np.arange(len(best)), best]
    flags[rows, slots] = f
    assert action.max() < NUM_ACTIONS
    return {"action_tp": action, "action_prob_tp": prob, "flags_tp3": flags}
