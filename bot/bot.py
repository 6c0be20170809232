"""The RLBot v4 agent that bot.cfg names. Runtime path: packet -> Frames -> observation -> policy -> controls.

The policy decides at the 30 Hz frame rate it was trained on (every 4 ticks) and its action is held in
between (only decision ticks read the packet); RLBot applies it one tick later, as the simulator did for the
teacher. During a kickoff (its countdown included: bot/packet.py), actions without throttle are ruled out
(training dropped standing-still kickoff frames).
`get_output` never raises: any internal failure yields neutral controls and one log line per kind of failure.
"""

import os
from pathlib import Path

if __name__ == "bot":
    # RLBot's importer loads this file as a top-level module named after the file, "bot", which shadows our
    # package of the same name. Giving this module the package's search path makes `bot.actions` etc. import.
    __path__ = [str(Path(__file__).resolve().parent)]

from rlbot.agents.base_agent import BOT_CONFIG_AGENT_HEADER, BaseAgent, SimpleControllerState  # noqa: E402
from rlbot.utils.structures.game_data_struct import GameTickPacket  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bot.actions import ACTION_TABLE, NOOP_ACTION, THROTTLE, action_to_controls  # noqa: E402
from bot.constants import SEED_ENV, TICK_RATE, TICKS_PER_FRAME  # noqa: E402
from bot.frame import KICKOFF_PAUSE  # noqa: E402
from bot.obs import build_obs  # noqa: E402
from bot.packet import PacketDecoder, default_field_info  # noqa: E402
from bot.policy import BotPolicy, load_policy, single_thread_blas  # noqa: E402

BOT_ROOT = Path(__file__).resolve().parent.parent  # the folder holding bot.cfg
DEFAULT_MODEL = "models/bc"  # bot.cfg's `model` when it names none
MODEL_DIR = BOT_ROOT / DEFAULT_MODEL


def controls_from_action(action: int) -> SimpleControllerState:
    throttle, steer, pitch, yaw, roll, jump, boost, handbrake = action_to_controls(action)
    return SimpleControllerState(steer=steer, throttle=throttle, pitch=pitch, yaw=yaw, roll=roll, jump=jump,
                                 boost=boost, handbrake=handbrake)


NO_THROTTLE = ACTION_TABLE[:, THROTTLE] <= 0  # (A,) bool


def agent_rng(index: int) -> np.random.Generator:
    """The agent's sampling stream: from $RLRPT_SEED and the car's index where the arena set one, so an
    evaluation can be replayed; otherwise fresh entropy, so no two real games repeat each other."""
    try:
        seed = int(os.environ[SEED_ENV])
    except (KeyError, ValueError):
        return np.random.default_rng()
    return np.random.default_rng([seed, index])


def sample_action(logits_a: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """The argmax at temperature 0, else a draw from softmax(logits / temperature) (-inf logits never come up).

    What rng.choice(p=softmax) does, without its argument checks: one uniform against the cumulative sum."""
    if temperature <= 0:
        return int(logits_a.argmax())
    z = logits_a.astype(np.float64) / temperature
    cdf = np.cumsum(np.exp(z - z.max()))  # (A,) unnormalised: the uniform is scaled to its total instead
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)


class RLRPTBot(BaseAgent):
    """Plays Rocket League with a policy cloned from human replays."""

    temperature: float = 0.0  # 0 = argmax; > 0 samples from softmax(logits / temperature)
    model_dir: Path | None = None  # bot.cfg's `model`; None = MODEL_DIR

    @staticmethod
    def create_agent_configurations(config) -> None:
        params = config.get_header(BOT_CONFIG_AGENT_HEADER)
        params.add_value("temperature", float, default=0.0,
                         description="0 plays the most likely action; > 0 samples (1 = as trained)")
        params.add_value("model", str, default=DEFAULT_MODEL,
                         description="policy folder (safetensors + config.json): absolute, or relative to the "
                                     "folder of the bundled bot.cfg")

    def load_config(self, config_header) -> None:
        self.temperature = max(0.0, float(config_header.getfloat("temperature")))
        self.model_dir = BOT_ROOT / (config_header.get("model") or DEFAULT_MODEL)  # an absolute path replaces the root

    def initialize_agent(self) -> None:
        try:
            field_info = self.get_field_info()
        except Exception:  # offline hosts that register no field info
            field_info = None
        self.decoder = PacketDecoder(field_info if field_info is not None and field_info.num_boosts else
                                     default_field_info())
        self.prev_seconds: float | None = None
        self.ticks_to_decision = 0
        self.prev_action = NOOP_ACTION
        self.controls = SimpleControllerState()
        self._logged: set[str] = set()
        self.rng = agent_rng(self.index)
        torch.set_num_threads(1)
        if not single_thread_blas():
            self._log_once("blas", "could not hold numpy's BLAS to one thread (threadpoolctl); decisions may be slower")
        self.policy = None
        self.feed_previous_action = True
        self.model_dir = self.model_dir or MODEL_DIR
        if (self.model_dir / "model.safetensors").is_file():
            policy, config = load_policy(self.model_dir)
            self.policy = BotPolicy(policy)
            self.feed_previous_action = config["model"].get("previous_action", True)
        else:
            self._log_once("no-model", f"no policy at {self.model_dir}; sending neutral controls")

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.logger.warning(message)

    def get_output(self, packet: GameTickPacket) -> SimpleControllerState:
        try:
            return self._act(packet)
        except Exception as err:  # a bot must never crash the match
            self._log_once(type(err).__name__, f"get_output failed ({type(err).__name__}: {err}); neutral controls")
            return SimpleControllerState()

    def _act(self, packet: GameTickPacket) -> SimpleControllerState:
        if not 0 <= self.index < packet.num_cars:
            return SimpleControllerState()
        now = packet.game_info.seconds_elapsed
        ticks = 1 if self.prev_seconds is None else max(1, round((now - self.prev_seconds) * TICK_RATE))
        self.prev_seconds = now
        if self.policy is None:
            return SimpleControllerState()
        self.ticks_to_decision -= ticks
        if self.ticks_to_decision <= 0:  # only decisions read the packet: nothing is carried between packets
            self.ticks_to_decision = TICKS_PER_FRAME
            self.prev_action = self.decide(self.decoder.packet_to_frame(packet))
            self.controls = controls_from_action(self.prev_action)
        return self.controls

    def decide(self, frame) -> int:
        """One action index for this car from one moment (Frames with T = 1)."""
        glob, others = build_obs(frame.ball_tf, frame.cars_tpf, frame.pads_tk, frame.team_p[None],
                                 np.array([self.index]),
                                 np.array([self.prev_action if self.feed_previous_action else NOOP_ACTION]))
        logits = self.policy(glob[0], others[0])  # (A,)
        if frame.game_tf[0, KICKOFF_PAUSE] > 0:
            logits = np.where(NO_THROTTLE, -np.inf, logits)
        return sample_action(logits, self.temperature, self.rng)
