"""RocketSim set-up and the simulator adapters: RocketSim state -> Frames, and -> RLBot v4 GameTickPacket.

The packet is written from the very Frames `sim_to_frame` returns (bot.packet.frames_to_packet), so the frame
built directly and the frame built through a packet can only differ where the packet itself loses information
(tests/test_sources.py).
"""

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import RocketSim as rs
from rlbot.utils.structures.game_data_struct import FieldInfoPacket, GameTickPacket

from bot.actions import (
    DODGE_CANCEL_BY_PITCH_DOWN, DODGE_CANCEL_BY_PITCH_UP, DODGE_SIDE, NO_FLIP, PITCH_LOCKED,
)
from bot.constants import BOOST_PAD_RESPAWN_S, TICK_RATE, TICKS_PER_FRAME
from bot.frame import (
    BALL_F, BALL_FRESH, BLUE_SCORE, BOOST, CAR_F, DEMOLISHED, FRESH, GAME_F, HAS_FLIP, HAS_JUMP,
    IS_OVERTIME, KICKOFF_PAUSE, ON_GROUND, ORANGE_SCORE, PHYSICS, PRESENT, RECORDED_INPUTS, SECONDS_REMAINING,
    Frames, pad_timers_from_active,
)
from bot.packet import frames_to_packet

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


def read_physics(state) -> np.ndarray:
    """(15,) float32 POS, VEL, ANG_VEL, FORWARD, UP (the PHYSICS columns) of a CarState or BallState."""
    return np.concatenate([state.pos.as_numpy(), state.vel.as_numpy(), state.ang_vel.as_numpy(),
                           state.rot_mat.forward.as_numpy(), state.rot_mat.up.as_numpy()])


def read_cars(arena: rs.Arena) -> tuple[np.ndarray, np.ndarray, list]:
    """(P, CAR_F) float32 car rows, (P,) int8 teams and the raw CarStates, in `arena.get_cars()` order."""
    cars = arena.get_cars()
    rows = np.zeros((len(cars), CAR_F), np.float32)
    states = [c.get_state() for c in cars]
    for i, s in enumerate(states):
        rows[i, PHYSICS] = read_physics(s)
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


FLIP_TORQUE_TIME = 0.65  # s after a dodge starts: its torque turns the car (RocketSim's RLConst)
PITCH_LOCK_END = 0.95  # s after a dodge starts: pitch does nothing until then (torque time + 0.3 in RocketSim 2)
_FRAME_MARGIN = (TICKS_PER_FRAME + 1) / TICK_RATE  # a phase must hold for the whole frame and one tick more


def flip_fields(s: rs.CarState) -> tuple:
    """What `flip_phases` reads of one CarState: flipped (in the air, not auto-flipping), flip time, dodge
    torque x and y."""
    return (s.has_flipped and not s.is_on_ground and not s.is_auto_flipping, s.flip_time, s.flip_rel_torque.x,
            s.flip_rel_torque.y)


def flip_phases(fields_n4: np.ndarray) -> np.ndarray:
    """(n, 4) `flip_fields` of cars at the start of a frame -> (n,) int8: where each is in a flip (bot.actions'
    NO_FLIP ... PITCH_LOCKED). A phase that ends within the frame is NO_FLIP, so no frame mixes two rules."""
    flipped, t, torque_x, torque_y = np.asarray(fields_n4, np.float64).reshape(-1, 4).T
    twisting = (torque_x != 0) | (torque_y != 0)  # a dodge with no direction (a stall) has no torque
    dodging = (flipped > 0) & twisting & (t + _FRAME_MARGIN < FLIP_TORQUE_TIME)
    locked = ((flipped > 0) & ((t >= FLIP_TORQUE_TIME + 1 / TICK_RATE) | ~twisting)
              & (t + _FRAME_MARGIN < PITCH_LOCK_END))
    phase = np.full(len(t), NO_FLIP, np.int8)
    phase[dodging] = np.where(torque_y[dodging] > 0, DODGE_CANCEL_BY_PITCH_UP,
                              np.where(torque_y[dodging] < 0, DODGE_CANCEL_BY_PITCH_DOWN, DODGE_SIDE))
    phase[locked] = PITCH_LOCKED
    return phase


def read_ball(arena: rs.Arena) -> np.ndarray:
    """(BALL_F,) float32 ball row."""
    b = arena.ball.get_state()
    row = np.zeros(BALL_F, np.float32)
    row[PHYSICS] = read_physics(b)
    row[BALL_FRESH] = 1.0
    return row


def read_pads(arena: rs.Arena) -> tuple[np.ndarray, np.ndarray]:
    """(K,) bool active flags and (K,) float32 seconds since pickup, in the standard pad order."""
    states = [p.get_state() for p in arena.get_boost_pads()]
    active = np.array([s.is_active for s in states], bool)
    since_pickup = BOOST_PAD_RESPAWN_S - np.array([s.cooldown for s in states], np.float32)
    return active, np.where(active, 0.0, since_pickup).astype(np.float32)


# columns of the float32 rows that RocketSim's Arena.get_gym_state() returns (its docstring lists them all)
GYM_CAR_ID, GYM_CAR_DEMOED, GYM_CAR_ON_GROUND, GYM_CAR_BOOST = 0, 7, 8, 10  # boost 0..100
GYM_CAR_PHYSICS = np.r_[11:14, 18:21, 21:24, 24:27, 30:33]  # pos, vel, ang_vel, forward, up: our PHYSICS order
GYM_BALL_PHYSICS = np.r_[0:3, 7:10, 10:13, 13:16, 19:22]
# RocketSim's soccar respawn spots of the blue team (x, y, z) and car yaws; orange's are mirrored in y, yaw + pi
RESPAWN_SPOTS = np.array([(x, y, rs.RLConst.CAR_RESPAWN_Z) for x, y, _ in rs.RLConst.CAR_RESPAWN_LOCATIONS_SOCCAR])
RESPAWN_YAWS = [yaw for _, _, yaw in rs.RLConst.CAR_RESPAWN_LOCATIONS_SOCCAR]
SPOT_CLEARANCE = 250.0  # uu: a car centre closer than this to a respawn spot blocks it (an Octane is ~120 long)


class BatchReader:
    """Steps G arenas and reads their cars, ball and pads into (G, P, CAR_F), (G, BALL_F), (G, K) arrays.

    Why: `read_cars`/`read_ball`/`read_pads` cost about as much as the physics step (a numpy write per field
    and car, a state object per pad). Here each arena gives one `get_gym_state()` (float32 rows of every car,
    the ball and the pad flags), each car one `get_state()` for what that lacks (jump/flip flags, applied
    controls), inactive pads one `get_state()` for their cooldown, and the rest is whole-array numpy over all
    arenas. The values are bit-identical to those functions' (tests/test_simulate.py).
    `slots[g]` is the row in P of each car of arena g, in `get_cars()` order.

    Demolished cars: RocketSim respawns them itself when their countdown (`demo_respawn_timer`, 3 s as in RL)
    ends, but on a spot drawn from an RNG we cannot seed, so a run with a demolition would not repeat. `step`
    takes that respawn over at the very same tick (`advance`, `_respawn`).
    """

    def __init__(self, arenas: list[rs.Arena], slots: list[np.ndarray], respawn_rng: np.random.Generator):
        self.arenas = arenas
        self.cars = [a.get_cars() for a in arenas]  # the Car objects live as long as their arena
        self.pads = [a.get_boost_pads() for a in arenas]
        self.slots = [np.asarray(s, np.int64) for s in slots]
        self.car_ids = [np.array([c.id for c in cars], np.float32) for cars in self.cars]
        self.respawn_rng = respawn_rng
        self.demoed = np.zeros(len(arenas), bool)  # arena had a demolished car at its last read
        # each car's flip phase (bot.actions) at the last read, by slot as the car rows
        self.flip_phase_gp = np.zeros((len(arenas), 1 + max(int(s.max()) for s in self.slots)), np.int8)

    def step(self, ticks: int, cars_gpf: np.ndarray, ball_gf: np.ndarray, pads_gk: np.ndarray) -> np.ndarray:
        """Step every arena `ticks` ticks, then as `read` for all of them. Each arena is read right after its
        step, while its memory is still in cache (stepping all, then reading all made the reads ~2x slower)."""
        every = list(range(len(self.arenas)))
        return self._fill(every, [self._fetch(g, ticks) for g in every], cars_gpf, ball_gf, pads_gk)

    def read(self, which: list[int], cars_gpf: np.ndarray, ball_gf: np.ndarray, pads_gk: np.ndarray) -> np.ndarray:
        """Overwrite rows `which` of the three arrays; returns (n, 8) float32 controls applied in the last tick
        (`CarState.last_controls`) of the n cars of those arenas, arena by arena in `get_cars()` order."""
        return self._fill(which, [self._fetch(g, 0) for g in which], cars_gpf, ball_gf, pads_gk)

    def _fetch(self, g: int, ticks: int) -> tuple:
        """Arena g after `ticks` more ticks: its gym state, CarStates and (K,) pad cooldowns (0 where active)."""
        if ticks:
            self.advance(g, ticks)
        gym = self.arenas[g].get_gym_state()  # (game, pads, ball, *cars), each row with a 180-degree rotated copy
        pads = self.pads[g]
        cooldown = [0.0 if on else pads[k].get_state().cooldown for k, on in enumerate(gym[1][0].tolist())]
        return gym, [c.get_state() for c in self.cars[g]], cooldown

    def advance(self, g: int, ticks: int) -> None:
        """Step arena g `ticks` ticks; a demolished car whose countdown ends within them is respawned by
        `_respawn` after the very tick in which RocketSim would have respawned it."""
        arena = self.arenas[g]
        due = []  # (ticks from now to RocketSim's own respawn, car)
        if self.demoed[g]:
            for car in self.cars[g]:
                state = car.get_state()
                left = round(state.demo_respawn_timer * TICK_RATE)  # RocketSim respawns in the left-th tick
                if state.is_demoed and left <= ticks:
                    state.demo_respawn_timer += 1.0  # hold it past this step: RocketSim must not respawn it
                    car.set_state(state)
                    due.append((left, car))
        done = 0
        for left, car in sorted(due, key=lambda d: d[0]):
            if left > done:
                arena.step(left - done)
                done = left
            self._respawn(g, car)
        if ticks > done:
            arena.step(ticks - done)

    def _respawn(self, g: int, car: rs.Car) -> None:
        """What `Car.respawn` does (bit-identical state), on one of the team's 4 spots drawn from `respawn_rng`
        among those no other car blocks: RocketSim draws blindly, and two cars stacked on one spot collide
        differently from run to run."""
        blue = car.team == rs.Team.BLUE
        spots = RESPAWN_SPOTS * (1.0, 1.0 if blue else -1.0, 1.0)  # the table is blue's; orange's is mirrored in y
        states = [c.get_state() for c in self.cars[g] if c is not car]
        others = np.array([s.pos.as_numpy() for s in states if not s.is_demoed]).reshape(-1, 3)
        free = (np.linalg.norm(spots[:, None] - others[None], axis=2) > SPOT_CLEARANCE).all(1)
        k = int(self.respawn_rng.choice(np.nonzero(free)[0] if free.any() else len(spots)))
        state = rs.CarState()
        state.pos = rs.Vec(*spots[k].tolist())
        state.rot_mat = rs.Angle(RESPAWN_YAWS[k] + (0.0 if blue else np.pi), 0.0, 0.0).as_rot_mat()
        state.boost = self.arenas[g].get_mutator_config().car_spawn_boost_amount  # 33.3, as in RL
        car.set_state(state)

    def _fill(self, which: list[int], fetched: list[tuple], cars_gpf: np.ndarray, ball_gf: np.ndarray,
              pads_gk: np.ndarray) -> np.ndarray:
        car = np.array([c for gym, _, _ in fetched for c in gym[3:]])[:, 0]  # (n, 36)
        if not np.array_equal(car[:, GYM_CAR_ID], np.concatenate([self.car_ids[g] for g in which])):
            raise RuntimeError("get_gym_state() lists the cars in another order than get_cars()")
        states = [s for _, states_of, _ in fetched for s in states_of]
        extra = np.array([(s.has_jumped, s.has_double_jumped or s.has_flipped, *_controls(s.last_controls),
                           *flip_fields(s)) for s in states], np.float32)  # (n, 14)

        rows = np.empty((len(car), CAR_F), np.float32)
        rows[:, PHYSICS] = car[:, GYM_CAR_PHYSICS]
        rows[:, BOOST] = car[:, GYM_CAR_BOOST].astype(np.float64) / 100.0  # as read_cars: divided in float64
        rows[:, DEMOLISHED], rows[:, ON_GROUND] = car[:, GYM_CAR_DEMOED], car[:, GYM_CAR_ON_GROUND]
        rows[:, HAS_JUMP], rows[:, HAS_FLIP] = 1.0 - extra[:, 0], 1.0 - extra[:, 1]
        rows[:, FRESH], rows[:, PRESENT], rows[:, RECORDED_INPUTS] = 1.0, 1.0, np.nan
        for i in np.nonzero(car[:, GYM_CAR_DEMOED])[0]:  # the gym rows keep a demolished car's body rotation
            rows[i, PHYSICS] = read_physics(states[i])
        g_idx = np.repeat(which, [len(self.slots[g]) for g in which])
        p_idx = np.concatenate([self.slots[g] for g in which])
        self.demoed[which] = False
        self.demoed[g_idx[car[:, GYM_CAR_DEMOED] > 0]] = True
        cars_gpf[which] = 0.0
        cars_gpf[g_idx, p_idx] = rows
        self.flip_phase_gp[which] = NO_FLIP
        self.flip_phase_gp[g_idx, p_idx] = flip_phases(extra[:, 10:])

        ball = np.stack([gym[2][0] for gym, _, _ in fetched])  # (g, 25)
        ball_gf[which, PHYSICS] = ball[:, GYM_BALL_PHYSICS]
        ball_gf[which, BALL_FRESH] = 1.0

        active = np.stack([gym[1][0] for gym, _, _ in fetched]) > 0  # (g, K)
        cooldown = np.array([c for _, _, c in fetched], np.float32)
        since_pickup = np.where(active, 0.0, BOOST_PAD_RESPAWN_S - cooldown).astype(np.float32)  # as read_pads
        pads_gk[which] = pad_timers_from_active(active, since_pickup)
        return extra[:, 2:10]


def _controls(c: rs.CarControls) -> tuple:
    return c.throttle, c.steer, c.pitch, c.yaw, c.roll, c.jump, c.boost, c.handbrake


def _sim_frame(arena: rs.Arena, clock: GameClock) -> tuple[Frames, list]:
    """The arena's moment as Frames (T = 1) and the raw CarStates it was read from."""
    cars, teams, states = read_cars(arena)
    active, since = read_pads(arena)
    game = np.zeros((1, GAME_F), np.float32)
    game[0, BLUE_SCORE] = arena.blue_score
    game[0, ORANGE_SCORE] = arena.orange_score
    game[0, SECONDS_REMAINING] = clock.seconds_remaining
    game[0, KICKOFF_PAUSE] = clock.kickoff_pause or not clock.round_active  # a kickoff from its countdown on
    game[0, IS_OVERTIME] = clock.overtime
    frames = Frames(time_t=np.array([clock.seconds_elapsed(arena)]), game_tf=game, ball_tf=read_ball(arena)[None],
                    cars_tpf=cars[None], pads_tk=pad_timers_from_active(active, since)[None], team_p=teams)
    return frames, states


def sim_to_frame(arena: rs.Arena, clock: GameClock | None = None) -> Frames:
    """The arena's current moment as Frames with T = 1 (cars in `get_cars()` order)."""
    return _sim_frame(arena, clock or GameClock())[0]


def field_info_packet(arena: rs.Arena) -> FieldInfoPacket:
    """The FieldInfoPacket RLBot would send for this arena (34 pads in the standard order)."""
    info = FieldInfoPacket()
    pads = arena.get_boost_pads()
    info.num_boosts = len(pads)
    for j, pad in enumerate(pads):
        pos = pad.get_pos()
        loc = info.boost_pads[j].location
        loc.x, loc.y, loc.z = pos.x, pos.y, pos.z
        info.boost_pads[j].is_full_boost = pad.is_big
    return info


def sim_to_packet(arena: rs.Arena, clock: GameClock, names: list[str] | None = None,
                  packet: GameTickPacket | None = None) -> GameTickPacket:
    """The GameTickPacket RLBot v4 would send for the arena's current tick (simulator.md §6).

    Goes through the same Frames as `sim_to_frame` (`frames_to_packet`), so the packet can only lose what a
    packet loses; only what Frames do not carry (names, ids, scoreboard, round state) is filled in here."""
    frames, states = _sim_frame(arena, clock)
    pkt = frames_to_packet(frames, 0, packet)
    for i, (car, s) in enumerate(zip(arena.get_cars(), states)):
        info = pkt.game_cars[i]
        info.is_super_sonic = s.is_supersonic
        info.is_bot = True
        info.name = names[i] if names else f"car{car.id}"
        info.spawn_id = car.id
        info.score_info.goals = car.goals
        info.score_info.demolitions = car.demos
        info.score_info.saves = car.saves
        info.score_info.shots = car.shots
    gi = pkt.game_info
    gi.is_round_active = clock.round_active
    gi.is_kickoff_pause = clock.kickoff_pause  # RLBot's flag starts at "go" (the frame's flag covers the countdown)
    gi.is_match_ended = clock.match_ended
    return pkt
