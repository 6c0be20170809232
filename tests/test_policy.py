"""The bot's one-observation forward and sampling give what the torch policy and softmax define."""

import itertools

import numpy as np
import pytest
import torch

from bot.actions import NUM_ACTIONS
from bot.bot import sample_action
from bot.obs import GLOBAL_F, MAX_OTHERS, O_PRESENT, OTHER_F
from bot.policy import BotPolicy, Policy, PolicyConfig, load_policy
from tests.conftest import ROOT


def policies():
    torch.manual_seed(0)
    yield "random", Policy(PolicyConfig(hidden=64, layers=2)).eval()
    if (ROOT / "models" / "bc" / "model.safetensors").is_file():
        yield "bundled", load_policy(ROOT / "models" / "bc")[0]


@pytest.mark.parametrize("name,policy", list(policies()))
def test_numpy_forward_matches_torch_for_every_set_of_present_cars(name, policy, rng):
    """All 32 presence patterns of the 5 slots: masked mean/max pooling, and the 1v0 case (no other car)."""
    patterns = np.array(list(itertools.product([0.0, 1.0], repeat=MAX_OTHERS)), np.float32)  # (32, O)
    glob = rng.normal(size=(len(patterns), GLOBAL_F)).astype(np.float32)
    others = rng.normal(size=(len(patterns), MAX_OTHERS, OTHER_F)).astype(np.float32)
    others[..., O_PRESENT] = patterns
    others *= np.where(patterns[..., None] > 0, 1, 0).astype(np.float32)  # absent slots are zeros, as in build_obs
    with torch.no_grad():
        expected = policy(torch.from_numpy(glob), torch.from_numpy(others)).numpy()  # (32, A)
    fast = BotPolicy(policy)
    for g, o, want in zip(glob, others, expected):
        got = fast(g, o)
        assert got.shape == (NUM_ACTIONS,) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sampling_is_the_argmax_at_temperature_zero_and_never_draws_masked_actions(rng):
    logits = rng.normal(size=NUM_ACTIONS).astype(np.float32)
    assert sample_action(logits, 0.0, rng) == int(logits.argmax())
    masked = np.where(np.arange(NUM_ACTIONS) % 3 == 0, -np.inf, logits * 20)  # peaked, many -inf
    draws = {sample_action(masked, 0.5, rng) for _ in range(2000)}
    assert all(np.isfinite(masked[a]) for a in draws)


def test_sampling_follows_the_softmax(rng):
    logits = rng.normal(size=NUM_ACTIONS).astype(np.float32) * 2
    temperature, n = 0.7, 200_000
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    counts = np.bincount([sample_action(logits, temperature, rng) for _ in range(n)], minlength=NUM_ACTIONS)
    np.testing.assert_allclose(counts / n, p, atol=5 * np.sqrt(p * (1 - p) / n).max())  # 5 standard errors
