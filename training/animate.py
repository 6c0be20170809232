"""A top-down animated GIF of one simulated game: the ball and every car moving over the field.

Input is an arena trajectory (`training.sim.arena.GameResult.trajectory`: "time_t" s, "ball_t3" and "cars_tp3"
in uu, recorded at the Match's record_hz). Long games are subsampled to at most `max_frames` frames and drawn
at a low dpi so the file stays small (a 2-minute game at 10 Hz is ~1 MB).
"""

from pathlib import Path

import numpy as np

from training.plots import draw_field, plt

TRAIL_S = 1.5  # seconds of path drawn behind each car and the ball


def _frame_ids(n: int, max_frames: int) -> np.ndarray:
    """Evenly spaced frame indices (all of them when n <= max_frames); int (F,)."""
    return np.arange(n) if n <= max_frames else np.linspace(0, n - 1, max_frames).round().astype(int)


def animate_game(trajectory: dict, teams: list[int], names: list[str], title: str, path: Path,
                 max_frames: int = 300, fps: int = 15, dpi: int = 60) -> Path:
    """Write a GIF of the game (Pillow writer); returns the path. teams: 0 blue / 1 orange per car slot."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    time_t, ball_t3, cars_tp3 = (np.asarray(trajectory[k]) for k in ("time_t", "ball_t3", "cars_tp3"))
    if len(time_t) < 2:
        raise ValueError("trajectory has fewer than 2 recorded frames: nothing to animate")
    ids = _frame_ids(len(time_t), max_frames)
    dt = float(np.median(np.diff(time_t))) or 0.1
    trail = max(1, int(round(TRAIL_S / dt)))
    fig, ax = plt.subplots(figsize=(4, 5.2), dpi=dpi)
    draw_field(ax)
    colors = ["tab:blue" if team == 0 else "tab:orange" for team in teams]
    ball_trail, = ax.plot([], [], color="0.4", lw=1)
    ball_dot, = ax.plot([], [], "o", color="0.15", ms=7)
    car_trails = [ax.plot([], [], color=c, lw=1, alpha=0.6)[0] for c in colors]
    car_dots = [ax.plot([], [], "s", color=c, ms=6, label=n)[0] for c, n in zip(colors, names)]
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=2, fontsize=7, frameon=False)
    clock = ax.set_title(title, fontsize=8)

    def draw(i: int):
        lo = max(0, i - trail)
        ball_trail.set_data(ball_t3[lo:i + 1, 0], ball_t3[lo:i + 1, 1])
        ball_dot.set_data(ball_t3[i:i + 1, 0], ball_t3[i:i + 1, 1])
        for p, (line, dot) in enumerate(zip(car_trails, car_dots)):
            line.set_data(cars_tp3[lo:i + 1, p, 0], cars_tp3[lo:i + 1, p, 1])
            dot.set_data(cars_tp3[i:i + 1, p, 0], cars_tp3[i:i + 1, p, 1])
        clock.set_text(f"{title}   t = {time_t[i]:5.1f} s")
        return [ball_trail, ball_dot, *car_trails, *car_dots, clock]

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, draw, frames=ids, blit=False).save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
