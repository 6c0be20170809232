"""The RLBot v4 agent that bot.cfg names. Runtime path: packet -> Frames -> policy -> 90-action row -> controls.

`get_output` never raises: any internal failure yields neutral controls and one log line per kind of failure.
Until a behaviour-cloning policy is bundled in models/bc/, the bot loads no model and sends neutral controls.
"""

from pathlib import Path

if __name__ == "bot":
    # RLBot's importer loads this file as a top-level module named after the file, "bot", which shadows our
    # package of the same name. Giving this module the package's search path makes `bot.actions` etc. import.
    __path__ = [str(Path(__file__).resolve().parent)]

from rlbot.agents.base_agent import BaseAgent, SimpleControllerState  # noqa: E402
from rlbot.utils.structures.game_data_struct import GameTickPacket  # noqa: E402

from bot.actions import action_to_controls  # noqa: E402
from bot.constants import TICK_RATE  # noqa: E402
from bot.packet import PacketDecoder, default_field_info  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "bc"


def controls_from_action(action: int) -> SimpleControllerState:
    throttle, steer, pitch, yaw, roll, jump, boost, handbrake = action_to_controls(action)
    return SimpleControllerState(steer=steer, throttle=throttle, pitch=pitch, yaw=yaw, roll=roll, jump=jump,
                                 boost=boost, handbrake=handbrake)


class RLRPTBot(BaseAgent):
    """Plays Rocket League with a policy cloned from human replays."""

    def initialize_agent(self) -> None:
        try:
            field_info = self.get_field_info()
        except Exception:  # offline hosts that register no field info
            field_info = None
        self.decoder = PacketDecoder(field_info if field_info is not None and field_info.num_boosts else
                                     default_field_info())
        self.prev_seconds: float | None = None
        self.policy = None
        self.controls = SimpleControllerState()
        self._logged: set[str] = set()
        if not (MODEL_DIR / "model.safetensors").is_file():
            self._log_once("no-model", f"no policy at {MODEL_DIR}; sending neutral controls")

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
        frame = self.decoder.packet_to_frame(packet, ticks)
        if self.policy is None:
            return SimpleControllerState()
        return controls_from_action(self.policy.act(frame, self.index))
