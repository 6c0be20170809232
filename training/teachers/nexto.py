"""Nexto as a teacher: our own implementation of its observation (nexto-teacher.md §4-7), its actor (§8) and an
RLBot v4 agent wrapper.

One observation function, `nexto_observation`, serves both the fast batched recorder (many arenas stacked on
the T axis of one `Frames`) and `NextoAgent` (one packet -> Frames with T = 1). The model itself is the
TorchScript file from ../shared/teachers/nexto/ (never committed); it is loaded with `torch.jit.load` only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from bot.actions import ACTION_TABLE, NOOP_ACTION, NUM_ACTIONS
from bot.bot import agent_rng
from bot.constants import BOOST_PAD_IS_BIG, BOOST_PAD_LOCATIONS, NUM_BOOST_PADS, ORANGE_TEAM, TICK_RATE
from bot.frame import (
    ANG_VEL, BOOST, DEMOLISHED, FORWARD, HAS_FLIP, KICKOFF_PAUSE, ON_GROUND, POS, PRESENT, UP, VEL, Frames,
)
from training.storage import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NEXTO_PATH = REPO_ROOT / ".." / "shared" / "teachers" / "nexto" / "nexto-model.pt"
NEXTO_SHA256 = "bf5343b5eeacac6bf7cdb75dac4a5c14ba0f94d820eae75f00a211b6119d69fa"

# ---- Nexto's 24 entity features (nexto-teacher.md §5) ----
IS_SELF, IS_MATE, IS_OPP, IS_BALL, IS_BOOST = 0, 1, 2, 3, 4
F_POS = slice(5, 8)  # position / POS_NORM
F_VEL = slice(8, 11)  # linear velocity / POS_NORM
F_FORWARD = slice(11, 14)  # unit vector
F_UP = slice(14, 17)  # unit vector
F_ANG_VEL = slice(17, 20)  # angular velocity / ANG_VEL_NORM
F_BOOST = 20  # car boost 0..1; pad size (1.0 big, 0.12 small)
F_DEMO = 21  # car is demolished; pad is available
F_ON_GROUND = 22
F_HAS_FLIP = 23
NUM_FEATURES = 24
VECTOR_GROUPS = (F_POS, F_VEL, F_FORWARD, F_UP, F_ANG_VEL)  # rotated by the team flip and the relative transform
Q_SELF = slice(0, NUM_FEATURES)  # query: the self row before the relative transform...
Q_PREV_ACTION = slice(NUM_FEATURES, NUM_FEATURES + 8)  # ...then the previous action's 8 controls
QUERY_F = NUM_FEATURES + 8

POS_NORM = 2300.0  # uu, uu/s
ANG_VEL_NORM = 5.5  # rad/s
PAD_SIZE_BIG, PAD_SIZE_SMALL = 1.0, 0.12
ON_GROUND_GRACE_TICKS = 6  # rlgym-compat keeps on_ground for 6 ticks after the wheels leave the surface
TICK_SKIP = 8  # Nexto decides every 8 ticks (15 Hz)
KICKOFF_BETA = 0.5  # Nexto samples on kickoffs ("stochastic kickoffs")


def num_entities(num_cars: int) -> int:
    """N = cars + ball + 34 pads (37 in 1v1, 39 in 2v2, 41 in 3v3)."""
    return num_cars + 1 + NUM_BOOST_PADS


class OnGroundGrace:
    """rlgym-compat's on_ground: wheel contact now, or at most 6 ticks since the last decoded contact.

    Counters start at 0, so every car counts as on the ground for its first 6 ticks (as in Nexto's bot).
    """

    def __init__(self, shape: tuple[int, ...]):
        self.ticks_since_contact = np.zeros(shape, np.int64)

    def update(self, contact: np.ndarray, ticks_elapsed: int) -> np.ndarray:
        """contact (shape) 0/1 raw wheel contact -> (shape) float32 0/1 on_ground as Nexto sees it."""
        contact = np.asarray(contact) > 0
        self.ticks_since_contact = np.where(contact, 0, self.ticks_since_contact + ticks_elapsed)
        return (contact | (self.ticks_since_contact <= ON_GROUND_GRACE_TICKS)).astype(np.float32)

    def reset(self, where: np.ndarray | None = None) -> None:
        if where is None:
            self.ticks_since_contact[...] = 0
        else:
            self.ticks_since_contact[where] = 0


def _rotate_xy(x_mef: np.ndarray, cos_m: np.ndarray, sin_m: np.ndarray) -> None:
    """In place: rotate the x, y of every vector group of (M, E, F) rows by the per-observer angle."""
    c, s = cos_m[:, None], sin_m[:, None]
    for g in VECTOR_GROUPS:
        x, y = x_mef[..., g.start].copy(), x_mef[..., g.start + 1].copy()
        x_mef[..., g.start] = c * x - s * y
        x_mef[..., g.start + 1] = s * x + c * y


def nexto_observation(frames: Frames, prev_action_m8: np.ndarray, obs_t: np.ndarray, obs_p: np.ndarray,
                      on_ground_tp: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nexto's model inputs for M observers (frame row obs_t[m], car slot obs_p[m]), all at once.

    Each row t of `frames` is an independent moment (time steps of one game, or many arenas stacked).
    Cars with PRESENT = 0 are left out by a -inf attention mask (equal to removing the row), so arenas with
    1v1 to 3v3 in fixed 6-slot layouts share one model call with N = P + 35.
    prev_action_m8: the 8 controls Nexto last chose for each observer. on_ground_tp: on_ground with the
    rlgym-compat grace (`OnGroundGrace`); defaults to the raw ON_GROUND column.
    Returns q (M, 1, 32), kv (M, N, 24), mask (M, N) float32, rows ordered self, mates, opponents, ball, pads.
    """
    cars = frames.cars_tpf  # (T, P, F)
    t_count, p_count = cars.shape[:2]
    obs_t, obs_p = np.asarray(obs_t, np.int64), np.asarray(obs_p, np.int64)
    m_count = len(obs_t)
    n = num_entities(p_count)
    on_ground = cars[..., ON_GROUND] if on_ground_tp is None else on_ground_tp
    present_tp = cars[..., PRESENT] > 0

    # entity rows in the world frame, shared by every observer of a frame row
    ent = np.zeros((t_count, n, NUM_FEATURES), np.float32)  # (T, N, 24)
    ent[:, :p_count, F_POS] = cars[..., POS] / POS_NORM
    ent[:, :p_count, F_VEL] = cars[..., VEL] / POS_NORM
    ent[:, :p_count, F_FORWARD] = cars[..., FORWARD]
    ent[:, :p_count, F_UP] = cars[..., UP]
    ent[:, :p_count, F_ANG_VEL] = cars[..., ANG_VEL] / ANG_VEL_NORM
    ent[:, :p_count, F_BOOST] = cars[..., BOOST]
    ent[:, :p_count, F_DEMO] = cars[..., DEMOLISHED]
    ent[:, :p_count, F_ON_GROUND] = on_ground
    ent[:, :p_count, F_HAS_FLIP] = cars[..., HAS_FLIP]
    ent[:, :p_count][~present_tp] = 0.0  # absent slots: finite zeros under the -inf mask
    ball = p_count
    ent[:, ball, IS_BALL] = 1.0
    ent[:, ball, F_POS] = frames.ball_tf[:, POS] / POS_NORM
    ent[:, ball, F_VEL] = frames.ball_tf[:, VEL] / POS_NORM
    ent[:, ball, F_ANG_VEL] = frames.ball_tf[:, ANG_VEL] / ANG_VEL_NORM
    pads = slice(p_count + 1, n)
    ent[:, pads, IS_BOOST] = 1.0
    ent[:, pads, F_POS] = BOOST_PAD_LOCATIONS / POS_NORM
    ent[:, pads, F_BOOST] = np.where(BOOST_PAD_IS_BIG, PAD_SIZE_BIG, PAD_SIZE_SMALL)
    ent[:, pads, F_DEMO] = frames.pads_available_tk()

    # per observer: identity flags, car order (self, mates, opponents, absent), team flip
    team_p = frames.team_p.astype(np.int64)
    my_team = team_p[obs_p]  # (M,)
    is_self = np.arange(p_count)[None, :] == obs_p[:, None]  # (M, P)
    is_mate = team_p[None, :] == my_team[:, None]
    present = present_tp[obs_t]  # (M, P)
    rank = np.where(is_self, 0, np.where(~present, 3, np.where(is_mate, 1, 2)))
    order_mp = np.argsort(rank * p_count + np.arange(p_count)[None, :], axis=1, kind="stable")  # (M, P)

    kv = ent[obs_t]  # (M, N, 24), a copy
    kv[:, :p_count, IS_SELF] = is_self
    kv[:, :p_count, IS_MATE] = is_mate & present
    kv[:, :p_count, IS_OPP] = ~is_mate & present
    kv[:, :p_count] = np.take_along_axis(kv[:, :p_count], order_mp[:, :, None], axis=1)
    mask = np.zeros((m_count, n), np.float32)
    mask[:, :p_count] = np.where(np.take_along_axis(present, order_mp, axis=1), 0.0, -np.inf)

    orange = my_team == ORANGE_TEAM  # 180 degrees about z: negate x and y of every vector of every row
    for g in VECTOR_GROUPS:
        kv[orange, :, g.start:g.start + 2] *= -1.0

    q = np.empty((m_count, 1, QUERY_F), np.float32)
    q[:, 0, Q_SELF] = kv[:, 0]  # self row, team frame, before the relative transform
    q[:, 0, Q_PREV_ACTION] = prev_action_m8

    kv[..., F_POS] -= kv[:, :1, F_POS]  # positions relative to self; velocities stay absolute
    theta = np.arctan2(kv[:, 0, F_FORWARD.start], kv[:, 0, F_FORWARD.start + 1])  # (M,) from +y towards +x
    _rotate_xy(kv, np.cos(theta), np.sin(theta))
    return q, kv, mask


def load_nexto(path: str | Path = DEFAULT_NEXTO_PATH, check_sha256: bool = True) -> torch.jit.ScriptModule:
    """The TorchScript policy, after checking that the file is the known one. Clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Nexto model not found at {path}. Put nexto-model.pt (nexto-teacher.md §1) there "
                                "or pass --teacher-path, or use --teacher random.")
    if check_sha256:
        digest = sha256_file(path)
        if digest != NEXTO_SHA256:
            raise ValueError(f"{path}: sha256 {digest} is not Nexto's ({NEXTO_SHA256}); wrong or damaged file")
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path} is not a TorchScript archive: {err}") from None
    return model.eval()


class FastNextoForward:
    """The logits of Nexto's TorchScript model, computed ~3x faster on one CPU thread (same weights, float32).

    Nexto has one query per decision, so each attention block can work on the entities without projecting them
    to keys and values: with z = the entities after key_value_preprocess, normalised without norm2's affine,
    and w, b = norm2's weight and bias, per head h
        score_n = q_h . Wk_h (w * z_n + b) + q_h . bk_h = (Wk_h^T q_h * w) . z_n + (a constant over n),
        sum_n a_n (Wv_h (w * z_n + b) + bv_h) = Wv_h (w * (sum_n a_n z_n) + b) + bv_h,
    and a constant shift of the scores does not change the softmax. This replaces the per-entity 128x128
    K and V projections (2 per block) by a few (M, 4, 128) products (about 3x fewer multiply-adds in all);
    what is left is mostly the per-entity key/value MLP. Same float32 arithmetic up to rounding: the logits differ
    by at most 2e-4 (their size is up to ~40) and the picked actions (argmax, and sampling at beta 0.9 / 0.7 with
    the same random numbers) were identical on 114,600 recorded 1v1-3v3 decisions; tests/test_nexto.py checks a
    recorded batch against the TorchScript call.
    The attention weights the TorchScript model also returns are not computed. Weights are read from the loaded
    model at run time and never stored anywhere else.
    """

    HEADS = 4
    CHUNK = 64  # observers per pass: keeps the (64, N, 128) entity tensors in L2 cache (~1.3x faster than one pass)

    def __init__(self, model: torch.jit.ScriptModule):
        sd = {k: v.detach() for k, v in model.state_dict().items()}

        def lin(name: str) -> tuple[torch.Tensor, torch.Tensor]:
            return sd[f"{name}.weight"], sd[f"{name}.bias"]

        self.query_mlp = [lin(f"net.earl.query_preprocess.{i}") for i in (0, 2)]
        self.kv_mlp = [lin(f"net.earl.key_value_preprocess.{i}") for i in (0, 2)]
        self.blocks = []
        for b in range(2):
            pre = f"net.earl.blocks.{b}"
            w_in, b_in = sd[f"{pre}.attention.in_proj_weight"], sd[f"{pre}.attention.in_proj_bias"]
            dim = w_in.shape[1]
            head_dim = dim // self.HEADS
            self.blocks.append({
                "wq": w_in[:dim] / math.sqrt(head_dim), "bq": b_in[:dim] / math.sqrt(head_dim),
                "wk": w_in[dim:2 * dim].reshape(self.HEADS, head_dim, dim),
                "wv": w_in[2 * dim:].reshape(self.HEADS, head_dim, dim),
                "bv": b_in[2 * dim:].reshape(self.HEADS, head_dim),
                "out": lin(f"{pre}.attention.out_proj"), "norm1": lin(f"{pre}.norm1"), "norm2": lin(f"{pre}.norm2"),
                "norm3": lin(f"{pre}.norm3"), "linear1": lin(f"{pre}.linear1"), "linear2": lin(f"{pre}.linear2"),
            })
        self.dim = dim
        self.player_emb = lin("net.output.emb_convertor")
        with torch.inference_mode():  # the action embeddings of the constant table, by the model's own MLP
            self.action_emb = model.net.output.net(torch.from_numpy(ACTION_TABLE).float()).clone()  # (90, 32)

    def __call__(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """q (M,1,32), kv (M,N,24), mask (M,N) float32 -> logits (M, 90)."""
        if len(q) <= self.CHUNK:
            return self._logits(q, kv, mask)
        return torch.cat([self._logits(q[i:i + self.CHUNK], kv[i:i + self.CHUNK], mask[i:i + self.CHUNK])
                          for i in range(0, len(q), self.CHUNK)])

    def _logits(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        F = torch.nn.functional
        x = q[:, 0]
        for w, b in self.query_mlp:
            x = F.linear(x, w, b).relu_()  # (M, 128)
        z = kv
        for w, b in self.kv_mlp:
            z = F.linear(z, w, b).relu_()  # (M, N, 128)
        z = F.layer_norm(z, (self.dim,))  # norm2 without its affine; shared by both blocks
        m_count = len(x)
        for blk in self.blocks:
            norm2_w, norm2_b = blk["norm2"]
            qh = F.linear(F.layer_norm(x, (self.dim,), *blk["norm1"]), blk["wq"], blk["bq"])
            u = torch.einsum("mhd,hdc->mhc", qh.view(m_count, self.HEADS, -1), blk["wk"]) * norm2_w  # (M, 4, 128)
            attn = torch.softmax(torch.bmm(u, z.transpose(1, 2)) + mask[:, None, :], -1)  # (M, 4, N)
            pooled = torch.bmm(attn, z) * norm2_w + norm2_b  # (M, 4, 128): attention-weighted norm2(entities)
            heads = torch.einsum("mhc,hdc->mhd", pooled, blk["wv"]) + blk["bv"]  # (M, 4, 32)
            x = x + F.linear(heads.reshape(m_count, self.dim), *blk["out"])
            x = x + F.linear(F.linear(F.layer_norm(x, (self.dim,), *blk["norm3"]), *blk["linear1"]).relu_(),
                             *blk["linear2"])
        return F.linear(x.relu(), *self.player_emb) @ self.action_emb.T


class NextoPolicy:
    """The model call plus Nexto's beta rule for picking one of the 90 actions.

    `logits` uses `FastNextoForward`; `reference_logits` is the plain TorchScript call (for tests).
    """

    def __init__(self, path: str | Path = DEFAULT_NEXTO_PATH, check_sha256: bool = True):
        self.model = load_nexto(path, check_sha256)
        self.forward = FastNextoForward(self.model)

    @torch.inference_mode()
    def logits(self, q: np.ndarray, kv: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """q (M,1,32), kv (M,N,24), mask (M,N) -> logits (M, 90) float32."""
        return self.forward(torch.from_numpy(q), torch.from_numpy(kv), torch.from_numpy(mask)).numpy()

    @torch.inference_mode()
    def reference_logits(self, q: np.ndarray, kv: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The same logits from the TorchScript model itself."""
        out, _ = self.model((torch.from_numpy(q), torch.from_numpy(kv), torch.from_numpy(mask)))
        return out.numpy()

    def act(self, q: np.ndarray, kv: np.ndarray, mask: np.ndarray, beta: np.ndarray | float,
            rng: np.random.Generator) -> np.ndarray:
        return choose_actions(self.logits(q, kv, mask), beta, rng)


def choose_actions(logits_ma: np.ndarray, beta: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
    """Nexto's beta (§8), per row: 1 argmax, -1 argmin, 0 uniform, else sample softmax(logits * log3((1+b)/(1-b))).

    Always draws one uniform number per row, so the random stream does not depend on the betas.
    """
    m = len(logits_ma)
    beta_m = np.broadcast_to(np.asarray(beta, np.float64), (m,))
    u = rng.random(m)
    inner = np.clip(beta_m, -0.999999, 0.999999)
    scale = np.log((1 + inner) / (1 - inner)) / math.log(3.0)  # (M,)
    z = logits_ma.astype(np.float64) * scale[:, None]
    p = np.exp(z - z.max(1, keepdims=True))
    cdf = np.cumsum(p, 1)
    cdf /= cdf[:, -1:]
    sampled = np.minimum((cdf < u[:, None]).sum(1), NUM_ACTIONS - 1)
    return np.where(beta_m >= 1, logits_ma.argmax(1), np.where(beta_m <= -1, logits_ma.argmin(1), sampled))


# ---------------------------------------------------------------- RLBot v4 agent

try:
    from rlbot.agents.base_agent import BaseAgent, SimpleControllerState
except ImportError:  # pragma: no cover - rlbot is a dependency of the project
    BaseAgent, SimpleControllerState = object, None


class NextoAgent(BaseAgent):
    """Nexto as an RLBot v4 bot on our observation: same decision cadence as Nexto's own bot (§8).

    A new action is computed on the first packet of each 8-tick window and sent from the 7th tick on; on_ground
    gets rlgym-compat's 6-tick grace; beta is 0.5 during kickoff pauses and 0 after the match ends, as in Nexto.
    The scripted kickoff (§9) is not reproduced.
    """

    def __init__(self, name: str, team: int, index: int, model_path: str | Path = DEFAULT_NEXTO_PATH,
                 beta: float = 1.0):
        super().__init__(name, team, index)
        self.model_path, self.beta = Path(model_path), beta
        self.policy: NextoPolicy | None = None

    def initialize_agent(self) -> None:
        from bot.packet import PacketDecoder, default_field_info
        torch.set_num_threads(1)  # as our bot: one state per decision, and spare threads only spin-wait (on a busy
        # machine that wait made a 300-s arena game against Nexto take minutes instead of ~1)
        self.policy = NextoPolicy(self.model_path)
        field_info = None
        try:
            field_info = self.get_field_info()
        except Exception:  # not registered with a framework (offline hosts, tests)
            field_info = None
        if field_info is None or field_info.num_boosts != NUM_BOOST_PADS:
            field_info = default_field_info()
        self.decoder = PacketDecoder(field_info)
        self.grace: OnGroundGrace | None = None
        self.rng = agent_rng(self.index)
        self.prev_time: float | None = None
        self.ticks, self.update_action = TICK_SKIP, True
        self.action = ACTION_TABLE[NOOP_ACTION].copy()  # the "previous action" at the start
        self.controls = SimpleControllerState()

    def get_output(self, packet) -> SimpleControllerState:
        now = packet.game_info.seconds_elapsed
        ticks_elapsed = 1 if self.prev_time is None else int(round((now - self.prev_time) * TICK_RATE))
        self.prev_time = now
        self.ticks += ticks_elapsed
        frame = self.decoder.packet_to_frame(packet)
        if self.grace is None or self.grace.ticks_since_contact.shape != (frame.num_cars,):
            self.grace = OnGroundGrace((frame.num_cars,))
        on_ground = self.grace.update(frame.cars_tpf[0, :, ON_GROUND], ticks_elapsed)
        if self.update_action and self.index < frame.num_cars:
            self.update_action = False
            q, kv, mask = nexto_observation(frame, self.action[None], np.array([0]), np.array([self.index]),
                                            on_ground[None])
            beta = self.beta
            if packet.game_info.is_match_ended:
                beta = 0.0
            elif packet.game_info.is_kickoff_pause:  # Nexto's own test: from "go" on, not in the countdown
                beta = KICKOFF_BETA
            self.action = ACTION_TABLE[int(self.policy.act(q, kv, mask, beta, self.rng)[0])].copy()
        if self.ticks >= TICK_SKIP - 1:
            self._send(self.action)
        if self.ticks >= TICK_SKIP:
            self.ticks, self.update_action = 0, True
        return self.controls

    def _send(self, row: np.ndarray) -> None:
        c = self.controls
        c.throttle, c.steer, c.pitch, c.yaw, c.roll = (float(v) for v in row[:5])
        c.jump, c.boost, c.handbrake = bool(row[5] > 0), bool(row[6] > 0), bool(row[7] > 0)


# ---------------------------------------------------------------- batched teacher for the fast recorder

from training.teachers import Teacher  # noqa: E402  (the ABC lives in the package; imported late to keep the top short)


class NextoTeacher(Teacher):
    """Nexto driving every car of G lockstep arenas, one batched model call per decision (every 8 ticks).

    Called every 4 ticks by the recorder: on even calls it observes the current moment and decides; a decision
    is applied `lag_ticks` later (0, 4 or 8; Nexto trained with 0, its RLBot bot acts 7 ticks late) and held for
    8 ticks, so every 4-tick recorded frame is covered by one action. Per episode and car it draws a sampling
    beta from `betas` and an epsilon in [0, epsilon_max]: with probability epsilon a decision is replaced by a
    uniformly random action.
    `drives_gp` limits it to some cars (fine-tuning's opponent: one car per arena; the others' actions are left
    at no-op), and `kickoff_beta` replaces the beta while the kickoff pause lasts, as Nexto's own bot does.
    """

    name = "nexto"

    def __init__(self, num_arenas: int, num_slots: int, model_path: str | Path = DEFAULT_NEXTO_PATH,
                 betas: tuple[float, ...] = (1.0,), epsilon_max: float = 0.0, lag_ticks: int = 4,
                 drives_gp: np.ndarray | None = None, kickoff_beta: float | None = None):
        if lag_ticks not in (0, 4, 8):
            raise ValueError("lag_ticks must be 0, 4 or 8 so actions change on recorded-frame boundaries")
        self.policy = NextoPolicy(model_path)
        self.model_path, self.betas, self.epsilon_max, self.lag_ticks = Path(model_path), betas, epsilon_max, lag_ticks
        shape = (num_arenas, num_slots)
        self.drives_gp = np.ones(shape, bool) if drives_gp is None else np.asarray(drives_gp, bool)
        self.kickoff_beta = kickoff_beta
        self.grace = OnGroundGrace(shape)
        self.prev_action = np.full(shape, NOOP_ACTION, np.int64)  # Nexto's last decision (its query input)
        self.current = np.full(shape, NOOP_ACTION, np.int64)  # what is applied now
        self.pending: list[tuple[int, np.ndarray]] = []  # (call index to apply at, (G, P) actions)
        self.beta = np.ones(shape)
        self.epsilon = np.zeros(shape)
        self.calls = 0
        self.inference_s = 0.0  # time spent in the model call, for the benchmark

    def start_episodes(self, arenas_g: np.ndarray, frames: Frames, rng: np.random.Generator) -> None:
        shape = self.beta[arenas_g].shape
        self.beta[arenas_g] = rng.choice(np.asarray(self.betas, np.float64), size=shape)
        self.epsilon[arenas_g] = rng.uniform(0.0, self.epsilon_max, size=shape)
        self.grace.reset(arenas_g)
        for arr in (self.prev_action, self.current):
            arr[arenas_g] = NOOP_ACTION
        for _, actions in self.pending:
            actions[arenas_g] = NOOP_ACTION

    def act(self, frames: Frames, rng: np.random.Generator) -> np.ndarray:
        import time
        on_ground = self.grace.update(frames.cars_tpf[..., ON_GROUND], 4)  # (G, P)
        if self.calls % 2 == 0:
            obs_t, obs_p = np.nonzero((frames.cars_tpf[..., PRESENT] > 0) & self.drives_gp)
            q, kv, mask = nexto_observation(frames, ACTION_TABLE[self.prev_action[obs_t, obs_p]], obs_t, obs_p,
                                            on_ground)
            start = time.perf_counter()
            logits = self.policy.logits(q, kv, mask)
            self.inference_s += time.perf_counter() - start
            beta = self.beta[obs_t, obs_p]
            if self.kickoff_beta is not None:
                beta = np.where(frames.game_tf[obs_t, KICKOFF_PAUSE] > 0, self.kickoff_beta, beta)
            chosen = choose_actions(logits, beta, rng)
            explore = rng.random(len(chosen)) < self.epsilon[obs_t, obs_p]
            chosen = np.where(explore, rng.integers(NUM_ACTIONS, size=len(chosen)), chosen)
            decision = self.prev_action.copy()
            decision[obs_t, obs_p] = chosen
            self.prev_action = decision
            self.pending.append((self.calls + self.lag_ticks // 4, decision))
        while self.pending and self.pending[0][0] <= self.calls:
            self.current = self.pending.pop(0)[1].copy()
        self.calls += 1
        return self.current.copy()

    def describe(self) -> dict:
        about = {"name": self.name, "model_sha256": NEXTO_SHA256, "betas": list(self.betas),
                 "epsilon_max": self.epsilon_max, "lag_ticks": self.lag_ticks, "decision_every_ticks": TICK_SKIP,
                 "scripted_kickoff": False}
        if self.kickoff_beta is not None:  # only when set, so the manifests of earlier shards stay as they were
            about["kickoff_beta"] = self.kickoff_beta
        return about
