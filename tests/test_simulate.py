"""Simulated IDM data: determinism, resume after a kill, label/mask consistency, exact re-simulation."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.actions import NUM_ACTIONS
from bot.frame import HAS_FLIP, ON_GROUND, PRESENT
from training.sim.recorder import SLOTS, replay_shard, run_shard, unpack_equiv
from training.simulate import Config, main, make_teacher
from training.storage import read_json
from training.teachers.nexto import DEFAULT_NEXTO_PATH

REPO = Path(__file__).resolve().parents[1]
needs_model = pytest.mark.skipif(not DEFAULT_NEXTO_PATH.is_file(), reason="Nexto model not present")
SMALL = Config(teacher="random", seconds=12.0, arenas=3, shard_seconds=2.0, workers=1, progress=False,
               episode_seconds_min=0.5, episode_seconds_max=1.5, team_size_weights=(1.0, 1.0, 1.0))


def _check_labels(arrays: dict) -> None:
    action = np.asarray(arrays["action_tp"])
    present = np.asarray(arrays["cars_tpf"])[..., PRESENT] > 0
    assert ((action >= 0) == present).all(), "a label exactly for every present car"
    equiv = unpack_equiv(arrays["equiv_packed_tpb"])  # (T, P, A)
    t, p = np.nonzero(present)
    assert equiv[t, p, action[t, p]].all(), "the label is always inside its equivalence mask"
    assert not equiv[~present].any()
    assert equiv.shape[-1] == NUM_ACTIONS


def test_random_shard_layout_and_labels():
    arrays, counts = run_shard(SMALL, 0, make_teacher(SMALL))
    rows = SMALL.arenas * 60
    assert arrays["cars_tpf"].shape == (rows, SLOTS, 32) and counts["frames"] == rows
    _check_labels(arrays)
    # episodes are contiguous runs of rows that tile each arena's rows
    first, length = arrays["episode_first_row_e"], arrays["episode_len_e"]
    assert length.sum() == rows and counts["episodes"] == len(first) > SMALL.arenas
    for e, (f, n) in enumerate(zip(first, length)):
        assert (arrays["episode_t"][f:f + n] == e).all()
    assert len(np.unique(arrays["action_tp"][arrays["action_tp"] >= 0])) > 10  # varied play


def test_resimulation_reproduces_frames():
    """Recorded start (seed) + recorded actions give back every recorded frame, bit for bit."""
    arrays, _ = run_shard(SMALL, 1, make_teacher(SMALL))
    again = replay_shard(SMALL, 1, arrays)
    for name in ("cars_tpf", "ball_tf", "pads_tk", "game_tf", "action_tp", "episode_t", "flip_phase_tp"):
        np.testing.assert_array_equal(again[name], arrays[name], err_msg=name)


def test_flip_phases_are_recorded_and_shape_the_classes():
    """Scripted dodges from kickoff spots (jump, let go, front dodge, wait): those frames carry a flip phase
    (only in the air, after a dodge), the re-simulation gives it back, and the classes are the ones bot.actions
    gives for that phase, wider than without it."""
    from bot.actions import (ACTION_TABLE, DODGE_CANCEL_BY_PITCH_UP, NO_FLIP, NOOP_ACTION, PITCH_LOCKED,
                             equivalent_actions)
    from training.sim.recorder import ReplayTeacher
    cfg = replace(SMALL, arenas=2, shard_seconds=2.0, team_size_weights=(1.0, 0.0, 0.0), kickoff_share=1.0,
                  episode_seconds_min=3.0, episode_seconds_max=3.0)
    jump = int(np.flatnonzero((ACTION_TABLE == [0, 0, 0, 0, 0, 1, 0, 0]).all(1))[0])
    front_dodge = int(np.flatnonzero((ACTION_TABLE == [0, 0, -1, 0, 0, 1, 0, 1]).all(1))[0])
    script = np.full(60, NOOP_ACTION)
    script[:6], script[8] = jump, front_dodge
    arrays, _ = run_shard(cfg, 0, ReplayTeacher(np.broadcast_to(script[None, :, None], (2, 60, SLOTS)).copy()))
    phase, cars, action = arrays["flip_phase_tp"], arrays["cars_tpf"], arrays["action_tp"].astype(np.int64)
    t, p = np.nonzero(phase != NO_FLIP)
    assert {DODGE_CANCEL_BY_PITCH_UP, PITCH_LOCKED} <= set(phase[t, p].tolist())
    assert (cars[t, p, ON_GROUND] == 0).all() and (cars[t, p, HAS_FLIP] == 0).all()
    recorded = unpack_equiv(arrays["equiv_packed_tpb"][t, p])
    np.testing.assert_array_equal(recorded, equivalent_actions(action[t, p], cars[t, p], phase[t, p]))
    assert recorded.sum() > 2 * equivalent_actions(action[t, p], cars[t, p]).sum()
    np.testing.assert_array_equal(replay_shard(cfg, 0, arrays)["flip_phase_tp"], phase)


def _hashes(out: Path) -> dict:
    return {k: v["sha256"] for k, v in read_json(out / "manifest.json")["shards"].items()}


def test_same_seed_same_shards_and_resume_after_kill(tmp_path):
    cfg = replace(SMALL, seconds=36.0)  # 6 shards
    main(replace(cfg, out=tmp_path / "a"))
    main(replace(cfg, out=tmp_path / "b", workers=2))
    reference = _hashes(tmp_path / "a")
    assert len(reference) == 6 and reference == _hashes(tmp_path / "b")
    other = replace(cfg, out=tmp_path / "c", seed=1)
    main(other)
    assert _hashes(tmp_path / "c") != reference

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "training", "simulate", "--teacher", "random", "--seconds", "36", "--arenas", "3",
           "--shard-seconds", "2", "--workers", "1", "--episode-seconds-min", "0.5", "--episode-seconds-max", "1.5",
           "--team-size-weights", "1", "1", "1", "--no-progress", "--out", str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 60
    while not (killed / "shard-00001" / "meta.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed.glob("shard-?????")))
    assert 1 <= done_before < 6, done_before
    assert subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode == 0
    assert _hashes(killed) == reference
    assert read_json(killed / "manifest.json")["complete"]
    assert not list(killed.glob("*.tmp-*"))


def test_changed_config_refuses_to_mix(tmp_path):
    cfg = replace(SMALL, seconds=6.0, out=tmp_path)
    main(cfg)
    with pytest.raises(SystemExit, match="different job"):
        main(replace(cfg, kickoff_share=0.9))


@needs_model
def test_nexto_shard_labels_resimulation_and_determinism():
    cfg = replace(SMALL, teacher="nexto", arenas=4, epsilon_max=0.1, nexto_betas=(1.0, 0.7))
    arrays, counts = run_shard(cfg, 0, make_teacher(cfg))
    _check_labels(arrays)
    again, _ = run_shard(cfg, 0, make_teacher(cfg))
    for name in arrays:
        np.testing.assert_array_equal(again[name], arrays[name], err_msg=name)
    replayed = replay_shard(cfg, 0, arrays)
    np.testing.assert_array_equal(replayed["cars_tpf"], arrays["cars_tpf"])
    # Nexto decides every 8 ticks = every 2 frames: an action may change only on even frames after the lag
    action = arrays["action_tp"].reshape(cfg.arenas, -1, SLOTS)
    changes = np.nonzero((action[:, 1:] != action[:, :-1]).any((0, 2)))[0] + 1  # frame index of each change
    episode_starts = set(arrays["episode_first_row_e"] % action.shape[1])
    odd_changes = [c for c in changes if c % 2 == 0 and c not in episode_starts]  # lag 4: decisions land on odd
    assert not odd_changes


def test_nexto_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        main(replace(SMALL, teacher="nexto", teacher_path=tmp_path / "missing.pt", out=tmp_path / "o"))



def test_batch_reader_matches_per_arena_readers():
    """BatchReader (gym states + whole-array numpy) gives the very bits of read_cars / read_ball / read_pads,
    demolished cars and picked-up pads included, and the controls applied to every car."""
    from bot.actions import ACTION_TABLE
    from bot.constants import NUM_BOOST_PADS
    from bot.frame import BALL_F, CAR_F, DEMOLISHED, pad_timers_from_active
    from training.sim.recorder import CONTROLS, make_light_arena, slots_for
    from training.sim.rocketsim import BatchReader, read_ball, read_cars, read_pads
    from training.sim.start_states import StartMix, reset_arena

    rng = np.random.default_rng(0)
    sizes = [1, 2, 3, 3, 1]
    arenas = [make_light_arena(n, i) for i, n in enumerate(sizes)]
    slots = [slots_for(n) for n in sizes]
    reader = BatchReader(arenas, slots, np.random.default_rng(0))
    cars = np.full((len(arenas), SLOTS, CAR_F), 7.0, np.float32)  # garbage that a read must overwrite
    ball = np.full((len(arenas), BALL_F), 7.0, np.float32)
    pads = np.full((len(arenas), NUM_BOOST_PADS), 7.0, np.float32)
    for a in arenas:
        reset_arena(a, rng, StartMix(kickoff=0.0))
    seen_demo = seen_pad = False
    for step in range(30):
        if step == 5:
            _demolish(arenas[2], [1])
            pad = arenas[3].get_boost_pads()[5]
            state = pad.get_state()
            state.is_active, state.cooldown = False, 3.3
            pad.set_state(state)
        chosen = [rng.integers(len(ACTION_TABLE), size=len(a.get_cars())) for a in arenas]
        for a, ch in zip(arenas, chosen):
            for car, i in zip(a.get_cars(), ch):
                car.set_controls(CONTROLS[i])
        if step % 3 == 0:  # step all, read some
            which = [0, 2, 3]
            for a in arenas:
                a.step(4)
            applied = reader.read(which, cars, ball, pads)
        else:
            which = list(range(len(arenas)))
            applied = reader.step(4, cars, ball, pads)
        expect_applied = []
        for g in which:
            rows, _, states = read_cars(arenas[g])
            expect = np.zeros((SLOTS, CAR_F), np.float32)
            expect[slots[g]] = rows
            assert cars[g].tobytes() == expect.tobytes(), (step, g)
            assert ball[g].tobytes() == read_ball(arenas[g]).tobytes(), (step, g)
            assert pads[g].tobytes() == pad_timers_from_active(*read_pads(arenas[g])).tobytes(), (step, g)
            for s, i in zip(states, chosen[g]):
                c = s.last_controls
                expect_applied.append((c.throttle, c.steer, c.pitch, c.yaw, c.roll, c.jump, c.boost, c.handbrake))
                assert s.is_demoed or (np.array(expect_applied[-1], np.float32) == ACTION_TABLE[i]).all()
        np.testing.assert_array_equal(applied, np.array(expect_applied, np.float32))
        seen_demo |= bool(cars[2, :, DEMOLISHED].any())
        seen_pad |= bool(pads[3, 5] > 0)
    assert seen_demo and seen_pad


def _demolish(arena, which=None) -> None:
    """Demolish the cars of `arena` at positions `which` of `get_cars()` (all by default)."""
    cars = arena.get_cars()
    for i in range(len(cars)) if which is None else which:
        cars[i].demolish()


def _respawn_run(seed: int) -> np.ndarray:
    """A 3v3 arena whose six cars are demolished at once, stepped 100 frames by BatchReader: (100, 6, CAR_F)."""
    from bot.constants import NUM_BOOST_PADS
    from bot.frame import BALL_F, CAR_F
    from training.sim.recorder import CONTROLS, make_light_arena, slots_for
    from training.sim.rocketsim import BatchReader
    from training.sim.start_states import StartMix, reset_arena

    arena = make_light_arena(3, 0)
    reset_arena(arena, np.random.default_rng(0), StartMix(kickoff=0.0))
    reader = BatchReader([arena], [slots_for(3)], np.random.default_rng(seed))
    cars, ball, pads = np.zeros((1, SLOTS, CAR_F), np.float32), np.zeros((1, BALL_F)), np.zeros((1, NUM_BOOST_PADS))
    for car in arena.get_cars():
        car.set_controls(CONTROLS[1])
    _demolish(arena)
    reader.read([0], cars, ball, pads)
    frames = []
    for _ in range(100):
        reader.step(4, cars, ball, pads)
        frames.append(cars[0].copy())
    return np.stack(frames)


def test_respawn_after_demolition_is_seeded():
    """A demolished car comes back after RocketSim's 3 s, with its spawn boost, on a respawn spot of its team
    that the seed decides (RocketSim's own pick is unseeded) and no other car takes, so two runs give the very
    same states."""
    from bot.frame import BOOST, DEMOLISHED, POS

    first = _respawn_run(seed=0)
    assert first.tobytes() == _respawn_run(seed=0).tobytes()
    assert (first[:89, :, DEMOLISHED] == 1).all() and (first[89:, :, DEMOLISHED] == 0).all()  # 360 ticks
    back = first[89]  # the moment of the respawn
    np.testing.assert_allclose(back[:, BOOST], 33.333332 / 100)
    np.testing.assert_array_equal(back[:, POS][:, 1], np.where(np.arange(SLOTS) < 3, -4608.0, 4608.0))
    assert (back[:, POS][:, 2] == 36.0).all()
    for team in (back[:3], back[3:]):
        x = team[:, POS][:, 0]
        assert set(np.abs(x)) <= {2304.0, 2688.0} and len(set(x)) == 3  # three different spots


def test_shard_with_demolitions_is_deterministic_and_replays(monkeypatch):
    """Same seed, same bytes, and exact re-simulation, for a shard whose cars are demolished and respawn."""
    from bot.frame import DEMOLISHED
    from training.sim import recorder

    reset = recorder.reset_arena

    def reset_and_demolish(arena, rng, mix):
        kind = reset(arena, rng, mix)
        _demolish(arena)
        return kind

    monkeypatch.setattr(recorder, "reset_arena", reset_and_demolish)
    cfg = replace(SMALL, arenas=2, shard_seconds=4.0, episode_seconds_min=3.5, episode_seconds_max=4.0,
                  team_size_weights=(0.0, 0.0, 1.0))
    arrays, _ = run_shard(cfg, 0, make_teacher(cfg))
    demoed = arrays["cars_tpf"][..., DEMOLISHED].reshape(cfg.arenas, -1, SLOTS)
    assert (demoed[:, 0] == 1).all() and (demoed[:, 95] == 0).all()  # every car demolished, then respawned
    again, _ = run_shard(cfg, 0, make_teacher(cfg))
    for name in arrays:
        assert again[name].tobytes() == arrays[name].tobytes(), name
    replayed = replay_shard(cfg, 0, arrays)
    for name in ("cars_tpf", "ball_tf", "pads_tk", "game_tf", "action_tp", "episode_t", "flip_phase_tp"):
        assert replayed[name].tobytes() == arrays[name].tobytes(), name


def test_equivalence_table_and_labels_match_bot_actions():
    """The recorder's lookups give what bot.actions computes: equivalence masks and nearest actions."""
    from bot.actions import ACTION_TABLE, NUM_FLIP_PHASES, equivalent_actions, nearest_action
    from bot.frame import BOOST, CAR_F, DEMOLISHED, HAS_FLIP, HAS_JUMP, ON_GROUND
    from training.sim.recorder import EQUIV_PACKED, equiv_code, label_actions, pack_equiv

    rng = np.random.default_rng(1)
    n = 5000
    rows = rng.normal(size=(n, CAR_F)).astype(np.float32)
    for col in (DEMOLISHED, ON_GROUND, HAS_JUMP, HAS_FLIP):
        rows[:, col] = rng.choice(np.array([0.0, 1.0, np.nan], np.float32), size=n, p=[0.45, 0.45, 0.1])
    rows[:, BOOST] = rng.choice(np.array([0.0, 0.5, 1.0, np.nan], np.float32), size=n)
    action = rng.integers(NUM_ACTIONS, size=n)
    phase = rng.integers(NUM_FLIP_PHASES, size=n)
    np.testing.assert_array_equal(EQUIV_PACKED[equiv_code(rows, phase), action],
                                  pack_equiv(equivalent_actions(action, rows, phase)))

    applied = ACTION_TABLE[action].copy()
    off = rng.random(n) < 0.2  # controls that are not exactly a table row
    applied[off] += rng.normal(scale=0.4, size=(int(off.sum()), 8)).astype(np.float32)
    np.testing.assert_array_equal(label_actions(applied, action), nearest_action(applied))


def test_physics_equivalence_probe_branches_without_touching_the_shard():
    """benchmarks/idm_physics_equiv.py branches every arena over all 90 actions inside `run_shard`: the shard must
    come out byte-identical, and the classes must be equivalence relations that say what the simulator does:
    on the ground at speed, steering right is not the no-op."""
    from benchmarks.idm_physics_equiv import Brancher
    from bot.frame import VEL
    plain, _ = run_shard(SMALL, 0, make_teacher(SMALL))
    brancher = Brancher(every=20)
    probed, _ = run_shard(SMALL, 0, make_teacher(SMALL), probe=brancher)
    for name in plain:
        np.testing.assert_array_equal(probed[name], plain[name], err_msg=name)
    steps = int(round(SMALL.shard_seconds * 30))
    assert brancher.records and {r["step"] for r in brancher.records} <= set(range(0, steps, 20))
    for r in brancher.records:
        full = r["full"]
        assert full.shape == (NUM_ACTIONS, NUM_ACTIONS) and (full == full.T).all() and full.diagonal().all()
        assert (r["full_coarse"] >= full).all() and (r["next"] >= r["full_coarse"]).all()
    cars = np.asarray(plain["cars_tpf"])
    fast = [r for r in brancher.records if r["situation"] == "ground"
            and np.linalg.norm(cars[r["g"] * steps + r["step"], r["slot"], VEL]) > 300]
    assert fast and all(not r["full"][8, 10] for r in fast)  # rows 8: no-op, 10: steer right (and yaw)


def test_probe_classes_with_and_without_flip_phases():
    """The probe scores the rules (with flip phases) and the rules of version 1 (without): no phase gives the
    version-1 rules; a side dodge leaves only throttle, jump and boost to tell actions apart; a pitch lock
    merges rows that differ only in pitch."""
    from benchmarks.idm_physics_equiv import classes_of
    from bot.actions import ACTION_TABLE, DODGE_SIDE, NO_FLIP, PITCH, PITCH_LOCKED, ROLL, YAW, equivalent_actions
    from bot.frame import BOOST, CAR_F, HAS_FLIP, HAS_JUMP, ON_GROUND
    cars = np.zeros((3, CAR_F), np.float32)
    cars[:, [BOOST, HAS_JUMP, HAS_FLIP]] = 1.0  # in the air with boost and a flip left
    cars[:, ON_GROUND] = 0.0
    classes = classes_of(cars, np.array([NO_FLIP, DODGE_SIDE, PITCH_LOCKED]))
    rules_v1 = equivalent_actions(np.tile(np.arange(NUM_ACTIONS), 3),
                                  np.repeat(cars, NUM_ACTIONS, 0)).reshape(3, 90, 90)
    np.testing.assert_array_equal(classes[0], rules_v1[0])
    np.testing.assert_array_equal(classes_of(cars, None), rules_v1)

    def same_except(cols: list[int]) -> np.ndarray:
        rest = np.delete(np.arange(8), cols + [1, 7])  # in the air steer and handbrake never count
        return (ACTION_TABLE[:, None, rest] == ACTION_TABLE[None, :, rest]).all(-1)
    np.testing.assert_array_equal(classes[1], same_except([PITCH, YAW, ROLL]))
    np.testing.assert_array_equal(classes[2], same_except([PITCH]))


def test_analog_inputs_keep_the_row_as_label_and_resimulate():
    """analog_share scales ground rows' steer/yaw and throttle partway (within [0.15, 1]); the label stays the
    row, the simulator really applies the partial values, a re-simulation draws the same scales, and share 0
    leaves the data exactly as before (the draws come from a stream of their own)."""
    from bot.actions import ACTION_TABLE, STEER, THROTTLE, YAW
    from training.sim.recorder import GROUND_ROWS, analog_controls
    rng = np.random.default_rng(0)
    chosen = rng.integers(0, NUM_ACTIONS, 20000)
    controls, scaled = analog_controls(chosen, rng, 0.5)
    rows = ACTION_TABLE[chosen]
    assert not scaled[~GROUND_ROWS[chosen]].any() and 0.45 < scaled[GROUND_ROWS[chosen]].mean() < 0.55
    np.testing.assert_array_equal(controls[~scaled], rows[~scaled])
    steer = np.abs(controls[scaled & (rows[:, STEER] != 0), STEER])
    assert steer.min() >= 0.15 and steer.max() <= 1 and steer.std() > 0.2
    np.testing.assert_array_equal(np.sign(controls), np.sign(rows))  # the signs are the label's
    np.testing.assert_array_equal(controls[:, YAW], controls[:, STEER])  # ground rows steer = yaw, scaled alike
    assert (np.abs(controls[scaled & (rows[:, 6] > 0), THROTTLE]) == 1).all()  # boosting keeps full throttle

    analog = replace(SMALL, analog_share=0.5)
    arrays, _ = run_shard(analog, 1, make_teacher(analog))
    _check_labels(arrays)  # every label a row, inside its mask (run_shard raises on controls that did not hold)
    again = replay_shard(analog, 1, arrays)
    for name in ("cars_tpf", "ball_tf", "action_tp"):
        np.testing.assert_array_equal(again[name], arrays[name], err_msg=name)
    plain, _ = run_shard(SMALL, 1, make_teacher(SMALL))
    assert not np.array_equal(plain["cars_tpf"], arrays["cars_tpf"])  # partial inputs drive differently
    zero, _ = run_shard(replace(SMALL, analog_share=0.0), 1, make_teacher(SMALL))
    np.testing.assert_array_equal(zero["cars_tpf"], plain["cars_tpf"])


def test_a_field_added_later_at_its_neutral_value_keeps_older_jobs_current(tmp_path):
    """analog_share came after data sets were made: at 0 it is left out of the manifest's config and of the
    pipeline's stamp, so a folder simulated before it resumes (skips) instead of being refused or remade."""
    from training import pipeline
    from training.simulate import data_config
    assert "analog_share" not in data_config(SMALL) and data_config(replace(SMALL, analog_share=0.5))["analog_share"]
    stage = pipeline.Stage("simulate", SMALL, (), (), lambda: None)
    assert "analog_share" not in pipeline.stamp_record(stage)["config"]
    assert pipeline.stamp_record(replace(stage, config=replace(SMALL, analog_share=0.5)))["config"]["analog_share"]
    cfg = replace(SMALL, seconds=2.0, out=tmp_path)
    main(cfg)
    main(replace(cfg, analog_share=0.0))  # same job: resumes over the finished shards
    with pytest.raises(SystemExit, match="different job"):
        main(replace(cfg, analog_share=0.5))
