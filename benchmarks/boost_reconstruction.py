"""How well `reconstruct_boost` rebuilds a car's boost amount between a replay's rare updates of it.

Replays never record the true amount between updates, so updates are held out: every other update of each car
(the 2nd, 4th, ...) is removed (the amount before it is held on, as if it had never come), the amount is rebuilt
from the remaining ones and the recorded boost flag, and the rebuilt value on each removed update's frame is
compared with what that update recorded. Removing updates doubles the gaps, so the figure is pessimistic.
Only updates where the amount fell since the previous one are scored (a rise is a pad pickup, which
neither the held nor the rebuilt amount can foresee). Peer, same frames: the held amount a replay shows.

    PYTHONPATH=. .venv/bin/python benchmarks/boost_reconstruction.py out/pipeline-cpu/replays
"""

import argparse
from pathlib import Path

import numpy as np

from bot.frame import BOOST, IN_BOOST
from training.replays.frames import hold, reconstruct_boost
from training.storage import read_shard


def held_out_errors(boost_t: np.ndarray, boosting_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|held - recorded| and |rebuilt - recorded| on the removed updates of one car where the amount fell."""
    finite = np.isfinite(boost_t)
    updates = np.flatnonzero(finite[1:] & finite[:-1] & (boost_t[1:] != boost_t[:-1])) + 1
    removed, kept = updates[1::2], np.concatenate([np.flatnonzero(finite)[:1], updates[0::2]])
    if len(removed) == 0 or len(kept) == 0:
        return np.zeros(0), np.zeros(0)
    thinned = hold(kept, boost_t[kept], len(boost_t))[:, 0]
    rebuilt = reconstruct_boost(thinned[:, None], boosting_t[:, None])[:, 0]
    fell = boost_t[removed] < boost_t[removed - 1]
    truth = boost_t[removed][fell]
    return np.abs(thinned[removed][fell] - truth), np.abs(rebuilt[removed][fell] - truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("replays", type=Path, help="parsed replays (`python -m training replays` output)")
    args = ap.parse_args()
    held, rebuilt = [], []
    shards = sorted(p for p in args.replays.iterdir() if (p / "meta.json").is_file())
    for shard in shards:
        cars = np.asarray(read_shard(shard)[0]["cars_tpf"], np.float64)
        for p in range(cars.shape[1]):
            h, r = held_out_errors(cars[:, p, BOOST], np.nan_to_num(cars[:, p, IN_BOOST]))
            held.append(h)
            rebuilt.append(r)
    held, rebuilt = np.concatenate(held), np.concatenate(rebuilt)
    print(f"{len(shards)} replays, {len(held):,} held-out updates where the amount fell (boost 0..1)")
    print("| amount shown | mean abs error | median | p90 |")
    print("|---|---|---|---|")
    for name, err in (("held (as the replay shows it)", held), ("rebuilt from the boost flag", rebuilt)):
        print(f"| {name} | {err.mean():.4f} | {np.median(err):.4f} | {np.percentile(err, 90):.4f} |")
    print(f"ratio of mean errors rebuilt / held: {rebuilt.mean() / held.mean():.3f}")


if __name__ == "__main__":
    main()
