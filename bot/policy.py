"""The behaviour-cloning policy: observation (bot/obs.py) -> logits over the 90 actions.

Set pooling over the other cars (masked mean and max), so 1v1 to 3v3 share weights and slot order inside a
team does not matter. Weights load from safetensors + config.json next to each other (models/bc/).
`Policy` is the definition (training, batches); `BotPolicy` is the same forward for the bot's one observation
per decision, kept equal to it by tests/test_policy.py.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
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


Layer = tuple[np.ndarray, np.ndarray]  # weight (in, out), bias (out,)


def _relu_mlp(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    for weight, bias in layers:
        x = np.maximum(x @ weight + bias, np.float32(0))
    return x


class BotPolicy:
    """`Policy.forward` for the bot's one observation, in numpy. At batch 1 the cost is per call, not per
    number, so absent cars are skipped instead of masked, and the other-car layer's share for the acting
    player's context is one matrix-vector product for all cars. Call `single_thread_blas()` first (the bot
    does): numpy's BLAS runs these products on every core, and on a busy machine a wait for the second thread
    costs milliseconds; on one thread this is half torch's time at these sizes (docs/benchmarks.md)."""

    def __init__(self, policy: Policy):
        def layers(module: nn.Module) -> list[Layer]:
            return [(m.weight.detach().float().numpy().T.copy(), m.bias.detach().float().numpy().copy())
                    for m in module.modules() if isinstance(m, nn.Linear)]
        self.glob, self.other, self.trunk = layers(policy.glob), layers(policy.other), layers(policy.trunk)
        [self.head] = layers(policy.head)
        weight, self.other_bias = self.other[0]  # the first other-car layer reads [car, acting player's context]
        self.other_car_weight, self.other_ctx_weight = weight[:OTHER_F], weight[OTHER_F:]

    def __call__(self, glob_f: np.ndarray, others_of: np.ndarray) -> np.ndarray:
        """glob (GLOBAL_F,), others (MAX_OTHERS, OTHER_F) float32 -> logits (A,) float32."""
        g = _relu_mlp(self.glob, glob_f)  # (H,)
        cars = others_of[others_of[:, O_PRESENT] > 0]  # (N, OTHER_F) present cars only
        if len(cars):
            ctx = glob_f @ self.other_ctx_weight + self.other_bias  # (H,)
            o = np.maximum(cars @ self.other_car_weight + ctx, np.float32(0))  # (N, H)
            o = _relu_mlp(self.other[1:], o)
            mean, mx = o.mean(0), o.max(0)  # (H,)
        else:  # 1v0: no other car
            mean = mx = np.zeros_like(g)
        weight, bias = self.head
        return _relu_mlp(self.trunk, np.concatenate([g, mean, mx])) @ weight + bias  # (A,)


def single_thread_blas() -> bool:
    """Limit numpy's BLAS (and OpenMP) in this process to one thread: what `BotPolicy` is timed with.
    False if that failed (the bot then still plays, only with a slower tail)."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
        return True
    except Exception:  # a missing package or a BLAS threadpoolctl cannot drive must not stop the bot loading
        return False


def load_policy(folder: Path) -> tuple[Policy, dict]:
    """Policy from <folder>/model.safetensors + config.json (no pickles). Raises FileNotFoundError if absent."""
    from safetensors.torch import load_file
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    policy = Policy(PolicyConfig(**config["model"]))
    weights = {k: v.float() for k, v in load_file(folder / "model.safetensors").items()}
    policy.load_state_dict(weights)
    return policy.eval(), config
