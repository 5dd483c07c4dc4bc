"""DPO family math against closed forms, autograd, finite differences and syllabus values."""

import math

import pytest
import torch
import torch.nn.functional as F

from rlcourse.llm import dpo

D = torch.float64


def _t(*xs):
    return torch.tensor(xs, dtype=D)


def _toy(seed=0, k=6):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(k, generator=g, dtype=D) + 0.1
    return ref / ref.sum(), torch.randn(k, generator=g, dtype=D) * 2


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ---- C-096 / V-20 / T-13: the optimum of the KL-regularised objective -----------------------

def test_gradient_ascent_reaches_the_closed_form_optimum():
    ref, r = _toy()
    beta = 0.7
    theta = torch.zeros(6, dtype=D, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(3000):
        opt.zero_grad()
        (-dpo.kl_regularised_objective(torch.softmax(theta, -1), ref, r, beta)).backward()
        opt.step()
    closed = ref * torch.exp(r / beta) / (ref * torch.exp(r / beta)).sum()
    torch.testing.assert_close(torch.softmax(theta.detach(), -1), closed, atol=1e-6, rtol=0)
    torch.testing.assert_close(dpo.kl_regularised_optimum(ref, r, beta), closed)


def test_optimum_is_worth_beta_log_z_and_beats_other_policies():
    ref, r = _toy(1)
    beta = 0.5
    log_z = math.log(sum(float(p) * math.exp(float(x) / beta) for p, x in zip(ref, r)))
    star = dpo.kl_regularised_optimum(ref, r, beta)
    assert float(dpo.kl_regularised_objective(star, ref, r, beta)) == pytest.approx(beta * log_z)
    g = torch.Generator().manual_seed(2)
    for _ in range(5):   # J(pi) = beta log Z - beta KL(pi || pi*) for any pi
        pi = torch.softmax(torch.randn(6, generator=g, dtype=D), -1)
        kl = float((pi * (pi.log() - star.log())).sum())
        got = float(dpo.kl_regularised_objective(pi, ref, r, beta))
        assert got == pytest.approx(beta * log_z - beta * kl)
        assert got < beta * log_z


def test_beta_limits_reference_and_argmax():
    ref, r = _toy(3)
    torch.testing.assert_close(dpo.kl_regularised_optimum(ref, r, 1e6), ref, atol=1e-5, rtol=0)
    small = dpo.kl_regularised_optimum(ref, r, 1e-3)
    assert float(small[int(r.argmax())]) == pytest.approx(1.0)
    assert math.isfinite(float(dpo.kl_regularised_objective(small, ref, r, 1e-3)))


def test_reward_reparameterisation_round_trip_up_to_a_constant():
    """C-097: beta log(pi*/pi_ref) = r - beta log Z; the inverted ratio (E-17) gives -r + ..."""
    ref, r = _toy(4)
    beta = 0.3
    star = dpo.kl_regularised_optimum(ref, r, beta)
    back = beta * (star.log() - ref.log())
    shift = r - back
    torch.testing.assert_close(shift, shift[0].expand(6))
    inverted = beta * (ref.log() - star.log())
    assert (r - inverted).std() > 0.1


def test_z_cancels_in_the_dpo_logits():
    g = torch.Generator().manual_seed(5)
    ref = torch.softmax(torch.randn(4, 5, generator=g, dtype=D), -1)   # 4 prompts, 5 responses
    r = torch.randn(4, 5, generator=g, dtype=D)
    beta, w, lo = 0.4, torch.tensor([0, 1, 2, 3]), torch.tensor([4, 3, 0, 1])
    rows = torch.arange(4)

    def logits(rewards):
        logp = dpo.kl_regularised_optimum(ref, rewards, beta).log()
        return dpo.dpo_logits(logp[rows, w], logp[rows, lo], ref.log()[rows, w],
                              ref.log()[rows, lo], beta)

    base = logits(r)
    torch.testing.assert_close(base, r[rows, w] - r[rows, lo])   # the Bradley-Terry logit
    shifted = r + torch.tensor([[3.0], [-7.0], [100.0], [0.5]], dtype=D)
    torch.testing.assert_close(logits(shifted), base)


# ---- C-098 .. C-100: the DPO loss ------------------------------------------------------------

def test_loss_is_ln2_when_policy_equals_reference():
    g = torch.Generator().manual_seed(6)
    lw, ll = -torch.rand(8, generator=g, dtype=D) * 20, -torch.rand(8, generator=g, dtype=D) * 20
    for beta in (0.01, 0.1, 5.0):
        assert float(dpo.dpo_loss(lw, ll, lw, ll, beta)) == pytest.approx(math.log(2))


def _flipped_loss(pw, pl, rw, rl, beta):
    """Seed 001's sign error (E-17/E-18): reference over policy inside the log-ratios."""
    return -F.logsigmoid(beta * ((rw - pw) - (rl - pl))).mean()


def test_t03_values_and_the_flipped_sign():
    ref = _t(-10.0)
    correct = [float(dpo.dpo_loss(_t(w), _t(-10.0), ref, ref, 0.1)) for w in (-10, -9, -8)]
    flipped = [float(_flipped_loss(_t(w), _t(-10.0), ref, ref, 0.1)) for w in (-10, -9, -8)]
    assert correct == pytest.approx([0.69315, 0.64440, 0.59814], abs=5e-6)
    assert flipped == pytest.approx([0.69315, 0.74440, 0.79814], abs=5e-6)


def test_gradient_steps_raise_the_margin_and_the_flipped_loss_lowers_it():
    ref_logits = torch.zeros(4, dtype=D)
    ref_lp = torch.log_softmax(ref_logits, -1)

    def margin_after(loss_fn):
        theta = ref_logits.clone().requires_grad_(True)
        opt = torch.optim.SGD([theta], lr=1.0)
        for _ in range(5):
            opt.zero_grad()
            lp = torch.log_softmax(theta, -1)
            loss_fn(lp[:1], lp[1:2], ref_lp[:1], ref_lp[1:2], 0.5).backward()
            opt.step()
        lp = torch.log_softmax(theta.detach(), -1)
        return float(lp[0] - lp[1])

    assert margin_after(dpo.dpo_loss) > 0.5
    assert margin_after(_flipped_loss) < -0.5


def test_stable_at_large_logits():
    zero, big = _t(0.0), _t(200.0)
    assert float(dpo.dpo_loss(big, zero, zero, zero, 1.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(dpo.dpo_loss(zero, big, zero, zero, 1.0)) == pytest.approx(200.0)
    pw = _t(-200.0).float().requires_grad_(True)
    loss = dpo.dpo_loss(pw, torch.zeros(1), torch.zeros(1), torch.zeros(1), 1.0)
    loss.backward()
    assert math.isfinite(loss.item()) and float(pw.grad) == pytest.approx(-1.0)


def test_autograd_matches_the_analytic_gradient():
    """Softmax policy per prompt: grad_theta log pi(y) = onehot(y) - softmax(theta)."""
    g = torch.Generator().manual_seed(7)
    B, K, beta = 3, 5, 0.3
    theta = torch.randn(B, K, generator=g, dtype=D, requires_grad=True)
    ref = torch.log_softmax(torch.randn(B, K, generator=g, dtype=D), -1)
    w, lo, rows = torch.tensor([0, 2, 4]), torch.tensor([1, 0, 3]), torch.arange(B)
    lp = torch.log_softmax(theta, -1)
    dpo.dpo_loss(lp[rows, w], lp[rows, lo], ref[rows, w], ref[rows, lo], beta).backward()
    with torch.no_grad():
        pi = torch.softmax(theta, -1)
        logits = beta * ((lp[rows, w] - ref[rows, w]) - (lp[rows, lo] - ref[rows, lo]))
        diff = (F.one_hot(w, K) - pi) - (F.one_hot(lo, K) - pi)
        expected = -beta * torch.sigmoid(-logits)[:, None] * diff / B
    torch.testing.assert_close(theta.grad, expected)


def test_indexed_loss_matches_paired_loss_and_stops_reference_gradients():
    g = torch.Generator().manual_seed(8)
    pol = (-torch.rand(6, generator=g, dtype=D) * 10).requires_grad_(True)
    ref = (-torch.rand(6, generator=g, dtype=D) * 10).requires_grad_(True)
    cw, cl = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])
    loss, rewards = dpo.dpo_loss_indexed(pol, ref, cw, cl, 0.2)
    p, q = pol.detach().tolist(), ref.detach().tolist()
    by_hand = [-math.log(_sigmoid(0.2 * ((p[a] - q[a]) - (p[b] - q[b]))))
               for a, b in ((0, 1), (2, 3), (4, 5))]
    assert loss.item() == pytest.approx(sum(by_hand) / 3)
    assert not rewards.requires_grad
    torch.testing.assert_close(rewards, 0.2 * (pol - ref).detach())
    loss.backward()
    assert ref.grad is None   # the reference is frozen: no gradient reaches it
    assert float(pol.grad[0]) < 0 < float(pol.grad[1])   # descent raises chosen, lowers rejected
    assert float(pol.grad[0]) == pytest.approx(-float(pol.grad[1]))


def test_metrics_by_hand():
    pw, pl = _t(-1.0, -5.0, -2.0), _t(-3.0, -4.0, -2.0)
    rw, rl = _t(-2.0, -2.0, -2.0), _t(-2.0, -2.0, -2.0)
    m = dpo.dpo_metrics(pw, pl, rw, rl, 0.5)
    # implicit rewards: chosen 0.5, -1.5, 0.0; rejected -0.5, -1.0, 0.0
    assert m["reward_accuracy"] == pytest.approx(1 / 3)
    assert m["chosen_reward"] == pytest.approx(-1.0 / 3)
    assert m["rejected_reward"] == pytest.approx(-0.5)
    assert m["reward_margin"] == pytest.approx((1.0 - 0.5 + 0.0) / 3)
    assert all(isinstance(v, float) for v in m.values())


# ---- C-102 / V-19: IPO ------------------------------------------------------------------------

def test_ipo_minimiser_and_value_by_hand():
    tau = 0.25
    z = _t(0.0)
    for h in (-1.0, 0.0, 2.0, 3.5):
        got = float(dpo.ipo_loss(_t(h - 3.0), _t(-3.0), z, z, tau))
        assert got == pytest.approx((h - 2.0) ** 2)
    h = torch.zeros(1, dtype=D, requires_grad=True)
    opt = torch.optim.SGD([h], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        dpo.ipo_loss(h, z, z, z, tau).backward()
        opt.step()
    assert h.item() == pytest.approx(1 / (2 * tau), abs=1e-8)


def _margin_on_free_logits(loss_fn, steps):
    """One deterministic pair over 3 responses: policy = softmax(theta), reference uniform."""
    theta = torch.zeros(3, dtype=D, requires_grad=True)
    ref = torch.log_softmax(torch.zeros(3, dtype=D), -1)
    opt = torch.optim.SGD([theta], lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        lp = torch.log_softmax(theta, -1)
        loss_fn(lp[:1], lp[1:2], ref[:1], ref[1:2]).backward()
        opt.step()
    lp = torch.log_softmax(theta.detach(), -1)
    return float(lp[0] - lp[1])


def test_ipo_margin_settles_while_dpo_margin_keeps_growing():
    def d(*a):
        return dpo.dpo_loss(*a, 1.0)

    def i(*a):
        return dpo.ipo_loss(*a, 0.5)

    dpo_short, dpo_long = _margin_on_free_logits(d, 200), _margin_on_free_logits(d, 2000)
    ipo_short, ipo_long = _margin_on_free_logits(i, 200), _margin_on_free_logits(i, 2000)
    assert dpo_long > dpo_short + 1.0
    assert ipo_short == pytest.approx(1.0, abs=1e-6) and ipo_long == pytest.approx(1.0, abs=1e-6)


# ---- C-103: KTO --------------------------------------------------------------------------------

def test_kto_loss_by_hand():
    logp, ref = _t(-2.0, -5.0, -3.0, -1.0), _t(-3.0, -4.0, -3.0, -2.0)
    good = torch.tensor([True, False, True, False])
    beta, z0, ld, lu = 0.5, 0.2, 1.5, 0.8
    r = [1.0, -1.0, 0.0, 1.0]
    hand = [ld - ld * _sigmoid(beta * (r[0] - z0)), lu - lu * _sigmoid(beta * (z0 - r[1])),
            ld - ld * _sigmoid(beta * (r[2] - z0)), lu - lu * _sigmoid(beta * (z0 - r[3]))]
    got = dpo.kto_loss(logp, ref, good, beta, z0, lambda_d=ld, lambda_u=lu)
    assert float(got) == pytest.approx(sum(hand) / 4)


def test_kto_reference_point_passes_no_gradient():
    logp = _t(-2.0, -1.0).requires_grad_(True)
    ref = _t(-3.0, -3.0)
    z0 = dpo.kto_ref_point(logp, ref)
    assert float(z0) == pytest.approx(1.5) and not z0.requires_grad
    assert float(dpo.kto_ref_point(ref, logp)) == 0.0   # a negative estimate is clamped at 0
    loss = dpo.kto_loss(logp, ref, torch.tensor([True, True]), 1.0, z0)
    loss.backward()
    # only the direct path: d/dlogp_i of (1 - sigmoid(r_i - z0)) / 2
    expected = [-_sigmoid(x - 1.5) * (1 - _sigmoid(x - 1.5)) / 2 for x in (1.0, 2.0)]
    assert logp.grad.tolist() == pytest.approx(expected)


# ---- C-104: ORPO -------------------------------------------------------------------------------

def test_orpo_by_hand():
    mw, ml, nll, lam = _t(-0.2, -0.5), _t(-0.9, -0.4), torch.tensor(1.3, dtype=D), 0.1

    def lo(m):
        p = math.exp(m)
        return math.log(p / (1 - p))

    hand = 1.3 + lam * sum(-math.log(_sigmoid(lo(a) - lo(b)))
                           for a, b in ((-0.2, -0.9), (-0.5, -0.4))) / 2
    assert float(dpo.orpo_loss(nll, mw, ml, lam)) == pytest.approx(hand)


def test_orpo_log_odds_stay_accurate_near_p_one():
    m = torch.tensor([-1e-6, -1e-9], dtype=torch.float32)
    exact = [math.log(math.exp(x) / -math.expm1(x)) for x in (-1e-6, -1e-9)]
    assert dpo.log_odds(m).double().tolist() == pytest.approx(exact, rel=1e-5)
    p = torch.exp(m)   # the naive formula loses the digits of 1 - p in float32
    naive = torch.log(p / (1 - p)).double().tolist()
    assert naive != pytest.approx(exact, rel=1e-3)


def test_orpo_gradient_matches_finite_differences():
    mw, ml = _t(-0.3, -1e-4, -2.0), _t(-0.6, -0.05, -1.5)
    nll = _t(0.7, 1.1, 0.2)
    inputs = tuple(x.clone().requires_grad_(True) for x in (nll, mw, ml))
    assert torch.autograd.gradcheck(lambda a, b, c: dpo.orpo_loss(a, b, c, 0.5), inputs)


# ---- input checks --------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_beta(beta):
    x = _t(-1.0)
    with pytest.raises(ValueError, match="beta"):
        dpo.dpo_loss(x, x, x, x, beta)
    with pytest.raises(ValueError, match="beta"):
        dpo.kl_regularised_optimum(_t(0.5, 0.5), _t(0.0, 1.0), beta)
    with pytest.raises(ValueError, match="tau"):
        dpo.ipo_loss(x, x, x, x, beta)
    with pytest.raises(ValueError, match="beta"):
        dpo.kto_loss(x, x, torch.tensor([True]), beta, 0.0)


def test_bad_shapes_and_types():
    x, y = _t(-1.0, -2.0), _t(-1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        dpo.dpo_loss(x, y, x, x, 0.1)
    with pytest.raises(ValueError, match="non-empty"):
        dpo.dpo_loss(*(torch.zeros(0, dtype=D),) * 4, 0.1)
    with pytest.raises(ValueError, match="1-dimensional"):
        dpo.implicit_reward(x[None], x[None], 0.1)
    with pytest.raises(TypeError, match="torch tensor"):
        dpo.implicit_reward([-1.0], y, 0.1)
    with pytest.raises(ValueError, match="sum to 1"):
        dpo.kl_regularised_optimum(_t(0.5, 0.6), _t(0.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="desirable"):
        dpo.kto_loss(x, x, torch.tensor([True]), 0.1, 0.0)
    with pytest.raises(TypeError, match="bool"):
        dpo.kto_loss(x, x, torch.tensor([1, 0]), 0.1, 0.0)
    with pytest.raises(ValueError, match="< 0"):
        dpo.orpo_loss(_t(1.0), _t(0.0), _t(-1.0), 0.1)
    with pytest.raises(ValueError, match="lam"):
        dpo.orpo_loss(_t(1.0), _t(-1.0), _t(-1.0), -0.1)


def test_bad_indices():
    pol = _t(-1.0, -2.0, -3.0)
    with pytest.raises(ValueError, match="out of range"):
        dpo.dpo_loss_indexed(pol, pol, torch.tensor([0, 3]), torch.tensor([1, 2]), 0.1)
    with pytest.raises(ValueError, match="out of range"):
        dpo.dpo_loss_indexed(pol, pol, torch.tensor([0]), torch.tensor([-1]), 0.1)
    with pytest.raises(TypeError, match="integer"):
        dpo.dpo_loss_indexed(pol, pol, torch.tensor([0.0]), torch.tensor([1]), 0.1)
    with pytest.raises(ValueError, match="same shape"):
        dpo.dpo_loss_indexed(pol, pol, torch.tensor([0, 1]), torch.tensor([2]), 0.1)


def test_check_same_prompts():
    dpo.check_same_prompts(["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="prompts differ: first at index 1"):
        dpo.check_same_prompts(["a", "b", "c"], ["a", "x", "y"])
    with pytest.raises(ValueError, match="length mismatch"):
        dpo.check_same_prompts(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        dpo.check_same_prompts([], [])


# ---- training on a tiny lab -------------------------------------------------------------------

def test_tiny_dpo_run_raises_the_margin_and_reports_metrics(tmp_path):
    """DPO end to end on a tiny SFT model: the implicit-reward margin grows from 0 (the first
    step's loss is ln 2 because policy = reference), and the reports are complete."""
    from rlcourse.llm import model as lm
    from rlcourse.llm.sft import SFTConfig

    tiny = SFTConfig(model=lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), pretrain_steps=4,
                     sft_steps=2, batch_size=16, warmup=1, n_heldout=20)
    rm_small = {"onpolicy_prompts": 20, "onpolicy_samples": 2, "eval_samples": 2}
    res = dpo.train(0, progress=False, sft_cfg=tiny, root=tmp_path, rm_overrides=rm_small,
                    steps=12, batch_size=16, lr=1e-2, warmup=1, eval_every=5, n_eval=20)
    h = res.history
    assert h["loss"][0] == pytest.approx(math.log(2), abs=1e-5)
    assert h["reward_margin"][0] == pytest.approx(0.0, abs=1e-6)
    assert sum(h["reward_margin"][-3:]) / 3 > 0.01 and sum(h["loss"][-3:]) / 3 < math.log(2)
    assert h["eval_step"] == [5, 10, 12] and len(h["gold_accuracy"]) == 3
    for key in ("gold_accuracy", "kl_to_ref", "seconds", "cpu_seconds"):
        assert math.isfinite(res.final[key]), key
    assert res.final["kl_to_ref"] > 0 and res.start["gold_accuracy"] >= 0


def test_dpo_config_rejects_bad_values():
    with pytest.raises(ValueError, match="beta"):
        dpo.DPOConfig(beta=0.0)
    with pytest.raises(ValueError, match="steps"):
        dpo.DPOConfig(steps=0)
    with pytest.raises(ValueError, match="eval_every"):
        dpo.DPOConfig(eval_every=-1)


# ---- notebook 12's helpers: step with its own reference pass, loop, debugging variants --------

def _tiny_pairs():
    """(policy, ref, tokenizer, data): two tiny GPTs of different seeds and four pairs."""
    from rlcourse.llm import annotator as ann
    from rlcourse.llm import model as lm
    from rlcourse.llm import reward_model as rmod
    from rlcourse.llm.rlhf import frozen_copy

    tok = lm.build_tokenizer()
    cfg = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2)
    policy = lm.build_model(tok, cfg, seed=0)
    pairs = [ann.PreferencePair("12+35=", "47", "57"), ann.PreferencePair("47+38=", "85", "5"),
             ann.PreferencePair("99+9=", "108", "18"), ann.PreferencePair("10+10=", "20", "200")]
    return policy, frozen_copy(lm.build_model(tok, cfg, seed=1)), tok, rmod.encode_pairs(tok, pairs)


def test_pair_logprobs_as_sums_averages_and_prompt_tokens():
    policy, _, _, data = _tiny_pairs()
    c, r = data.rows(torch.arange(4))
    with torch.no_grad():
        s_c, s_r = dpo.pair_logprobs(policy, c, r)
        a_c, a_r = dpo.pair_logprobs_as(policy, c, r)
        m_c, m_r = dpo.pair_logprobs_as(policy, c, r, average=True)
        p_c, p_r = dpo.pair_logprobs_as(policy, c, r, include_prompt=True)
    assert torch.allclose(a_c, s_c) and torch.allclose(a_r, s_r)
    assert torch.allclose(m_c, s_c / c.response_mask.sum(-1))
    assert torch.allclose(m_r, s_r / r.response_mask.sum(-1))
    # the prompt is shared, so its log-prob cancels in chosen minus rejected
    assert torch.allclose(p_c - p_r, s_c - s_r, atol=1e-5)
    assert bool((p_c < s_c).all())


def test_step_with_reference_equals_dpo_step_with_precomputed_reference():
    import copy

    policy, ref, _, data = _tiny_pairs()
    c, r = data.rows(torch.arange(4))
    p1, p2 = copy.deepcopy(policy), copy.deepcopy(policy)
    o1 = torch.optim.SGD(p1.parameters(), lr=0.1)
    o2 = torch.optim.SGD(p2.parameters(), lr=0.1)
    with torch.no_grad():
        rc, rr = dpo.pair_logprobs(ref, c, r)
    a = dpo.dpo_step_with_reference(p1, ref, o1, c, r, 0.5)
    b = dpo.dpo_step(p2, o2, c, r, rc, rr, 0.5)
    assert a == pytest.approx(b)
    for x, y in zip(p1.parameters(), p2.parameters()):
        assert torch.equal(x, y)
    ok = dpo.debug_dpo_step(copy.deepcopy(policy), ref, torch.optim.SGD(
        copy.deepcopy(policy).parameters(), lr=0.1), c, r, 0.5)
    assert ok["loss"] == pytest.approx(a["loss"])


def test_debug_bugs_have_their_symptoms():
    import copy

    policy, ref, _, data = _tiny_pairs()
    c, r = data.rows(torch.arange(4))
    same = copy.deepcopy(policy)
    row = dpo.debug_dpo_step(same, ref, torch.optim.SGD(same.parameters(), lr=0.1), c, r, 0.5,
                             bug="reference = policy")
    assert row["loss"] == pytest.approx(math.log(2), abs=1e-6) and row["reward_margin"] == 0.0
    swapped = copy.deepcopy(policy)
    opt = torch.optim.SGD(swapped.parameters(), lr=0.5)
    before = dpo.evaluate_pairs(swapped, ref, c, r, 0.5)
    for _ in range(5):
        dpo.debug_dpo_step(swapped, ref, opt, c, r, 0.5, bug="swapped")
    after = dpo.evaluate_pairs(swapped, ref, c, r, 0.5)
    assert after["reward_margin"] < before["reward_margin"] and after["loss"] > before["loss"]
    with pytest.raises(ValueError, match="bug"):
        dpo.debug_dpo_step(policy, ref, opt, c, r, 0.5, bug="typo")


def test_reward_accuracy_counts_ties_as_misses():
    r_w, r_l, acc = dpo.reward_accuracy(_t(-1.0, -2.0, -3.0), _t(-2.0, -2.0, -1.0),
                                        _t(-1.5, -2.0, -3.0), _t(-2.0, -2.0, -2.0), 0.5)
    assert torch.allclose(r_w, _t(0.25, 0.0, 0.0)) and torch.allclose(r_l, _t(0.0, 0.0, 0.5))
    assert acc == pytest.approx(1 / 3)


def test_run_dpo_starts_at_ln2_and_evaluates_at_the_end():
    import copy

    _, ref, _, data = _tiny_pairs()
    policy = copy.deepcopy(ref).requires_grad_(True)
    calls = []
    cfg = dpo.DPOConfig(steps=7, batch_size=4, lr=1e-2, warmup=1, eval_every=3)
    h = dpo.run_dpo(policy, ref, data, cfg, progress=False,
                    accuracy=lambda: calls.append(1) or 0.5)
    assert h["loss"][0] == pytest.approx(math.log(2), abs=1e-6)
    assert h["eval_step"] == [3, 6, 7] and h["gold_accuracy"] == [0.5] * 3
    assert len(h["loss"]) == 7 and h["reward_margin"][-1] > 0


def test_run_dpo_with_precomputed_reference_matches_the_per_step_reference():
    """train()'s path (reference log-probs computed once) and notebook 12's (a reference pass
    per step) are the same loop and give the same run; no end evaluation when asked."""
    import copy

    policy, ref, _, data = _tiny_pairs()
    cfg = dpo.DPOConfig(steps=6, batch_size=4, lr=1e-2, warmup=1, eval_every=3)
    per_step = dpo.run_dpo(copy.deepcopy(policy), ref, data, cfg, progress=False,
                           accuracy=lambda: 0.5)
    once = dpo.run_dpo(copy.deepcopy(policy), None, data, cfg, progress=False,
                       accuracy=lambda: 0.5, ref_logps=dpo.reference_logprobs(ref, data),
                       eval_at_end=False)
    assert once["loss"] == pytest.approx(per_step["loss"], abs=1e-5)
    assert once["eval_step"] == [3] and per_step["eval_step"] == [3, 6]
    with pytest.raises(ValueError, match="either ref_logps"):
        dpo.run_dpo(policy, ref, data, cfg, progress=False, step_fn=dpo.dpo_step_with_reference,
                    ref_logps=dpo.reference_logprobs(ref, data))


def test_onpolicy_round_pairs_labels_distinct_samples():
    from rlcourse.llm import annotator as ann
    from rlcourse.llm import task

    policy, _, tok, _ = _tiny_pairs()
    problems = task.split_problems(0, 20)[1]
    pairs, data = dpo.onpolicy_round_pairs(policy, tok, problems, ann.Annotator(), seed=0)
    assert 0 < len(pairs) <= len(problems) and len(data) == len(pairs)
    assert all(p.chosen != p.rejected for p in pairs)
    with pytest.raises(ValueError, match="samples_per_prompt"):
        dpo.onpolicy_round_pairs(policy, tok, problems, ann.Annotator(), 0, samples_per_prompt=0)


def test_pair_logprobs_rejects_pairs_whose_prompts_differ():
    from rlcourse.llm import model as lm
    from rlcourse.llm.sft import make_batch

    tok = lm.build_tokenizer()
    policy = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0)
    both = make_batch(tok, ["12+35=", "40+41=", "12+35=", "40+42="], ["47", "81", "46", "80"])

    def rows(idx):
        return type(both)(*(t[idx] for t in (both.input_ids, both.attention_mask,
                                             both.response_mask, both.all_mask)))

    chosen, same, other = rows([0, 1]), rows([2, 1]), rows([2, 3])
    c, r = dpo.pair_logprobs(policy, chosen, same)  # same prompts: fine
    assert c.shape == r.shape == (2,)
    with pytest.raises(ValueError, match="prompts differ: first at row 1"):
        dpo.pair_logprobs(policy, chosen, other)
    with pytest.raises(ValueError, match="prompts differ"):
        dpo.pair_logprobs_as(policy, chosen, other, average=True)
    with pytest.raises(ValueError, match="2 chosen rows but 1 rejected"):
        dpo.check_same_prompt_tokens(chosen, rows([2]))


def test_responses_longer_than_the_context_are_rejected():
    from rlcourse.llm import annotator
    from rlcourse.llm import model as lm
    from rlcourse.llm import reward_model as rmod

    tok = lm.build_tokenizer()
    long_pair = annotator.PreferencePair("12+35=", "4" * 12, "46")
    with pytest.raises(ValueError, match="more than the context of 16"):
        rmod.encode_pairs(tok, [long_pair])
