"""IDM networks: an MLP on the flattened window (the original's design), the same MLP with residual connections
and layer norm, and a temporal convolution.

Both map a window (B, W, F) to action logits (B, A) and logits of on_ground, has_jump, has_flip (B, 3).
`IDMConfig` is what a checkpoint's config.json stores, so a model rebuilds from its JSON alone.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn

from bot.actions import NUM_ACTIONS
from training.idm.features import IDM_F, MOTION_IDM_F

FLAG_NAMES = ("on_ground", "has_jump", "has_flip")


@dataclass(frozen=True)
class IDMConfig:
    arch: str = "mlp"  # "mlp", "resmlp" or "tcn"
    half_width: int = 20  # frames on each side of the labelled one; W = 2 * half_width + 1
    hidden: int = 512  # MLP width / TCN channels
    layers: int = 4  # hidden layers (MLP) or conv blocks (TCN)
    motion: bool = False  # the car's own-axes motion columns (features.py); False for models saved before them
    interpolate_held: bool = False  # the target car's held frames filled in between fresh samples (features.py)

    @property
    def features(self) -> int:
        """Per-frame input columns."""
        return MOTION_IDM_F if self.motion else IDM_F

    @property
    def window(self) -> int:
        return 2 * self.half_width + 1

    def to_dict(self) -> dict:
        return {**asdict(self), "features": self.features}

    @classmethod
    def from_dict(cls, saved: dict) -> "IDMConfig":
        """The config a config.json stores; its `features` (written for readers) must agree with `motion`."""
        cfg = cls(**{k: v for k, v in saved.items() if k != "features"})
        if saved.get("features", cfg.features) != cfg.features:
            raise ValueError(f"IDM config: features={saved['features']} does not match motion={cfg.motion}")
        return cfg


class MLPIDM(nn.Module):
    def __init__(self, cfg: IDMConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(cfg.window * cfg.features, cfg.hidden), nn.ReLU()]
        for _ in range(cfg.layers - 1):
            layers += [nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.action_head = nn.Linear(cfg.hidden, NUM_ACTIONS)
        self.flag_head = nn.Linear(cfg.hidden, len(FLAG_NAMES))

    def forward(self, x_bwf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x_bwf.flatten(1))  # (B, H)
        return self.action_head(h), self.flag_head(h)  # (B, A), (B, 3)


class ResMLPIDM(nn.Module):
    """The MLP with each hidden layer as a pre-norm residual block, h + relu(W LN(h)): the same multiply-adds, but
    gradients reach the first layer undiminished, which a deep plain MLP learns slowly without."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        self.embed = nn.Linear(cfg.window * cfg.features, cfg.hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.hidden) for _ in range(cfg.layers - 1))
        self.linears = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(cfg.layers - 1))
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.action_head = nn.Linear(cfg.hidden, NUM_ACTIONS)
        self.flag_head = nn.Linear(cfg.hidden, len(FLAG_NAMES))

    def forward(self, x_bwf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.embed(x_bwf.flatten(1)))  # (B, H)
        for norm, linear in zip(self.norms, self.linears):
            h = h + torch.relu(linear(norm(h)))
        h = self.out_norm(h)
        return self.action_head(h), self.flag_head(h)  # (B, A), (B, 3)


class TCNIDM(nn.Module):
    """Residual 1-D convolutions over time (kernel 5, growing dilation), then the centre frames' features."""

    def __init__(self, cfg: IDMConfig):
        super().__init__()
        c = cfg.hidden
        self.embed = nn.Conv1d(cfg.features, c, kernel_size=1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(c, c, kernel_size=5, padding=2 * 2 ** (i % 3), dilation=2 ** (i % 3)) for i in range(cfg.layers))
        self.centre = 2  # frames each side of the centre read by the head
        self.head = nn.Sequential(nn.Linear(c * (2 * self.centre + 1), c), nn.ReLU())
        self.action_head = nn.Linear(c, NUM_ACTIONS)
        self.flag_head = nn.Linear(c, len(FLAG_NAMES))

    def forward(self, x_bwf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x_bwf.transpose(1, 2))  # (B, C, W)
        for conv in self.blocks:
            h = h + torch.relu(conv(h))  # (B, C, W)
        mid = h.shape[-1] // 2
        h = self.head(h[:, :, mid - self.centre: mid + self.centre + 1].flatten(1))  # (B, C)
        return self.action_head(h), self.flag_head(h)  # (B, A), (B, 3)


def build_idm(cfg: IDMConfig) -> nn.Module:
    if cfg.arch == "mlp":
        return MLPIDM(cfg)
    if cfg.arch == "resmlp":
        return ResMLPIDM(cfg)
    if cfg.arch == "tcn":
        return TCNIDM(cfg)
    raise ValueError(f"unknown IDM architecture {cfg.arch!r}: use mlp, resmlp or tcn")


def equivalence_loss(logits_ba: torch.Tensor, equiv_ba: torch.Tensor) -> torch.Tensor:
    """-log of the probability mass on the whole set of actions equivalent to the label. (B,)"""
    masked = logits_ba.masked_fill(~equiv_ba, float("-inf"))
    return torch.logsumexp(logits_ba, -1) - torch.logsumexp(masked, -1)


def idm_loss(action_logits: torch.Tensor, flag_logits: torch.Tensor, equiv_ba: torch.Tensor,
             flags_b3: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Equivalence-aware action loss + binary cross-entropy of the three flags (unweighted sum, as the original)."""
    action = equivalence_loss(action_logits, equiv_ba).mean()
    flags = nn.functional.binary_cross_entropy_with_logits(flag_logits, flags_b3, reduction="mean") * 3
    return action + flags, {"action": action.detach(), "flags": flags.detach()}
