"""Replay ingestion benchmark: parse every replay under ../shared/replays on one core, report parsed/rejected
counts by reason and speed (replay game-minutes per wall-second per core; share of time inside subtr-actor's
parse_replay vs our own code, measured in the same calls), then time a few ~5-minute replays repeatedly.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_replays.py [--repeats 5]
"""

import argparse
import collections
import re
import statistics
import time
from pathlib import Path

import subtr_actor

import training.replays.replay as replay_module
from training.replays.replay import ReplayRejectedError, replay_to_frames

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "replays"
FIVE_MINUTE = {  # name -> file in good/ (about 5 minutes of play each)
    "2v2 net11 ranked": "eac.replay",
    "2v2 net10 ranked": "recent-ranked-doubles-2026-03-10.replay",
    "3v3 net10 ranked": "recent-ranked-standard-2026-03-10-a.replay",
}


class ParseTimer:
    """Wraps subtr_actor.parse_replay to add up the seconds spent inside it."""

    def __init__(self):
        self.seconds = 0.0
        self._parse = subtr_actor.parse_replay

    def __call__(self, data: bytes) -> dict:
        t0 = time.perf_counter()
        try:
            return self._parse(data)
        finally:
            self.seconds += time.perf_counter() - t0


def timed(path: Path, timer: ParseTimer) -> tuple[float, float, dict | None, str]:
    """(total s, subtr-actor s, meta or None, reject reason) for one replay."""
    timer.seconds = 0.0
    t0 = time.perf_counter()
    try:
        meta, reason = replay_to_frames(path)[3], ""
    except ReplayRejectedError as exc:
        meta, reason = None, str(exc)
    return time.perf_counter() - t0, timer.seconds, meta, reason


def reason_group(reason: str) -> str:
    if reason.startswith("parse error"):
        return "parse error (corrupt or truncated file)"
    if reason.startswith("frame rate"):
        return "frame rate outside range"
    return re.sub(r"playlist \d+", "playlist N", reason)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each 5-minute replay")
    args = parser.parse_args()
    timer = ParseTimer()
    replay_module.subtr_actor.parse_replay = timer  # count the time inside the Rust parser separately
    files = sorted(CORPUS.rglob("*.replay"))
    reasons = collections.Counter()
    total_s = parser_s = game_s = 0.0
    per_5min = []
    for path in files:
        seconds, inside, meta, reason = timed(path, timer)
        if meta is None:
            reasons[reason_group(reason)] += 1
            continue
        total_s, parser_s, game_s = total_s + seconds, parser_s + inside, game_s + meta["duration_s"]
        per_5min.append(seconds * 300.0 / max(meta["duration_s"], 1.0))
    parsed = len(per_5min)
    print(f"files {len(files)}: parsed {parsed}, rejected {len(files) - parsed}")
    for reason, n in reasons.most_common():
        print(f"  {n:4d}  {reason}")
    print(f"parsed replays: {game_s / 60:.1f} replay minutes (recording time) in {total_s:.1f} s on one core = "
          f"{game_s / 60 / total_s:.2f} replay-min/s/core; subtr-actor parse_replay {parser_s / total_s:.0%}, "
          f"our code {(total_s - parser_s) / total_s:.0%}; "
          f"median per 5 replay minutes {statistics.median(per_5min):.2f} s")
    for name, file in FIVE_MINUTE.items():
        path = CORPUS / "good" / file
        runs = [timed(path, timer) for _ in range(args.repeats)]
        meta = runs[0][2]
        if meta is None:
            print(f"{name}: rejected ({runs[0][3]})")
            continue
        total = statistics.median(r[0] for r in runs)
        inside = statistics.median(r[1] for r in runs)
        print(f"{name}: {meta['duration_s']:.0f} s of replay, {meta['num_frames']} frames, median of "
              f"{args.repeats}: {total:.2f} s total = subtr-actor {inside:.2f} s + ours {total - inside:.2f} s")


if __name__ == "__main__":
    main()
