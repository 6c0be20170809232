"""The top-down GIF of a game: a real multi-frame GIF, from a synthetic trajectory and from a simulated game."""

import numpy as np
from PIL import Image

from training.animate import animate_game


def test_animate_game_writes_a_multi_frame_gif(tmp_path):
    t = np.arange(0, 20, 0.1)  # 200 frames at 10 Hz
    ball = np.stack([1000 * np.sin(t), 3000 * np.cos(t / 3), 93 + 0 * t], -1)  # (T, 3) uu
    cars = np.stack([ball + [300, -200, 0], -ball], 1)  # (T, 2, 3)
    path = animate_game({"time_t": t, "ball_t3": ball, "cars_tp3": cars}, [0, 1], ["a", "b"], "test",
                        tmp_path / "sub" / "g.gif", max_frames=120)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.is_animated
        assert im.n_frames == 120  # subsampled to max_frames
        first = np.asarray(im.convert("RGB"))
        im.seek(60)
        assert not np.array_equal(first, np.asarray(im.convert("RGB")))  # things move
    assert path.stat().st_size < 2_000_000


def test_evaluate_gif_option(tmp_path):
    from training import evaluate
    evaluate.main(evaluate.Config(blue="baseline:chaser", orange="baseline:random", games=1, seconds=15,
                                  gif=tmp_path / "game.gif"))
    with Image.open(tmp_path / "game.gif") as im:
        assert im.n_frames > 10
