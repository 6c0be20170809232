"""Live adapter: RLBot v4 GameTickPacket -> Frames, through rlgym-compat 1.1.0, and its inverse.

rlgym-compat decodes the physics (positions, velocities, forward/up from the Rotator). Flags are read from the
packet itself where rlgym-compat would smooth them: on_ground is the raw `has_wheel_contact` (rlgym-compat adds
a 6-tick grace) so it means the same as the simulator's `is_on_ground`.
`frames_to_packet` writes one moment back into a packet, so any source of Frames (simulator, replays) can be
fed to the bot exactly as RLBot would feed it (training/sim/rocketsim.py, tests/test_obs_sources.py).
"""

import math

import numpy as np
from rlbot.utils.structures.game_data_struct import FieldInfoPacket, GameTickPacket
from rlgym_compat.physics_object import PhysicsObject

from bot.constants import BOOST_PAD_RESPAWN_S, NUM_BOOST_PADS, TICK_RATE
from bot.frame import (
    ANG_VEL, BALL_F, BALL_FRESH, BLUE_SCORE, BOOST, CAR_F, DEMOLISHED, FORWARD, FRESH, GAME_F, HAS_FLIP, HAS_JUMP,
    IS_OVERTIME, KICKOFF_PAUSE, ON_GROUND, ORANGE_SCORE, POS, PRESENT, RECORDED_INPUTS, SECONDS_REMAINING, UP, VEL,
    Frames, pad_timers_from_active,
)

OCTANE_HITBOX = (118.0, 84.2, 36.2)  # length, width, height (uu); Frames do not record the car body


def basis_to_euler(forward: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward (S, 3) and up (S, 3) unit vectors -> RLBot Rotator pitch, yaw, roll (S,) radians; inverse of
    the rotation `physics_row` decodes. Roll is measured against the pitch-yaw frame actually chosen, so the
    basis comes back even at |pitch| = 90 degrees, where yaw and roll are not separately defined."""
    forward, up = np.asarray(forward, np.float64), np.asarray(up, np.float64)
    pitch = np.arctan2(forward[..., 2], np.hypot(forward[..., 0], forward[..., 1]))
    yaw = np.arctan2(forward[..., 1], forward[..., 0])
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    left0 = np.stack([-sy, cy, np.zeros_like(cy)], -1)  # left and up of the car with roll 0
    up0 = np.stack([-sp * cy, -sp * sy, cp], -1)
    roll = np.arctan2((up * left0).sum(-1), (up * up0).sum(-1))
    return pitch, yaw, roll


def _set_vec(target, values) -> None:
    target.x, target.y, target.z = float(values[0]), float(values[1]), float(values[2])


def _set_physics(physics, row_f: np.ndarray, pitch: float, yaw: float, roll: float) -> None:
    _set_vec(physics.location, row_f[POS])
    _set_vec(physics.velocity, row_f[VEL])
    _set_vec(physics.angular_velocity, row_f[ANG_VEL])
    physics.rotation.pitch, physics.rotation.yaw, physics.rotation.roll = float(pitch), float(yaw), float(roll)


def frames_to_packet(frames: Frames, t: int = 0, packet: GameTickPacket | None = None) -> GameTickPacket:
    """Moment `t` of `frames` as the GameTickPacket RLBot v4 would send: the inverse of `PacketDecoder`.

    Every car is written in slot order; a packet has no absent cars, so select present ones first
    (`Frames.select_cars`). Lossy where the packet is: boost is an integer 0..100, angles go through a Rotator,
    pad timers count seconds since pickup. NaN (unknown replay fields) is written as 0 (false for flags), as
    `build_obs` reads it. `packet` is reused when given (fields that Frames do not know are left as they are).
    """
    pkt = packet if packet is not None else GameTickPacket()
    cars = np.nan_to_num(frames.cars_tpf[t].astype(np.float64))  # (P, F)
    ball = np.nan_to_num(frames.ball_tf[t].astype(np.float64))
    pitch, yaw, roll = basis_to_euler(cars[:, FORWARD], cars[:, UP])  # (P,)
    boost = np.rint(np.clip(cars[:, BOOST], 0.0, 1.0) * 100.0).astype(int)
    pkt.num_cars = frames.num_cars
    for i in range(frames.num_cars):
        info = pkt.game_cars[i]
        _set_physics(info.physics, cars[i], pitch[i], yaw[i], roll[i])
        info.has_wheel_contact = bool(cars[i, ON_GROUND] > 0.5)
        info.jumped = not cars[i, HAS_JUMP] > 0.5  # rlgym-compat: has_jump = not jumped
        info.double_jumped = not cars[i, HAS_FLIP] > 0.5  # has_flip = not double_jumped (a dodge sets it in v4)
        info.is_demolished = bool(cars[i, DEMOLISHED] > 0.5)
        info.boost = int(boost[i])
        info.team = int(frames.team_p[i])
        info.hitbox.length, info.hitbox.width, info.hitbox.height = OCTANE_HITBOX
    _set_physics(pkt.game_ball.physics, ball, *(float(a) for a in basis_to_euler(ball[FORWARD], ball[UP])))

    timer_k = np.nan_to_num(frames.pads_tk[t].astype(np.float64))  # seconds until available
    active_k = timer_k <= 0
    since_k = np.where(active_k, 0.0, BOOST_PAD_RESPAWN_S - timer_k)  # v4: seconds since pickup, 0 while active
    pkt.num_boost = NUM_BOOST_PADS
    for j in range(NUM_BOOST_PADS):
        pkt.game_boosts[j].is_active = bool(active_k[j])
        pkt.game_boosts[j].timer = float(since_k[j])

    game = np.nan_to_num(frames.game_tf[t].astype(np.float64))
    gi = pkt.game_info
    gi.seconds_elapsed = float(frames.time_t[t])
    gi.frame_num = round(gi.seconds_elapsed * TICK_RATE)
    gi.game_time_remaining = max(float(game[SECONDS_REMAINING]), 0.0)
    gi.is_overtime = bool(game[IS_OVERTIME] > 0.5)
    gi.is_unlimited_time = False
    gi.is_round_active = True
    gi.is_kickoff_pause = bool(game[KICKOFF_PAUSE] > 0.5)
    gi.is_match_ended = False
    gi.world_gravity_z = -650.0
    gi.game_speed = 1.0
    pkt.teams[0].team_index, pkt.teams[0].score = 0, int(game[BLUE_SCORE])
    pkt.teams[1].team_index, pkt.teams[1].score = 1, int(game[ORANGE_SCORE])
    pkt.num_teams = 2
    return pkt


def default_field_info() -> FieldInfoPacket:
    """A standard-soccar FieldInfoPacket, for when the framework offers none (tests, offline hosts)."""
    from bot.constants import BOOST_PAD_IS_BIG, BOOST_PAD_LOCATIONS
    info = FieldInfoPacket()
    info.num_boosts = NUM_BOOST_PADS
    for j, (x, y, z) in enumerate(BOOST_PAD_LOCATIONS):
        loc = info.boost_pads[j].location
        loc.x, loc.y, loc.z = float(x), float(y), float(z)
        info.boost_pads[j].is_full_boost = bool(BOOST_PAD_IS_BIG[j])
    return info


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def _rotations_finite(packet: GameTickPacket) -> bool:
    """rlgym-compat's trigonometry raises on non-finite angles; everything else is cleaned up later."""
    for i in range(min(packet.num_cars, len(packet.game_cars))):
        r = packet.game_cars[i].physics.rotation
        if not (math.isfinite(r.pitch) and math.isfinite(r.yaw) and math.isfinite(r.roll)):
            return False
    r = packet.game_ball.physics.rotation
    return math.isfinite(r.pitch) and math.isfinite(r.yaw) and math.isfinite(r.roll)


def sanitised_copy(packet: GameTickPacket, num_pads: int) -> GameTickPacket:
    """A copy of a broken packet that decodes: non-finite physics set to 0, counts clipped to what exists."""
    pkt = GameTickPacket.from_buffer_copy(bytes(packet))
    pkt.num_boost = max(0, min(pkt.num_boost, num_pads))
    pkt.num_cars = max(0, min(pkt.num_cars, len(pkt.game_cars)))
    bodies = [pkt.game_cars[i].physics for i in range(pkt.num_cars)] + [pkt.game_ball.physics]
    for body in bodies:
        for vec in (body.location, body.velocity, body.angular_velocity):
            vec.x, vec.y, vec.z = _finite(vec.x), _finite(vec.y), _finite(vec.z)
        rot = body.rotation
        rot.pitch, rot.yaw, rot.roll = _finite(rot.pitch), _finite(rot.yaw), _finite(rot.roll)
    return pkt


def physics_row(physics) -> np.ndarray:
    """One body's POS, VEL, ANG_VEL, FORWARD, UP (15,) as rlgym-compat's PhysicsObject decodes them (the columns
    of its rotation matrix are forward, left, up). Its car decoder also serves the ball: the ball one skips the
    rotation."""
    body = PhysicsObject()
    body.decode_car_data(physics)
    axes = body.rotation_mtx()
    return np.concatenate([body.position, body.linear_velocity, body.angular_velocity, axes[:, 0], axes[:, 2]])


def is_kickoff_countdown(packet: GameTickPacket) -> bool:
    """The countdown before a kickoff: the round is not active and the ball waits at rest on the centre spot.
    RLBot's is_kickoff_pause starts only at "go", but replay frames count the countdown as part of the kickoff
    (training/replays/frames.py), and a bot should hold its kickoff controls when the cars are released."""
    ball = packet.game_ball.physics
    return (not packet.game_info.is_round_active and abs(ball.location.x) < 1 and abs(ball.location.y) < 1
            and abs(ball.velocity.x) + abs(ball.velocity.y) + abs(ball.velocity.z) < 1)


class PacketDecoder:
    """GameTickPacket -> Frames. rlgym-compat's PhysicsObject decodes each body (its rotation matrix gives
    forward and up, the ball's too); flags and pads are read as rlgym-compat's GameState reads them, without
    the team-inverted copies GameState also makes, which nothing here uses. Nothing is carried between packets.
    """

    def __init__(self, field_info: FieldInfoPacket | None = None):
        self.num_pads = (field_info if field_info is not None else default_field_info()).num_boosts

    def packet_to_frame(self, packet: GameTickPacket) -> Frames:
        """One moment (T = 1) with every car in packet slot order."""
        if (not 0 <= packet.num_boost <= self.num_pads or not 0 <= packet.num_cars <= len(packet.game_cars)
                or not _rotations_finite(packet)):
            packet = sanitised_copy(packet, self.num_pads)
        n = packet.num_cars
        cars = np.zeros((n, CAR_F), np.float32)
        for i in range(n):
            info = packet.game_cars[i]
            cars[i, :UP.stop] = physics_row(info.physics)
            cars[i, BOOST:HAS_FLIP + 1] = (info.boost / 100, info.is_demolished, info.has_wheel_contact,
                                           not info.jumped, not info.double_jumped)
        cars[:, FRESH] = 1.0
        cars[:, PRESENT] = 1.0
        cars[:, RECORDED_INPUTS] = np.nan
        team = np.array([packet.game_cars[i].team for i in range(n)], np.int8)

        ball = np.zeros(BALL_F, np.float32)
        ball[:UP.stop] = physics_row(packet.game_ball.physics)
        ball[BALL_FRESH] = 1.0

        k = min(packet.num_boost, NUM_BOOST_PADS)
        active = np.ones(NUM_BOOST_PADS, bool)
        since = np.zeros(NUM_BOOST_PADS, np.float32)
        pads = [(pad.is_active, pad.timer) for pad in packet.game_boosts[:k]]  # timer: seconds since pickup (v4)
        if k:
            active[:k], since[:k] = zip(*pads)

        gi = packet.game_info
        game = np.zeros((1, GAME_F), np.float32)
        game[0, BLUE_SCORE] = packet.teams[0].score
        game[0, ORANGE_SCORE] = packet.teams[1].score
        game[0, SECONDS_REMAINING] = gi.game_time_remaining
        game[0, KICKOFF_PAUSE] = gi.is_kickoff_pause or is_kickoff_countdown(packet)
        game[0, IS_OVERTIME] = gi.is_overtime
        return Frames(time_t=np.array([gi.seconds_elapsed], np.float64), game_tf=game, ball_tf=ball[None],
                      cars_tpf=cars[None], pads_tk=pad_timers_from_active(active, since)[None], team_p=team)
