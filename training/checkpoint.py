"""Checkpoints and exported models without pickles: safetensors for tensors, JSON for everything else.

A training checkpoint folder holds `model.safetensors`, `optimizer.safetensors` and `state.json` (step, RNG
states, optimizer hyper-parameters, the run's config); it is written to a temporary folder and renamed, so a
kill leaves the previous checkpoint intact. An exported model is `model.safetensors` + `config.json` +
`MODEL_CARD.md`.
"""

import os
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from training.storage import read_json, sha256_file, write_json


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    rng: np.random.Generator, extra: dict) -> None:
    folder = Path(folder)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    opt_tensors["torch_rng_state"] = torch.get_rng_state()
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    write_json(tmp / "state.json", {"step": step, "numpy_rng": rng.bit_generator.state, "optimizer": opt_meta,
                                    **extra})
    old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    rng: np.random.Generator) -> dict:
    """Restore model, optimizer and RNG states in place; returns state.json."""
    folder = Path(folder)
    state = read_json(folder / "state.json")
    model.load_state_dict(load_file(folder / "model.safetensors"))
    opt_tensors = load_file(folder / "optimizer.safetensors")
    torch.set_rng_state(opt_tensors.pop("torch_rng_state"))
    _load_optimizer(optimizer, opt_tensors, state["optimizer"])
    rng.bit_generator.state = state["numpy_rng"]
    return state


def export_model(folder: Path, model: torch.nn.Module, config: dict, card: str, half: bool = False) -> str:
    """Write model.safetensors (+ fp16 if `half`), config.json and MODEL_CARD.md; returns the weights' sha256."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    tmp = folder / f"model.safetensors.tmp-{os.getpid()}"
    save_file(weights, tmp)
    os.replace(tmp, folder / "model.safetensors")
    digest = sha256_file(folder / "model.safetensors")
    write_json(folder / "config.json", {**config, "weights_sha256": digest, "dtype": "float16" if half else "float32"})
    (folder / "MODEL_CARD.md").write_text(card)
    return digest


def command_line() -> str:
    """The `python -m training <stage> ...` command of this process, quoted, for model cards; under torchrun the
    launcher's process layout is what reproduces it, so it is named instead of `python`."""
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if world > 1:
        nodes = f"--nnodes {world // local} " if world > local else ""
        return f"torchrun {nodes}--nproc-per-node {local} -m training {args}"
    return f"python -m training {args}"


def metrics_table(row: dict, keys) -> str:
    """Markdown table rows `| key | value |` for the float metrics of `row` whose key passes `keys(key)`."""
    return "\n".join(f"| {k} | {v:.4f} |" for k, v in row.items() if isinstance(v, float) and keys(k))


def load_exported(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights (as float32) and config of an exported model; checks the weights' sha256 against config.json."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    if config.get("weights_sha256") and sha256_file(folder / "model.safetensors") != config["weights_sha256"]:
        raise ValueError(f"{folder}/model.safetensors does not match the sha256 in its config.json")
    weights = {k: v.float() if v.is_floating_point() else v for k, v in load_file(folder / "model.safetensors").items()}
    return weights, config
