"""IDM metrics on labelled batches: exact and equivalence-aware action accuracy, per-control and per-flag accuracy."""

import numpy as np
import torch

from bot.actions import ACTION_TABLE, CONTROL_NAMES
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


def batch_metrics(model: torch.nn.Module, batch: Batch, device: torch.device) -> dict[str, float]:
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
    return out
