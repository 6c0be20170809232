"""Drivers run one RLBot v4 agent for the arena, the way RLBot's bot manager would.

`InProcessDriver` hosts a BaseAgent object in this process (our own Python classes: fast). `SubprocessDriver`
loads a bot.cfg the way RLBotGUI does (rlbot's config bundle + class importer) in a child process, because
bots reuse module names (`bot`, `agent`) and rlbot's importer caches the first class it loaded.
Both register the framework services bots expect (field info, match settings, renderer, quick chat, ball
prediction) and sanitise outputs: a bot that raises, returns None or NaN gets neutral controls for that tick.
"""

import abc
import contextlib
import functools
import logging
import math
import multiprocessing as mp
import os
import traceback
import warnings
from pathlib import Path

from rlbot.agents.base_agent import BOT_CONFIG_AGENT_HEADER, BaseAgent, SimpleControllerState
from rlbot.utils.structures.ball_prediction_struct import BallPrediction
from rlbot.utils.structures.game_data_struct import FieldInfoPacket, GameTickPacket

Controls = tuple[float, float, float, float, float, bool, bool, bool]  # throttle steer pitch yaw roll jump boost hb
NEUTRAL: Controls = (0.0, 0.0, 0.0, 0.0, 0.0, False, False, False)
log = logging.getLogger(__name__)


def sanitise(out) -> Controls:
    """SimpleControllerState (or anything) -> clamped controls; NaN or missing values become neutral."""
    if not isinstance(out, SimpleControllerState):
        return NEUTRAL

    def axis(v) -> float:
        try:
            v = float(v)
        except (TypeError, ValueError):
            return 0.0
        return 0.0 if math.isnan(v) else max(-1.0, min(1.0, v))

    return (axis(out.throttle), axis(out.steer), axis(out.pitch), axis(out.yaw), axis(out.roll),
            bool(out.jump), bool(out.boost), bool(out.handbrake))


@functools.cache
def _match_settings():
    """Flatbuffer MatchSettings for a standard soccar match on DFH Stadium (some bots read it)."""
    from rlbot.matchconfig.match_config import MatchConfig, MutatorConfig
    from rlbot.messages.flat.MatchSettings import MatchSettings
    mc = MatchConfig()
    mc.game_map, mc.game_mode, mc.mutators = "DFHStadium", "Soccer", MutatorConfig()
    mc.player_configs = []
    builder = mc.create_flatbuffer()
    return MatchSettings.GetRootAsMatchSettings(builder.Output(), 0)


class BallPredictor:
    """Ball prediction for bots that ask: a ball-only RocketSim arena stepped from the packet's ball (6 s, 60 Hz)."""

    def __init__(self):
        self._arena = None

    def predict(self, packet: GameTickPacket) -> BallPrediction:
        import RocketSim as rs

        from training.sim.rocketsim import init_rocketsim
        if self._arena is None:
            init_rocketsim()
            self._arena = rs.Arena(rs.GameMode.SOCCAR)
        p = packet.game_ball.physics
        state = rs.BallState()
        state.pos = rs.Vec(p.location.x, p.location.y, p.location.z)
        state.vel = rs.Vec(p.velocity.x, p.velocity.y, p.velocity.z)
        state.ang_vel = rs.Vec(p.angular_velocity.x, p.angular_velocity.y, p.angular_velocity.z)
        self._arena.ball.set_state(state)
        pred = BallPrediction()
        pred.num_slices = 360
        t0 = packet.game_info.seconds_elapsed
        for i in range(360):
            self._arena.step(2)
            b = self._arena.ball.get_state()
            s = pred.slices[i]
            s.physics.location.x, s.physics.location.y, s.physics.location.z = b.pos.x, b.pos.y, b.pos.z
            s.physics.velocity.x, s.physics.velocity.y, s.physics.velocity.z = b.vel.x, b.vel.y, b.vel.z
            s.game_seconds = t0 + (i + 1) / 60.0
        return pred


def prepare_agent(agent: BaseAgent, field_info: FieldInfoPacket, packet_ref: list) -> None:
    """Register the services RLBot's bot manager injects, then `initialize_agent()`."""
    from rlbot.utils.rendering.rendering_manager import DummyRenderer, RenderingManager
    predictor = BallPredictor()
    agent._register_field_info(lambda: field_info)
    agent._register_match_settings_func(_match_settings)
    agent._set_renderer(DummyRenderer(RenderingManager()))
    agent._register_quick_chat(lambda team_only, quick_chat: None)
    agent._register_ball_prediction_struct(lambda: predictor.predict(packet_ref[0]))
    agent.matchcomms_root = None
    agent.initialize_agent()


@contextlib.contextmanager
def game_seed(seed: int | None):
    """$RLRPT_SEED set to `seed` while an agent is created and initialised (unset for None), then restored.
    Imported here, not at the top: a bot child process must not import our `bot` package before rlbot's
    importer has loaded bot.py under that very name."""
    from bot.constants import SEED_ENV
    old = os.environ.pop(SEED_ENV, None)
    if seed is not None:
        os.environ[SEED_ENV] = str(seed)
    try:
        yield
    finally:
        os.environ.pop(SEED_ENV, None)
        if old is not None:
            os.environ[SEED_ENV] = old


class Driver(abc.ABC):
    """One agent in one game. `send` hands over a packet; `receive` returns that tick's controls."""

    name: str

    @abc.abstractmethod
    def start(self, team: int, index: int, field_info: FieldInfoPacket, seed: int | None = None) -> None:
        """Create a fresh agent for a new game in packet slot `index`; `seed` reaches it as $RLRPT_SEED (our
        agents draw their random numbers from it and their index: bot.bot.agent_rng)."""

    @abc.abstractmethod
    def send(self, packet: GameTickPacket) -> None: ...

    @abc.abstractmethod
    def receive(self) -> Controls: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most drivers hold nothing
        """Release processes or files (nothing by default)."""


class InProcessDriver(Driver):
    """Hosts `agent_factory(name, team, index)` in this process."""

    def __init__(self, agent_factory, name: str):
        self.agent_factory, self.name = agent_factory, name
        self.agent: BaseAgent | None = None
        self._packet = [None]
        self._out: Controls = NEUTRAL
        self._errors = 0

    def start(self, team: int, index: int, field_info: FieldInfoPacket, seed: int | None = None) -> None:
        with game_seed(seed):
            self.agent = self.agent_factory(self.name, team, index)
            prepare_agent(self.agent, field_info, self._packet)

    def send(self, packet: GameTickPacket) -> None:
        self._packet[0] = packet
        try:
            self._out = sanitise(self.agent.get_output(packet))
        except Exception:  # RLBot logs agent exceptions and carries on; so do we
            self._errors += 1
            if self._errors <= 3:
                log.warning("agent %s raised in get_output:\n%s", self.name, traceback.format_exc())
            self._out = NEUTRAL

    def receive(self) -> Controls:
        return self._out


def _child_main(conn, cfg_path: str) -> None:
    """Child process: load the bot from its bot.cfg like RLBotGUI, then answer packets until told to stop."""
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    from rlbot.parsing.bot_config_bundle import get_bot_config_bundle
    from rlbot.utils.class_importer import import_agent
    try:
        bundle = get_bot_config_bundle(cfg_path)
        agent_class = import_agent(bundle.python_file).get_loaded_class()
    except Exception as err:  # report why the bot cannot load instead of dying silently
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    driver = None
    conn.send(("ready", bundle.name))
    while True:
        msg = conn.recv()
        if msg[0] == "packet":
            driver.send(GameTickPacket.from_buffer_copy(msg[1]))
            conn.send(driver.receive())
        elif msg[0] == "start":
            _, team, index, field_bytes, seed = msg

            def factory(name, team, index):  # as rlbot's setup manager + bot manager do it
                agent = agent_class(name, team, index)
                config = agent_class.base_create_agent_configurations()
                config.parse_file(bundle.config_obj, config_directory=bundle.config_directory)
                agent.load_config(config.get_header(BOT_CONFIG_AGENT_HEADER))
                return agent
            driver = InProcessDriver(factory, bundle.name)
            driver.start(team, index, FieldInfoPacket.from_buffer_copy(field_bytes), seed)
            conn.send("started")
        elif msg[0] == "stop":
            return


class SubprocessDriver(Driver):
    """Runs the bot named by a bot.cfg in its own process (spawned, so it starts clean)."""

    def __init__(self, cfg_path: str | Path):
        cfg_path = Path(cfg_path).resolve()
        if not cfg_path.is_file():
            raise FileNotFoundError(f"bot config not found: {cfg_path}")
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child, str(cfg_path)), daemon=True)
        self._proc.start()
        if not self._conn.poll(120):
            raise TimeoutError(f"{cfg_path}: the bot process did not start within 120 s")
        status, detail = self._conn.recv()
        if status != "ready":
            self.close()
            raise RuntimeError(f"{cfg_path}: the bot failed to load: {detail}")
        self.name = detail

    def start(self, team: int, index: int, field_info: FieldInfoPacket, seed: int | None = None) -> None:
        self._conn.send(("start", team, index, bytes(field_info), seed))
        if self._conn.recv() != "started":
            raise RuntimeError(f"{self.name}: failed to start")

    def send(self, packet: GameTickPacket) -> None:
        self._conn.send(("packet", bytes(packet)))

    def receive(self) -> Controls:
        return self._conn.recv()

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
