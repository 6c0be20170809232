"""The public adapter: a .replay file -> (`Frames`, segments, meta), or a `ReplayRejectedError` with a one-line reason.

Only 1v1 to 3v3 soccar with equal teams passes by default; other modes are recognised and rejected with a
reason unless `keep_other_modes`. Player names and ids are stored only as sha256 hashes.
"""

import gc
import hashlib
from pathlib import Path

import numpy as np
import subtr_actor

from bot.constants import MAX_PLAYERS_PER_TEAM
from bot.frame import BALL_FRESH, FRESH, PRESENT, Frames
from training.replays.frames import Player, events_to_frames
from training.replays.network import SPECIAL, NetworkEvents, replay_to_events

PARSER_VERSION = "replays-2"  # bump when the output of the same replay changes
FPS_RANGE = (15.0, 40.0)  # network frame rate (median); busy servers record ~20-25 Hz, RL-RPT used 25-35
SOCCAR_BALLS = {"Archetypes.Ball.Ball_Default", "Archetypes.Ball.Ball_WorldCup"}
# ProjectX.GRI_X:ReplicatedGamePlaylist ids of standard soccar: casual 1-4, private 6, offline 8, ranked 10-13,
# tournaments 22 and 34, LAN 24 (team size is checked separately)
SOCCAR_PLAYLISTS = {1, 2, 3, 4, 6, 8, 10, 11, 12, 13, 22, 24, 34}
OTHER_MODES = {"Ball_Basketball": "hoops", "Ball_BasketBall": "hoops", "Ball_Breakout": "dropshot",
               "Ball_Puck": "snow day", "Ball_God": "heatseeker", "Ball_Haunted": "heatseeker (haunted)"}


class ReplayRejectedError(Exception):
    """A replay that cannot or should not become training data; str() is the one-line reason."""


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _game_mode(ev: NetworkEvents) -> str:
    """'soccar' or a short name of the other mode, from the ball archetype, pickups and the playlist."""
    balls = {name for name in ev.actor_name if name.startswith("Archetypes.Ball.")}
    for ball in balls:
        for key, mode in OTHER_MODES.items():
            if ball.endswith(key) or ball.endswith(key + "_Mutator"):
                return mode
    if ev.max_balls_alive > 1:
        return "multiple balls"
    if SPECIAL in ev.actor_class:
        return "rumble (special pickups)"
    if not balls:
        return "no ball"
    if not balls <= SOCCAR_BALLS:
        return f"non-standard ball {sorted(balls)[0].rsplit('.', 1)[-1]}"
    if ev.playlist is not None and ev.playlist not in SOCCAR_PLAYLISTS:
        return f"playlist {ev.playlist}"
    return "soccar"


def _quality(frames: Frames, players: list[Player]) -> dict:
    """Per-car fresh fraction over present frames and the longest run without a fresh sample (gaps)."""
    per_car = []
    for i, _ in enumerate(players):
        present_t = frames.cars_tpf[:, i, PRESENT] > 0
        fresh_idx = np.flatnonzero(frames.cars_tpf[:, i, FRESH] > 0)
        gaps = np.diff(fresh_idx) if len(fresh_idx) > 1 else np.zeros(0, int)
        per_car.append({"present_frames": int(present_t.sum()),
                        "fresh_fraction": float(len(fresh_idx) / max(present_t.sum(), 1)),
                        "max_gap_frames": int(gaps.max()) if len(gaps) else 0,
                        "gaps_over_3_frames": int((gaps > 3).sum())})
    dt = np.diff(frames.time_t)
    return {"cars": per_car, "ball_fresh_fraction": float(frames.ball_tf[:, BALL_FRESH].mean()) if len(dt) else 0.0,
            "max_frame_dt_s": float(dt.max()) if len(dt) else 0.0}


def _team_sizes(frames: Frames) -> tuple[int, int]:
    """Cars present at once on each team, the most common count over frames with any car (so a leaver whose
    car lingers for a frame next to their replacement does not count twice)."""
    present_tp = frames.cars_tpf[:, :, PRESENT] > 0
    sizes = []
    for team in (0, 1):
        count_t = present_tp[:, frames.team_p == team].sum(1)
        count_t = count_t[present_tp.any(1)]
        sizes.append(int(np.bincount(count_t).argmax()) if len(count_t) else 0)
    return sizes[0], sizes[1]


def replay_to_frames(path: Path, keep_other_modes: bool = False) -> tuple[Frames, np.ndarray, np.ndarray, dict]:
    """Parse one replay: Frames (T network frames ~30 Hz, P players), segment_t (T,) int16 id of the
    kickoff-to-goal segment or -1, segments (S, 3) int32 [start, stop, scoring team or -1], meta (JSON-able).
    Raises `ReplayRejectedError` with a one-line reason."""
    # The parse builds millions of small dicts that hold no cycles; Python's cyclic collector would scan them
    # again and again (up to +0.3 s per replay), so it is paused for this call and restored afterwards.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _replay_to_frames(path, keep_other_modes)
    finally:
        if enabled:
            gc.enable()


def _replay_to_frames(path: Path, keep_other_modes: bool) -> tuple[Frames, np.ndarray, np.ndarray, dict]:
    try:
        replay = subtr_actor.parse_replay(Path(path).read_bytes())
    except Exception as exc:  # noqa: BLE001 - the parser raises plain Exception for corrupt files
        raise ReplayRejectedError(f"parse error: {str(exc).splitlines()[0][:200]}") from None
    props = replay.get("properties") or {}
    net = replay.get("net_version")
    frames_raw = replay.get("network_frames") or {}
    if len(frames_raw.get("frames", [])) < 2:
        raise ReplayRejectedError("no network frames")
    ev = replay_to_events(replay)
    mode = _game_mode(ev)
    if mode != "soccar" and not keep_other_modes:
        raise ReplayRejectedError(f"not soccar: {mode}")
    frames, segment_t, segments, players = events_to_frames(ev)
    if not players:
        raise ReplayRejectedError("no players with cars")
    duration = float(frames.time_t[-1])
    fps = 1.0 / max(float(np.median(np.diff(frames.time_t))), 1e-9)  # goal replays leave gaps: use the median
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise ReplayRejectedError(f"frame rate {fps:.1f} outside {FPS_RANGE[0]:g}-{FPS_RANGE[1]:g}")
    blue, orange = _team_sizes(frames)
    if not keep_other_modes and (blue != orange or not 1 <= blue <= MAX_PLAYERS_PER_TEAM):
        raise ReplayRejectedError(f"team sizes {blue}v{orange} (need equal, 1-{MAX_PLAYERS_PER_TEAM})")
    meta = {
        "parser_version": PARSER_VERSION, "subtr_actor_version": getattr(subtr_actor, "__version__", "1.5.1"),
        "game_mode": mode, "playlist": ev.playlist, "match_type": props.get("MatchType"),
        "map": props.get("MapName"), "team_size": max(blue, orange), "header_team_size": props.get("TeamSize"),
        "build_version": props.get("BuildVersion"), "date": props.get("Date"),
        "major_version": replay.get("major_version"), "minor_version": replay.get("minor_version"),
        "net_version": net, "record_fps": props.get("RecordFPS"), "median_fps": fps, "duration_s": duration,
        "num_frames": frames.num_frames, "num_segments": len(segments),
        "goals": int((segments[:, 2] >= 0).sum()) if len(segments) else 0,
        "players": [{"name_sha256": sha256_text(p.name or ""), "id_sha256": sha256_text(p.key), "team": p.team,
                     "platform": p.key.split(":", 1)[0] if not p.key.startswith("name:") else None}
                    for p in players],
        "num_demolitions": len(ev.demolitions), "num_pickups": len(ev.pickups),
        "quality": _quality(frames, players),
    }
    return frames, segment_t, segments, meta
