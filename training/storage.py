"""On-disk datasets: shards of memory-mappable .npy arrays, written atomically, listed in a manifest.

A shard is a folder `<name>/` with one `<array>.npy` per array and `meta.json` (with the sha256 of every
array). It is written as `<name>.tmp-<pid>/` and renamed into place, so a shard either exists completely or
not at all, and a killed job resumes by skipping the shards that exist. `manifest.json` beside the shards
records the job (schema version, config, seeds, counts, hashes); only the parent process writes it.
"""

import hashlib
import json
import os
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np

from bot.frame import Frames

SCHEMA_VERSION = 1  # bump when the Frames columns or shard layout change
FRAME_ARRAYS = tuple(f.name for f in fields(Frames))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def shard_exists(path: Path) -> bool:
    return (Path(path) / "meta.json").is_file()


def write_shard(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> dict:
    """Write arrays + meta.json atomically into folder `path`; returns the meta with array hashes added."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    hashes = {}
    for name, arr in arrays.items():
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
        hashes[name] = sha256_file(tmp / f"{name}.npy")
    meta = {**meta, "schema_version": SCHEMA_VERSION, "arrays": {k: list(v.shape) for k, v in arrays.items()},
            "sha256": hashes}
    write_json(tmp / "meta.json", meta)
    if path.exists():  # a stale shard from an older run of the same name
        shutil.rmtree(path)
    os.replace(tmp, path)
    return meta


def read_shard(path: Path, mmap: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays (memory-mapped by default) and meta of one shard. Never unpickles anything."""
    path = Path(path)
    meta = read_json(path / "meta.json")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema version {meta.get('schema_version')}, this code reads {SCHEMA_VERSION}; "
                         "re-create the data with this version")
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
              for name in meta["arrays"]}
    return arrays, meta


def verify_shard(path: Path) -> list[str]:
    """Names of the arrays whose sha256 no longer matches meta.json (empty = intact)."""
    meta = read_json(Path(path) / "meta.json")
    return [n for n, h in meta["sha256"].items() if sha256_file(Path(path) / f"{n}.npy") != h]


def frames_to_arrays(frames: Frames, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + name: getattr(frames, name) for name in FRAME_ARRAYS}


def frames_from_arrays(arrays: dict[str, np.ndarray], prefix: str = "") -> Frames:
    return Frames(**{name: np.asarray(arrays[prefix + name]) for name in FRAME_ARRAYS})


def shard_items(items: list, shard: tuple[int, int]) -> list:
    """The work items of shard (i, n): every n-th item starting at i, so shards are balanced and disjoint."""
    i, n = shard
    return items[i::n]
