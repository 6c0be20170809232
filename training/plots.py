"""Pictures people would rather look at than read: top-down game trajectories, curves, confusion matrices."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bot.constants import BACK_WALL_Y, BOOST_PAD_IS_BIG, BOOST_PAD_LOCATIONS, SIDE_WALL_X  # noqa: E402

GOAL_HALF_WIDTH = 893.0  # uu


def draw_field(ax) -> None:
    """Walls, goals and pads of the soccar field, seen from above (blue goal at the bottom)."""
    x, y = SIDE_WALL_X, BACK_WALL_Y
    corner = 1152.0
    outline = np.array([(-x, -y + corner), (-x, y - corner), (-x + corner, y), (x - corner, y), (x, y - corner),
                        (x, -y + corner), (x - corner, -y), (-x + corner, -y), (-x, -y + corner)])
    ax.plot(outline[:, 0], outline[:, 1], color="0.3", lw=1)
    ax.plot([-GOAL_HALF_WIDTH, GOAL_HALF_WIDTH], [-y, -y], color="tab:blue", lw=4)
    ax.plot([-GOAL_HALF_WIDTH, GOAL_HALF_WIDTH], [y, y], color="tab:orange", lw=4)
    ax.scatter(BOOST_PAD_LOCATIONS[:, 0], BOOST_PAD_LOCATIONS[:, 1], s=np.where(BOOST_PAD_IS_BIG, 40, 8),
               color="gold", zorder=1)
    ax.set_aspect("equal")
    ax.set_xlim(-x - 200, x + 200)
    ax.set_ylim(-y - 300, y + 300)
    ax.invert_xaxis()  # +x is left from blue's view
    ax.axis("off")


def plot_game(trajectory: dict, teams: list[int], names: list[str], title: str, path: Path) -> Path:
    """Top-down PNG of ball and car paths from an arena trajectory ("ball_t3", "cars_tp3")."""
    fig, ax = plt.subplots(figsize=(5, 6.5), dpi=110)
    draw_field(ax)
    ball, cars = trajectory["ball_t3"], trajectory["cars_tp3"]
    ax.plot(ball[:, 0], ball[:, 1], color="0.2", lw=0.8, alpha=0.7, label="ball")
    blues, oranges = iter(plt.cm.Blues(np.linspace(0.5, 0.9, 3))), iter(plt.cm.Oranges(np.linspace(0.5, 0.9, 3)))
    for p, (team, name) in enumerate(zip(teams, names)):
        color = next(blues) if team == 0 else next(oranges)
        side = "blue" if team == 0 else "orange"
        ax.plot(cars[:, p, 0], cars[:, p, 1], color=color, lw=0.7, alpha=0.8, label=f"{name} ({side})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Tight layout, create the folder, write the PNG, free the figure."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_curves(history: list[dict], path: Path, keys: tuple[str, ...] = ("clean.action_equiv_acc",
                "corrupt.action_equiv_acc", "clean.action_exact_acc", "corrupt.flag_acc.on_ground")) -> Path:
    """Validation curves over training steps (one line per metric key present in the history)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    steps = [row["step"] for row in history]
    for key in ("train_loss", "clean.loss", "corrupt.loss"):
        if history and key in history[0]:
            ax_loss.plot(steps, [row[key] for row in history], marker=".", label=key)
    for key in keys:
        if history and key in history[0]:
            ax_acc.plot(steps, [row[key] for row in history], marker=".", label=key)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_finetune(history: list[dict], path: Path, window: int = 10) -> Path:
    """Arena fine-tuning: goals for / against per game-minute and KL to the anchor policy, moving averages."""
    fig, (ax_goals, ax_kl) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    steps = np.array([row["step"] for row in history])

    def smooth(values: list[float]) -> np.ndarray:
        """Centred moving average over max(window, 3% of the run) updates; the ends average what they have."""
        values = np.array(values, float)
        if not len(values):
            return values
        kernel = np.ones(min(len(values), max(window, len(history) // 30)))
        return np.convolve(values, kernel, "same") / np.convolve(np.ones(len(values)), kernel, "same")

    groups = {"nexto": ("--", "Nexto arenas"), "policy": (":", "--opponent-policy arenas")}
    has = {name: np.array([f"{name}_goals_for_per_minute" in row for row in history]) for name in groups}
    split = has["nexto"] | has["policy"]
    for side in ("for", "against"):  # the chaser arenas: every arena in updates without other opponents
        values = [row.get(f"chaser_goals_{side}_per_minute", math.nan) if other else row[f"goals_{side}_per_minute"]
                  for row, other in zip(history, split)]
        ax_goals.plot(steps, smooth(values), label=f"goals {side}" + (", chaser arenas" if split.any() else ""))
    for name, (style, arenas) in groups.items():  # --nexto-arenas, --opponent-arenas: over the updates with them
        if has[name].any():
            for side in ("for", "against"):
                values = smooth([row[f"{name}_goals_{side}_per_minute"] for row in history
                                 if f"{name}_goals_{side}_per_minute" in row])
                ax_goals.plot(steps[has[name]], values, style, label=f"{side}, {arenas}")
    ax_kl.plot(steps, smooth([row["kl_clone"] for row in history]), label="KL(policy || anchor)")
    ax_goals.set_ylabel("per game-minute")
    for ax in (ax_goals, ax_kl):
        ax.set_xlabel("learner decisions")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)
