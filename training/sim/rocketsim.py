"""RocketSim set-up and the simulator adapters: RocketSim state -> Frames, and -> RLBot v4 GameTickPacket.

Both adapters read the same per-car snapshot (`read_cars`), so the frame built directly and the frame built
through a packet can only differ where the packet itself loses information (tests/test_sources.py).
"""

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import RocketSim as rs
from rlbot.utils.structures.game_data_struct import FieldInfoPacket, GameTickPacket

from bot.constants import BOOST_PAD_RESPAWN_S, NUM_BOOST_PADS, TICK_RATE
from bot.frame import (
    ANG_VEL, BALL_F, BLUE_SCORE, BOOST, CAR_F, DEMOLISHED, FORWARD, FRESH, GAME_F, HAS_FLIP, HAS_JUMP, IS_OVERTIME,
    KICKOFF_PAUSE, ON_GROUND, ORANGE_SCORE, POS, PRESENT, RECORDED_INPUTS, SECONDS_REMAINING, UP, VEL, Frames,
    pad_timers_from_active,
)

_INITIALISED = []  # RocketSim.init may run once per process


def init_rocketsim() -> None:
    """Load the soccar collision meshes that the rlgym-rocket-league package ships (once per process)."""
    if _INITIALISED:
        return
    meshes = importlib.metadata.distribution("rlgym-rocket-league").locate_file(
        "rlgym/rocket_league/sim/collision_meshes")
    try:
        rs.init(str(meshes), silent=True)
    except TypeError:  # older signature without `silent`
        rs.init(str(meshes))
    except RuntimeError as err:  # "Already inited" by another library in this process
        if "Already" not in str(err):
            raise
    _INITIALISED.append(True)


def make_arena(blue: int, orange: int, seed: int = 0) -> rs.Arena:
    """A soccar arena with `blue` + `orange` Octanes on kickoff spawns. Car ids are 1..n, blue first."""
    init_rocketsim()
    arena = rs.Arena(rs.GameMode.SOCCAR)
    for _ in range(blue):
        arena.add_car(rs.Team.BLUE, rs.CarConfig(rs.CarConfig.OCTANE))
    for _ in range(orange):
        arena.add_car(rs.Team.ORANGE, rs.CarConfig(rs.CarConfig.OCTANE))
    arena.reset_kickoff(seed)
    return arena


@dataclass
class GameClock:
    """What RocketSim does not track: the match clock and the kickoff pause (synthesised by the arena)."""

    seconds_remaining: float = 300.0
    kickoff_pause: bool = True
    overtime: bool = False
    round_active: bool = True  # False during the kickoff countdown
    match_ended: bool = False
    elapsed_ticks: int | None = None  # the host's own tick count (countdowns included); None = arena.tick_count

    def seconds_elapsed(self, arena: rs.Arena) -> float:
        return (arena.tick_count if self.elapsed_ticks is None else self.elapsed_ticks) / TICK_RATE


def read_cars(arena: rs.Arena) -> tuple[np.ndarray, np.ndarray, list]:
    """(P, CAR_F) float32 car rows, (P,) int8 teams and the raw CarStates, in `arena.get_cars()` order."""
    cars = arena.get_cars()
    rows = np.zeros((len(cars), CAR_F), np.float32)
    states = [c.get_state() for c in cars]
    for i, s in enumerate(states):
        rows[i, POS] = s.pos.as_numpy()
        rows[i, VEL] = s.vel.as_numpy()
        rows[i, ANG_VEL] = s.ang_vel.as_numpy()
        rows[i, FORWARD] = s.rot_mat.forward.as_numpy()
        rows[i, UP] = s.rot_mat.up.as_numpy()
        rows[i, BOOST] = s.boost / 100.0
        rows[i, DEMOLISHED] = s.is_demoed
        rows[i, ON_GROUND] = s.is_on_ground
        rows[i, HAS_JUMP] = not s.has_jumped
        rows[i, HAS_FLIP] = not (s.has_double_jumped or s.has_flipped)  # as RLBot v4 reports it
    rows[:, FRESH] = 1.0
    rows[:, PRESENT] = 1.0
    rows[:, RECORDED_INPUTS] = np.nan
    teams = np.array([int(c.team) for c in cars], np.int8)
    return rows, teams, states


def read_ball(arena: rs.Arena) -> np.ndarray:
    """(BALL_F,) float32 ball row."""
    b = arena.ball.get_state()
    row = np.zeros(BALL_F, np.float32)
    row[POS] = b.pos.as_numpy()
    row[VEL] = b.vel.as_numpy()
    row[ANG_VEL] = b.ang_vel.as_numpy()
    row[FORWARD] = b.rot_mat.forward.as_numpy()
    row[UP] = b.rot_mat.up.as_numpy()
    row[-1] = 1.0  # BALL_FRESH
    return row


def read_pads(arena: rs.Arena) -> tuple[np.ndarray, np.ndarray]:
    """(K,) bool active flags and (K,) float32 seconds since pickup, in the standard pad order."""
    states = [p.get_state() for p in arena.get_boost_pads()]
    active = np.array([s.is_active for s in states], bool)
    since_pickup = BOOST_PAD_RESPAWN_S - np.array([s.cooldown for s in states], np.float32)
    return active, np.where(active, 0.0, since_pickup).astype(np.float32)


def sim_to_frame(arena: rs.Arena, clock: GameClock | None = None) -> Frames:
    """The arena's current moment as Frames with T = 1 (cars in `get_cars()` order)."""
    clock = clock or GameClock()
    cars, teams, _ = read_cars(arena)
    active, since = read_pads(arena)
    game = np.zeros((1, GAME_F), np.float32)
    game[0, BLUE_SCORE] = arena.blue_score
    game[0, ORANGE_SCORE] = arena.orange_score
    game[0, SECONDS_REMAINING] = clock.seconds_remaining
    game[0, KICKOFF_PAUSE] = clock.kickoff_pause
    game[0, IS_OVERTIME] = clock.overtime
    return Frames(time_t=np.array([clock.seconds_elapsed(arena)]), game_tf=game, ball_tf=read_ball(arena)[None],
                  cars_tpf=cars[None], pads_tk=pad_timers_from_active(active, since)[None], team_p=teams)


def field_info_packet(arena: rs.Arena) -> FieldInfoPacket:
    """The FieldInfoPacket RLBot would send for this arena (34 pads in the standard order)."""
    info = FieldInfoPacket()
    pads = arena.get_boost_pads()
    info.num_boosts = len(pads)
    for j, pad in enumerate(pads):
        pos = pad.get_pos()
        info.boost_pads[j].location.x, info.boost_pads[j].location.y, info.boost_pads[j].location.z = pos.x, pos.y, pos.z
        info.boost_pads[j].is_full_boost = pad.is_big
    return info


def _set_vec(target, values) -> None:
    target.x, target.y, target.z = float(values[0]), float(values[1]), float(values[2])


def sim_to_packet(arena: rs.Arena, clock: GameClock, names: list[str] | None = None,
                  packet: GameTickPacket | None = None) -> GameTickPacket:
    """The GameTickPacket RLBot v4 would send for the arena's current tick (simulator.md §6)."""
    pkt = packet if packet is not None else GameTickPacket()
    cars = arena.get_cars()
    pkt.num_cars = len(cars)
    for i, car in enumerate(cars):
        s = car.get_state()
        info = pkt.game_cars[i]
        _set_vec(info.physics.location, s.pos.as_numpy())
        _set_vec(info.physics.velocity, s.vel.as_numpy())
        _set_vec(info.physics.angular_velocity, s.ang_vel.as_numpy())
        angle = s.rot_mat.as_angle()
        info.physics.rotation.pitch, info.physics.rotation.yaw, info.physics.rotation.roll = angle.pitch, angle.yaw, angle.roll
        info.has_wheel_contact = s.is_on_ground
        info.jumped = s.has_jumped
        info.double_jumped = s.has_double_jumped or s.has_flipped  # in v4 a dodge also sets it
        info.is_demolished = s.is_demoed
        info.is_super_sonic = s.is_supersonic
        info.boost = int(round(s.boost))
        info.team = int(car.team)
        info.is_bot = True
        info.name = names[i] if names else f"car{car.id}"
        info.spawn_id = car.id
        info.hitbox.length, info.hitbox.width, info.hitbox.height = 118.0, 84.2, 36.2  # Octane
        info.score_info.goals = car.goals
        info.score_info.demolitions = car.demos
        info.score_info.saves = car.saves
        info.score_info.shots = car.shots
    b = arena.ball.get_state()
    _set_vec(pkt.game_ball.physics.location, b.pos.as_numpy())
    _set_vec(pkt.game_ball.physics.velocity, b.vel.as_numpy())
    _set_vec(pkt.game_ball.physics.angular_velocity, b.ang_vel.as_numpy())
    ball_angle = b.rot_mat.as_angle()
    rot = pkt.game_ball.physics.rotation
    rot.pitch, rot.yaw, rot.roll = ball_angle.pitch, ball_angle.yaw, ball_angle.roll
    active, since = read_pads(arena)
    pkt.num_boost = NUM_BOOST_PADS
    for j in range(NUM_BOOST_PADS):
        pkt.game_boosts[j].is_active = bool(active[j])
        pkt.game_boosts[j].timer = float(since[j])  # v4: seconds since pickup, 0 while active
    gi = pkt.game_info
    gi.seconds_elapsed = clock.seconds_elapsed(arena)
    gi.frame_num = round(gi.seconds_elapsed * TICK_RATE)
    gi.game_time_remaining = max(clock.seconds_remaining, 0.0)
    gi.is_overtime = clock.overtime
    gi.is_unlimited_time = False
    gi.is_round_active = clock.round_active
    gi.is_kickoff_pause = clock.kickoff_pause
    gi.is_match_ended = clock.match_ended
    gi.world_gravity_z = -650.0
    gi.game_speed = 1.0
    pkt.teams[0].team_index, pkt.teams[0].score = 0, arena.blue_score
    pkt.teams[1].team_index, pkt.teams[1].score = 1, arena.orange_score
    pkt.num_teams = 2
    return pkt
