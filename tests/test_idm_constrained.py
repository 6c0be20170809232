"""Constrained decoding of IDM labels with recorded replay inputs: the mask, the fallback and the `label` option."""

import numpy as np
import pytest
import torch

from bot.actions import ACTION_TABLE, BOOST_BUTTON, HANDBRAKE, JUMP, NUM_ACTIONS, STEER, THROTTLE
from bot.frame import CAR_F, IN_BOOST, IN_DODGE, IN_DOUBLE_JUMP, IN_HANDBRAKE, IN_JUMP, IN_STEER, IN_THROTTLE
from training.idm.infer import (CONSTRAINABLE, FREE_ROWS, consistent_actions, constrained_argmax, parse_constrain,
                                recorded_values)

COLUMN = {"throttle": THROTTLE, "steer": STEER, "boost": BOOST_BUTTON, "jump": JUMP, "handbrake": HANDBRAKE}


def random_recorded(rng: np.random.Generator, n: int) -> np.ndarray:
    """Car rows with random recorded inputs, a fifth of each unknown (NaN)."""
    rec = np.zeros((n, CAR_F), np.float32)
    rec[:, IN_THROTTLE] = rng.uniform(-1, 1, n)
    rec[:, IN_STEER] = rng.choice([-1.0, -0.05, 0.0, 0.05, 1.0, 0.5], n)
    for col in (IN_HANDBRAKE, IN_BOOST, IN_JUMP, IN_DOUBLE_JUMP, IN_DODGE):
        rec[:, col] = rng.random(n) < 0.3
    for col in (IN_THROTTLE, IN_STEER, IN_HANDBRAKE, IN_BOOST):
        rec[rng.random(n) < 0.2, col] = np.nan
    return rec


def satisfied(action: np.ndarray, rec: np.ndarray, constrain: tuple[str, ...], prev: np.ndarray | None = None
              ) -> np.ndarray:
    """(N,) bool, checked per frame against the table (independent of the vectorised mask)."""
    values = recorded_values(rec, prev)
    ok = np.ones(len(action), bool)
    for name in constrain:
        v = values[name]
        ok &= ~np.isfinite(v) | ~FREE_ROWS[name][action] | (ACTION_TABLE[action, COLUMN[name]] == v)
    return ok


@pytest.mark.parametrize("constrain", [("throttle",), ("steer", "boost"), ("boost", "jump", "handbrake"),
                                       CONSTRAINABLE])
def test_constrained_labels_satisfy_the_constraints_and_keep_the_best_consistent_action(rng, constrain):
    n = 4000
    rec = random_recorded(rng, n)
    p = rng.dirichlet(np.ones(NUM_ACTIONS), n).astype(np.float32)
    allowed = consistent_actions(rec, constrain)
    action, survived = constrained_argmax(p, allowed)
    assert survived.all()  # aerial rows are free in throttle/steer/handbrake, so some action always fits
    assert satisfied(action, rec, constrain).all()
    best_allowed = np.where(allowed, p, -1).max(-1)
    assert np.array_equal(p[np.arange(n), action], best_allowed)
    assert (action != p.argmax(-1)).mean() > 0.1  # the constraint really changes labels


def test_unknown_inputs_do_not_constrain(rng):
    rec = np.full((5, CAR_F), np.nan, np.float32)
    assert consistent_actions(rec, CONSTRAINABLE).all()


def test_fallback_to_the_plain_argmax_when_no_action_survives(rng):
    p = rng.dirichlet(np.ones(NUM_ACTIONS), 6).astype(np.float32)
    allowed = np.ones((6, NUM_ACTIONS), bool)
    allowed[::2] = False  # nothing survives on even rows
    allowed[1::2, p[1::2].argmax(-1)] = False
    action, survived = constrained_argmax(p, allowed)
    assert np.array_equal(survived, [False, True] * 3)
    assert np.array_equal(action[::2], p[::2].argmax(-1))
    assert (action[1::2] != p[1::2].argmax(-1)).all() and allowed[np.arange(6), action][1::2].all()


def test_parse_constrain_is_canonical_and_strict():
    assert parse_constrain(("steer,throttle",)) == ("throttle", "steer")
    assert parse_constrain(("jump", "boost")) == parse_constrain("boost,jump") == ("boost", "jump")
    assert parse_constrain(("none",)) == parse_constrain(()) == ()
    with pytest.raises(ValueError, match="pitch"):
        parse_constrain("pitch")


def test_label_honours_constrain_and_keys_the_resume_on_it(labelled_replay, tmp_path):
    from bot.frame import PRESENT
    from training.cli import parse_config
    from training.label import Config, main
    from training.storage import read_json, read_shard
    replays, plain_labels, idm = labelled_replay
    base = ["--checkpoint", str(idm), "--replays", str(replays), "--out", str(tmp_path / "labels"), "--workers", "1",
            "--no-progress"]
    cfg = parse_config(Config, [*base, "--constrain", "throttle,steer,boost", "jump", "handbrake"], "label", "")
    manifest = main(cfg)
    assert manifest["constrain"] == list(CONSTRAINABLE)
    (name, _), = manifest["shards"].items()
    labels, meta = read_shard(tmp_path / "labels" / name)
    assert meta["constrain"] == list(CONSTRAINABLE)
    source, _ = read_shard(replays / name)
    plain, _ = read_shard(plain_labels / name)
    cars = np.asarray(source["cars_tpf"])
    action = np.asarray(labels["action_tp"])
    rows, slots = np.nonzero(action >= 0)
    assert np.array_equal(action >= 0, np.asarray(plain["action_tp"]) >= 0)  # the same frames get labels
    assert (cars[rows, slots, PRESENT] > 0.5).all()
    assert satisfied(action[rows, slots], cars[rows, slots], CONSTRAINABLE, cars[np.maximum(rows - 1, 0), slots]).all()
    assert (action != np.asarray(plain["action_tp"])).any()

    mtime = (tmp_path / "labels" / name / "meta.json").stat().st_mtime
    main(cfg)  # same setting: resumed, nothing redone
    assert (tmp_path / "labels" / name / "meta.json").stat().st_mtime == mtime
    other = main(parse_config(Config, [*base, "--constrain", "none"], "label", ""))  # other setting: redone
    assert other["constrain"] == [] and read_json(tmp_path / "labels" / name / "meta.json")["constrain"] == []
    relabelled, _ = read_shard(tmp_path / "labels" / name)
    assert np.array_equal(np.asarray(relabelled["action_tp"]), np.asarray(plain["action_tp"]))


def test_recorded_jump_is_a_press_only_where_a_dodge_or_double_jump_starts():
    """The first jump's component counts while active (the button is held); a dodge's or double jump's stays
    active for the whole move, so with the previous frame given only its first frame counts as a press."""
    t = 8
    rec = np.zeros((t, CAR_F), np.float32)
    rec[0:2, IN_JUMP] = 1.0  # held jump, frames 0-1
    rec[3:7, IN_DODGE] = 1.0  # a dodge from frame 3
    rec[7, IN_DOUBLE_JUMP] = 1.0
    prev = np.concatenate([rec[:1] * 0, rec[:-1]])
    np.testing.assert_array_equal(recorded_values(rec, prev)["jump"], [1, 1, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(recorded_values(rec)["jump"], [1, 1, 0, 1, 1, 1, 1, 1])  # any active component
    held = recorded_values(rec, rec)["jump"]  # the jump component is not edge-read: a held jump stays a press
    np.testing.assert_array_equal(held, [1, 1, 0, 0, 0, 0, 0, 0])


def test_class_decoding_labels_the_most_probable_class_as_its_lowest_member(rng):
    from bot.actions import equivalent_actions
    from bot.frame import BOOST, HAS_FLIP, HAS_JUMP, ON_GROUND
    from training.idm.infer import class_mass
    n = 300
    cars = np.zeros((n, CAR_F), np.float32)
    cars[:, BOOST] = rng.choice([0.0, 0.5], n)
    flags = rng.random((n, 3)).astype(np.float32)  # the IDM's on_ground, has_jump, has_flip probabilities
    cars[:, ON_GROUND] = np.nan  # replays do not know: class_mass must take the IDM's flags
    p = rng.dirichlet(np.full(NUM_ACTIONS, 0.3), n).astype(np.float32)
    mass = class_mass(p, cars, flags, chunk=128)  # 3 chunks
    state = cars.copy()
    state[:, [ON_GROUND, HAS_JUMP, HAS_FLIP]] = flags > 0.5
    label = mass.argmax(-1)
    for i in range(n):  # one frame at a time, from the per-action equivalence sets
        sets = np.stack([equivalent_actions(np.array([a]), state[i:i + 1])[0] for a in range(NUM_ACTIONS)])
        np.testing.assert_allclose(mass[i], sets.astype(np.float32) @ p[i], rtol=1e-5)
        best = sets[label[i]]
        assert label[i] == np.flatnonzero(best)[0]  # the lowest member of its class
        assert p[i, best].sum() >= max(p[i, s].sum() for s in sets) - 1e-6  # the class with the most mass
    assert (label != p.argmax(-1)).mean() > 0.2  # it differs from the plain argmax


def test_label_decode_class_is_keyed_in_the_resume(labelled_replay, tmp_path):
    from training.cli import parse_config
    from training.label import Config, main
    from training.storage import read_json, read_shard
    replays, _, idm = labelled_replay
    base = ["--checkpoint", str(idm), "--replays", str(replays), "--out", str(tmp_path / "labels"), "--workers", "1",
            "--no-progress"]
    manifest = main(parse_config(Config, [*base, "--decode", "argmax"], "label", ""))
    (name, _), = manifest["shards"].items()
    plain, _ = read_shard(tmp_path / "labels" / name)
    manifest = main(parse_config(Config, base, "label", ""))  # the default: class; the argmax shard is redone
    assert manifest["decode"] == "class" and read_json(tmp_path / "labels" / name / "meta.json")["decode"] == "class"
    labels, _ = read_shard(tmp_path / "labels" / name)
    action, plain_action = np.asarray(labels["action_tp"]), np.asarray(plain["action_tp"])
    assert np.array_equal(action >= 0, plain_action >= 0) and (action != plain_action).any()
    # the class's probability is stored, never below the single action's
    class_prob = np.asarray(labels["action_prob_tp"], np.float32)
    assert (class_prob >= np.asarray(plain["action_prob_tp"], np.float32) - 1e-3).all()
    mtime = (tmp_path / "labels" / name / "meta.json").stat().st_mtime
    main(parse_config(Config, [*base, "--decode", "class"], "label", ""))  # same setting: resumed, nothing redone
    assert (tmp_path / "labels" / name / "meta.json").stat().st_mtime == mtime


def test_idm_eval_scores_the_labels_label_writes(labelled_replay):
    """`idm-eval --decode class` scores exactly the actions `label` writes by default."""
    from training.idm.infer import load_idm
    from training.idm_eval import evaluate_replays
    from training.storage import read_shard
    replays, labels_dir, idm = labelled_replay
    model, cfg = load_idm(idm)
    scores = {d: evaluate_replays(model, cfg, replays, 0, torch.device("cpu"), d) for d in ("class", "argmax")}
    assert scores["class"]["frames"] == scores["argmax"]["frames"] > 0
    assert any(scores["class"][k] != scores["argmax"][k] for k in scores["class"] if k.endswith("_agree"))
    (name,) = scores["class"]["per_replay"]
    written, _ = read_shard(labels_dir / name)
    source, _ = read_shard(replays / name)
    from training.idm.infer import label_arrays
    again = label_arrays(model, cfg, source, torch.device("cpu"), decode="class")
    assert np.array_equal(again["action_tp"], np.asarray(written["action_tp"]))
