"""Draw docs/pipeline.png, the README's picture of how RL-RPT works.

Plain matplotlib (no graphviz) so anyone with the training environment can regenerate it:
`python docs/make_diagram.py`. Coordinates are in inches of a 14-inch-wide figure saved at 100 dpi, so the
PNG is 1400 px wide and stays readable when GitHub scales it to the README's width.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent / "pipeline.png"
W, H = 14.0, 11.2
MONO = "DejaVu Sans Mono"
INK = "#222222"

# one colour per lane, so the reader sees the three stories (simulation, replays, play) and the shared core
SIM = ("#dbe9f7", "#3b73b0")
REP = ("#dff2df", "#3c8f47")
PLAY = ("#fde7cf", "#c46a12")
CORE = ("#ece6f5", "#6a4c9c")
ADAPT = ("#f4f4f4", "#777777")

# column centres (left: simulation, middle: replays, right: play) and box width
XL, XM, XR = 2.25, 6.95, 11.65
BW = 3.7
BH = 1.12
ROW = {1: 9.15, 2: 7.55, 3: 5.95, 4: 4.35}


def box(ax, x, y, title, lines, colours, w=BW, h=BH, title_size=14, size=11.5):
    """A rounded stage box: the command in monospace, what it does below; returns its edges for arrows."""
    face, edge = colours
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.12",
                                fc=face, ec=edge, lw=1.8, zorder=2))
    top = y + (0.33 + (len(lines) - 1) * 0.235) / 2  # centre the title plus lines as one block
    ax.text(x, top, title, ha="center", va="center", fontsize=title_size, family=MONO, weight="bold",
            color=edge, zorder=3)
    for i, line in enumerate(lines):
        ax.text(x, top - 0.33 - i * 0.235, line, ha="center", va="center", fontsize=size, color=INK, zorder=3)
    return {"l": x - w / 2, "r": x + w / 2, "t": y + h / 2, "b": y - h / 2, "x": x, "y": y}


def arrow(ax, start, end, label=None, where=0.5, side="right", dashed=False, colour="#555555", rad=0.0):
    """An arrow between box edges, labelled with what flows along it (usually a folder on disk)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=18, lw=1.8, color=colour,
                                 linestyle=(0, (4, 3)) if dashed else "-", shrinkA=2, shrinkB=2, zorder=1,
                                 connectionstyle=f"arc3,rad={rad}"))
    if label:
        mx = start[0] + (end[0] - start[0]) * where
        my = start[1] + (end[1] - start[1]) * where
        dx, dy, ha, va = {"right": (0.1, 0.0, "left", "center"), "below": (0.02, -0.1, "left", "top"),
                          "above": (0.0, 0.07, "center", "bottom")}[side]
        ax.text(mx + dx, my + dy, label, ha=ha, va=va, fontsize=11, family=MONO, color=colour, zorder=4,
                bbox={"fc": "white", "ec": "none", "pad": 1.0})


def main():
    """Lay out the stages on a three-column grid with the shared bot/ core underneath and save the PNG."""
    fig = plt.figure(figsize=(W, H), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(0, H)
    ax.axis("off")

    ax.text(0.3, 10.8, "How RL-RPT works", fontsize=21, weight="bold", color=INK, va="center")
    ax.text(0.3, 10.4, "python -m training <stage>   (or all of them: python -m training pipeline --preset tiny)",
            fontsize=12.5, family=MONO, color="#555555", va="center")
    headings = ((XL, ROW[1], "1. learn actions where they are known", SIM),
                (XM, ROW[1], "2. label human replays, clone them", REP), (XR, ROW[4], "3. play", PLAY))
    for x, row_y, name, (_, edge) in headings:
        ax.text(x, row_y + 0.8, name, ha="center", va="center", fontsize=13, weight="bold", color=edge)

    sim_text = ["RocketSim games played by the Nexto", "teacher (or --teacher random)",
                "→ 30 Hz frames with the applied", "actions and on_ground / has_jump /", "has_flip for every car"]
    sim = box(ax, XL, (ROW[1] + ROW[2]) / 2, "simulate", sim_text, SIM, h=ROW[1] - ROW[2] + BH)
    idm = box(ax, XL, ROW[3], "idm-train", ["inverse dynamics model over a", "±10-frame window, trained with",
                                            "replay-style held-frame corruption"], SIM, h=1.3)
    ev_idm = box(ax, XL, ROW[4] - 0.1, "idm-eval", ["accuracy on held-out simulation", "(clean and corrupted) and",
                                                   "vs inputs replays record"], SIM, h=1.3)

    dl = box(ax, XM, ROW[1], "download", ["ranked replays from ballchasing.com"], REP, h=0.85)
    rep = box(ax, XM, ROW[2], "replays", ["subtr-actor parsing → Frames", "with fresh-physics flags"], REP, h=1.0)
    lab = box(ax, XM, ROW[3], "label", ["the IDM gives every player-frame", "an action and its flags"], REP, h=1.3)
    bc = box(ax, XM, ROW[4] - 0.1, "bc-train", ["behaviour cloning on fresh frames", "(+ mirrored copies)"], REP,
             h=1.3)

    agent = box(ax, XR, ROW[4] - 0.1, "RLBot agent", ["bot/bot.py (bot.cfg, RLBotGUI):",
                                                      "GameTickPacket → Frames → the",
                                                      "same obs → policy → controls"], PLAY, h=1.3)
    ev = box(ax, XR, 2.55, "evaluate", ["arena matches vs", "baseline:chaser / Nexto"], PLAY, h=1.0)
    rpt = box(ax, XR, 1.0, "report", ["report.md: data, IDM accuracy,", "BC curves, matches"], PLAY, h=1.0)

    # the idea in a few lines, where the play column has room above its first box
    key = ["The idea (OpenAI's VPT):", "1. In simulation the actions are known,",
           "    so an inverse dynamics model (IDM)", "    learns to read them from motion.",
           "2. The IDM labels human replays.",
           "3. A policy is cloned from those labels", "    and plays as an RLBot bot."]
    for i, line in enumerate(key):
        ax.text(XR - BW / 2 + 0.1, 9.6 - i * 0.4, line, fontsize=13 if i == 0 else 12.5,
                weight="bold" if i == 0 else "normal", color=INK, va="center")
    ax.text(XR - BW / 2 + 0.1, 6.6, "arrows: what flows, as folders on disk", fontsize=11, color="#555555",
            style="italic", va="center")

    arrow(ax, (sim["x"], sim["b"]), (idm["x"], idm["t"]), "data/sim-*", colour=SIM[1])
    arrow(ax, (idm["x"], idm["b"]), (ev_idm["x"], ev_idm["t"]), "models/idm", colour=SIM[1])
    arrow(ax, (dl["x"], dl["b"]), (rep["x"], rep["t"]), "data/raw_replays", colour=REP[1])
    arrow(ax, (rep["x"], rep["b"]), (lab["x"], lab["t"]), "data/replays", colour=REP[1])
    arrow(ax, (lab["x"], lab["b"]), (bc["x"], bc["t"]), "data/labels", colour=REP[1])
    arrow(ax, (idm["r"], idm["y"]), (lab["l"], lab["y"]), "runs/idm →\nmodels/idm", where=0.5, side="above",
          colour=SIM[1])
    arrow(ax, (rep["l"], rep["b"] + 0.15), (idm["r"] - 0.25, idm["t"]), "hold gaps", side="below",
          dashed=True, colour="#555555")
    arrow(ax, (bc["r"], bc["y"]), (agent["l"], agent["y"]), "runs/bc →\nmodels/bc", side="above", colour=PLAY[1])
    arrow(ax, (agent["x"], agent["b"]), (ev["x"], ev["t"]), "bot.cfg", colour=PLAY[1])
    arrow(ax, (ev["x"], ev["b"]), (rpt["x"], rpt["t"]), "results.json", colour=PLAY[1])

    # the shared core: every source of game state becomes the same Frames, so training and play agree
    px0, px1, py0, py1 = XL - BW / 2, XM + BW / 2, 0.25, 3.35
    ax.add_patch(FancyBboxPatch((px0, py0), px1 - px0, py1 - py0, boxstyle="round,pad=0,rounding_size=0.15",
                                fc="#faf8fd", ec=CORE[1], lw=1.5, ls=(0, (5, 3)), zorder=0))
    ax.text(px0 + 0.2, py1 - 0.25, "bot/: the shared core (training and play import the same code)", fontsize=13,
            weight="bold", color=CORE[1], va="center")
    aw, ah, ax_c = 3.5, 0.72, XL
    adapters = [("training/sim/rocketsim.py", "simulator state (simulate, evaluate)"),
                ("training/replays/", "parsed .replay files (replays)"),
                ("bot/packet.py", "live GameTickPacket (the bot)")]
    ends = []
    for i, (name, what) in enumerate(adapters):
        y = 2.5 - i * 0.88
        box(ax, ax_c, y, name, [what], ADAPT, w=aw, h=ah, title_size=11.5, size=11)
        ends.append((ax_c + aw / 2, y))
    frame = box(ax, XM - 0.35, 2.5, "frame.py", ["Frames: one game-moment schema"], CORE, w=3.4, h=ah,
                title_size=11.5, size=11)
    obs = box(ax, XM - 0.35, 1.62, "obs.py", ["one observation for bc-train and the bot"], CORE, w=3.4, h=ah,
              title_size=11.5, size=11)
    box(ax, XM - 0.35, 0.74, "actions.py", ["the 90-action table (Nexto order)"], CORE, w=3.4, h=ah,
              title_size=11.5, size=11)
    for x, y in ends:
        arrow(ax, (x, y), (frame["l"], frame["y"]), colour=CORE[1])
    arrow(ax, (frame["x"], frame["b"]), (obs["x"], obs["t"]), colour=CORE[1])

    fig.savefig(OUT, dpi=100, facecolor="white")
    plt.close(fig)
    # a 64-colour palette keeps the flat drawing sharp at a fraction of the size (Pillow ships with matplotlib)
    from PIL import Image

    Image.open(OUT).convert("RGB").quantize(colors=64).save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
