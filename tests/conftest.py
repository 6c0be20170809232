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
