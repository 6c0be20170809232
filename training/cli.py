"""Dataclass configs -> command-line flags, strictly: unknown flags and wrong types are errors.

Each stage module defines a frozen `@dataclass` `Config` whose fields are declared with `arg(default, help)`,
and a `main(cfg) -> None`. Field `foo_bar` becomes flag `--foo-bar`; bools get `--x/--no-x`.
"""

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path


def arg(default, help: str, choices: tuple | None = None, **kwargs):  # noqa: A002 - mirrors argparse's own name
    """A config field with --help text (and, for a scalar field, optionally its only allowed values); lists and
    dicts get fresh defaults."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": tuple(choices)}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def check_choices(cfg) -> None:
    """Stop with a clear message if a field declared with `choices` holds another value. argparse already checks
    the command line; this covers configs built in code (the pipeline's presets call each stage's main)."""
    for f in dataclasses.fields(cfg):
        allowed = f.metadata.get("choices")
        if allowed is not None and getattr(cfg, f.name) not in allowed:
            flag = "--" + f.name.replace("_", "-")
            raise SystemExit(f"{flag} must be one of {', '.join(map(str, allowed))}, not {getattr(cfg, f.name)!r}")


def _parser_type(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _parser_type(inner[0])
    if origin in (list, tuple):
        return _parser_type(typing.get_args(tp)[0])
    return tp


def build_parser(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs = {"help": f.metadata.get("help", "").replace("%", "%%"), "default": default}  # argparse formats help
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if f.metadata.get("positional"):
            parser.add_argument(f.name, nargs="*", type=_parser_type(tp), **kwargs)
            continue
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) in (list, tuple):
            parser.add_argument(flag, nargs="+", type=_parser_type(tp), **kwargs)
        else:
            parser.add_argument(flag, type=_parser_type(tp), **kwargs)
    return parser


def parse_config(cls: type, argv: list[str], prog: str, description: str):
    """Parse argv into a frozen config; argparse exits with a clear message on unknown flags or bad types."""
    ns = build_parser(cls, prog, description).parse_args(argv)
    values = vars(ns)
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        if typing.get_origin(hints[name]) is tuple and isinstance(value, list):
            values[name] = tuple(value)
        if hints[name] is Path and isinstance(value, str):
            values[name] = Path(value)
    return cls(**values)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n; the job's work items are split round-robin."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {text!r}: need n >= 1 and 0 <= i < n")
    return i, n


def config_to_argv(stage_cfg) -> list[str]:
    """A stage Config -> the flags that reproduce it (`python -m training <stage> ...`)."""
    argv, positional = [], []
    for f in dataclasses.fields(stage_cfg):
        value, flag = getattr(stage_cfg, f.name), "--" + f.name.replace("_", "-")
        if f.metadata.get("positional"):
            positional += [str(v) for v in value]
        elif isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)] if value else []
        elif value is not None:
            argv += [flag, str(value)]
    return argv + positional


def torchrun_command(stage: str, stage_cfg, nproc: int) -> list[str]:
    """`torchrun --standalone` (one machine, a free port) running `nproc` processes of this stage's command."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "-m", "training", stage, *config_to_argv(stage_cfg)]
