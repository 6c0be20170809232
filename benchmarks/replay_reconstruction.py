"""How well the policy's training samples rebuild what a replay holds between its updates: the boost amount
(`reconstruct_boost`) and the positions of the ball and the cars (`extrapolate_held`).

Replays never record the truth between updates, so updates are held out: every other update of each body is
removed (the value before it is held on, as if it had never come), the value is rebuilt from the remaining ones,
and the rebuilt value on each removed update's frame is compared with what that update recorded. Removing
updates doubles the gaps, so the figures are pessimistic. Peer, same frames: the held value a replay shows.
Boost: only updates where the amount fell are scored (a rise is a pad pickup, which neither can foresee).
Positions: removed samples in kickoff-to-goal play of present, not demolished bodies.

    PYTHONPATH=. .venv/bin/python benchmarks/replay_reconstruction.py out/pipeline-cpu/replays \
        --plot docs/boost-reconstruction.png
"""

import argparse
from pathlib import Path

import numpy as np

from bot.frame import BALL_FRESH, BOOST, DEMOLISHED, FRESH, IN_BOOST, POS, PRESENT, VEL
from training.replays.frames import extrapolate_held, hold, reconstruct_boost
from training.storage import read_shard


def boost_errors(boost_t: np.ndarray, boosting_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def position_errors(pos_t3: np.ndarray, vel_t3: np.ndarray, fresh_t: np.ndarray, scored_t: np.ndarray,
                    time_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (uu) from the held and the extrapolated position to each removed sample of one body."""
    samples = np.flatnonzero(fresh_t)
    if len(samples) < 2:
        return np.zeros(0), np.zeros(0)
    removed, kept = samples[1::2], samples[0::2]
    keep_t = np.zeros(len(time_t), bool)
    keep_t[kept] = True
    held_pos = hold(kept, pos_t3[kept], len(time_t))
    held_vel = hold(kept, vel_t3[kept], len(time_t))
    moved = extrapolate_held(held_pos[:, None], held_vel[:, None], keep_t[:, None], time_t)[:, 0]
    removed = removed[scored_t[removed] & (removed > kept[0])]
    truth = pos_t3[removed]
    return np.linalg.norm(held_pos[removed] - truth, axis=1), np.linalg.norm(moved[removed] - truth, axis=1)


def plot_boost(arrays: dict, path: Path, seconds: float = 20.0) -> None:
    """The held and the rebuilt boost amount of the car that boosts most in one stretch of play."""
    from training.plots import plt
    cars = np.asarray(arrays["cars_tpf"], np.float64)
    time_t, in_play = np.asarray(arrays["time_t"]), np.asarray(arrays["segment_t"]) >= 0
    boosting = np.nan_to_num(cars[..., IN_BOOST]) > 0.5
    n = int(seconds * 30)
    start = int(np.argmax([(boosting[t:t + n] & in_play[t:t + n, None]).sum() for t in range(0, len(time_t) - n, 30)]))
    window = slice(start * 30, start * 30 + n)
    p = int(boosting[window].sum(0).argmax())
    rebuilt = reconstruct_boost(cars[:, p:p + 1, BOOST], cars[:, p:p + 1, IN_BOOST])[:, 0]
    t = time_t[window] - time_t[window][0]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.fill_between(t, 0, 100, where=boosting[window, p], color="gold", alpha=0.35, lw=0,
                    label="replay records boosting")
    ax.step(t, 100 * cars[window, p, BOOST], where="post", color="0.4", label="boost as the replay holds it")
    ax.plot(t, 100 * rebuilt[window], color="tab:red", label="rebuilt (policy training samples)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("boost")
    ax.set_ylim(0, 102)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[tuple[str, np.ndarray]], unit: str) -> None:
    print(f"| {unit} | mean abs error | median | p90 |")
    print("|---|---|---|---|")
    for name, err in rows:
        print(f"| {name} | {err.mean():.4g} | {np.median(err):.4g} | {np.percentile(err, 90):.4g} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("replays", type=Path, help="parsed replays (`python -m training replays` output)")
    ap.add_argument("--plot", type=Path, help="also draw one car's held and rebuilt boost to this PNG")
    args = ap.parse_args()
    errors: dict[str, list[np.ndarray]] = {k: [] for k in ("boost held", "boost rebuilt", "car held", "car moved",
                                                            "ball held", "ball moved")}
    shards = sorted(p for p in args.replays.iterdir() if (p / "meta.json").is_file())
    for shard in shards:
        arrays = read_shard(shard)[0]
        cars, ball = np.asarray(arrays["cars_tpf"], np.float64), np.asarray(arrays["ball_tf"], np.float64)
        time_t, in_play = np.asarray(arrays["time_t"]), np.asarray(arrays["segment_t"]) >= 0
        for p in range(cars.shape[1]):
            for key, err in zip(("boost held", "boost rebuilt"),
                                boost_errors(cars[:, p, BOOST], np.nan_to_num(cars[:, p, IN_BOOST]))):
                errors[key].append(err)
            scored = in_play & (cars[:, p, PRESENT] > 0.5) & (cars[:, p, DEMOLISHED] < 0.5)
            for key, err in zip(("car held", "car moved"), position_errors(
                    cars[:, p, POS], cars[:, p, VEL], cars[:, p, FRESH] > 0.5, scored, time_t)):
                errors[key].append(err)
        for key, err in zip(("ball held", "ball moved"), position_errors(
                ball[:, POS], ball[:, VEL], ball[:, BALL_FRESH] > 0.5, in_play, time_t)):
            errors[key].append(err)
    err = {k: np.concatenate(v) for k, v in errors.items()}
    print(f"{len(shards)} replays; held-out updates: boost {len(err['boost held']):,} (where the amount fell), "
          f"car positions {len(err['car held']):,}, ball positions {len(err['ball held']):,}\n")
    table([("boost held (as the replay shows it)", err["boost held"]),
           ("boost rebuilt from the boost flag", err["boost rebuilt"])], "boost 0..1")
    print()
    table([("car position held", err["car held"]), ("car position moved by its velocity", err["car moved"]),
           ("ball position held", err["ball held"]), ("ball position moved by its velocity", err["ball moved"])],
          "uu")
    if args.plot:
        plot_boost(read_shard(shards[0])[0], args.plot)
        print(f"picture: {args.plot}")


if __name__ == "__main__":
    main()
