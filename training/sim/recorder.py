"""Record one shard of simulated play: G arenas stepped in lockstep, every car at 30 Hz with its applied action.

Per step (4 physics ticks = one recorded frame) every arena's moment is read into fixed 6-slot Frames rows
(3 blue then 3 orange, PRESENT = 0 for empty slots), the teacher picks the actions for all cars at once, the
arenas step 4 ticks, and the label of each car is read back from `CarState.last_controls` (what the simulator
actually applied) with `nearest_action`; it is checked against what was set. Rows are arena-major, so each
arena contributes `steps` consecutive rows and every episode is a contiguous run of rows.

Exact restart: a shard is a pure function of (config, seed, shard index, actions). `replay_shard` re-runs it
with the recorded actions instead of the teacher and must give the recorded frames back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import RocketSim as rs

from bot.actions import (
    ACTION_TABLE, BOOST_BUTTON, NOOP_ACTION, NUM_ACTIONS, NUM_FLIP_PHASES, STEER, THROTTLE, YAW, equivalent_actions,
    nearest_action,
)
from bot.constants import FRAME_RATE, NUM_BOOST_PADS, TICKS_PER_FRAME
from bot.frame import (
    BALL_F, BLUE_SCORE, BOOST, CAR_F, DEMOLISHED, GAME_F, HAS_FLIP, HAS_JUMP, KICKOFF_PAUSE, ON_GROUND, ORANGE_SCORE,
    POS, SECONDS_REMAINING, VEL, Frames,
)
from training.sim.rocketsim import BatchReader, init_rocketsim
from training.sim.start_states import KICKOFF, StartMix, reset_arena
from training.teachers import Teacher

if TYPE_CHECKING:
    from training.simulate import Config

SLOTS = 6  # fixed car slots: 3 blue, then 3 orange
TEAM_P = np.array([0, 0, 0, 1, 1, 1], np.int8)
END_TIME_LIMIT, END_BLUE_GOAL, END_ORANGE_GOAL, END_SHARD = 0, 1, 2, 3  # episode_end_e codes
def _car_controls(r: np.ndarray) -> rs.CarControls:
    return rs.CarControls(throttle=float(r[0]), steer=float(r[1]), pitch=float(r[2]), yaw=float(r[3]),
                          roll=float(r[4]), jump=bool(r[5] > 0), boost=bool(r[6] > 0), handbrake=bool(r[7] > 0))


CONTROLS = [_car_controls(r) for r in ACTION_TABLE]


def make_light_arena(team_size: int, seed: int) -> rs.Arena:
    """A soccar arena with team_size Octanes per side, in RocketSim's LIGHT memory mode.

    HEAVY (the default) makes every arena's broadphase large: with 32 arenas stepped in turn one 4-tick step
    went from 28 us to 48 ms on our machine (cache thrashing); LIGHT stays at ~23 us for any number of arenas.
    """
    init_rocketsim()
    arena = rs.Arena(rs.GameMode.SOCCAR, rs.MemoryWeightMode.LIGHT)
    for team in (rs.Team.BLUE, rs.Team.ORANGE):
        for _ in range(team_size):
            arena.add_car(team, rs.CarConfig(rs.CarConfig.OCTANE))
    arena.reset_kickoff(seed)
    return arena


def slots_for(team_size: int) -> np.ndarray:
    """Slot of each car in `get_cars()` order (blue first): 1v1 -> [0, 3]."""
    return np.concatenate([np.arange(team_size), 3 + np.arange(team_size)])


def pack_equiv(equiv: np.ndarray) -> np.ndarray:
    """(..., 90) bool -> (..., 12) uint8 (bit order big-endian, as np.packbits)."""
    return np.packbits(equiv, axis=-1)


def unpack_equiv(packed: np.ndarray) -> np.ndarray:
    """(..., 12) uint8 -> (..., 90) bool."""
    return np.unpackbits(np.asarray(packed), axis=-1, count=NUM_ACTIONS).astype(bool)


def _equiv_table() -> np.ndarray:
    """(32 * NUM_FLIP_PHASES, A, 12) uint8: the packed equivalence mask of every action, per `equiv_code`.

    Why: `equivalent_actions` builds (cars, 90, 8) arrays every frame, but its answer only depends on the five
    car flags and the flip phase that `equiv_code` packs, so it is evaluated once here, on one car row per code.
    """
    code = np.arange(32 * NUM_FLIP_PHASES)
    flags = code % 32
    rows = np.zeros((len(code), CAR_F), np.float32)
    rows[:, DEMOLISHED] = flags & 1
    rows[:, ON_GROUND] = np.where(flags & 2, 1.0, np.where(flags & 4, 0.0, np.nan))  # neither: unknown (NaN)
    rows[:, BOOST] = np.where(flags & 8, 0.0, 1.0)
    rows[:, HAS_JUMP] = rows[:, HAS_FLIP] = np.where(flags & 16, 0.0, 1.0)
    action = np.tile(np.arange(NUM_ACTIONS), len(code))
    equiv = equivalent_actions(action, np.repeat(rows, NUM_ACTIONS, axis=0), np.repeat(code // 32, NUM_ACTIONS))
    return pack_equiv(equiv).reshape(len(code), NUM_ACTIONS, -1)


def equiv_code(cars_bf: np.ndarray, flip_phase_b: np.ndarray) -> np.ndarray:
    """(B, F) car rows and (B,) flip phases -> (B,) int: what `equivalent_actions` looks at
    (bot/actions.effective_controls)."""
    return ((cars_bf[:, DEMOLISHED] == 1) + 2 * (cars_bf[:, ON_GROUND] == 1) + 4 * (cars_bf[:, ON_GROUND] == 0)
            + 8 * (cars_bf[:, BOOST] <= 0) + 16 * ((cars_bf[:, HAS_JUMP] == 0) & (cars_bf[:, HAS_FLIP] == 0))
            + 32 * np.asarray(flip_phase_b, np.int64))


EQUIV_PACKED = _equiv_table()


def label_actions(applied_b8: np.ndarray, chosen_b: np.ndarray, set_b8: np.ndarray | None = None) -> np.ndarray:
    """(B,) table row of the controls the simulator applied: the chosen action where they equal the controls
    set (`set_b8`, default the chosen rows; analog ones keep their row's label), else `nearest_action`
    (only if something went wrong)."""
    label = np.array(chosen_b, np.int64)
    off = ~(applied_b8 == (ACTION_TABLE[label] if set_b8 is None else set_b8)).all(1)
    if off.any():
        label[off] = nearest_action(applied_b8[off])
    return label


class ReplayTeacher(Teacher):
    """Plays back recorded actions (G, S, P), for exact re-simulation of a shard."""

    name = "replay"

    def __init__(self, actions_gsp: np.ndarray):
        self.actions = np.where(actions_gsp < 0, NOOP_ACTION, actions_gsp).astype(np.int64)
        self.calls = 0

    def start_episodes(self, arenas_g, frames, rng) -> None:
        pass

    def act(self, frames, rng) -> np.ndarray:
        self.calls += 1
        return self.actions[:, self.calls - 1]


GROUND_ROWS = np.arange(NUM_ACTIONS) < 24  # the driving rows: throttle, steer (= yaw), boost, handbrake
ANALOG_MIN = 0.15  # smallest analog scale: above the 0.1 dead zone replays' recorded inputs are read with


def analog_controls(chosen_n: np.ndarray, rng: np.random.Generator, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(n,) chosen rows -> (n, 8) controls to set and (n,) bool "scaled": on a `share` of the ground rows, steer
    and yaw are scaled by one U[ANALOG_MIN, 1] draw and throttle (without boost) by another, as a human's stick
    and trigger often rest partway. The draws come every decision for every car, so the stream does not depend
    on the actions and a re-simulation from the recorded labels draws the same."""
    draw_n3 = rng.random((len(chosen_n), 3))
    controls = ACTION_TABLE[chosen_n].copy()
    scaled = (draw_n3[:, 0] < share) & GROUND_ROWS[chosen_n]
    steer_scale = ANALOG_MIN + (1 - ANALOG_MIN) * draw_n3[:, 1]
    throttle_scale = np.where(controls[:, BOOST_BUTTON] > 0, 1.0, ANALOG_MIN + (1 - ANALOG_MIN) * draw_n3[:, 2])
    controls[scaled, STEER] *= steer_scale[scaled]
    controls[scaled, YAW] *= steer_scale[scaled]
    controls[scaled, THROTTLE] *= throttle_scale[scaled]
    return controls.astype(np.float32), scaled


def shard_rngs(seed: int, shard_index: int) -> tuple[np.random.Generator, ...]:
    """Three independent streams: the world (modes, start states, episode lengths), the teacher, and the spawn
    spots of demolished cars (BatchReader; a stream of its own, so a demolition shifts no other draw)."""
    return tuple(np.random.default_rng([seed, shard_index, k]) for k in range(3))


def run_shard(cfg: Config, shard_index: int, teacher: Teacher,
              probe: Callable[[int, list[rs.Arena]], None] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Simulate one shard; returns its arrays (see docs/simulation.md) and counts for meta.json.

    `probe(step, arenas)`, if given, sees every arena with this step's controls set and before it is stepped
    (benchmarks/idm_physics_equiv.py branches the simulator there); it must leave the arenas as they are."""
    world, teacher_rng, respawn_rng = shard_rngs(cfg.seed, shard_index)
    analog_rng = np.random.default_rng([cfg.seed, shard_index, 3])  # its own stream: the others stay as they were
    g_count, steps = cfg.arenas, int(round(cfg.shard_seconds * FRAME_RATE))
    mix = StartMix(kickoff=cfg.kickoff_share, car_ground=cfg.car_ground_share, car_wall=cfg.car_wall_share,
                   ball_speed_max=cfg.ball_speed_max)
    weights = np.asarray(cfg.team_size_weights, np.float64)
    team_size_g = 1 + world.choice(3, size=g_count, p=weights / weights.sum())
    arenas = [make_light_arena(int(n), int(world.integers(1 << 31))) for n in team_size_g]
    slots = [slots_for(int(n)) for n in team_size_g]
    present_gp = np.zeros((g_count, SLOTS), bool)
    for g, s in enumerate(slots):
        present_gp[g, s] = True

    # recorded arrays, arena-major (G, S, ...)
    cars = np.zeros((g_count, steps, SLOTS, CAR_F), np.float32)
    ball = np.zeros((g_count, steps, BALL_F), np.float32)
    pads = np.zeros((g_count, steps, NUM_BOOST_PADS), np.float32)
    game = np.zeros((g_count, steps, GAME_F), np.float32)
    time = np.zeros((g_count, steps), np.float64)
    action = np.full((g_count, steps, SLOTS), -1, np.int16)
    equiv = np.zeros((g_count, steps, SLOTS, (NUM_ACTIONS + 7) // 8), np.uint8)
    flip_phase = np.zeros((g_count, steps, SLOTS), np.int8)  # simulator-only state behind the classes
    episode = np.zeros((g_count, steps), np.int32)
    episodes: list[dict] = []  # one dict per episode, in order of start

    ep_of = np.zeros(g_count, np.int64)  # current episode id per arena
    ep_step = np.zeros(g_count, np.int64)  # frames since the episode started
    ep_limit = np.zeros(g_count, np.int64)
    score0 = np.zeros((g_count, 2), np.int64)  # scores at the episode start
    kickoff_live = np.zeros(g_count, bool)  # kickoff episode whose ball has not moved yet
    cur_cars = np.zeros((g_count, SLOTS, CAR_F), np.float32)  # the current moment of every arena
    cur_ball = np.zeros((g_count, BALL_F), np.float32)
    cur_pads = np.zeros((g_count, NUM_BOOST_PADS), np.float32)
    reader = BatchReader(arenas, slots, respawn_rng)
    all_cars = [car for cars_of in reader.cars for car in cars_of]  # (n,), arena by arena, as g_idx, p_idx
    g_idx = np.repeat(np.arange(g_count), [len(x) for x in slots])
    p_idx = np.concatenate(slots)

    def start_episode(g: int, step: int) -> None:
        """Reset arena g and open its next episode (the caller reads the new state with `reader`)."""
        kind = reset_arena(arenas[g], world, mix)
        seconds = world.uniform(cfg.episode_seconds_min, cfg.episode_seconds_max)
        ep_of[g], ep_step[g], ep_limit[g] = len(episodes), 0, max(1, int(round(seconds * FRAME_RATE)))
        score0[g] = arenas[g].blue_score, arenas[g].orange_score
        kickoff_live[g] = kind == KICKOFF
        episodes.append({"arena": g, "first_step": step, "team_size": int(team_size_g[g]), "start_kind": kind,
                         "end": END_SHARD, "length": 0})

    for g in range(g_count):
        start_episode(g, 0)
    reader.read(list(range(g_count)), cur_cars, cur_ball, cur_pads)
    new_episode = np.ones(g_count, bool)
    label_mismatches = 0

    for s in range(steps):
        # moment s of every arena, as one Frames with the arenas stacked on T
        g_arr = np.zeros((g_count, GAME_F), np.float32)
        g_arr[:, [BLUE_SCORE, ORANGE_SCORE]] = [(a.blue_score, a.orange_score) for a in arenas] - score0
        g_arr[:, SECONDS_REMAINING] = (ep_limit - ep_step) / FRAME_RATE
        kickoff_live &= (np.abs(cur_ball[:, POS][:, :2]).sum(1) == 0) & (np.abs(cur_ball[:, VEL]).sum(1) == 0)
        g_arr[:, KICKOFF_PAUSE] = kickoff_live
        now = Frames(time_t=ep_step / FRAME_RATE, game_tf=g_arr, ball_tf=cur_ball.copy(), cars_tpf=cur_cars.copy(),
                     pads_tk=cur_pads.copy(), team_p=TEAM_P)
        cars[:, s], ball[:, s], pads[:, s], game[:, s], time[:, s] = (now.cars_tpf, now.ball_tf, now.pads_tk,
                                                                      now.game_tf, now.time_t)
        episode[:, s] = ep_of
        flip_phase[g_idx, s, p_idx] = reader.flip_phase_gp[g_idx, p_idx]  # read with cur_cars
        if new_episode.any():
            teacher.start_episodes(new_episode, now, teacher_rng)
        chosen = (np.asarray(teacher.act(now, teacher_rng)) % NUM_ACTIONS)[g_idx, p_idx]  # (n,)

        if cfg.analog_share > 0:
            set_controls, scaled = analog_controls(chosen, analog_rng, cfg.analog_share)
            for car, a, c, analog in zip(all_cars, chosen.tolist(), set_controls, scaled.tolist()):
                car.set_controls(_car_controls(c) if analog else CONTROLS[a])
        else:  # the table rows as they are (no draws: nothing else reads this stream)
            set_controls = None
            for car, a in zip(all_cars, chosen.tolist()):
                car.set_controls(CONTROLS[a])
        if probe is not None:
            probe(s, arenas)
        applied = reader.step(TICKS_PER_FRAME, cur_cars, cur_ball, cur_pads)  # (n, 8); the arenas are independent

        # labels: what the simulator applied during these 4 ticks
        label = label_actions(applied, chosen, set_controls)
        # a car demolished before or after these ticks: its last_controls freeze at the demo, so keep the set action
        demoed = (cars[g_idx, s, p_idx, DEMOLISHED] > 0) | (cur_cars[g_idx, p_idx, DEMOLISHED] > 0)
        label = np.where(demoed, chosen, label)
        label_mismatches += int((label != chosen).sum())
        action[g_idx, s, p_idx] = label
        equiv[g_idx, s, p_idx] = EQUIV_PACKED[equiv_code(cars[g_idx, s, p_idx], flip_phase[g_idx, s, p_idx]), label]

        # episode ends: goals, time limits
        ep_step += 1
        scores = np.array([(a.blue_score, a.orange_score) for a in arenas])  # (G, 2)
        blue_goal = scores[:, 0] > score0[:, 0] + game[:, s, BLUE_SCORE]
        orange_goal = scores[:, 1] > score0[:, 1] + game[:, s, ORANGE_SCORE]
        ended = np.nonzero(blue_goal | orange_goal | (ep_step >= ep_limit))[0].tolist()
        for g in ended:
            ep = episodes[ep_of[g]]
            ep["end"] = END_BLUE_GOAL if blue_goal[g] else END_ORANGE_GOAL if orange_goal[g] else END_TIME_LIMIT
            ep["length"] = int(ep_step[g])
            if s + 1 < steps:
                start_episode(g, s + 1)
        new_episode[:] = False
        if ended and s + 1 < steps:
            reader.read(ended, cur_cars, cur_ball, cur_pads)
            new_episode[ended] = True
    for g in range(g_count):
        ep = episodes[ep_of[g]]
        if ep["end"] == END_SHARD:
            ep["length"] = int(ep_step[g])

    if label_mismatches:
        raise RuntimeError(f"{label_mismatches} labels differ from the actions set: controls did not hold for "
                           "whole frames")
    rows = g_count * steps
    first_row = np.array([e["arena"] * steps + e["first_step"] for e in episodes], np.int64)
    arrays = {
        "time_t": time.reshape(rows), "game_tf": game.reshape(rows, GAME_F), "ball_tf": ball.reshape(rows, BALL_F),
        "cars_tpf": cars.reshape(rows, SLOTS, CAR_F), "pads_tk": pads.reshape(rows, NUM_BOOST_PADS),
        "team_p": TEAM_P.copy(), "episode_t": episode.reshape(rows), "action_tp": action.reshape(rows, SLOTS),
        "equiv_packed_tpb": equiv.reshape(rows, SLOTS, -1),
        "flip_phase_tp": flip_phase.reshape(rows, SLOTS),
        "episode_first_row_e": first_row,
        "episode_len_e": np.array([e["length"] for e in episodes], np.int64),
        "episode_team_size_e": np.array([e["team_size"] for e in episodes], np.int8),
        "episode_start_kind_e": np.array([e["start_kind"] for e in episodes], np.int8),
        "episode_end_e": np.array([e["end"] for e in episodes], np.int8),
    }
    cars_present = int(present_gp.sum()) * steps
    counts = {"frames": rows, "car_frames": cars_present, "episodes": len(episodes), "arenas": g_count,
              "steps": steps, "game_seconds": rows / FRAME_RATE,
              "goals": int(np.isin(arrays["episode_end_e"], [END_BLUE_GOAL, END_ORANGE_GOAL]).sum())}
    return arrays, counts


def replay_shard(cfg: Config, shard_index: int, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Re-simulate a recorded shard from its seed with its recorded actions (no teacher)."""
    steps = int(round(cfg.shard_seconds * FRAME_RATE))
    actions = np.asarray(arrays["action_tp"]).reshape(cfg.arenas, steps, SLOTS)
    out, _ = run_shard(cfg, shard_index, ReplayTeacher(actions))
    return out

