"""IDM metrics on labelled batches: exact and equivalence-aware action accuracy, per-control and per-flag accuracy,
and accuracy by situation (where the errors are)."""

import numpy as np
import torch

from bot.actions import ACTION_TABLE, CONTROL_NAMES, NO_FLIP
from bot.constants import BACK_WALL_Y, CAR_MAX_ANG_VEL, CEILING_Z, SIDE_WALL_X
from bot.frame import ANG_VEL, DEMOLISHED, FORWARD, ON_GROUND, POS, VEL
from training.idm.data import Batch
from training.idm.model import FLAG_NAMES, idm_loss


@torch.no_grad()
def predict(model: torch.nn.Module, x_bwf: np.ndarray, device: torch.device, chunk: int = 4096
            ) -> tuple[np.ndarray, np.ndarray]:
    """Action probabilities (B, A) and flag probabilities (B, 3) for feature windows, in chunks."""
    model.eval()
    probs, flags = [], []
    for i in range(0, len(x_bwf), chunk):
        logits, flag_logits = model(torch.from_numpy(x_bwf[i:i + chunk]).to(device))
        probs.append(torch.softmax(logits.float(), -1).cpu().numpy())
        flags.append(torch.sigmoid(flag_logits.float()).cpu().numpy())
    return np.concatenate(probs), np.concatenate(flags)


def per_control_match(pred_b: np.ndarray, equiv_ba: np.ndarray) -> np.ndarray:
    """(B, 8) bool: does each control of the predicted row equal the label's, taking the label as the member of
    its equivalence set closest to the prediction (controls that cannot act never count as errors)."""
    rows = ACTION_TABLE[pred_b]  # (B, 8)
    agree = (ACTION_TABLE[None, :, :] == rows[:, None, :])  # (B, A, 8)
    score = np.where(equiv_ba, agree.sum(-1), -1)  # (B, A)
    best = score.argmax(-1)  # (B,)
    return agree[np.arange(len(pred_b)), best]


def batch_metrics(model: torch.nn.Module, batch: Batch, device: torch.device,
                  situation_b: np.ndarray | None = None) -> dict:
    """Flat metrics (floats); with the frames' situations (`situation_of`) also `by_situation`."""
    probs, flag_probs = predict(model, batch.x_bwf, device)
    pred = probs.argmax(-1)
    b = np.arange(len(pred))
    with torch.no_grad():
        logits = torch.log(torch.from_numpy(probs).clamp_min(1e-12))
        flag_logits = torch.logit(torch.from_numpy(flag_probs).clamp(1e-6, 1 - 1e-6))
        loss, _ = idm_loss(logits, flag_logits, torch.from_numpy(batch.equiv_ba), torch.from_numpy(batch.flags_b3))
    out = {"loss": float(loss), "action_exact_acc": float((pred == batch.action_b).mean()),
           "action_equiv_acc": float(batch.equiv_ba[b, pred].mean())}
    controls = per_control_match(pred, batch.equiv_ba).mean(0)
    out.update({f"control_acc.{name}": float(v) for name, v in zip(CONTROL_NAMES, controls)})
    flag_acc = ((flag_probs > 0.5) == (batch.flags_b3 > 0.5)).mean(0)
    out.update({f"flag_acc.{name}": float(v) for name, v in zip(FLAG_NAMES, flag_acc)})
    if situation_b is not None:
        out["by_situation"] = by_situation(batch.equiv_ba[b, pred], situation_b)
    return out


# Situations of the labelled frame, each frame in the first that holds. Why these: an action shows in the car's
# motion, and these are where something else moves it too (a touch, a surface, the spin cap, a dodge) or where
# the control barely shows (throttle only holds speed above the throttle's top speed, 1410 uu/s).
SITUATIONS = ("demolished", "flipping (dodge or pitch lock)", "ball within 300 uu", "ground, under 1400 uu/s",
              "ground, 1400 uu/s or faster", "air, within 200 uu of a surface", "air, spin at the 5.5 rad/s cap",
              "air, free flight")
BALL_CONTACT_UU = 300.0  # ball radius + a car's half length, with room for the frame's motion
SURFACE_UU = 200.0


def situation_of(cars_bf: np.ndarray, ball_bf: np.ndarray, flip_phase_b: np.ndarray | None = None) -> np.ndarray:
    """(B,) index into SITUATIONS of each labelled frame (car and ball rows; flip phases where the data has them)."""
    pos = cars_bf[:, POS]
    forward_speed = np.abs((cars_bf[:, VEL] * cars_bf[:, FORWARD]).sum(-1))
    wall_gap = np.min(np.stack([pos[:, 2], CEILING_Z - pos[:, 2], SIDE_WALL_X - np.abs(pos[:, 0]),
                                BACK_WALL_Y - np.abs(pos[:, 1])], -1), -1)
    flipping = np.zeros(len(cars_bf), bool) if flip_phase_b is None else np.asarray(flip_phase_b) != NO_FLIP
    on_ground = cars_bf[:, ON_GROUND] == 1
    rules = [cars_bf[:, DEMOLISHED] == 1, flipping,
             np.linalg.norm(ball_bf[:, POS] - pos, axis=-1) < BALL_CONTACT_UU,
             on_ground & (forward_speed < 1400), on_ground, wall_gap < SURFACE_UU,
             np.linalg.norm(cars_bf[:, ANG_VEL], axis=-1) >= CAR_MAX_ANG_VEL - 0.1,
             np.ones(len(cars_bf), bool)]
    return np.argmax(np.stack(rules, -1), -1)


def by_situation(correct_b: np.ndarray, situation_b: np.ndarray) -> dict[str, dict[str, float]]:
    """Per situation: its share of frames, the accuracy there, and its share of all errors."""
    errors = max(int((~correct_b).sum()), 1)
    out = {}
    for i, name in enumerate(SITUATIONS):
        sel = situation_b == i
        if sel.any():
            out[name] = {"share": float(sel.mean()), "accuracy": float(correct_b[sel].mean()),
                         "error_share": float((~correct_b[sel]).sum() / errors)}
    return out
