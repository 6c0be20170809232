"""The one-command pipeline: the tiny preset end to end, stamps that skip current stages and re-run changed
ones, strict presets, the missing-Nexto and missing-replays paths, and the cluster commands."""

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPLAYS, ROOT
from training import pipeline
from training.cli import parse_config

STAGE_OUTPUTS = ("replays/manifest.json", "sim/manifest.json", "idm/history.json", "idm/model/config.json",
                 "export/idm/model.safetensors", "idm-eval/idm-eval.json", "idm-eval/confusion.png",
                 "idm-eval/confusion-situations.png", "labels/manifest.json", "bc/history.json", "bc/curves.png",
                 "export/bc/model.safetensors",
                 "finetune/history.json", "export/policy/model.safetensors", "bot/bot.cfg",
                 "bot/models/bc/model.safetensors", "evaluate/results.json",
                 "evaluate/game-000.png", "evaluate/game.gif")
REPORT_FILES = ("report.md", "data.png", "idm-accuracy.png", "idm-situations.png", "replay-agreement.png",
                "idm-curves.png", "bc-curves.png", "finetune-curves.png", "game-000.png", "game.gif")


def run_pipeline(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "training", "pipeline", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    return proc, time.perf_counter() - t0


def stage_actions(work: Path) -> dict[str, str]:
    return {row["stage"]: row["action"] for row in json.loads((work / "pipeline.json").read_text())["stages"]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny pipeline run into a temporary folder (models exported there too, never into models/)."""
    if not REPLAYS.is_dir():
        pytest.skip("../shared/replays is absent")
    base = tmp_path_factory.mktemp("pipeline")
    repo_models = sorted(p.relative_to(ROOT) for p in (ROOT / "models").rglob("*"))
    proc, seconds = run_pipeline("--preset", "tiny", "--work", str(base / "work"), "--export-dir",
                                 str(base / "models"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.relative_to(ROOT) for p in (ROOT / "models").rglob("*")) == repo_models
    return base, proc, seconds


def test_tiny_pipeline_writes_every_stage_output_and_the_report(tiny_run):
    base, proc, seconds = tiny_run
    work = base / "work"
    print(f"tiny pipeline: {seconds:.1f} s")
    assert set(stage_actions(work)) == set(pipeline.ORDER)
    assert all(a != "skip" for a in stage_actions(work).values())
    for rel in STAGE_OUTPUTS:
        assert (work / rel).is_file(), rel
    for name in ("idm", "bc"):
        assert (base / "models" / name / "model.safetensors").is_file()
        assert (base / "models" / name / "config.json").is_file()
    idm_eval = json.loads((work / "idm-eval/idm-eval.json").read_text())
    idm_card = (base / "models/idm/MODEL_CARD.md").read_text()
    assert "Measured by the pipeline (idm-eval)" in idm_card
    assert f"| replays: steer agreement with the recorded input | {idm_eval['replay']['steer_agree']:.3f} |" in idm_card
    games = json.loads((work / "evaluate/results.json").read_text())["summary"]["games"]
    assert f"{games} games of" in (base / "models/bc/MODEL_CARD.md").read_text()
    sim = json.loads((work / "sim/manifest.json").read_text())
    assert sim["complete"] and 120 <= sim["counts"]["game_seconds"] <= 240  # a few game-minutes
    report = (work / "report/report.md").read_text()
    for rel in REPORT_FILES:
        assert (work / "report" / rel).stat().st_size > 1000, rel
        assert rel == "report.md" or f"({rel})" in report, rel
    for heading in ("## Data", "## Inverse dynamics model", "### Agreement with recorded replay inputs",
                    "## Behaviour cloning", "## Arena fine-tuning", "## Matches in the simulated arena"):
        assert heading in report
    assert "control_acc.throttle" in report and "flag_acc.on_ground" in report
    rep = idm_eval["replay"]
    assert (f"| boost | {rep['boost_agree']:.3f} | {rep['boost_ground_agree']:.3f} | {rep['boost_air_agree']:.3f} |"
            in report)  # one row per input, ground and air beside it
    summary = json.loads((work / "evaluate/results.json").read_text())["summary"]
    assert (f"touched the ball first after {summary['a_kickoff_first_touch_rate']:.0%} of kickoffs; goals within 10 s"
            f" of a kickoff: {summary['a_quick_goals']} ours, {summary['b_quick_goals']} theirs.") in report


def test_second_run_skips_every_stage(tiny_run):
    base, _, _ = tiny_run
    proc, seconds = run_pipeline("--preset", "tiny", "--work", str(base / "work"), "--export-dir",
                                 str(base / "models"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(stage_actions(base / "work").values()) == {"skip"}
    assert "ran: nothing (all current)" in proc.stdout
    assert seconds < 30


def test_changed_stage_config_reruns_from_that_stage(tiny_run):
    base, _, _ = tiny_run
    text = (pipeline.PRESETS_DIR / "tiny.toml").read_text()
    assert "[bc-train]\nhidden = 32\nlayers = 1\nbatch_size = 64\nsteps = 30\n" in text
    changed = base / "tiny-bc20.toml"
    changed.write_text(text.replace("[bc-train]\nhidden = 32\nlayers = 1\nbatch_size = 64\nsteps = 30\n",
                                    "[bc-train]\nhidden = 32\nlayers = 1\nbatch_size = 64\nsteps = 20\n"))
    proc, _ = run_pipeline("--preset", str(changed), "--work", str(base / "work"), "--export-dir",
                           str(base / "models"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    actions = stage_actions(base / "work")
    assert [s for s in pipeline.ORDER if actions[s] == "skip"] == ["replays", "simulate", "idm-train", "idm-eval",
                                                                   "label"]
    assert "bc-train: running (config changed)" in proc.stdout
    history = json.loads((base / "work/bc/history.json").read_text())["history"]
    assert history[-1]["step"] == 20  # trained afresh, not resumed from the 30-step checkpoint


def test_rerun_upstream_stage_that_makes_the_same_data_does_not_cascade(tiny_run):
    """An interrupted replays stage re-parses (cache hits, new timings) but holds the same data: nothing after it
    re-runs. Before, any stage that ran forced every later one to run afresh (a 27-minute IDM for nothing)."""
    base, _, _ = tiny_run
    work = base / "work"
    (work / "stamps" / "replays.json").unlink()
    proc, _ = run_pipeline("--preset", "tiny", "--work", str(work), "--export-dir", str(base / "models"),
                           "--stop-after", "label")
    assert proc.returncode == 0, proc.stderr[-3000:]
    actions = stage_actions(work)
    assert actions["replays"] == "resume"
    assert [actions[s] for s in ("simulate", "idm-train", "idm-eval", "label")] == ["skip"] * 4
    statuses = {e["status"] for e in json.loads((work / "replays/manifest.json").read_text())["replays"]}
    assert "cached" in statuses  # the manifest's bytes changed; what it describes did not


def test_fingerprint_follows_content_not_timings_or_copies(tmp_path):
    import os
    import shutil
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("a.replay", "b.replay"):
        (folder / name).write_bytes(name.encode() * 100)
    first = pipeline.fingerprint(folder)
    os.utime(folder / "a.replay", (1, 1))  # a re-materialised corpus: same bytes, new times
    copy = tmp_path / "elsewhere" / "corpus"
    shutil.copytree(folder, copy)
    assert pipeline.fingerprint(folder) == pipeline.fingerprint(copy) == first
    (folder / "b.replay").write_bytes(b"other bytes")
    assert pipeline.fingerprint(folder) != first

    manifest = {"config": {"seconds": 60}, "counts": {"parsed": 1},
                "replays": [{"file": "a.replay", "sha256": "x", "status": "parsed", "seconds": 1.5}]}
    rerun = {"config": {"seconds": 60}, "counts": {"cached": 1},
             "replays": [{"file": "a.replay", "sha256": "x", "status": "cached", "seconds": 0.01}]}
    other = {**manifest, "replays": [{**manifest["replays"][0], "sha256": "y"}]}
    paths = []
    for i, content in enumerate((manifest, rerun, other)):
        paths.append(tmp_path / f"manifest-{i}.json")
        paths[-1].write_text(json.dumps(content))
    prints = [pipeline.fingerprint(p) for p in paths]
    assert prints[0] == prints[1] != prints[2]


def write_preset(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text((pipeline.PRESETS_DIR / "tiny.toml").read_text() + extra)
    return path


@pytest.mark.parametrize("name", ["tiny", "cpu", "cluster"])
def test_bundled_presets_are_valid(name):
    settings, tables = pipeline.load_preset(name)
    assert set(tables) == set(pipeline.MODULES)
    configs = pipeline.stage_configs(pipeline.make_plan(pipeline.Config(preset=name, work=Path("/tmp/w"))), "0/1")
    assert configs["idm-train"].out == Path("/tmp/w/idm")


def test_cluster_preset_makes_the_models_the_cpu_preset_makes():
    """Scale-out may change devices, batch sizes and step counts, never what is trained or how it is regularised."""
    _, cpu = pipeline.load_preset("cpu")
    _, cluster = pipeline.load_preset("cluster")
    scale_keys = {"device", "batch_size", "steps", "workers", "arenas", "shard_seconds", "procs"}
    for stage in ("simulate", "idm-train", "bc-train", "finetune"):
        same = {k: v for k, v in cpu[stage].items() if k not in scale_keys}
        assert {k: cluster[stage].get(k) for k in same} == same, stage
    assert (cpu["finetune"]["steps"] > 0) == (cluster["finetune"]["steps"] > 0)


@pytest.mark.parametrize("extra, message", [
    ("\n[label]\nwrokers = 2\n", "unknown key 'wrokers'"),
    ("\n[label]\nout = 'elsewhere'\n", "'out' is set by the pipeline"),
    ("\n[idm-trian]\nsteps = 2\n", "unknown table"),
    ("\n[pipeline.extra]\n", "unknown key 'extra'"),
])
def test_preset_validation_rejects_bad_keys(tmp_path, extra, message):
    # TOML forbids redefining a table, so bad keys go into new tables or ones tiny.toml lacks
    text = (pipeline.PRESETS_DIR / "tiny.toml").read_text().replace("[label]\nworkers = 1\n", "")
    path = tmp_path / "bad.toml"
    path.write_text(text + extra)
    with pytest.raises(ValueError, match=message):
        pipeline.load_preset(str(path))
    with pytest.raises(SystemExit, match=message):
        pipeline.main(pipeline.Config(preset=str(path), work=tmp_path / "w"))


def test_preset_validation_rejects_wrong_types(tmp_path):
    text = (pipeline.PRESETS_DIR / "tiny.toml").read_text().replace("steps = 30", "steps = 'thirty'", 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match="steps: expected int"):
        pipeline.load_preset(str(path))


def test_missing_nexto_falls_back_to_random_loudly(tmp_path, capsys):
    plan = pipeline.make_plan(pipeline.Config(preset="tiny", teacher=tmp_path / "no-nexto.pt", work=tmp_path))
    assert plan.teacher is None and plan.tables["simulate"]["teacher"] == "random"
    assert "NO NEXTO MODEL" in capsys.readouterr().err
    sim_cfg = pipeline.stage_configs(plan, "0/1")["simulate"]
    assert sim_cfg.teacher == "random"


def test_missing_replays_says_where_to_get_them_and_stops(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        pipeline.main(pipeline.Config(preset="tiny", replays=tmp_path / "empty", work=tmp_path / "w"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "No .replay files" in err and "ballchasing.com" in err and "python -m training download" in err
    assert "--replays" in err
    assert not (tmp_path / "w" / "stamps").exists()  # nothing ran


def test_print_commands_are_valid_stage_commands(capsys):
    pipeline.main(pipeline.Config(preset="cluster", work=Path("/shared/work"), print_commands=True))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln and not ln.startswith("#")]
    text = "\n".join(lines)
    assert "torchrun --standalone --nproc-per-node 8 -m training idm-train" in text
    assert "--shard {i}/16" in text
    import importlib
    for line in lines:
        argv = shlex.split(line.split("#")[0].replace("{i}", "3"))
        stage_argv = argv[argv.index("training") + 1:]
        module = importlib.import_module(pipeline.MODULES[stage_argv[0]])
        cfg = parse_config(module.Config, stage_argv[1:], prog=stage_argv[0], description="")
        if stage_argv[0] == "idm-train":
            assert cfg.device == "cuda" and cfg.sim == (Path("/shared/work/sim"),) and cfg.hidden == 512
        if stage_argv[0] == "simulate" and "--shard" in stage_argv and cfg.shard != "0/1":
            assert cfg.shard == "3/16" and cfg.seconds == 72000


def test_threads_flag_reaches_the_trainers_without_making_them_stale(tmp_path):
    def trainer_stamps(threads):
        plan = pipeline.make_plan(pipeline.Config(preset="cpu", work=tmp_path, threads=threads))
        stages = {s.name: s for s in pipeline.build_stages(plan, "0/1")}
        assert stages["idm-train"].config.threads == stages["bc-train"].config.threads == (threads or 0)
        return [pipeline.stamp_record(stages[name])["config"] for name in ("idm-train", "bc-train")]

    assert trainer_stamps(1) == trainer_stamps(None)


def file_times(folder: Path) -> dict[str, int]:
    """Every data file under folder (manifests aside, which merges rewrite) -> its mtime in ns."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.name != "manifest.json"}


def test_cluster_recipe_sharded_jobs_then_merge_make_the_same_data(tiny_run, tmp_path):
    """docs/pipeline.md's cluster recipe at tiny scale: data in 2 shard jobs, then the IDM, labels in 2 shard jobs,
    then the rest. The unsharded runs redo no shard's work, and the merged data are an unsharded run's."""
    base, _, _ = tiny_run
    work = tmp_path / "work"
    common = ("--preset", "tiny", "--work", str(work), "--export-dir", str(tmp_path / "models"))

    def run(*args: str) -> dict[str, str]:
        proc, _ = run_pipeline(*common, *args)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return stage_actions(work)

    for i in range(2):  # 1. data
        assert set(run("--shard", f"{i}/2", "--stop-after", "simulate")) == {"replays", "simulate"}
    assert (work / "stamps/simulate-0of2.json").is_file() and (work / "stamps/simulate-1of2.json").is_file()
    sim_files = file_times(work / "sim")
    assert len([p for p in sim_files if p.endswith("meta.json")]) == 4  # the preset's 4 shards, 2 per job

    actions = run("--stop-after", "idm-eval")  # 2. the merge, then the IDM
    assert actions["simulate"] == "resume" and actions["idm-train"] != "skip"
    assert file_times(work / "sim") == sim_files  # merged, not simulated again
    merged = json.loads((work / "sim/manifest.json").read_text())
    unsharded = json.loads((base / "work/sim/manifest.json").read_text())
    assert merged["complete"] and merged["shards"] == unsharded["shards"]  # same shards, same bytes

    assert set(run("--shard", "0/2")) == {"replays", "simulate", "label"}  # 3. labels (the one replay is shard 0's)
    assert run("--shard", "1/2")["label"] != "skip"
    label_files = file_times(work / "labels")
    assert label_files

    actions = run()  # 4. the rest
    assert [actions[s] for s in ("replays", "simulate", "idm-train", "idm-eval")] == ["skip"] * 4
    assert actions["label"] == "resume" and file_times(work / "labels") == label_files
    labels = json.loads((work / "labels/manifest.json").read_text())
    reference = json.loads((base / "work/labels/manifest.json").read_text())
    assert ({k: v["labelled"] for k, v in labels["shards"].items()}
            == {k: v["labelled"] for k, v in reference["shards"].items()})
    assert (tmp_path / "models/bc/model.safetensors").is_file() and (work / "report/report.md").is_file()
