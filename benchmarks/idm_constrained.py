"""Constrained decoding of IDM labels with recorded replay inputs: does it make the labels agree better with what
the player did, judged only on inputs that were NOT used to constrain (hold-out)?

    PYTHONPATH=. python benchmarks/idm_constrained.py --checkpoint models/idm --replays data/replays \
        --json idm-constrained.json

The IDM runs once per replay; every constraint setting re-decodes the same probabilities. Agreement is
idm_eval's (fresh frames of non-demolished cars), at lag 0 and at each input's best lag.
"""

import argparse
import json
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from bot.frame import DEMOLISHED, FRESH, IN_BOOST, IN_STEER
from bot.actions import ACTION_TABLE
from training.idm.infer import (ACTION_COLUMN, CONSTRAINABLE, consistent_actions, constrained_argmax, load_idm,
                                recorded_values, replay_probs)
from training.idm_eval import replay_agreement
from training.storage import read_shard

LAGS = (-2, -1, 0, 1, 2)
SHIFTED = {IN_STEER: 1, IN_BOOST: -2}  # the "lag-corrected" variant takes these columns from other frames


def settings() -> dict[str, tuple[str, ...]]:
    """None, each input alone, all five, all but one (the hold-out) and the axes / buttons split."""
    combos = [(), CONSTRAINABLE, ("throttle", "steer"), ("boost", "jump", "handbrake")]
    combos += [(x,) for x in CONSTRAINABLE] + list(combinations(CONSTRAINABLE, len(CONSTRAINABLE) - 1))
    return {"+".join(c) or "none": c for c in combos}


def shifted_rows(cars: np.ndarray, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Recorded rows with steer taken one frame later and boost two frames earlier (the lag scan's best)."""
    rec = np.array(cars[rows, slots])
    for col, lag in SHIFTED.items():
        src = np.clip(rows + lag, 0, len(cars) - 1)
        rec[:, col] = cars[src, slots, col]
    return rec


def strict_none(rec: np.ndarray) -> np.ndarray:
    """(N,) bool: no table row matches all five recorded inputs when every row is restricted (no FREE_ROWS
    exemption): why the aerial rows are exempt from throttle, steer and handbrake."""
    values = recorded_values(rec)
    ok = np.ones((len(rec), len(ACTION_TABLE)), bool)
    for name in CONSTRAINABLE:
        v = values[name][:, None]
        ok &= (ACTION_TABLE[None, :, ACTION_COLUMN[name]] == v) | ~np.isfinite(v)
    return ~ok.any(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("models/idm"))
    ap.add_argument("--replays", type=Path, default=Path("data/replays"))
    ap.add_argument("--json", type=Path, default=Path("idm-constrained.json"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N replays (0 = all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, cfg = load_idm(args.checkpoint)
    shards = sorted(p for p in args.replays.iterdir() if (p / "meta.json").is_file())
    if args.limit:
        shards = shards[:args.limit]
    variants = {f"{v}:{name}": (v, c) for v in ("lag0", "shifted") for name, c in settings().items()}
    variants = {k: vc for k, vc in variants.items() if vc[0] == "lag0" or len(vc[1]) >= len(CONSTRAINABLE) - 1}
    agree = {k: {lag: {} for lag in LAGS} for k in variants}
    split = {k: {"ground": {}, "air": {}} for k in variants}  # lag-0 agreement by the IDM's on-ground flag
    strict = np.zeros(2)
    stats = {k: np.zeros(5) for k in variants}  # scored frames, changed, none survived, p(label), p mass allowed
    t0 = time.perf_counter()
    for n, path in enumerate(shards):
        arrays, _ = read_shard(path)
        cars = np.asarray(arrays["cars_tpf"])
        t_n, p_n = cars.shape[:2]
        rows, slots, p, flags = replay_probs(model, cfg, arrays, torch.device("cpu"))
        ground = flags[:, 0] > 0.5
        plain = p.argmax(-1)
        car = cars[rows, slots]
        scored = (car[:, FRESH] > 0.5) & (car[:, DEMOLISHED] < 0.5)
        recs = {"lag0": car, "shifted": shifted_rows(cars, rows, slots)}
        strict += [scored.sum(), (scored & strict_none(car)).sum()]
        for key, (variant, constrain) in variants.items():
            if constrain:
                allowed = consistent_actions(recs[variant], constrain)
                best, survived = constrained_argmax(p, allowed)
            else:
                allowed, best, survived = np.ones_like(p, bool), plain, np.ones(len(p), bool)
            stats[key] += [scored.sum(), (scored & (best != plain)).sum(), (scored & ~survived).sum(),
                           p[np.arange(len(p)), best][scored].sum(), (p * allowed).sum(-1)[scored].sum()]
            action = np.full((t_n, p_n), -1, np.int16)
            action[rows, slots] = best
            for lag in LAGS if constrain in ((), CONSTRAINABLE) else (0,):
                for name, (a, c) in replay_agreement(action, cars, rows, slots, lag).items():
                    prev = agree[key][lag].get(name, (0, 0))
                    agree[key][lag][name] = (prev[0] + a, prev[1] + c)
            for where, m in (("ground", ground), ("air", ~ground)):
                for name, (a, c) in replay_agreement(action, cars, rows[m], slots[m]).items():
                    prev = split[key][where].get(name, (0, 0))
                    split[key][where][name] = (prev[0] + a, prev[1] + c)
        print(f"{n + 1}/{len(shards)} {path.name} {time.perf_counter() - t0:.0f}s", flush=True)
    report = {"checkpoint": str(args.checkpoint), "replays": len(shards), "seconds": time.perf_counter() - t0,
              "settings": {}}
    for key in variants:
        frames, changed, none, p_label, p_allowed = stats[key]
        report["settings"][key] = {
            "agree_lag0": {k: a / c for k, (a, c) in agree[key][0].items()},
            "agree_lag0_ground": {k: a / c for k, (a, c) in split[key]["ground"].items()},
            "agree_lag0_air": {k: a / c for k, (a, c) in split[key]["air"].items()},
            "agree_by_lag": {str(lag): {k: a / c for k, (a, c) in agree[key][lag].items()} for lag in LAGS
                             if agree[key][lag]},
            "scored_frames": int(frames), "changed": changed / frames, "none_survived": none / frames,
            "mean_p_label": p_label / frames, "mean_p_allowed": p_allowed / frames}
    hold = {}
    for x in CONSTRAINABLE:  # score x when constrained by all the others (and by x itself, trivially)
        others = "+".join(c for c in CONSTRAINABLE if c != x)
        hold[x] = {"unconstrained": report["settings"]["lag0:none"]["agree_lag0"][x],
                   "by_others_lag0": report["settings"][f"lag0:{others}"]["agree_lag0"][x],
                   "by_others_shifted": report["settings"][f"shifted:{others}"]["agree_lag0"][x],
                   "by_itself": report["settings"][f"lag0:{x}"]["agree_lag0"][x]}
    report["hold_out"] = hold
    report["strict_all_five_none_survived"] = strict[1] / strict[0]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps(hold, indent=1))


if __name__ == "__main__":
    main()
