"""Label parsed replays with an IDM: every present player-frame in play gets an action, its probability and flags.

    python -m training label --checkpoint models/idm --replays data/replays --out data/labels

One output shard per replay (same name as the parsed replay's shard), skipped when it exists for the same IDM,
so the job resumes; `--shard i/n` splits the replays between machines; one worker process per core.
`--constrain throttle,steer` makes every label agree with those recorded inputs where the replay knows them
(docs/idm.md). Labels are the most probable equivalence class, as its lowest-index member (`--decode class`, the
default), or the most probable single action (`--decode argmax`, labels made before 2026-12-06). Both settings
are part of the resume key, so shards decoded differently are never mixed.
"""

import multiprocessing as mp
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from training.cli import arg, check_choices, parse_shard
from training.idm.infer import CONSTRAINABLE, DECODES, label_arrays, load_idm, parse_constrain
from training.storage import read_json, read_shard, sha256_file, shard_items, write_json, write_shard


@dataclass(frozen=True)
class Config:
    checkpoint: Path = arg(Path("models/idm"), "exported IDM folder")
    replays: Path = arg(Path("data/replays"), "parsed replays (`python -m training replays` output)")
    out: Path = arg(Path("data/labels"), "output folder: one shard per replay + manifest.json")
    workers: int = arg(0, "worker processes (0 = one per core)")
    shard: str = arg("0/1", "i/n: label every n-th replay starting at i")
    progress: bool = arg(True, "show a progress bar")
    constrain: tuple[str, ...] = arg(("none",), "recorded inputs the labels must agree with where known "
                                     f"(comma- or space-separated, from {','.join(CONSTRAINABLE)}; none = pure IDM, "
                                     "the default: no hold-out gain, docs/idm.md)")
    decode: str = arg("class", f"{' or '.join(DECODES)}: the most probable action, or the most probable "
                               "equivalence class as one fixed member of it (the default: a better raw clone, "
                               "docs/idm.md)", choices=DECODES)


def _label_one(args: tuple[Path, Path, Path, str, tuple[str, ...], str]) -> dict:
    checkpoint, src, out, idm_sha, constrain, decode = args
    torch.set_num_threads(1)
    model, model_cfg = _cached_model(checkpoint)
    arrays, meta = read_shard(src)
    labels = label_arrays(model, model_cfg, arrays, torch.device("cpu"), constrain=constrain, decode=decode)
    labelled = int((labels["action_tp"] >= 0).sum())
    write_shard(out / src.name, labels, {"replay": src.name, "idm_weights_sha256": idm_sha, "labelled": labelled,
                                         "constrain": list(constrain), "decode": decode,
                                         "seconds": meta.get("seconds")})
    return {"replay": src.name, "labelled": labelled}


_MODEL: dict = {}


def _cached_model(checkpoint: Path):
    """One model per worker process, loaded on first use."""
    if checkpoint not in _MODEL:
        _MODEL[checkpoint] = load_idm(checkpoint)
    return _MODEL[checkpoint]


def main(cfg: Config) -> dict:
    check_choices(cfg)
    idm_sha = read_json(Path(cfg.checkpoint) / "config.json")["weights_sha256"]
    constrain = parse_constrain(cfg.constrain)
    sources = sorted(p for p in Path(cfg.replays).iterdir() if (p / "meta.json").is_file() and p.name != cfg.out.name)
    if not sources:
        raise SystemExit(f"no parsed replays in {cfg.replays}: run `python -m training replays --out {cfg.replays} "
                         "<replay files or folders>` first")
    mine = shard_items(sources, parse_shard(cfg.shard))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    def current_meta(src: Path) -> dict | None:
        """The label shard's meta if it was made by this IDM with this constraint and decoding (shards from
        before the options were unconstrained argmax), else None."""
        path = out / src.name / "meta.json"
        meta = read_json(path) if path.is_file() else {}
        ok = (meta.get("idm_weights_sha256") == idm_sha and tuple(meta.get("constrain", ())) == constrain
              and meta.get("decode", "argmax") == cfg.decode)
        return meta if ok else None

    todo = [s for s in mine if current_meta(s) is None]
    workers = cfg.workers or os.cpu_count() or 1
    jobs = [(Path(cfg.checkpoint), s, out, idm_sha, constrain, cfg.decode) for s in todo]
    results = []
    with mp.get_context("spawn").Pool(min(workers, max(1, len(jobs)))) as pool:
        for r in tqdm(pool.imap_unordered(_label_one, jobs), total=len(jobs), desc="label", unit="replay",
                      disable=not cfg.progress):
            results.append(r)
    metas = {s.name: current_meta(s) for s in mine}
    entries = {name: {"labelled": m["labelled"], "sha256": m["sha256"]} for name, m in metas.items() if m}
    manifest = {"config": asdict(cfg), "idm_weights_sha256": idm_sha, "constrain": list(constrain),
                "decode": cfg.decode,
                "idm_config_sha256": sha256_file(Path(cfg.checkpoint) / "config.json"),
                "replays_manifest_sha256": sha256_file(Path(cfg.replays) / "manifest.json")
                if (Path(cfg.replays) / "manifest.json").is_file() else None,
                "shards": entries, "labelled_frames": sum(e["labelled"] for e in entries.values())}
    name = "manifest.json" if cfg.shard == "0/1" else f"manifest-{cfg.shard.replace('/', 'of')}.json"
    write_json(out / name, manifest)
    print(f"label: {len(results)} replays labelled now, {len(entries)} in total, "
          f"{manifest['labelled_frames']:,} player-frames -> {out}")
    return manifest
