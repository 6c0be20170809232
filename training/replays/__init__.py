"""Parse .replay files into Frames shards (one per replay, cached by sha256) and a manifest.

Layout of --out: `<sha256>/` shard folders (training/storage.py: the Frames arrays plus `segment_t`,
`segments`, and meta.json) and `manifest.json` (or `manifest-<i>of<n>.json` with --shard) written by this
parent process only. Each replay is parsed in its own worker process that is killed after --timeout-s.
See docs/replays.md for the format.
"""

import json
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from tqdm import tqdm

from training.cli import arg, parse_shard
from training.replays.replay import PARSER_VERSION, ReplayRejectedError, replay_to_frames
from training.storage import (
    SCHEMA_VERSION,
    frames_to_arrays,
    read_json,
    sha256_file,
    shard_exists,
    shard_items,
    write_json,
    write_shard,
)

__all__ = ["Config", "ReplayRejectedError", "find_replays", "main", "parse_one", "replay_to_frames", "run"]


@dataclass(frozen=True)
class Config:
    """Replay ingestion: .replay files or folders (recursive) -> shards under --out."""

    inputs: list[str] = field(default_factory=list, metadata={
        "help": "replay files or folders (searched recursively for *.replay)", "positional": True})
    out: Path = arg(Path("data/replays"), "output folder: one shard per replay sha256 plus manifest.json")
    workers: int = arg(0, "parallel worker processes (0 = one per CPU core)")
    timeout_s: float = arg(60.0, "per-replay time limit; a worker over it is killed and the replay rejected")
    shard: str = arg("0/1", "i/n: process every n-th input file starting at i (disjoint across i)")
    keep_other_modes: bool = arg(False, "keep non-soccar modes and unequal or >3 player teams")
    progress: bool = arg(True, "show a tqdm progress bar")


def find_replays(inputs: list[str]) -> list[Path]:
    """Sorted, de-duplicated .replay files under the given files and folders."""
    found = set()
    for item in inputs:
        path = Path(item)
        found.update(path.rglob("*.replay") if path.is_dir() else [path])
    return sorted(found)


def parse_one(path: Path, sha: str, out: Path, keep_other_modes: bool) -> dict:
    """Parse one replay and write its shard; returns the manifest entry (status parsed or rejected)."""
    t0 = time.perf_counter()
    try:
        frames, segment_t, segments, meta = replay_to_frames(path, keep_other_modes)
    except ReplayRejectedError as exc:
        return {"status": "rejected", "reason": str(exc), "seconds": time.perf_counter() - t0}
    meta = {**meta, "sha256": sha, "bytes": path.stat().st_size}
    arrays = {**frames_to_arrays(frames), "segment_t": segment_t, "segments": segments}
    write_shard(out / sha, arrays, meta)
    return {"status": "parsed", "reason": "", "seconds": time.perf_counter() - t0, **_counts(meta)}


def _counts(meta: dict) -> dict:
    return {k: meta[k] for k in ("num_frames", "duration_s", "team_size", "num_segments", "game_mode")}


def _worker(conn, path: Path, sha: str, out: Path, keep: bool) -> None:
    try:
        entry = parse_one(path, sha, out, keep)
    except Exception as exc:  # noqa: BLE001 - any bug in one replay must not stop the batch
        entry = {"status": "rejected", "reason": f"internal error: {type(exc).__name__}: {str(exc)[:200]}"}
    conn.send_bytes(json.dumps(entry).encode())  # JSON, not pickle


def run(cfg: Config) -> dict:
    """Process the inputs of this shard; returns the manifest (also written to disk)."""
    files = shard_items(find_replays(cfg.inputs), parse_shard(cfg.shard))
    cfg.out.mkdir(parents=True, exist_ok=True)
    known = _known_rejections(cfg)
    entries, todo = [], []
    for path in files:
        sha = sha256_file(path)
        entry = {"file": str(path), "sha256": sha}
        if sha in known:
            entries.append({**entry, "status": "rejected", "reason": known[sha]})
        elif shard_exists(cfg.out / sha):
            meta = read_json(cfg.out / sha / "meta.json")
            entries.append({**entry, "status": "cached", "reason": "", **_counts(meta)})
        else:
            todo.append(entry)
    ctx = mp.get_context("fork")  # cheap per-replay processes that can be killed on a hang
    workers = cfg.workers or os.cpu_count() or 1
    running: dict = {}  # connection -> (process, entry, deadline)
    bar = tqdm(total=len(files), initial=len(entries), disable=not cfg.progress, unit="replay")
    while todo or running:
        while todo and len(running) < workers:
            entry = todo.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(send, Path(entry["file"]), entry["sha256"], cfg.out,
                                                     cfg.keep_other_modes), daemon=True)
            proc.start()
            send.close()
            running[recv] = (proc, entry, time.monotonic() + cfg.timeout_s)
        for conn in wait(list(running), timeout=0.2):
            proc, entry, _ = running.pop(conn)
            try:
                entry.update(json.loads(conn.recv_bytes()))
            except EOFError:  # the worker died without an answer (crash, out of memory)
                entry.update(status="rejected", reason=f"worker died (exit code {proc.exitcode})")
            proc.join()
            entries.append(entry)
            bar.update()
        for conn, (proc, entry, deadline) in list(running.items()):
            if time.monotonic() > deadline:
                proc.kill()
                proc.join()
                del running[conn]
                entries.append({**entry, "status": "rejected", "reason": f"timeout after {cfg.timeout_s:g} s"})
                bar.update()
    bar.close()
    return _write_manifest(cfg, entries)


def _manifest_path(cfg: Config) -> Path:
    i, n = parse_shard(cfg.shard)
    return cfg.out / ("manifest.json" if n == 1 else f"manifest-{i}of{n}.json")


def _known_rejections(cfg: Config) -> dict[str, str]:
    """sha256 -> reason of replays this parser version already rejected for good (not timeouts or crashes),
    from the previous manifest, so a resumed run skips them too."""
    path = _manifest_path(cfg)
    if not path.is_file():
        return {}
    old = read_json(path)
    if old.get("parser_version") != PARSER_VERSION or old["config"].get("keep_other_modes") != cfg.keep_other_modes:
        return {}
    retry = ("timeout", "worker died", "internal error")
    return {e["sha256"]: e["reason"] for e in old["replays"]
            if e["status"] == "rejected" and not e["reason"].startswith(retry)}


def _write_manifest(cfg: Config, entries: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    manifest = {"schema_version": SCHEMA_VERSION, "parser_version": PARSER_VERSION,
                "config": {**asdict(cfg), "out": str(cfg.out)}, "counts": counts,
                "replays": sorted(entries, key=lambda e: e["file"])}
    write_json(_manifest_path(cfg), manifest)
    return manifest


def main(cfg: Config) -> None:
    manifest = run(cfg)
    print(f"replays: {manifest['counts']} -> {cfg.out}")
