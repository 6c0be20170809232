"""Run the whole chain with one command, skipping every stage whose outputs are current.

    python -m training pipeline --preset tiny                      # minutes on 2 cores, into out/pipeline-tiny
    python -m training pipeline --preset cpu                       # the bundled model, exported to models/
    python -m training pipeline --preset cluster --print-commands  # per-stage commands for a scheduler

Order: replays -> simulate -> idm-train -> idm-eval -> label -> bc-train -> finetune -> evaluate -> export -> report
(replays come first because idm-train measures replay-style hold gaps on them). A preset
(training/presets/<name>.toml) has one table per stage whose keys are that stage's Config fields; the paths
between stages belong to the pipeline. Each stage leaves a stamp `<work>/stamps/<stage>.json` with its config
and fingerprints of what its inputs hold: a stage is skipped when its stamp matches and re-runs when its config
or its inputs changed. Stages resume by themselves, so an interrupted pipeline continues.
"""

import dataclasses
import json
import shutil
import subprocess
import sys
import time
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from training.cli import arg, config_to_argv, parse_shard, torchrun_command
from training.storage import read_json, sha256_file, write_json

ROOT = Path(__file__).resolve().parents[1]
PRESETS_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_TEACHER = ROOT.parent / "shared" / "teachers" / "nexto" / "nexto-model.pt"
ORDER = ("replays", "simulate", "idm-train", "idm-eval", "label", "bc-train", "finetune", "evaluate", "export",
         "report")
SHARDED = ("replays", "simulate", "label")  # stages that take --shard i/n
MODULES = {"replays": "training.replays", "simulate": "training.simulate", "idm-train": "training.idm_train",
           "idm-eval": "training.idm_eval", "label": "training.label", "bc-train": "training.bc_train",
           "finetune": "training.finetune", "evaluate": "training.evaluate", "report": "training.report"}
# fields the pipeline fills in itself (the paths that connect the stages); a preset may not set them
OWNED = {"replays": {"inputs", "out", "shard"}, "simulate": {"out", "shard", "teacher_path"},
         "idm-train": {"sim", "replays", "out", "export", "resume"},
         "idm-eval": {"checkpoint", "sim", "replays", "json", "plot"},
         "label": {"checkpoint", "replays", "out", "shard"},
         "bc-train": {"replays", "labels", "out", "export", "resume"},
         "finetune": {"policy", "out", "export"},
         "evaluate": {"blue", "json", "plot", "gif"}, "report": {"work"}}
# fields that change how fast a stage runs, not what it writes: ignored when deciding whether it is current
EXECUTION_ONLY = {"workers", "progress", "threads", "log_every"}
BOT_FILES = ("bot.cfg", "appearance.cfg", "logo.png", "requirements.txt")
NO_REPLAYS = """
No .replay files at {path}.
The pipeline learns from human replays (soccar 1v1/2v2/3v3, ranked is best). Get some, then point --replays at them:
  python -m training download --help      # ranked replays from ballchasing.com (needs an API token)
  or download .replay files by hand from https://ballchasing.com into a folder, e.g. data/replay-files/
  python -m training pipeline --preset {preset} --replays data/replay-files
"""


@dataclass(frozen=True)
class Config:
    preset: str = arg("tiny", "tiny | cpu | cluster (training/presets/<name>.toml) or a path to a .toml file")
    replays: Path | None = arg(None, "a .replay file or a folder of them (default: the preset's [pipeline] replays)")
    teacher: Path | None = arg(None, "Nexto model file; when it is missing the random teacher plays instead")
    work: Path | None = arg(None, "work folder for every stage's outputs (default: out/pipeline-<preset>)")
    export_dir: Path | None = arg(None, "where the final idm/ and bc/ model folders go (default: the preset's)")
    shard: str = arg("0/1", "i/n: run only the sharded stages (replays, simulate, label) for this shard")
    stop_after: str = arg("", "stop after this stage (e.g. idm-train); empty = run to the end")
    print_commands: bool = arg(False, "print every stage's command line (for a scheduler) and exit")
    nproc_per_node: int | None = arg(None, "> 0: idm-train and bc-train under torchrun with this many processes")
    threads: int | None = arg(None, "torch threads of idm-train and bc-train (0 = all cores; default: the "
                              "preset's); 1 keeps training fast on a machine shared with other jobs")


@dataclass(frozen=True)
class Settings:
    """The preset's [pipeline] table (relative paths are from the repository root)."""

    work: str = ""  # empty: out/pipeline-<preset>
    replays: str = "../shared/replays"
    teacher: str = str(DEFAULT_TEACHER)
    export_dir: str = "models"  # "{work}/models" keeps the models inside the work folder
    nproc_per_node: int = 0
    shards: int = 1  # n used by --print-commands for the sharded stages


@dataclass(frozen=True)
class Stage:
    """One step: its config (None for export), input files whose hashes decide staleness, outputs to clear."""

    name: str
    config: object
    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    run: Callable[[], None]


# ---------------------------------------------------------------- presets

def preset_path(preset: str) -> Path:
    path = Path(preset) if preset.endswith(".toml") else PRESETS_DIR / f"{preset}.toml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.toml")))
        raise ValueError(f"preset {preset!r} not found ({path}); presets: {names}")
    return path


def _convert(name: str, hint, value):
    """TOML value -> the field's type; wrong types are errors (ints are accepted for floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(name, inner[0], value)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return origin(_convert(name, item, v) for v in value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {hint.__name__}, got {value!r}")
    return value


def checked_values(cls: type, table: dict, where: str, owned: set[str] = frozenset()) -> dict:
    """A preset table -> keyword arguments for `cls`; unknown keys, pipeline-owned keys and bad types raise."""
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in table.items():
        if key in owned:
            raise ValueError(f"{where}: {key!r} is set by the pipeline (it connects the stages); remove it")
        if key not in hints:
            raise ValueError(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(set(hints) - owned))}")
        out[key] = _convert(f"{where}.{key}", hints[key], value)
    return out


def load_preset(preset: str) -> tuple[Settings, dict[str, dict]]:
    """Parse and validate a preset: the [pipeline] settings and one checked table per stage."""
    import importlib
    path = preset_path(preset)
    data = tomllib.loads(path.read_text())
    unknown = set(data) - set(MODULES) - {"pipeline"}
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {sorted(unknown)}; tables: pipeline, {', '.join(MODULES)}")
    settings = Settings(**checked_values(Settings, data.get("pipeline", {}), f"{path.name} [pipeline]"))
    tables = {}
    for stage, module in MODULES.items():
        cls = importlib.import_module(module).Config
        tables[stage] = checked_values(cls, data.get(stage, {}), f"{path.name} [{stage}]", OWNED[stage])
    return settings, tables


def _from_root(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else (ROOT / path).resolve()


# ---------------------------------------------------------------- the plan

@dataclass(frozen=True)
class Plan:
    """Everything resolved: where things are, who teaches, and the validated stage tables."""

    preset: str
    work: Path
    replays: Path
    teacher: Path | None  # None = random teacher
    export_dir: Path
    nproc_per_node: int
    shards: int
    tables: dict


def find_replay_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix == ".replay" else []
    return sorted(path.rglob("*.replay")) if path.is_dir() else []


def make_plan(cfg: Config) -> Plan:
    """CLI flags win over the preset; relative preset paths are from the repository root."""
    settings, tables = load_preset(cfg.preset)
    name = Path(cfg.preset).stem
    work = cfg.work or _from_root(settings.work or f"out/pipeline-{name}")
    teacher = cfg.teacher or _from_root(settings.teacher)
    wants_nexto = tables["simulate"].get("teacher", "nexto") == "nexto"
    if wants_nexto and not teacher.is_file():
        banner(f"NO NEXTO MODEL at {teacher}: the RANDOM teacher plays instead. The IDM will learn from random "
               "play and label human replays much worse; pass --teacher PATH/nexto-model.pt for a real run.")
        tables = {**tables, "simulate": {**tables["simulate"], "teacher": "random"}}
    if cfg.threads is not None:  # execution only: does not make a finished stage stale
        tables = {**tables, **{s: {**tables[s], "threads": cfg.threads} for s in ("idm-train", "bc-train")}}
    return Plan(preset=name, work=Path(work), replays=cfg.replays or _from_root(settings.replays),
                teacher=teacher if wants_nexto and teacher.is_file() else None,
                export_dir=cfg.export_dir or _from_root(settings.export_dir.format(work=work)),
                nproc_per_node=settings.nproc_per_node if cfg.nproc_per_node is None else cfg.nproc_per_node,
                shards=settings.shards, tables=tables)


def banner(text: str) -> None:
    line = "!" * 100
    print(f"\n{line}\n{text}\n{line}\n", file=sys.stderr, flush=True)


def stage_configs(plan: Plan, shard: str) -> dict[str, object]:
    """The Config of every stage, from the preset's table plus the paths the pipeline owns."""
    import importlib
    w = plan.work
    owned = {
        "replays": {"inputs": [plan.replays], "out": w / "replays", "shard": shard},
        "simulate": {"out": w / "sim", "shard": shard,
                     **({"teacher_path": plan.teacher} if plan.teacher else {})},
        "idm-train": {"sim": (w / "sim",), "replays": w / "replays", "out": w / "idm", "export": w / "export/idm",
                      "resume": True},
        "idm-eval": {"checkpoint": w / "export/idm", "sim": (w / "sim",), "replays": w / "replays",
                     "json": w / "idm-eval/idm-eval.json", "plot": w / "idm-eval/confusion.png"},
        "label": {"checkpoint": w / "export/idm", "replays": w / "replays", "out": w / "labels", "shard": shard},
        "bc-train": {"replays": w / "replays", "labels": w / "labels", "out": w / "bc", "export": w / "export/bc",
                     "resume": True},
        "finetune": {"policy": w / "export/bc", "out": w / "finetune", "export": w / "export/policy"},
        "evaluate": {"blue": str(w / "bot/bot.cfg"), "json": w / "evaluate/results.json", "plot": w / "evaluate",
                     "gif": w / "evaluate/game.gif"},
        "report": {"work": w},
    }
    return {stage: importlib.import_module(MODULES[stage]).Config(**{**plan.tables[stage], **owned[stage]})
            for stage in MODULES}


def build_stages(plan: Plan, shard: str) -> list[Stage]:
    """The steps in order, each with the files that decide whether it is current."""
    c, w = stage_configs(plan, shard), plan.work
    sim, reps, idm, bc = w / "sim/manifest.json", w / "replays/manifest.json", w / "export/idm", w / "export/bc"
    policy = w / "export/policy"  # the clone after arena fine-tuning (the clone itself when finetune steps = 0)
    run = {name: _stage_runner(name, c[name], plan) for name in MODULES}
    return [
        Stage("replays", c["replays"], (plan.replays,), (w / "replays",), run["replays"]),
        Stage("simulate", c["simulate"], (), (w / "sim",), run["simulate"]),
        Stage("idm-train", c["idm-train"], (sim, reps), (w / "idm", idm), run["idm-train"]),
        Stage("idm-eval", c["idm-eval"], (idm / "config.json", sim, reps), (w / "idm-eval",), run["idm-eval"]),
        Stage("label", c["label"], (idm / "config.json", reps), (w / "labels",), run["label"]),
        Stage("bc-train", c["bc-train"], (reps, w / "labels/manifest.json"), (w / "bc", bc), run["bc-train"]),
        Stage("finetune", c["finetune"], (bc / "config.json",), (w / "finetune", policy), run["finetune"]),
        Stage("evaluate", c["evaluate"], (policy / "config.json",), (w / "evaluate", w / "bot"), run["evaluate"]),
        Stage("export", {"export_dir": str(plan.export_dir)}, (idm / "config.json", policy / "config.json",
                                                               *(w / r for r in RESULTS.values())), (),
              lambda: export_models(w, plan.export_dir)),
        Stage("report", c["report"], (w / "idm-eval/idm-eval.json", w / "evaluate/results.json",
                                      w / "bc/history.json", w / "idm/history.json"), (w / "report",), run["report"]),
    ]


def _stage_runner(name: str, stage_cfg, plan: Plan) -> Callable[[], None]:
    """In-process `main(cfg)`; the trainers go through torchrun when nproc_per_node > 0."""
    import importlib

    def run() -> None:
        if name in ("idm-train", "bc-train") and plan.nproc_per_node > 0:
            cmd = torchrun_command(name, stage_cfg, plan.nproc_per_node)
            print("+ " + " ".join(cmd), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)
            return
        if name == "evaluate":
            prepare_bot(plan.work / "bot", plan.work / "export/policy")
        importlib.import_module(MODULES[name]).main(stage_cfg)

    return run


# ---------------------------------------------------------------- helpers the stages need

def prepare_bot(folder: Path, policy: Path) -> Path:
    """A copy of the shipped bot (bot.cfg + bot/) whose models/bc is this run's policy, so evaluate plays the
    bot exactly as RLBotGUI would load it, without touching the repository's models/."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "bot").mkdir(parents=True)
    for name in BOT_FILES:
        shutil.copy2(ROOT / name, folder / name)
    for src in (ROOT / "bot").glob("*.py"):
        shutil.copy2(src, folder / "bot" / src.name)
    shutil.copytree(policy, folder / "models" / "bc")
    return folder / "bot.cfg"


RESULTS = {"idm": "idm-eval/idm-eval.json", "bc": "evaluate/results.json"}  # per model, under the work folder


def results_section(name: str, results: dict) -> str:
    """Model-card lines for what the pipeline measured after training: replay agreement, or match results."""
    if name == "idm":
        rows = [(f"held-out simulation, equivalence-aware action accuracy ({kind})",
                 results[f"sim_{kind}"]["action_equiv_acc"]) for kind in ("clean", "corrupt")]
        rows += [(f"replays: {key.removesuffix('_agree')} agreement with the recorded input", value)
                 for key, value in results["replay"].items() if key.endswith("_agree")]
        table = "\n".join(f"| {what} | {value:.3f} |" for what, value in rows)
        return (f"\n## Measured by the pipeline (idm-eval)\n\n{results['replay']['frames']:,} fresh replay frames of "
                f"{results['replay']['replays']} replays.\n\n| metric | value |\n|---|---|\n{table}\n")
    summary, config = results["summary"], results["config"]
    low, high = summary["a_score_rate_ci95"]
    return (f"\n## Measured by the pipeline (evaluate)\n\n{summary['games']} games of {config['seconds']:.0f} s "
            f"against `{summary['b']}`{' (sides swapped every game)' if config['swap_sides'] else ''}: "
            f"{summary['a_wins']} wins, {summary['draws']} draws, "
            f"{summary['a_losses']} losses (score rate {summary['a_score_rate']:.2f}, 95% CI {low:.2f}-{high:.2f}); "
            f"{summary['a_goals_per_game']:.2f} goals per game for the bot, {summary['b_goals_per_game']:.2f} for "
            f"the opponent.\n")


def export_models(work: Path, dest: Path) -> None:
    """Copy the final fp16 IDM and policy (`work`/export/idm and /policy) to dest/idm and dest/bc (replacing
    older ones); each model card gets what the pipeline measured after training (idm-eval, evaluate) if present."""
    for name, source in (("idm", "idm"), ("bc", "policy")):
        target = Path(dest) / name
        tmp = target.with_name(f"{name}.tmp-export")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(Path(work) / "export" / source, tmp)
        results = Path(work) / RESULTS[name]
        if results.is_file():
            with open(tmp / "MODEL_CARD.md", "a") as card:
                card.write(results_section(name, read_json(results)))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        print(f"exported {target}")


def print_commands(plan: Plan) -> None:
    """The recipe for a scheduler: sharded stages once per shard i (0..n-1), trainers under torchrun."""
    n = max(plan.shards, 1)
    py = "python -m training"
    print(f"# work folder {plan.work} must be shared by every job; sharded stages: run one job per i in 0..{n - 1}")
    for stage in build_stages(plan, f"{{i}}/{n}"):
        if stage.name == "export":
            print(f"# export: copy {plan.work}/export/idm and /policy to {plan.export_dir}/idm and /bc "
                  "(the pipeline does it)")
            continue
        argv = " ".join(config_to_argv(stage.config))
        if stage.name in ("idm-train", "bc-train") and plan.nproc_per_node > 0:
            line = f"torchrun --standalone --nproc-per-node {plan.nproc_per_node} -m training {stage.name} {argv}"
        else:
            line = f"{py} {stage.name} {argv}"
        if stage.name in SHARDED:
            line += f"\n{py} {stage.name} {argv.replace(f'--shard {{i}}/{n}', '--shard 0/1')}   # merge: finds " \
                    "every shard done, writes manifest.json"
        print(f"\n# {stage.name}\n{line}")


# ---------------------------------------------------------------- staleness

def fingerprint(path: Path) -> str | None:
    """sha256 of what a file or replay folder holds, not of when or how fast it was made: a JSON manifest without
    its timings (VOLATILE_KEYS) and with cache hits counted as parses; a replay folder by its files' contents
    (a copied or re-downloaded corpus keeps its fingerprint)."""
    import hashlib
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        return hashlib.sha256(json.dumps(_without_volatile(read_json(path)), sort_keys=True).encode()).hexdigest()
    if path.is_file() and path.suffix != ".replay":
        return sha256_file(path)
    files = find_replay_files(path)
    if not files:
        return None
    root = path if path.is_dir() else path.parent
    listing = "\n".join(f"{p.relative_to(root)} {sha256_file(p)}" for p in files)
    return hashlib.sha256(listing.encode()).hexdigest()


VOLATILE_KEYS = ("seconds", "counts", "finished")  # timings and tallies that a re-run changes, the data not


def _without_volatile(value):
    if isinstance(value, dict):
        return {k: ("parsed" if k == "status" and v == "cached" else _without_volatile(v))
                for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def stamp_record(stage: Stage) -> dict:
    """What makes a stage's outputs current: its config (minus execution-only fields, and fields added later
    while at the value that reproduces earlier outputs: a config's ADDED_LATER; plus its CODE_VERSIONS) and its
    inputs' hashes."""
    raw = asdict(stage.config) if dataclasses.is_dataclass(stage.config) else dict(stage.config)
    neutral = getattr(stage.config, "ADDED_LATER", {})
    kept = {k: v for k, v in raw.items() if k not in EXECUTION_ONLY and not (k in neutral and v == neutral[k])}
    kept.update(getattr(stage.config, "CODE_VERSIONS", {}))  # e.g. simulate's equivalence-class version
    config = json.loads(json.dumps(kept, default=str))
    return {"config": config, "inputs": {str(p): fingerprint(p) for p in stage.inputs}}


def stamp_path(work: Path, stage: str, shard: str) -> Path:
    suffix = "" if shard == "0/1" else "-" + shard.replace("/", "of")
    return Path(work) / "stamps" / f"{stage}{suffix}.json"


def decide(old: dict | None, new: dict) -> tuple[str, str]:
    """('skip' | 'resume' | 'fresh', why) from the stage's stamp (None if absent) and its `stamp_record` now.
    A stage re-runs when its config or what its inputs hold changed, so a re-run upstream stage that made the
    same data does not cascade. No stamp means the outputs, if any, come from an interrupted run or from sharded
    jobs: the stage resumes over them (stages skip finished shards)."""
    if old is None:
        return "resume", "no stamp"
    if old.get("config") != new["config"]:
        return "fresh", "config changed"
    changed = [str(Path(*Path(p).parts[-2:])) for p, h in new["inputs"].items() if old.get("inputs", {}).get(p) != h]
    if changed:
        return "fresh", f"inputs changed: {', '.join(changed)}"
    return ("skip", "current") if old.get("done") else ("resume", "interrupted")


def run_stages(stages: list[Stage], work: Path, shard: str) -> list[dict]:
    """Run or skip each stage in order; returns one row per stage (name, action, why, seconds)."""
    rows = []
    for k, stage in enumerate(stages, 1):
        stamp = stamp_path(work, stage.name, shard)
        if stage.name == "label" and shard != "0/1" and not (work / "export/idm/config.json").is_file():
            print(f"[{k}/{len(stages)}] label: waiting for the IDM (run idm-train first)", flush=True)
            continue
        record = stamp_record(stage)  # once: it hashes the inputs (replays: every file), which a stage never writes
        action, why = decide(read_json(stamp) if stamp.is_file() else None, record)
        print(f"[{k}/{len(stages)}] {stage.name}: {'skipped' if action == 'skip' else 'running'} ({why})",
              flush=True)
        if action == "skip":
            rows.append({"stage": stage.name, "action": action, "why": why, "seconds": 0.0})
            continue
        if action == "fresh":
            for path in stage.outputs:
                shutil.rmtree(path, ignore_errors=True)
        write_json(stamp, {**record, "done": False})
        t0 = time.perf_counter()
        stage.run()
        seconds = time.perf_counter() - t0
        write_json(stamp, {**record, "done": True, "seconds": round(seconds, 2),
                           "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
        rows.append({"stage": stage.name, "action": action, "why": why, "seconds": round(seconds, 2)})
    return rows


def main(cfg: Config) -> list[dict]:
    try:
        parse_shard(cfg.shard)
        plan = make_plan(cfg)
    except ValueError as exc:
        raise SystemExit(f"pipeline: {exc}") from None
    if cfg.stop_after and cfg.stop_after not in ORDER:
        raise SystemExit(f"pipeline: --stop-after must be one of {', '.join(ORDER)}")
    if cfg.print_commands:
        print_commands(plan)
        return []
    if not find_replay_files(plan.replays):
        print(NO_REPLAYS.format(path=plan.replays, preset=cfg.preset), file=sys.stderr)
        raise SystemExit(2)
    stages = build_stages(plan, cfg.shard)
    if cfg.stop_after:
        stages = stages[:[s.name for s in stages].index(cfg.stop_after) + 1]
    if cfg.shard != "0/1":
        stages = [s for s in stages if s.name in SHARDED]
    print(f"pipeline {plan.preset}: work {plan.work}, replays {plan.replays}, "
          f"teacher {plan.teacher or 'random'}, export to {plan.export_dir}", flush=True)
    t0 = time.perf_counter()
    rows = run_stages(stages, plan.work, cfg.shard)
    total = time.perf_counter() - t0
    write_json(plan.work / "pipeline.json", {"preset": plan.preset, "shard": cfg.shard, "seconds": round(total, 2),
                                             "stages": rows})
    ran = [r["stage"] for r in rows if r["action"] != "skip"]
    print(f"pipeline done in {total:.1f} s; ran: {', '.join(ran) or 'nothing (all current)'}"
          + (f"; report: {plan.work / 'report' / 'report.md'}" if stages[-1].name == "report" else ""), flush=True)
    return rows
