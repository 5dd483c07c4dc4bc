"""Returns, TD errors and GAE against brute force and the seed's worked example (W-01)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcourse.advantages import (
    aggregate_token_loss,
    discounted_returns,
    gae,
    masked_mean,
    normalize,
    td_errors,
    token_weights,
)

# W-01 (one trajectory, gamma = 0.9): rewards 1, 2, 0; V = 1.5, 2.0, 0.5; terminal after t=3.
R = torch.tensor([[1.0, 2.0, 0.0]])
V = torch.tensor([[1.5, 2.0, 0.5]])
NEXT_V = torch.tensor([[2.0, 0.5, 0.0]])
TERM = torch.tensor([[False, False, True]])
W01 = dict(rewards=R, values=V, next_values=NEXT_V, terminated=TERM, dones=TERM, gamma=0.9)


def test_w01_returns_and_mc_advantages():
    G = discounted_returns(R, TERM, 0.9)
    torch.testing.assert_close(G, torch.tensor([[2.8, 2.0, 0.0]]))
    torch.testing.assert_close(G - V, torch.tensor([[1.3, 0.0, -0.5]]))


@pytest.mark.parametrize("lam,expected", [
    (0.0, [1.3, 0.45, -0.5]),
    (0.5, [1.40125, 0.225, -0.5]),
    (0.95, [1.3192375, 0.0225, -0.5]),
    (1.0, [1.3, 0.0, -0.5]),
])
def test_w01_gae_vectors(lam, expected):
    torch.testing.assert_close(gae(**W01, lam=lam), torch.tensor([expected]))


def test_w01_td_errors_put_gamma_on_the_next_value_only():
    delta = td_errors(R, V, NEXT_V, TERM, 0.9)
    torch.testing.assert_close(delta, torch.tensor([[1.3, 0.45, -0.5]]))
    wrong = R + 0.9 * (NEXT_V - V)  # a seed's garbled version: gamma on the difference
    assert not torch.allclose(wrong, td_errors(R, V, NEXT_V, TERM, 0.9))


def _random_batch(seed: int, B: int = 5, T: int = 12):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(B, T, generator=g, dtype=torch.float64)
    v = torch.randn(B, T + 1, generator=g, dtype=torch.float64)
    term = torch.rand(B, T, generator=g) < 0.15
    trunc = (torch.rand(B, T, generator=g) < 0.1) & ~term
    return r, v[:, :-1], v[:, 1:], term, term | trunc


def _gae_brute(r, v, nv, term, done, gamma, lam):
    B, T = r.shape
    delta = (r + gamma * (~term).double() * nv - v).numpy()
    out = np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            acc, w = 0.0, 1.0
            for k in range(t, T):
                acc += w * delta[b, k]
                if done[b, k]:
                    break
                w *= gamma * lam
            out[b, t] = acc
    return out


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.95, 1.0])
def test_gae_equals_the_weighted_sum_of_td_errors(lam):
    r, v, nv, term, done = _random_batch(1)
    got = gae(r, v, nv, term, done, 0.97, lam)
    np.testing.assert_allclose(got.numpy(), _gae_brute(r, v, nv, term, done, 0.97, lam), atol=1e-10)


def test_gae_limits_td0_and_monte_carlo():
    r, v, nv, term, done = _random_batch(2)
    torch.testing.assert_close(gae(r, v, nv, term, done, 0.9, 0.0), td_errors(r, v, nv, term, 0.9))
    # lam = 1: advantage + V equals the discounted return bootstrapped with V at cut points.
    boot = torch.where(term, torch.zeros_like(nv), nv)
    G = torch.zeros_like(r)
    running = boot[:, -1]
    for t in range(r.shape[1] - 1, -1, -1):
        running = torch.where(done[:, t], r[:, t] + 0.9 * boot[:, t],
                              r[:, t] + 0.9 * running) if t < r.shape[1] - 1 else \
            r[:, t] + 0.9 * boot[:, t]
        G[:, t] = running
    torch.testing.assert_close(gae(r, v, nv, term, done, 0.9, 1.0) + v, G)


def test_truncation_bootstraps_but_termination_does_not():
    r = torch.tensor([[1.0, 1.0]])
    v = torch.tensor([[0.0, 0.0]])
    nv = torch.tensor([[0.0, 10.0]])
    done = torch.tensor([[False, True]])
    truncated = gae(r, v, nv, torch.tensor([[False, False]]), done, 0.5, 1.0)
    terminated = gae(r, v, nv, done, done, 0.5, 1.0)
    torch.testing.assert_close(truncated, torch.tensor([[1 + 0.5 * 6.0, 6.0]]))
    torch.testing.assert_close(terminated, torch.tensor([[1.5, 1.0]]))


def test_discounted_returns_brute_force_and_bootstrap():
    r, _, _, _, done = _random_batch(3)
    G = discounted_returns(r, done, 0.8)
    for b in range(r.shape[0]):
        for t in range(r.shape[1]):
            acc, w = 0.0, 1.0
            for k in range(t, r.shape[1]):
                acc += w * float(r[b, k])
                if done[b, k]:
                    break
                w *= 0.8
            assert abs(float(G[b, t]) - acc) < 1e-10
    boot = discounted_returns(torch.ones(1, 2), torch.zeros(1, 2, dtype=torch.bool), 0.5,
                              bootstrap=torch.tensor([4.0]))
    torch.testing.assert_close(boot, torch.tensor([[1 + 0.5 * 3.0, 3.0]]))


def test_masked_mean_and_normalize():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    m = torch.tensor([[1, 1, 0], [1, 1, 0]])
    assert float(masked_mean(x, m)) == pytest.approx(2.5)
    n = normalize(x, m)
    assert float(masked_mean(n, m)) == pytest.approx(0.0, abs=1e-6)
    assert float(masked_mean(n ** 2, m)) == pytest.approx(1.0, rel=1e-5)
    assert n[0, 2] == 0 and n[1, 2] == 0
    unmasked = normalize(torch.tensor([1.0, 3.0]))
    assert float(unmasked.std(unbiased=False)) == pytest.approx(1, rel=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        gae(R[0], V[0], NEXT_V[0], TERM[0], TERM[0], 0.9, 0.9)
    with pytest.raises(ValueError, match="values has shape"):
        td_errors(R, V[:, :2], NEXT_V, TERM, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(R, TERM, 1.5)
    with pytest.raises(ValueError, match="lam"):
        gae(**W01, lam=-0.1)
    with pytest.raises(ValueError, match="mask has shape"):
        masked_mean(R, torch.ones(1, 2))


# ---- token aggregation modes: GRPO seq_mean, DAPO token_mean, Dr. GRPO seq_sum_norm ---------

def _lengths_mask(lengths, T):
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def test_t09_token_weights_for_lengths_10_and_100():
    mask = _lengths_mask([10, 100], 100)
    w = token_weights(mask, "seq_mean")
    torch.testing.assert_close(w[0, :10], torch.full((10,), 1 / 20))   # 1 / (2 * 10)
    torch.testing.assert_close(w[1], torch.full((100,), 1 / 200))      # 1 / (2 * 100)
    assert float(w[0, 10:].abs().sum()) == 0.0
    torch.testing.assert_close(token_weights(mask, "token_mean")[mask], torch.full((110,), 1 / 110))
    w_dr = token_weights(mask, "seq_sum_norm", constant=100)
    torch.testing.assert_close(w_dr[mask], torch.full((110,), 1 / 200))  # 1 / (B * 100)
    # seq_mean: each sequence carries total weight 1/B; token_mean: each token the same
    torch.testing.assert_close(w.sum(1), torch.tensor([0.5, 0.5]))
    assert float(token_weights(mask, "token_mean").sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("mode,constant", [("seq_mean", None), ("token_mean", None),
                                           ("seq_sum_norm", 7.0)])
def test_aggregate_is_weights_dot_loss_and_matches_brute_force(mode, constant):
    torch.manual_seed(0)
    lengths = [3, 7, 1, 5]
    mask = _lengths_mask(lengths, 7)
    loss = torch.randn(4, 7, dtype=torch.float64).masked_fill(~mask, float("nan"))  # NaN padding
    got = aggregate_token_loss(loss, mask, mode, constant)
    w = token_weights(mask.double(), mode, constant)
    torch.testing.assert_close(got, (w * loss.nan_to_num()).sum())
    rows = [loss[i, :n].tolist() for i, n in enumerate(lengths)]
    if mode == "seq_mean":
        brute = sum(sum(r) / len(r) for r in rows) / len(rows)
    elif mode == "token_mean":
        brute = sum(map(sum, rows)) / sum(lengths)
    else:
        brute = sum(map(sum, rows)) / (len(rows) * constant)
    assert float(got) == pytest.approx(brute, rel=1e-12)


def test_seq_mean_is_masked_mean_per_row_and_skips_empty_rows():
    torch.manual_seed(1)
    mask = _lengths_mask([2, 0, 4], 4)
    loss = torch.randn(3, 4, dtype=torch.float64)
    per_row = [masked_mean(loss[i], mask[i]) for i in (0, 2)]
    got = aggregate_token_loss(loss, mask, "seq_mean")
    torch.testing.assert_close(got, sum(per_row) / 2)
    # the wrong variant (a plain token mean) weights the longer row more and differs here
    assert not torch.allclose(got, masked_mean(loss, mask))


def test_aggregation_bad_inputs():
    mask = torch.ones(2, 3)
    with pytest.raises(ValueError, match="unknown mode"):
        token_weights(mask, "sum")
    with pytest.raises(ValueError, match="constant"):
        token_weights(mask, "seq_sum_norm")
    with pytest.raises(ValueError, match="constant"):
        token_weights(mask, "token_mean", constant=3.0)
    with pytest.raises(ValueError, match="constant must lie"):
        token_weights(mask, "seq_sum_norm", constant=0.0)
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        token_weights(torch.ones(3), "seq_mean")
    with pytest.raises(ValueError, match="mask has shape"):
        aggregate_token_loss(torch.zeros(2, 4), mask, "seq_mean")
