"""Teachers that play in simulation to make IDM training data: Nexto (a TorchScript RL bot) and random play.

A teacher drives every car of G arenas stepped in lockstep. The recorder calls `act` once per recorded frame
(every 4 physics ticks) with the G current moments stacked on the T axis of one `Frames` (P = 6 fixed slots,
PRESENT = 0 for empty ones) and applies the returned actions for the next 4 ticks.
"""

from abc import ABC, abstractmethod

import numpy as np

from bot.frame import Frames


class Teacher(ABC):
    name: str = "teacher"

    @abstractmethod
    def start_episodes(self, arenas_g: np.ndarray, frames: Frames, rng: np.random.Generator) -> None:
        """Forget per-car state (held actions, previous actions...) of the arenas where arenas_g (G,) is True."""

    @abstractmethod
    def act(self, frames: Frames, rng: np.random.Generator) -> np.ndarray:
        """(G, P) int64 action indices to hold for the next 4 ticks (values for absent slots are ignored)."""

    def describe(self) -> dict:
        """What to write into the manifest about this teacher."""
        return {"name": self.name}
