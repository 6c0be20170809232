"""The bot package: loads through rlbot's bot-config bundle like RLBotGUI, stays light, never raises."""

import json
import subprocess
import sys

from tests.conftest import ROOT

LOAD_AND_PLAY = r"""
import json, math, sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, ROOT)
from rlbot.parsing.bot_config_bundle import get_bot_config_bundle
from rlbot.utils.class_importer import import_agent
from rlbot.agents.base_agent import SimpleControllerState
from rlbot.utils.structures.game_data_struct import GameTickPacket
bundle = get_bot_config_bundle(ROOT + "/bot.cfg")
assert bundle.get_logo_file() and bundle.requirements_file
tick_rate = bundle.base_agent_config.getint("Locations", "maximum_tick_rate_preference")
agent_class = import_agent(bundle.python_file).get_loaded_class()
from training.sim.rocketsim import GameClock, make_arena, sim_to_packet, field_info_packet
from training.sim.drivers import prepare_agent
calls = 0
for size in (1, 2, 3):
    arena = make_arena(size, size, seed=size)
    packet = sim_to_packet(arena, GameClock())
    for index in range(2 * size):
        agent = agent_class(bundle.name, int(index >= size), index)
        prepare_agent(agent, field_info_packet(arena), [packet])
        for t in range(5):
            out = agent.get_output(packet)
            assert isinstance(out, SimpleControllerState)
            calls += 1
# broken packets: no cars, our index out of range, NaN physics
agent = agent_class(bundle.name, 0, 3)
prepare_agent(agent, field_info_packet(arena), [packet])
broken = [GameTickPacket(), sim_to_packet(make_arena(1, 1), GameClock())]
nan = sim_to_packet(make_arena(2, 2), GameClock())
nan.game_cars[3].physics.location.x = float("nan")
broken.append(nan)
for p in broken:
    out = agent.get_output(p)
    assert isinstance(out, SimpleControllerState) and not math.isnan(out.steer)
print(json.dumps({"name": bundle.name, "class": agent_class.__name__, "calls": calls, "tick_rate": tick_rate,
                  "module": agent_class.__module__}))
"""


def test_bot_cfg_loads_in_a_subprocess_and_acts_for_every_seat():
    proc = subprocess.run([sys.executable, "-c", f"ROOT = {str(ROOT)!r}\n" + LOAD_AND_PLAY],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info == {"name": "RL-RPT", "class": "RLRPTBot", "calls": 5 * (2 + 4 + 6), "tick_rate": 120,
                    "module": "bot"}


def test_bot_package_stays_light_and_never_imports_training():
    code = ("import sys, time; t = time.perf_counter(); import torch; t_torch = time.perf_counter();"
            "import bot.bot, bot.actions, bot.frame, bot.packet; t_bot = time.perf_counter();"
            "heavy = [m for m in ('training', 'RocketSim', 'subtr_actor', 'matplotlib', 'tensorboard')"
            " if m in sys.modules]; print(heavy, t_bot - t_torch)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    heavy, seconds = proc.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]"
    assert float(seconds) < 1.0  # the bot's own modules load in a fraction of a second after torch


def test_no_module_in_bot_imports_training():
    for path in (ROOT / "bot").glob("*.py"):
        text = path.read_text()
        assert "import training" not in text and "from training" not in text, path


def test_bot_cfg_model_parameter_picks_the_policy_folder(tmp_path):
    """bot.cfg's `model` names the policy folder, so a retrained policy plays without replacing models/bc."""
    import torch
    from rlbot.agents.base_agent import BOT_CONFIG_AGENT_HEADER
    from rlbot.parsing.bot_config_bundle import get_bot_config_bundle

    import bot.bot as bot_module
    from bot.policy import Policy, PolicyConfig
    from training.checkpoint import export_model
    from training.sim.drivers import prepare_agent

    torch.manual_seed(1)
    export_model(tmp_path / "mine", Policy(PolicyConfig(hidden=16, layers=1)), {"model": {"hidden": 16, "layers": 1}},
                 "test policy", half=True)
    cfg = (ROOT / "bot.cfg").read_text().replace("./", str(ROOT) + "/")
    cfg = cfg.replace("[Bot Parameters]", f"[Bot Parameters]\nmodel = {tmp_path / 'mine'}")
    (tmp_path / "bot.cfg").write_text(cfg)
    bundle = get_bot_config_bundle(str(tmp_path / "bot.cfg"))
    config = bot_module.RLRPTBot.base_create_agent_configurations()
    config.parse_file(bundle.config_obj, config_directory=bundle.config_directory)
    agent = bot_module.RLRPTBot("mine", 0, 0)
    agent.load_config(config.get_header(BOT_CONFIG_AGENT_HEADER))
    prepare_agent(agent, __import__("bot.packet", fromlist=["x"]).default_field_info(), [None])
    assert agent.model_dir == tmp_path / "mine"
    assert agent.policy is not None and agent.policy.head[0].shape == (16, 90)  # the 16-wide test policy (in, out)

    default = bot_module.RLRPTBot("default", 0, 0)  # no `model` line: the bundled policy
    config = bot_module.RLRPTBot.base_create_agent_configurations()
    config.parse_file(get_bot_config_bundle(str(ROOT / "bot.cfg")).config_obj, config_directory=str(ROOT))
    default.load_config(config.get_header(BOT_CONFIG_AGENT_HEADER))
    assert default.model_dir == ROOT / "models" / "bc"
