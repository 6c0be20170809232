"""Shared test helpers: where ../shared lives, and small simulated scenes."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REPLAYS = SHARED / "replays"
NEXTO_MODEL = SHARED / "teachers" / "nexto" / "nexto-model.pt"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def random_controls(rng: np.random.Generator):
    """RocketSim controls with human-ish button rates (keywords only: the positional order is not the doc's)."""
    import RocketSim as rs
    axes = rng.uniform(-1, 1, 5)
    return rs.CarControls(throttle=axes[0], steer=axes[1], pitch=axes[2], yaw=axes[3], roll=axes[4],
                          jump=bool(rng.random() < 0.08), boost=bool(rng.random() < 0.4),
                          handbrake=bool(rng.random() < 0.1))


def play_random(arena, rng: np.random.Generator, ticks: int, hold: int = 12):
    """Yield after every tick of random play (controls re-drawn every `hold` ticks)."""
    for t in range(ticks):
        if t % hold == 0:
            for car in arena.get_cars():
                car.set_controls(random_controls(rng))
        arena.step(1)
        yield t


@pytest.fixture(scope="session")
def labelled_replay(tmp_path_factory):
    """A tiny end-to-end chain: random-teacher shards -> 10-step IDM -> one parsed 1v1 replay -> its labels.
    Returns (parsed replays dir, labels dir, idm model dir)."""
    import subprocess
    import sys
    if not REPLAYS.is_dir():
        pytest.skip("../shared/replays is absent")
    base = tmp_path_factory.mktemp("chain")

    def run(*args):
        subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, check=True, capture_output=True,
                       timeout=600)

    run("simulate", "--teacher", "random", "--seconds", "80", "--arenas", "2", "--shard-seconds", "20",
        "--workers", "1", "--out", str(base / "sim"), "--no-progress")
    run("idm-train", "--sim", str(base / "sim"), "--out", str(base / "idm"), "--half-width", "4", "--hidden", "32",
        "--layers", "2", "--batch-size", "32", "--steps", "10", "--eval-every", "10", "--val-samples", "64",
        "--threads", "1")
    run("replays", "--out", str(base / "replays"), str(REPLAYS / "good" / "post-eac-ranked-duel-2026-04-28-a.replay"))
    run("label", "--checkpoint", str(base / "idm" / "model"), "--replays", str(base / "replays"), "--out",
        str(base / "labels"), "--workers", "1", "--no-progress")
    return base / "replays", base / "labels", base / "idm" / "model"
