"""GRPO family (rlcourse.llm.grpo): advantages against T-04..T-07 and brute force, the token loss
against the REINFORCE gradient (C-108), finite differences and the k3 values (T-08), DAPO's
filters (T-11), the sequence-ratio seed error (E-21/E-53) and the toy claims V-21, V-23."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlcourse.llm import grpo

F64 = torch.float64
T04 = torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=F64)


# ---- advantages ----------------------------------------------------------------------------

def test_t04_t05_t06_t07_worked_advantages():
    sign = torch.tensor([[1.0, -1.0, -1.0, 1.0]], dtype=F64)
    torch.testing.assert_close(grpo.group_advantages(T04, eps=0.0), sign)              # T-04
    torch.testing.assert_close(grpo.group_advantages(T04, eps=1e-6), sign, atol=1e-5, rtol=0)
    torch.testing.assert_close(grpo.group_advantages(T04, ddof=1, eps=0.0), 0.8660254 * sign)
    torch.testing.assert_close(grpo.group_advantages(T04, scale="none"), 0.5 * sign)   # T-05
    torch.testing.assert_close(grpo.rloo_advantages(T04), (2 / 3) * sign)              # T-06
    ones = torch.ones(1, 4, dtype=F64)                                                  # T-07
    for kw in ({}, {"eps": 0.0}, {"ddof": 1, "eps": 0.0}, {"scale": "none"}):
        out = grpo.group_advantages(ones, **kw)
        assert torch.equal(out, torch.zeros_like(out)), kw
    assert torch.equal(grpo.rloo_advantages(ones), torch.zeros(1, 4, dtype=F64))


@pytest.mark.parametrize("ddof", [0, 1])
def test_group_advantages_match_numpy_per_group(ddof):
    rng = np.random.default_rng(0)
    r = rng.normal(size=(5, 6))
    r[2] = 0.7  # one degenerate group in the batch
    got = grpo.group_advantages(torch.tensor(r), ddof=ddof, eps=1e-6).numpy()
    for b in range(5):
        if b == 2:
            assert np.all(got[b] == 0.0)
            continue
        expected = (r[b] - r[b].mean()) / (np.std(r[b], ddof=ddof) + 1e-6)
        np.testing.assert_allclose(got[b], expected, rtol=1e-12)
    # each group is centred separately: groups are never compared with one another (E-22)
    np.testing.assert_allclose(got.sum(1), 0.0, atol=1e-12)
    shifted = grpo.group_advantages(torch.tensor(r + np.arange(5)[:, None] * 10.0), ddof=ddof)
    np.testing.assert_allclose(shifted.numpy(), got, atol=1e-9)


def test_rloo_against_a_loop_and_the_k_over_k_minus_1_identity():
    torch.manual_seed(0)
    r = torch.randn(4, 5, dtype=F64)
    got = grpo.rloo_advantages(r)
    for b in range(4):
        for i in range(5):
            others = [float(r[b, j]) for j in range(5) if j != i]
            assert float(got[b, i]) == pytest.approx(float(r[b, i]) - sum(others) / 4, rel=1e-12)
    torch.testing.assert_close(got, 5 / 4 * grpo.group_advantages(r, scale="none"))


def test_reinforce_pp_normalises_over_the_whole_batch():
    r = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=F64)
    got = grpo.reinforce_pp_advantages(r, eps=0.0)
    mean, std = 3 / 8, math.sqrt(3 / 8 * 5 / 8)  # population std of three 1s and five 0s
    torch.testing.assert_close(got, (r - mean) / std)
    torch.testing.assert_close(grpo.reinforce_pp_advantages(r.flatten(), eps=0.0), got.flatten())
    # unlike GRPO, the all-wrong group still gets (negative) advantages from the batch baseline
    assert bool((got[1] < 0).all()) and bool((grpo.group_advantages(r)[1] == 0).all())


def test_reinforce_pp_token_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0], dtype=F64)
    logp_old = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -0.7, 0.0]], dtype=F64)
    ref_logp = torch.tensor([[-1.5, -1.0, -0.5], [-0.1, -9.0, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    beta = 0.1
    # row 0: KL = 0.5, -1.0, 0.0 -> to-go  1 - 0.1*(-0.5), 1 - 0.1*(-1.0), 1 - 0
    # row 1: one token, KL = -0.2 -> 0 - 0.1*(-0.2)
    raw = [1.05, 1.1, 1.0, 0.02]
    mu, sd = np.mean(raw), np.std(raw)
    expected = torch.tensor([[(raw[0] - mu) / sd, (raw[1] - mu) / sd, (raw[2] - mu) / sd],
                             [(raw[3] - mu) / sd, 0.0, 0.0]], dtype=F64)
    got = grpo.reinforce_pp_token_advantages(rewards, logp_old, ref_logp, mask, beta, eps=0.0)
    torch.testing.assert_close(got, expected)


# ---- DAPO: dynamic sampling and the overlong penalty ---------------------------------------

def test_informative_groups():
    r = torch.tensor([[1, 1, 1], [0, 0, 0], [0, 1, 0], [0.5, 0.5, 0.2]])
    assert grpo.informative_groups(r).tolist() == [False, False, True, True]


def test_t11_overlong_penalty_and_its_boundaries():
    got = grpo.overlong_penalty(torch.tensor([16000, 18432, 21000]), 20480, 4096)
    torch.testing.assert_close(got, torch.tensor([0.0, -0.5, -1.0], dtype=F64))       # T-11
    edges = grpo.overlong_penalty(torch.tensor([0, 16384, 16385, 20479, 20480, 20481]),
                                  20480, 4096)
    torch.testing.assert_close(edges, torch.tensor([0.0, 0.0, -1 / 4096, -4095 / 4096, -1.0,
                                                    -1.0], dtype=F64))


# ---- the token-level loss -------------------------------------------------------------------

def _policy(N: int = 4, T: int = 5, V: int = 3, seed: int = 0):
    """Free logits [N, T, V], sampled tokens [N, T] and right-padded masks of lengths 5,2,3,1."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, T, V, dtype=F64, generator=g).requires_grad_(True)
    tokens = torch.randint(0, V, (N, T), generator=g)
    mask = torch.arange(T)[None, :] < torch.tensor([5, 2, 3, 1])[:N, None]
    return logits, tokens, mask


def _logp(logits, tokens):
    return torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)


def test_c108_one_epoch_gradient_is_group_baseline_reinforce_with_length_averaging():
    logits, tokens, mask = _policy()
    adv = grpo.group_advantages(torch.tensor([[1.0, 0.0], [0.3, 0.9]], dtype=F64)).flatten()
    logp = _logp(logits, tokens)
    loss, stats = grpo.grpo_token_loss(logp, logp.detach(), logp.detach() - 0.3, adv, mask,
                                       beta=0.0)
    (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
    # independent: d log softmax(z)[a] / dz = onehot(a) - softmax(z); REINFORCE with the group
    # baseline: -(1/N) sum_i A_i (1/|o_i|) sum_t grad log pi(o_it)
    onehot = torch.nn.functional.one_hot(tokens, 3).to(F64)
    score = onehot - torch.softmax(logits.detach(), -1)
    lengths = mask.sum(1, keepdim=True).to(F64)
    expected = -(adv[:, None] / (4 * lengths) * mask)[..., None] * score
    torch.testing.assert_close(grad, expected)
    assert stats["clip_fraction"] == 0.0 and stats["ratio_mean"] == pytest.approx(1.0)
    # the DAPO token mean weights the same tokens by 1 / sum|o_i| instead: a different gradient
    loss_tok, _ = grpo.grpo_token_loss(logp, logp.detach(), logp.detach(), adv, mask, beta=0.0,
                                       mode="token_mean")
    (grad_tok,) = torch.autograd.grad(loss_tok, logits)
    torch.testing.assert_close(grad_tok, -(adv[:, None] / 11 * mask)[..., None] * score)


@pytest.mark.parametrize("rho,k3", [(0.5, 0.193147), (1.0, 0.0), (2.0, 0.306853)])
def test_t08_kl_term_is_k3_of_pi_ref_over_pi_theta(rho, k3):
    logp = torch.tensor([[math.log(0.2)]], dtype=F64)
    ref = logp + math.log(rho)  # pi_ref / pi_theta = rho
    one = torch.ones(1, 1, dtype=torch.bool)
    loss, stats = grpo.grpo_token_loss(logp, logp, ref, torch.zeros(1, dtype=F64), one, beta=1.0)
    assert float(loss) == pytest.approx(k3, abs=1e-6) and stats["kl"] == pytest.approx(k3, abs=1e-6)
    # the other direction (pi_theta / pi_ref) gives k3(1/rho): different unless rho = 1
    wrong = float(grpo.ppo.kl_k3(torch.tensor(-math.log(rho))))
    assert (wrong == pytest.approx(k3, abs=1e-6)) == (rho == 1.0)


def test_full_loss_gradient_matches_finite_differences_and_the_k3_derivative():
    logits, tokens, mask = _policy(seed=1)
    with torch.no_grad():
        base = _logp(logits, tokens)
        old = base + 0.05 * torch.randn(base.shape, dtype=F64, generator=torch.Generator()
                                        .manual_seed(2))
        ref = base - 0.4
    adv = torch.tensor([0.7, -1.2, 0.4, 0.9], dtype=F64)
    beta = 0.3

    def f(z):
        return grpo.grpo_token_loss(_logp(z, tokens), old, ref, adv, mask, beta=beta)[0]

    (grad,) = torch.autograd.grad(f(logits), logits)
    fd = torch.zeros_like(grad)
    h = 1e-6
    with torch.no_grad():
        for idx in np.ndindex(*logits.shape):
            z = logits.detach().clone()
            z[idx] += h
            up = f(z)
            z[idx] -= 2 * h
            fd[idx] = (up - f(z)) / (2 * h)
    torch.testing.assert_close(grad, fd, atol=1e-8, rtol=1e-6)
    # the KL term alone: d k3 / d log pi = 1 - pi_ref / pi, weighted by beta / (N |o_i|)
    logp = _logp(logits, tokens)
    kl_loss, _ = grpo.grpo_token_loss(logp, logp.detach(), ref, torch.zeros(4, dtype=F64), mask,
                                      beta=beta)
    (g_logp,) = torch.autograd.grad(kl_loss, logp)
    lengths = mask.sum(1, keepdim=True).to(F64)
    expected = beta * (1 - (ref - logp.detach()).exp()) / (4 * lengths) * mask
    torch.testing.assert_close(g_logp, expected)


def test_e21_e53_sequence_ratio_is_not_the_token_ratio_and_clips_differently():
    # one response of 3 tokens, each token 10% likelier than under pi_old; A = +1, eps = 0.2
    logp_old = torch.full((1, 3), math.log(0.5), dtype=F64)
    logp = (logp_old + math.log(1.1)).requires_grad_(True)
    mask = torch.ones(1, 3)
    adv = torch.ones(1, dtype=F64)
    token_loss, stats = grpo.grpo_token_loss(logp, logp_old, logp_old, adv, mask, beta=0.0)
    (g_token,) = torch.autograd.grad(token_loss, logp)
    assert stats["clip_fraction"] == 0.0  # every token ratio 1.1 is inside [0.8, 1.2]
    torch.testing.assert_close(g_token, torch.full((1, 3), -1.1 / 3, dtype=F64))
    # the seeds' version: one ratio for the whole sequence, the product 1.1^3 = 1.331 > 1.2
    seq_r = grpo.sequence_ratio(logp, logp_old, mask)
    assert float(seq_r.detach()) == pytest.approx(1.331)
    seq_loss = -grpo.ppo.clipped_objective(seq_r, adv, 0.2).mean()
    (g_seq,) = torch.autograd.grad(seq_loss, logp)
    assert float(seq_loss.detach()) == pytest.approx(-1.2)
    assert float(token_loss.detach()) == pytest.approx(-1.1)
    assert torch.count_nonzero(g_seq) == 0  # clipped: no gradient at all, unlike the tokens
    # over 100 such tokens the sequence ratio is astronomically far from every token ratio
    long = grpo.sequence_ratio(torch.full((1, 100), math.log(1.1)), torch.zeros(1, 100),
                               torch.ones(1, 100))
    assert float(long) > 1e4


# ---- claims V-21 and V-23 -------------------------------------------------------------------

def test_v21_group_baseline_variance_falls_with_group_size():
    """Bernoulli toy: pi(a=1) = sigmoid(theta) = p, reward = a, so d log pi(a)/d theta = a - p.

    The group-mean baseline's variance is p(1-p)/G, and the per-group gradient estimate
    (1/G) sum_i A_i (a_i - p) with A = r - mean has variance falling with G and mean
    (G-1)/G * p(1-p) (biased low), while RLOO's mean is the true p(1-p) (V-27).
    """
    p, M = 0.3, 40_000
    g = torch.Generator().manual_seed(0)
    grad_vars, true = [], p * (1 - p)
    for G in (2, 4, 8, 16):
        a = (torch.rand(M, G, generator=g, dtype=F64) < p).to(F64)
        baseline = a.mean(1)
        assert float(baseline.var()) == pytest.approx(true / G, rel=0.05)
        est = (grpo.group_advantages(a, scale="none") * (a - p)).mean(1)
        rloo = (grpo.rloo_advantages(a) * (a - p)).mean(1)
        se = float(est.std()) / math.sqrt(M)
        assert float(est.mean()) == pytest.approx((G - 1) / G * true, abs=4 * se)
        assert float(rloo.mean()) == pytest.approx(true, abs=4 * float(rloo.std()) / math.sqrt(M))
        grad_vars.append(float(est.var()))
    assert all(later < 0.75 * earlier for earlier, later in zip(grad_vars, grad_vars[1:]))


def test_v23_uniform_groups_give_zero_advantage_and_zero_policy_gradient():
    rewards = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=F64)  # all correct, all wrong
    adv = grpo.group_advantages(rewards).flatten()
    assert torch.equal(adv, torch.zeros(4, dtype=F64))
    logits, tokens, mask = _policy(seed=3)
    old = _logp(logits, tokens).detach() + 0.1  # ratio != 1: still nothing to push
    loss, _ = grpo.grpo_token_loss(_logp(logits, tokens), old, old, adv, mask, beta=0.0)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.count_nonzero(grad) == 0
    # with beta > 0 only the KL gradient remains
    ref = old - 0.5
    full, _ = grpo.grpo_token_loss(_logp(logits, tokens), old, ref, adv, mask, beta=0.2)
    kl_only = 0.2 * torch.stack([grpo.ppo.kl_k3(ref[i, :n] - _logp(logits, tokens)[i, :n]).mean()
                                 for i, n in enumerate(mask.sum(1).tolist())]).mean()
    g_full, g_kl = (torch.autograd.grad(x, logits)[0] for x in (full, kl_only))
    torch.testing.assert_close(g_full, g_kl)
    assert torch.count_nonzero(g_full) > 0


def test_loss_value_against_a_per_token_loop_with_clip_higher():
    logits, tokens, mask = _policy(seed=4)
    logp = _logp(logits, tokens).detach()
    old = logp + torch.tensor([0.3, -0.3, 0.1, -0.25], dtype=F64)[:, None]
    ref = logp - 0.2
    adv = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=F64)
    loss, stats = grpo.grpo_token_loss(logp, old, ref, adv, mask, clip_eps=0.2, clip_eps_high=0.28,
                                       beta=0.1, mode="seq_sum_norm", constant=5.0)
    total, clipped = 0.0, 0
    for i in range(4):
        for t in range(int(mask[i].sum())):
            r = math.exp(float(logp[i, t] - old[i, t]))
            surr = min(r * float(adv[i]), min(max(r, 0.8), 1.28) * float(adv[i]))
            x = float(ref[i, t] - logp[i, t])
            total += -(surr - 0.1 * (math.exp(x) - 1 - x))
            clipped += r < 0.8 or r > 1.28
    assert float(loss) == pytest.approx(total / (4 * 5.0), rel=1e-12)
    assert stats["clip_fraction"] == pytest.approx(clipped / int(mask.sum()))


def test_v24_v25_length_and_difficulty_biases_of_grpo_vs_dr_grpo():
    """Two wrong answers (A = -1) of lengths 5 and 1: per-token push-down under each mode."""
    logits, tokens, _ = _policy(N=2, T=5, seed=5)
    mask = torch.arange(5)[None, :] < torch.tensor([5, 1])[:, None]
    adv = -torch.ones(2, dtype=F64)
    per_token = {}
    for mode, constant in (("seq_mean", None), ("token_mean", None), ("seq_sum_norm", 5.0)):
        logp = _logp(logits, tokens)
        loss, _ = grpo.grpo_token_loss(logp, logp.detach(), logp.detach(), adv, mask, beta=0.0,
                                       mode=mode, constant=constant)
        (g,) = torch.autograd.grad(loss, logp)
        per_token[mode] = (float(g[0, 0]), float(g[1, 0]))  # d loss / d log pi, first token
    # GRPO: the long wrong answer's tokens are pushed down 5x less (1/(2*5) vs 1/(2*1)), so
    # wrong answers drift long; DAPO and Dr. GRPO push every token equally
    assert per_token["seq_mean"] == pytest.approx((1 / 10, 1 / 2))
    assert per_token["token_mean"] == pytest.approx((1 / 6, 1 / 6))
    assert per_token["seq_sum_norm"] == pytest.approx((1 / 10, 1 / 10))
    # question-level bias: dividing by a small group std inflates a nearly solved/failed prompt
    hard = torch.tensor([[1.0] + [0.0] * 7], dtype=F64)
    medium = torch.tensor([[1.0] * 4 + [0.0] * 4], dtype=F64)
    grpo_hard, grpo_med = (float(grpo.group_advantages(x, eps=0.0)[0, 0]) for x in (hard, medium))
    assert grpo_hard == pytest.approx(math.sqrt(7)) and grpo_med == pytest.approx(1.0)
    dr_hard, dr_med = (float(grpo.group_advantages(x, scale="none")[0, 0]) for x in (hard, medium))
    assert dr_hard == pytest.approx(7 / 8) and dr_med == pytest.approx(1 / 2)


# ---- bad input ------------------------------------------------------------------------------

def test_bad_inputs():
    with pytest.raises(ValueError, match="group size"):
        grpo.group_advantages(torch.ones(3, 1))
    with pytest.raises(ValueError, match="group size"):
        grpo.rloo_advantages(torch.ones(3, 1))
    with pytest.raises(ValueError, match="NaN or infinite"):
        grpo.group_advantages(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="prompts, group"):
        grpo.informative_groups(torch.ones(4))
    with pytest.raises(ValueError, match="empty"):
        grpo.group_advantages(torch.ones(0, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        grpo.group_advantages([[1.0, 0.0]])
    with pytest.raises(ValueError, match="unknown scale"):
        grpo.group_advantages(T04, scale="mad")
    with pytest.raises(ValueError, match="ddof"):
        grpo.group_advantages(T04, ddof=2)
    with pytest.raises(ValueError, match="eps"):
        grpo.group_advantages(T04, eps=-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        grpo.reinforce_pp_advantages(torch.ones(1))
    with pytest.raises(ValueError, match="NaN or infinite"):
        grpo.reinforce_pp_advantages(torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="cache_len"):
        grpo.overlong_penalty(torch.tensor([5]), 10, 11)
    with pytest.raises(TypeError, match="ints"):
        grpo.overlong_penalty(torch.tensor([5]), 10.0, 2)
    with pytest.raises(ValueError, match="lengths"):
        grpo.overlong_penalty(torch.tensor([-1]), 10, 2)


def test_bad_token_loss_inputs():
    x, adv, mask = torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3)
    with pytest.raises(ValueError, match="ref_logp has shape"):
        grpo.grpo_token_loss(x, x, torch.zeros(2, 4), adv, mask)
    with pytest.raises(ValueError, match="one entry per response"):
        grpo.grpo_token_loss(x, x, x, torch.zeros(2, 3), mask)
    with pytest.raises(ValueError, match=r"\[responses, tokens\]"):
        grpo.grpo_token_loss(torch.zeros(6), torch.zeros(6), torch.zeros(6), adv, torch.ones(6))
    with pytest.raises(ValueError, match="unknown mode"):
        grpo.grpo_token_loss(x, x, x, adv, mask, mode="sum")
    with pytest.raises(ValueError, match="constant"):
        grpo.grpo_token_loss(x, x, x, adv, mask, mode="seq_sum_norm")
    with pytest.raises(ValueError, match="beta"):
        grpo.grpo_token_loss(x, x, x, adv, mask, beta=-0.1)
    with pytest.raises(ValueError, match="clip_eps_high"):
        grpo.grpo_token_loss(x, x, x, adv, mask, clip_eps_high=0.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        grpo.grpo_token_loss(x, x, x, torch.tensor([0.0, float("nan")]), mask)
    with pytest.raises(ValueError, match="real token"):
        grpo.reinforce_pp_token_advantages(torch.ones(2), x, x, torch.tensor([[1, 0, 0],
                                                                              [0, 0, 0]]), 0.1)
    with pytest.raises(ValueError, match="rewards \\[N\\]"):
        grpo.reinforce_pp_token_advantages(torch.ones(3), x, x, mask, 0.1)


# ---- training on a tiny lab -------------------------------------------------------------------

def test_tiny_grpo_run_reports_groups_and_metrics(tmp_path):
    """GRPO end to end on a tiny SFT model: every update logs its reward, the share of
    informative groups and the KL, and the evaluations land where asked."""
    import math

    from rlcourse.llm import model as lm
    from rlcourse.llm.sft import SFTConfig

    tiny = SFTConfig(model=lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), pretrain_steps=4,
                     sft_steps=2, batch_size=16, warmup=1, n_heldout=20)
    res = grpo.train(0, progress=False, sft_cfg=tiny, root=tmp_path, updates=3, n_prompts=4,
                     group_size=4, eval_every=2, n_eval=20, mode="seq_sum_norm")
    h = res.history
    for key in ("reward", "informative_groups", "kl", "clip_fraction", "response_length"):
        assert len(h[key]) == 3, key
    assert all(0 <= v <= 1 for v in h["informative_groups"] + h["reward"])
    assert h["kl"][0] == pytest.approx(0.0, abs=1e-6)  # the first update starts at the reference
    assert h["eval_update"] == [0, 2, 3] and len(h["gold_accuracy"]) == 3
    for key in ("gold_accuracy", "kl_to_ref", "seconds", "cpu_seconds"):
        assert math.isfinite(res.final[key]), key


def test_grpo_config_rejects_bad_values():
    with pytest.raises(ValueError, match="group size"):
        grpo.GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="beta"):
        grpo.GRPOConfig(beta=-0.1)
    with pytest.raises(ValueError, match="eval_every"):
        grpo.GRPOConfig(eval_every=-1)


def test_train_calls_a_custom_update_fn_and_the_sweep_cli(tmp_path, monkeypatch):
    """``update_fn`` replaces grpo_update (same arguments); the sweep keeps B * G fixed and the
    CLI writes one row per (G, seed)."""
    import json

    from rlcourse.llm import model as lm
    from rlcourse.llm.sft import SFTConfig

    tiny = SFTConfig(model=lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), pretrain_steps=4,
                     sft_steps=2, batch_size=16, warmup=1, n_heldout=20)
    calls = []

    def spy(policy, ref, tok, prompts, cfg, opt, gen, reward_fn):
        calls.append(len(prompts))
        return grpo.grpo_update(policy, ref, tok, prompts, cfg, opt, gen, reward_fn)

    grpo.train(0, progress=False, sft_cfg=tiny, root=tmp_path, updates=2, n_prompts=3,
               group_size=2, eval_every=0, n_eval=20, update_fn=spy)
    assert calls == [3, 3]

    real_train = grpo.train
    monkeypatch.setattr(grpo, "train", lambda seed, **kw: real_train(
        seed, sft_cfg=tiny, root=tmp_path, updates=1, eval_every=0, n_eval=20, **kw))
    out = tmp_path / "sweep.json"
    assert grpo.main(["--sweep-out", str(out), "--group-sizes", "64", "128", "--seeds", "0",
                      "--no-progress"]) == 0
    data = json.loads(out.read_text())
    assert [(r["group_size"], r["n_prompts"]) for r in data["runs"]] == [(64, 2), (128, 1)]
    assert data["samples_per_update"] == 128 and data["runs"][0]["samples"] == [0, 128]
    with pytest.raises(ValueError, match="divide"):
        grpo.group_size_sweep([3], [0], progress=False)


def test_grpo_loss_is_the_seq_mean_token_loss():
    torch.manual_seed(1)
    logp, old, ref = (-torch.rand(3, 4, dtype=F64) for _ in range(3))
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    adv = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    want = grpo.grpo_token_loss(logp, old, ref, adv, mask, 0.1, None, 0.3, "seq_mean")[0]
    assert float(grpo.grpo_loss(logp, old, ref, adv, mask, clip_eps=0.1, beta=0.3)) == float(want)


def test_grpo_update_reports_the_sampling_policy_entropy():
    """With all logits zero the next-token distribution is uniform over the vocabulary, so the
    entropy grpo_update reports (measured before its optimiser step) is ln V exactly."""
    from rlcourse.llm import model as lm
    from rlcourse.llm import rlhf

    tok = lm.build_tokenizer()
    policy = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0)
    with torch.no_grad():
        policy.transformer.wte.weight.zero_()  # tied to the output layer: logits are all 0
    ref = rlhf.frozen_copy(policy)
    cfg = grpo.GRPOConfig(n_prompts=2, group_size=2, max_new_tokens=3)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    row = grpo.grpo_update(policy, ref, tok, ["12+35=", "40+41="], cfg, opt,
                           torch.Generator().manual_seed(0), rlhf.gold_reward_fn)
    vocab = policy.config.vocab_size
    assert row["entropy"] == pytest.approx(math.log(vocab), rel=1e-5)
    assert {"reward", "kl", "clip_fraction"} <= set(row)


def test_grpo_rejects_responses_longer_than_the_context(tmp_path):
    from rlcourse.llm import model as lm
    from rlcourse.llm.sft import SFTConfig

    tiny = SFTConfig(model=lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), pretrain_steps=2,
                     sft_steps=1, batch_size=8, warmup=1, n_heldout=20)
    with pytest.raises(ValueError, match="more than the context of 16 - 20 new tokens"):
        grpo.train(0, progress=False, sft_cfg=tiny, root=tmp_path, updates=1, n_prompts=2,
                   group_size=2, max_new_tokens=20, eval_every=0, n_eval=10)
