"""The behaviour-cloning policy: observation (bot/obs.py) -> logits over the 90 actions.

Set pooling over the other cars (masked mean and max), so 1v1 to 3v3 share weights and slot order inside a
team does not matter. Weights load from safetensors + config.json next to each other (models/bc/).
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bot.actions import NUM_ACTIONS
from bot.obs import GLOBAL_F, O_PRESENT, OTHER_F


@dataclass(frozen=True)
class PolicyConfig:
    hidden: int = 256
    layers: int = 3  # trunk layers after pooling
    previous_action: bool = True  # False: the observation's previous-action columns are always the no-op

    def to_dict(self) -> dict:
        return asdict(self)


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class Policy(nn.Module):
    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        h = cfg.hidden
        self.glob = mlp([GLOBAL_F, h, h])
        self.other = mlp([OTHER_F + GLOBAL_F, h, h])  # each other car sees the acting player's context
        self.trunk = mlp([3 * h] + [h] * cfg.layers)
        self.head = nn.Linear(h, NUM_ACTIONS)

    def forward(self, glob_bf: torch.Tensor, others_bof: torch.Tensor) -> torch.Tensor:
        g = self.glob(glob_bf)  # (B, H)
        ctx = glob_bf[:, None, :].expand(-1, others_bof.shape[1], -1)  # (B, O, GLOBAL_F)
        o = self.other(torch.cat([others_bof, ctx], -1))  # (B, O, H)
        present = others_bof[..., O_PRESENT:O_PRESENT + 1]  # (B, O, 1)
        count = present.sum(1).clamp_min(1.0)  # (B, 1)
        mean = (o * present).sum(1) / count  # (B, H)
        big_negative = torch.finfo(o.dtype).min
        mx = torch.where(present > 0, o, torch.full_like(o, big_negative)).amax(1)  # (B, H)
        mx = torch.where(present.sum(1) > 0, mx, torch.zeros_like(mx))  # 1v0: no other car
        return self.head(self.trunk(torch.cat([g, mean, mx], -1)))  # (B, A)


def load_policy(folder: Path) -> tuple[Policy, dict]:
    """Policy from <folder>/model.safetensors + config.json (no pickles). Raises FileNotFoundError if absent."""
    from safetensors.torch import load_file
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    policy = Policy(PolicyConfig(**config["model"]))
    weights = {k: v.float() for k, v in load_file(folder / "model.safetensors").items()}
    policy.load_state_dict(weights)
    return policy.eval(), config
