"""Agent specs for the arena: `baseline:chaser`, `baseline:random`, `nexto[:MODEL_PATH]`, or a path to a bot.cfg.

Our own Python agents run in-process (fast); a bot.cfg is loaded in a child process the way RLBotGUI loads it.
"""

from collections.abc import Callable
from pathlib import Path

from training.sim.drivers import Driver, InProcessDriver, SubprocessDriver

BASELINES = ("chaser", "random")


def driver_factory(spec: str) -> Callable[[], Driver]:
    """A function that makes one Driver per car for `spec`; raises ValueError with the accepted forms."""
    if spec.startswith("baseline:"):
        from training.baselines import ChaserAgent, RandomAgent
        kind = spec.split(":", 1)[1]
        classes = {"chaser": ChaserAgent, "random": RandomAgent}
        if kind not in classes:
            raise ValueError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}")
        return lambda: InProcessDriver(classes[kind], f"{kind}")
    if spec == "nexto" or spec.startswith("nexto:"):
        from training.teachers.nexto import DEFAULT_NEXTO_PATH, NextoAgent
        path = Path(spec.split(":", 1)[1]) if ":" in spec else DEFAULT_NEXTO_PATH
        return lambda: InProcessDriver(lambda name, team, index: NextoAgent(name, team, index, model_path=path),
                                       "nexto")
    if spec.endswith(".cfg"):
        if not Path(spec).is_file():
            raise ValueError(f"bot config {spec!r} does not exist")
        return lambda: SubprocessDriver(spec)
    raise ValueError(f"agent spec {spec!r} not understood: use baseline:chaser, baseline:random, "
                     "nexto[:MODEL_PATH] or a path to a bot.cfg")
