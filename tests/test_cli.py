"""Every pipeline stage is a command with --help; configs are strict."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from training.__main__ import STAGES


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_top_level_help_lists_every_stage():
    out = run("--help")
    assert out.returncode == 0
    for stage in STAGES:
        assert stage in out.stdout


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_help(stage):
    out = run(stage, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: python -m training " + stage in out.stdout


def test_misspelled_flag_and_bad_type_are_errors():
    out = run("evaluate", "--gamez", "3")
    assert out.returncode == 2 and "unrecognized arguments: --gamez" in out.stderr
    out = run("evaluate", "--games", "three")
    assert out.returncode == 2 and "invalid int value" in out.stderr
    assert run("no-such-stage").returncode == 2


def test_a_value_outside_a_fields_choices_is_refused_on_the_command_line_and_in_code():
    """argparse refuses `--decode best`; a config built in code (as presets do) is stopped by check_choices."""
    import dataclasses

    from training.cli import check_choices
    from training.label import Config

    out = run("label", "--decode", "best")
    assert out.returncode == 2 and "invalid choice: 'best'" in out.stderr
    check_choices(Config())  # the defaults are allowed
    with pytest.raises(SystemExit, match="--decode must be one of argmax, class, not 'best'"):
        check_choices(dataclasses.replace(Config(), decode="best"))


def test_unknown_agent_spec_is_a_clear_error():
    from training.agents import driver_factory
    with pytest.raises(ValueError, match="choose from chaser, random"):
        driver_factory("baseline:flying")
    with pytest.raises(ValueError, match="does not exist"):
        driver_factory("nowhere/bot.cfg")
