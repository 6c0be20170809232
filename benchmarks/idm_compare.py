"""IDM design comparison at equal compute: architecture (MLP vs temporal conv) and window width.

Usage: python benchmarks/idm_compare.py --sim data/sim-nexto --replays data/replays --steps 3000 --out runs/idm-compare
Every variant trains for the same steps and batch size; the conv net's width is chosen so its FLOPs per
window are close to the MLP's. Prints a Markdown table of final validation metrics and FLOPs.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.idm.model import IDMConfig, build_idm  # noqa: E402

VARIANTS = {  # name -> idm-train flags
    "mlp-w20": ["--arch", "mlp", "--half-width", "20", "--hidden", "512", "--layers", "4", "--no-motion"],
    "tcn-w20": ["--arch", "tcn", "--half-width", "20", "--hidden", "48", "--layers", "4", "--no-motion"],
    "mlp-w10": ["--arch", "mlp", "--half-width", "10", "--hidden", "512", "--layers", "4", "--no-motion"],
    "mlp-w38": ["--arch", "mlp", "--half-width", "38", "--hidden", "512", "--layers", "4", "--no-motion"],
    "mlp-w10-motion": ["--arch", "mlp", "--half-width", "10", "--hidden", "512", "--layers", "4", "--motion"],
    "mlp-w20-motion": ["--arch", "mlp", "--half-width", "20", "--hidden", "512", "--layers", "4", "--motion"],
    "resmlp-w10-motion": ["--arch", "resmlp", "--half-width", "10", "--hidden", "512", "--layers", "4", "--motion"],
    "mlp-w10-motion-interp": ["--arch", "mlp", "--half-width", "10", "--hidden", "512", "--layers", "4", "--motion",
                              "--interpolate-held"],
}


def flops_per_window(flags: list[str]) -> float:
    """Multiply-adds x 2 of one forward pass, counted from the layers' weights."""
    import torch
    valued = [f for f in flags if f not in ("--motion", "--no-motion", "--interpolate-held")]
    args = dict(zip(valued[::2], valued[1::2]))
    cfg = IDMConfig(arch=args["--arch"], half_width=int(args["--half-width"]), hidden=int(args["--hidden"]),
                    layers=int(args["--layers"]), motion="--motion" in flags)
    model = build_idm(cfg)
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            total += 2 * m.in_features * m.out_features
        elif isinstance(m, torch.nn.Conv1d):
            total += 2 * m.in_channels * m.out_channels * m.kernel_size[0] * cfg.window
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sim", type=Path, required=True)
    parser.add_argument("--replays", type=Path)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("runs/idm-compare"))
    parser.add_argument("--only", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    rows = []
    for name in args.only:
        flags = VARIANTS[name]
        out = args.out / name
        cmd = [sys.executable, "-m", "training", "idm-train", "--sim", str(args.sim), "--out", str(out),
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--eval-every",
               str(max(1, args.steps // 5)), "--resume", "--threads", "1", *flags]
        if args.replays:
            cmd += ["--replays", str(args.replays)]
        subprocess.run(cmd, cwd=ROOT, check=True)
        last = json.loads((out / "history.json").read_text())["history"][-1]
        rows.append((name, flops_per_window(flags), last))
    print("| variant | MFLOP per window | clean equiv acc | corrupt equiv acc | corrupt exact acc "
          "| corrupt on_ground | corrupt has_flip |")
    print("|---|---|---|---|---|---|---|")
    for name, flops, last in rows:
        print(f"| {name} | {flops / 1e6:.2f} | {last['clean.action_equiv_acc']:.4f} | "
              f"{last['corrupt.action_equiv_acc']:.4f} | {last['corrupt.action_exact_acc']:.4f} | "
              f"{last['corrupt.flag_acc.on_ground']:.4f} | {last['corrupt.flag_acc.has_flip']:.4f} |")


if __name__ == "__main__":
    main()
