"""One pass over a replay's raw network frames (subtr_actor.parse_replay) into per-actor event lists.

Why our own walk instead of subtr-actor's ndarray or frames-data paths: one parse gives everything at once
(exact fresh flags, inputs, demolitions, pad pickups, score), it tolerates players leaving and joining, and
it is the cheapest path (docs/replays.md). Values here are still raw replay units; `frames.py` converts.

Actors are keyed by a serial number given when they spawn, because the game reuses actor ids.
"""

from dataclasses import dataclass, field

import numpy as np

from bot.frame import (
    BLUE_SCORE,
    BOOST,
    IN_BOOST,
    IN_DODGE,
    IN_DODGE_TORQUE,
    IN_DOUBLE_JUMP,
    IN_HANDBRAKE,
    IN_JUMP,
    IN_STEER,
    IN_THROTTLE,
    IS_OVERTIME,
    ORANGE_SCORE,
    SECONDS_REMAINING,
)

# layout of one raw rigid-body sample (13 values), as replicated
RAW_POS, RAW_QUAT_XYZW, RAW_VEL, RAW_ANG_VEL = slice(0, 3), slice(3, 7), slice(7, 10), slice(10, 13)

# attribute name -> handler code (codes below 10 link actors or name players)
_LINK_CAR_PRI, _LINK_COMP_CAR, _LINK_PRI_TEAM, _PRI_NAME, _PRI_UID = 0, 1, 2, 3, 4
_RB, _THROTTLE, _STEER, _HANDBRAKE, _ACTIVE, _BOOST_NEW, _BOOST_OLD, _TORQUE = 10, 11, 12, 13, 14, 15, 16, 17
_DEMOLISH, _PICKUP_NEW, _PICKUP_OLD, _SCORE, _SECONDS, _OVERTIME, _BALL_HIT, _COUNTDOWN, _PLAYLIST = range(18, 27)
ATTRIBUTE_CODES = {
    "Engine.Pawn:PlayerReplicationInfo": _LINK_CAR_PRI,
    "TAGame.CarComponent_TA:Vehicle": _LINK_COMP_CAR,
    "Engine.PlayerReplicationInfo:Team": _LINK_PRI_TEAM,
    "Engine.PlayerReplicationInfo:PlayerName": _PRI_NAME,
    "Engine.PlayerReplicationInfo:UniqueId": _PRI_UID,
    "TAGame.RBActor_TA:ReplicatedRBState": _RB,
    "TAGame.Vehicle_TA:ReplicatedThrottle": _THROTTLE,
    "TAGame.Vehicle_TA:ReplicatedSteer": _STEER,
    "TAGame.Vehicle_TA:bReplicatedHandbrake": _HANDBRAKE,
    "TAGame.CarComponent_TA:ReplicatedActive": _ACTIVE,
    "TAGame.CarComponent_Boost_TA:ReplicatedBoost": _BOOST_NEW,
    "TAGame.CarComponent_Boost_TA:ReplicatedBoostAmount": _BOOST_OLD,
    "TAGame.CarComponent_Dodge_TA:DodgeTorque": _TORQUE,
    "TAGame.Car_TA:ReplicatedDemolish": _DEMOLISH,
    "TAGame.Car_TA:ReplicatedDemolishExtended": _DEMOLISH,
    "TAGame.Car_TA:ReplicatedDemolishGoalExplosion": _DEMOLISH,
    "TAGame.VehiclePickup_TA:NewReplicatedPickupData": _PICKUP_NEW,
    "TAGame.VehiclePickup_TA:ReplicatedPickupData": _PICKUP_OLD,
    "Engine.TeamInfo:Score": _SCORE,
    "TAGame.GameEvent_Soccar_TA:SecondsRemaining": _SECONDS,
    "TAGame.GameEvent_Soccar_TA:bOverTime": _OVERTIME,
    "TAGame.GameEvent_Soccar_TA:bBallHasBeenHit": _BALL_HIT,
    "TAGame.GameEvent_TA:ReplicatedRoundCountDownNumber": _COUNTDOWN,
    "ProjectX.GRI_X:ReplicatedGamePlaylist": _PLAYLIST,
}
# car component archetype (suffix) -> the car column its ReplicatedActive byte drives (odd = active)
COMPONENT_COLUMNS = {"CarComponent_Boost": IN_BOOST, "CarComponent_Jump": IN_JUMP,
                     "CarComponent_DoubleJump": IN_DOUBLE_JUMP, "CarComponent_Dodge": IN_DODGE}
# actor classes by archetype name
CAR, BALL, COMPONENT, PRI, TEAM0, TEAM1, PAD, SPECIAL, OTHER = range(9)
GAME_KICKOFF_HIT = "ball_hit"  # game event kinds besides the Frames game columns
GAME_COUNTDOWN = "countdown"


@dataclass
class NetworkEvents:
    """Everything the walk extracts; frame indices index `time_t`. Raw replay units."""

    time_t: np.ndarray  # (T,) float64 s, replay clock
    actor_class: list[int] = field(default_factory=list)  # serial -> CAR / BALL / ...
    actor_name: list[str] = field(default_factory=list)  # serial -> archetype name
    actor_span: list[list[int]] = field(default_factory=list)  # serial -> [spawn frame, end frame (exclusive)]
    rb: dict[int, tuple[list, list]] = field(default_factory=dict)  # car/ball serial -> ([frame], flat 13 values)
    car_values: dict[int, list] = field(default_factory=dict)  # car serial -> [(frame, column, raw value)]
    comp_values: dict[int, list] = field(default_factory=dict)  # component serial -> [(frame, column, value)]
    comp_car: dict[int, int] = field(default_factory=dict)  # component serial -> car serial
    car_pri: dict[int, int] = field(default_factory=dict)  # car serial -> PRI serial
    pri_info: dict[int, dict] = field(default_factory=dict)  # PRI serial -> {name, uid, team_serial}
    demolitions: list = field(default_factory=list)  # [(frame, victim car serial)]
    pickups: list = field(default_factory=list)  # [(frame, pad serial, instigator car serial)]; a pad is its name
    game: list = field(default_factory=list)  # [(frame, kind: game column or GAME_*, value)]
    team_scores: list = field(default_factory=list)  # [(frame, team 0/1, score)]
    playlist: int | None = None
    max_balls_alive: int = 0
    net_version: int = 0  # None in the oldest replays is stored as 0


def _classify(name: str) -> int:
    if name.startswith("Archetypes.Car.Car_"):
        return CAR
    if name.startswith("Archetypes.Ball."):
        return BALL
    if name.startswith("Archetypes.CarComponents."):
        return COMPONENT
    if name.endswith("PRI_TA") or name == "TAGame.Default__PRI_TA":
        return PRI
    if name == "Archetypes.Teams.Team0":
        return TEAM0
    if name == "Archetypes.Teams.Team1":
        return TEAM1
    if "VehiclePickup_Boost_TA" in name:
        return PAD
    if "SpecialPickup" in name:
        return SPECIAL
    return OTHER


def _active_actor(value) -> int:
    """Actor id inside an ActiveActor dict or a plain int; -1 when absent."""
    if isinstance(value, dict):
        return value.get("actor", -1) if value.get("active", True) else -1
    return value if isinstance(value, int) else -1


def _uid_string(attr: dict) -> str:
    uid = attr["UniqueId"]
    return f"{uid.get('system_id')}:{uid.get('remote_id')}:{uid.get('local_id')}"


def replay_to_events(replay: dict) -> NetworkEvents:
    """Walk `parse_replay` output frame by frame (inherently sequential) into `NetworkEvents`."""
    frames = replay["network_frames"]["frames"]
    objects = replay["objects"]
    codes = {i: ATTRIBUTE_CODES[name] for i, name in enumerate(objects) if name in ATTRIBUTE_CODES}
    ev = NetworkEvents(time_t=np.array([f["time"] for f in frames], np.float64),
                       net_version=replay.get("net_version") or 0)
    alive: dict[int, int] = {}  # actor id -> serial
    comp_column: dict[int, int] = {}  # component serial -> car column
    pickup_state: dict[str, object] = {}  # pad actor name -> last replicated pickup value
    last_demo: dict[int, object] = {}  # car serial -> last demolish attribute (re-sends are not new demos)
    balls_alive = 0
    for t, frame in enumerate(frames):
        for actor_id in frame["deleted_actors"]:
            serial = alive.pop(actor_id, None)
            if serial is not None:
                ev.actor_span[serial][1] = t
                balls_alive -= ev.actor_class[serial] == BALL
        for new in frame["new_actors"]:
            old = alive.get(new["actor_id"])
            if old is not None:  # id reused without a delete
                ev.actor_span[old][1] = t
                balls_alive -= ev.actor_class[old] == BALL
            name = objects[new["object_id"]]
            serial = len(ev.actor_class)
            cls = _classify(name)
            ev.actor_class.append(cls)
            ev.actor_name.append(name)
            ev.actor_span.append([t, len(frames)])
            alive[new["actor_id"]] = serial
            if cls == BALL:
                balls_alive += 1
                ev.max_balls_alive = max(ev.max_balls_alive, balls_alive)
            elif cls == COMPONENT:
                comp_column[serial] = COMPONENT_COLUMNS.get(name.rsplit(".", 1)[-1], -1)
        for upd in frame["updated_actors"]:  # links are resolved after the walk, so the order here is free
            code = codes.get(upd["object_id"])
            if code is None:
                continue
            serial = alive.get(upd["actor_id"])
            if serial is None:
                continue
            attr = upd["attribute"]
            cls = ev.actor_class[serial]
            if code == _RB:  # by far the most common update: inlined
                rb = attr.get("RigidBody")
                if rb is not None and (cls == CAR or cls == BALL):
                    frames_e, values_e = ev.rb.setdefault(serial, ([], []))
                    frames_e.append(t)
                    loc, rot, lin, ang = rb["location"], rb["rotation"], rb["linear_velocity"], rb["angular_velocity"]
                    values_e += (loc["x"], loc["y"], loc["z"], rot["x"], rot["y"], rot["z"], rot["w"])
                    values_e += (lin["x"], lin["y"], lin["z"]) if lin else (0.0, 0.0, 0.0)  # None while sleeping
                    values_e += (ang["x"], ang["y"], ang["z"]) if ang else (0.0, 0.0, 0.0)
                continue
            if code < 10:
                if code == _LINK_CAR_PRI:
                    pri = alive.get(_active_actor(attr.get("ActiveActor")))
                    if pri is not None:
                        ev.car_pri[serial] = pri
                elif code == _LINK_COMP_CAR:
                    car = alive.get(_active_actor(attr.get("ActiveActor")))
                    if car is not None:
                        ev.comp_car[serial] = car
                else:
                    info = ev.pri_info.setdefault(serial, {"name": None, "uid": None, "team_serial": None})
                    if code == _LINK_PRI_TEAM:
                        info["team_serial"] = alive.get(_active_actor(attr.get("ActiveActor")))
                    elif code == _PRI_NAME:
                        info["name"] = attr.get("String")
                    elif code == _PRI_UID and "UniqueId" in attr:
                        info["uid"] = _uid_string(attr)
                continue
            if code in (_THROTTLE, _STEER, _HANDBRAKE):
                col = {_THROTTLE: IN_THROTTLE, _STEER: IN_STEER, _HANDBRAKE: IN_HANDBRAKE}[code]
                ev.car_values.setdefault(serial, []).append((t, col, float(next(iter(attr.values())))))
            elif code == _ACTIVE:
                col = comp_column.get(serial, -1)
                if col >= 0:
                    ev.comp_values.setdefault(serial, []).append((t, col, float(attr.get("Byte", 0) % 2)))
            elif code in (_BOOST_NEW, _BOOST_OLD):
                raw = attr["ReplicatedBoost"]["boost_amount"] if code == _BOOST_NEW else attr.get("Byte")
                ev.comp_values.setdefault(serial, []).append((t, BOOST, float(raw)))
            elif code == _TORQUE:
                v = attr.get("Location", {})
                for axis, col in zip("xyz", range(IN_DODGE_TORQUE.start, IN_DODGE_TORQUE.stop)):
                    ev.comp_values.setdefault(serial, []).append((t, col, float(v.get(axis, 0.0))))
            elif code == _DEMOLISH:
                demo = next(iter(attr.values()))
                victim = alive.get(_active_actor(demo.get("victim")))
                if victim is not None and last_demo.get(victim) != demo:
                    last_demo[victim] = demo
                    ev.demolitions.append((t, victim))
            elif code in (_PICKUP_NEW, _PICKUP_OLD):
                data = attr.get("PickupNew") or attr.get("Pickup") or {}
                picked = data.get("picked_up")
                car = alive.get(_active_actor(data.get("instigator", -1)))
                name = ev.actor_name[serial]  # pad actors are re-created under the same name: key state by name
                changed = pickup_state.get(name) != picked
                pickup_state[name] = picked
                is_pickup = changed and (code == _PICKUP_NEW or bool(picked))
                if is_pickup and car is not None and ev.actor_class[car] == CAR:
                    ev.pickups.append((t, serial, car))
            elif code == _SCORE:
                if cls in (TEAM0, TEAM1):
                    ev.team_scores.append((t, cls - TEAM0, attr.get("Int", 0)))
                    ev.game.append((t, BLUE_SCORE if cls == TEAM0 else ORANGE_SCORE, float(attr.get("Int", 0))))
            elif code == _SECONDS:
                ev.game.append((t, SECONDS_REMAINING, float(attr.get("Int", 0))))
            elif code == _OVERTIME:
                ev.game.append((t, IS_OVERTIME, float(bool(attr.get("Boolean")))))
            elif code == _BALL_HIT:
                ev.game.append((t, GAME_KICKOFF_HIT, float(bool(attr.get("Boolean")))))
            elif code == _COUNTDOWN:
                ev.game.append((t, GAME_COUNTDOWN, float(attr.get("Int", 0))))
            elif code == _PLAYLIST:
                ev.playlist = attr.get("Int")
    return ev
