"""`python -m training <stage> [flags]`: the pipeline's commands. This file only maps names to modules."""

import importlib
import os
import sys
import warnings

from training.cli import parse_config

# stage name -> module with a frozen `Config` dataclass and `main(cfg)`
STAGES = {
    "evaluate": "training.evaluate",
    "idm-train": "training.idm_train",
    "idm-eval": "training.idm_eval",
    "label": "training.label",
    "bc-train": "training.bc_train",
    "finetune": "training.finetune",
    "simulate": "training.simulate",
    "replays": "training.replays",
    "pipeline": "training.pipeline",
    "report": "training.report",
    "download": "training.download",
}


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # raised inside rlbot 1.68
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        print("usage: python -m training <stage> [--help] [flags]\n\nstages:")
        for name, module in STAGES.items():
            doc = (importlib.import_module(module).__doc__ or "").strip().splitlines()
            print(f"  {name:<12} {doc[0] if doc else ''}")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown stage {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(STAGES[argv[0]])
    cfg = parse_config(module.Config, argv[1:], prog=f"python -m training {argv[0]}", description=module.__doc__)
    module.main(cfg)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun worker whose run is done and saved leaves at once: finalising the interpreter while gloo's
        # threads still hold tensors aborted finished ranks in CI ("terminate called without an active exception").
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
