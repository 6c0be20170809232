"""Run an exported IDM over parsed replays: every present player-frame in play gets an action and flags."""

from pathlib import Path

import numpy as np
import torch

from bot.actions import MIRROR, NUM_ACTIONS
from bot.frame import PRESENT
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
    cfg = IDMConfig(**config["model"])
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


@torch.no_grad()
def label_arrays(model: torch.nn.Module, cfg: IDMConfig, arrays: dict, device: torch.device,
                 chunk: int = 2048) -> dict[str, np.ndarray]:
    """IDM output for one parsed replay: action_tp (T, P) int16 (-1 = not labelled), action_prob_tp and
    flags_tp3 (on_ground, has_jump, has_flip probabilities), float16. Labels are in the world frame."""
    cars, ball, team = arrays["cars_tpf"], arrays["ball_tf"], np.asarray(arrays["team_p"])
    t_n, p_n = cars.shape[:2]
    action = np.full((t_n, p_n), -1, np.int16)
    prob = np.zeros((t_n, p_n), np.float16)
    flags = np.zeros((t_n, p_n, 3), np.float16)
    rows, slots, start, stop = replay_targets(arrays)
    for i in range(0, len(rows), chunk):
        r, s = rows[i:i + chunk], slots[i:i + chunk]
        win, inside = window_rows(r, start[i:i + chunk], stop[i:i + chunk], cfg.half_width)
        x, mirrored = window_features(np.asarray(cars[win]), np.asarray(ball[win]), s, team, inside)
        logits, flag_logits = model(torch.from_numpy(x).to(device))
        p = torch.softmax(logits.float(), -1).cpu().numpy()  # (B, A) in the normalised frame
        p = np.where(mirrored[:, None], p[:, MIRROR], p)  # back to the world frame
        best = p.argmax(-1)
        action[r, s] = best
        prob[r, s] = p[np.arange(len(best)), best]
        flags[r, s] = torch.sigmoid(flag_logits.float()).cpu().numpy()
    assert action.max() < NUM_ACTIONS
    return {"action_tp": action, "action_prob_tp": prob, "flags_tp3": flags}
