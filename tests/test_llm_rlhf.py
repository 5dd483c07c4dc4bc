"""RLHF-PPO (notebook 11): per-token rewards, masked token GAE, the objective's sign, the
rollout, the update and a tiny end-to-end run, each checked against an independent computation."""

from __future__ import annotations

import math

import pytest
import torch

from rlcourse import ppo
from rlcourse.llm import model as lm
from rlcourse.llm import rlhf, task
from rlcourse.llm.sft import SFTConfig

PROMPTS = ["12+35=", "47+38=", "99+99=", "10+10=", "55+55=", "31+69="]


@pytest.fixture(scope="module")
def tiny():
    """(policy, ref, critic, tokenizer): a 1-layer GPT, a differently seeded reference."""
    tok = lm.build_tokenizer()
    cfg = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2)
    policy = lm.build_model(tok, cfg, seed=0)
    ref = rlhf.frozen_copy(lm.build_model(tok, cfg, seed=1))
    return policy, ref, rlhf.make_critic(policy), tok


def _padded_batch(seed: int = 0, B: int = 5, T: int = 7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float()
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    ref_logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    score = torch.randn(B, generator=g, dtype=torch.float64)
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    return lengths, mask.double(), logp, ref_logp, score, values


# ---- per-token rewards (T-12) ----------------------------------------------------------------

def test_per_token_rewards_sum_to_the_penalised_sequence_reward():
    lengths, mask, logp, ref_logp, score, _ = _padded_batch()
    r = rlhf.per_token_rewards(score, logp, ref_logp, mask, beta=0.3)
    for b, n in enumerate(lengths.tolist()):
        want = score[b] - 0.3 * (logp[b, :n] - ref_logp[b, :n]).sum()
        assert math.isclose(float(r[b].sum()), float(want), abs_tol=1e-12)
        assert torch.all(r[b, n:] == 0)  # padding earns nothing
        assert math.isclose(float(r[b, n - 1]), float(score[b] - 0.3 * (logp[b, n - 1]
                                                                         - ref_logp[b, n - 1])))
        expect = -0.3 * (logp[b, :n - 1] - ref_logp[b, :n - 1])
        assert torch.allclose(r[b, :n - 1], expect)


def test_per_token_rewards_validate_inputs():
    _, mask, logp, ref_logp, score, _ = _padded_batch()
    with pytest.raises(ValueError, match="score"):
        rlhf.per_token_rewards(score[:2], logp, ref_logp, mask, 0.1)
    with pytest.raises(ValueError, match="match"):
        rlhf.per_token_rewards(score, logp, ref_logp[:, :3], mask, 0.1)
    empty = mask.clone()
    empty[0] = 0
    with pytest.raises(ValueError, match="at least one"):
        rlhf.per_token_rewards(score, logp, ref_logp, empty, 0.1)


# ---- masked token GAE (C-089) ----------------------------------------------------------------

def _gae_one(rewards: list[float], values: list[float], gamma: float, lam: float) -> list[float]:
    """Plain GAE on one unpadded sequence whose last step is terminal (a Python loop)."""
    out, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        nxt = values[t + 1] if t + 1 < len(rewards) else 0.0
        running = rewards[t] + gamma * nxt - values[t] + gamma * lam * running
        out[t] = running
    return out


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0)])
def test_token_gae_equals_the_unpadded_per_sequence_computation(gamma, lam):
    lengths, mask, logp, ref_logp, score, values = _padded_batch(seed=3)
    rewards = rlhf.per_token_rewards(score, logp, ref_logp, mask, 0.2)
    adv, ret = rlhf.token_gae(rewards, values, mask, gamma, lam)
    for b, n in enumerate(lengths.tolist()):
        want = _gae_one(rewards[b, :n].tolist(), values[b, :n].tolist(), gamma, lam)
        assert torch.allclose(adv[b, :n], torch.tensor(want, dtype=adv.dtype))
        assert torch.allclose(ret[b, :n], adv[b, :n] + values[b, :n])
        assert torch.all(adv[b, n:] == 0) and torch.all(ret[b, n:] == 0)


def test_token_gae_ignores_whatever_sits_in_the_padding():
    _, mask, logp, ref_logp, score, values = _padded_batch(seed=4)
    rewards = rlhf.per_token_rewards(score, logp, ref_logp, mask, 0.2)
    junk = (1 - mask) * 100.0
    a1, r1 = rlhf.token_gae(rewards, values, mask)
    a2, r2 = rlhf.token_gae(rewards + junk, values - junk, mask)
    assert torch.equal(a1, a2) and torch.equal(r1, r2)


def test_token_gae_with_lambda_one_is_the_return_minus_the_value():
    lengths, mask, logp, ref_logp, score, values = _padded_batch(seed=5)
    rewards = rlhf.per_token_rewards(score, logp, ref_logp, mask, 0.2)
    adv, _ = rlhf.token_gae(rewards, values, mask, 1.0, 1.0)
    for b, n in enumerate(lengths.tolist()):
        togo = rewards[b, :n].flip(0).cumsum(0).flip(0)  # reward-to-go, gamma = 1
        assert torch.allclose(adv[b, :n], togo - values[b, :n])


# ---- the objective and its sign (E-15) -------------------------------------------------------

def _toy_policy_run(inverted: bool, steps: int = 200) -> float:
    """Gradient ascent on E_{y~pi}[r - beta log(pi/ref)] over 4 responses, exact expectation;
    returns KL(pi || ref) at the end (r = 0, so only the KL term acts)."""
    ref = torch.log_softmax(torch.tensor([1.0, 0.5, 0.0, -0.5]), 0)
    logits = torch.tensor([0.3, -0.2, 0.4, 0.1], requires_grad=True)
    opt = torch.optim.SGD([logits], lr=0.5)
    for _ in range(steps):
        logp = torch.log_softmax(logits, 0)
        per = rlhf.rlhf_objective(torch.zeros(4), logp, ref, 0.5)
        if inverted:
            per = rlhf.rlhf_objective(torch.zeros(4), ref, logp, 0.5)  # log(ref/pi)
        objective = (logp.exp() * per).sum()
        opt.zero_grad()
        (-objective).backward()
        opt.step()
    return float(ppo.categorical_kl(logits.detach(), ref))


def test_the_correct_objective_pulls_towards_the_reference_and_the_inverted_one_away():
    start = float(ppo.categorical_kl(torch.tensor([0.3, -0.2, 0.4, 0.1]),
                                     torch.tensor([1.0, 0.5, 0.0, -0.5])))
    assert _toy_policy_run(inverted=False) < 0.01 * start
    assert _toy_policy_run(inverted=True) > 5 * start


def test_objective_decreases_as_the_policy_diverges():
    score, ref = torch.tensor([1.0]), torch.tensor([-2.0])
    values = [float(rlhf.rlhf_objective(score, ref + d, ref, 0.1)) for d in (0.0, 0.5, 1.0)]
    assert values[0] > values[1] > values[2]


# ---- the exact KL along sampled responses ----------------------------------------------------

def test_sequence_kl_exact_matches_categorical_kl_per_position():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).float()
    got = rlhf.sequence_kl_exact(a, b, mask)
    for i in range(3):
        want = sum(float(ppo.categorical_kl(a[i, t], b[i, t])) for t in range(4) if mask[i, t])
        assert math.isclose(float(got[i]), want, rel_tol=1e-5)


def test_sampled_k1_and_exact_kl_agree_on_average(tiny):
    policy, ref, _, tok = tiny
    cfg = rlhf.Config(max_new_tokens=4)
    g = torch.Generator().manual_seed(2)
    gen = rlhf.sample(policy, tok, PROMPTS * 60, cfg, g)
    s, a = gen.sequences, gen.attention_mask
    st = gen.response_start
    mask = rlhf.response_action_mask(a, st)
    with torch.no_grad():
        k1 = ((rlhf.response_logprobs(policy, s, a, st) - rlhf.response_logprobs(ref, s, a, st))
              * mask).sum(1)
        exact = rlhf.sequence_kl_exact(rlhf.response_logits(policy, s, a, st),
                                       rlhf.response_logits(ref, s, a, st), mask)
    assert float(exact.min()) >= 0
    se = float(k1.std()) / math.sqrt(len(k1))
    assert abs(float(k1.mean()) - float(exact.mean())) < 4 * se


# ---- models and memory (C-086) ---------------------------------------------------------------

def test_critic_is_a_separate_copy_with_a_zero_value_head(tiny):
    policy, _, critic, tok = tiny
    assert not {id(p) for p in critic.parameters()} & {id(p) for p in policy.parameters()}
    ids, mask = lm.encode_prompts(tok, PROMPTS[:2])
    assert critic(ids, mask).shape == ids.shape
    assert torch.all(critic(ids, mask) == 0)


def test_memory_accounting_counts_weights_and_adam_moments(tiny):
    policy, ref, _, _ = tiny
    n = lm.count_parameters(policy)
    assert rlhf.parameter_bytes(policy) == 4 * n
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    assert rlhf.optimizer_bytes(opt) == 0
    policy(torch.tensor([[3, 4, 5]])).logits.sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    assert rlhf.optimizer_bytes(opt) == 2 * 4 * n
    assert all(not p.requires_grad for p in ref.parameters())


def test_memory_held_counts_distinct_networks_once(tiny):
    policy, ref, critic, _ = tiny
    per = [4 * lm.count_parameters(m) for m in (policy, ref, critic)]
    assert rlhf.memory_held(policy, ref, critic) == {"models_in_memory": 3,
                                                      "parameter_bytes": sum(per)}
    # the debugging lab's "reference = policy" aliases two roles: one network, counted once
    assert rlhf.memory_held(policy, policy) == {"models_in_memory": 1,
                                                "parameter_bytes": per[0]}

    class Wrapper:  # a reward model wraps its network in .model
        model = ref
    assert rlhf.memory_held(policy, Wrapper()) == rlhf.memory_held(policy, ref)
    with pytest.raises(TypeError, match="torch module"):
        rlhf.memory_held(policy, "not a model")


# ---- the rollout (C-088) ---------------------------------------------------------------------

def test_make_experience_samples_from_the_policy_and_fills_every_field(tiny):
    policy, ref, critic, tok = tiny
    cfg = rlhf.Config(beta=0.2, max_new_tokens=4)
    exp = rlhf.make_experience(policy, ref, critic, rlhf.gold_reward_fn, tok, PROMPTS, cfg,
                               torch.Generator().manual_seed(7))
    again = rlhf.sample(policy, tok, PROMPTS, cfg, torch.Generator().manual_seed(7))
    assert torch.equal(exp.sequences, again.sequences)  # E-16: y ~ pi_theta, reproducibly
    B, R = len(PROMPTS), exp.sequences.shape[1] - exp.response_start
    for name in ("action_mask", "logp", "ref_logp", "values", "rewards", "advantages",
                 "returns"):
        assert getattr(exp, name).shape == (B, R), name
    s, a, st = exp.sequences, exp.attention_mask, exp.response_start
    with torch.no_grad():
        assert torch.allclose(exp.logp, rlhf.response_logprobs(policy, s, a, st))
        assert torch.allclose(exp.ref_logp, rlhf.response_logprobs(ref, s, a, st))
    assert torch.allclose(exp.score, rlhf.gold_reward_fn(PROMPTS, exp.responses))
    m = exp.action_mask
    want = exp.score - 0.2 * ((exp.logp - exp.ref_logp) * m).sum(1)
    assert torch.allclose(exp.rewards.sum(1), want, atol=1e-6)
    adv, ret = rlhf.token_gae(exp.rewards, exp.values, m, cfg.gamma, cfg.lam)
    assert torch.allclose(exp.advantages, adv) and torch.allclose(exp.returns, ret)
    eos = tok.eos_token_id
    for row, n in zip(exp.sequences[:, st:].tolist(), m.sum(1).tolist()):
        assert n == (row.index(eos) + 1 if eos in row else len(row))  # through the first eos
    assert len(exp.select(torch.tensor([0, 2]))) == 2


# ---- the update (C-090) ----------------------------------------------------------------------

def test_ppo_update_raises_the_logprob_of_positively_scored_responses(tiny):
    _, _, _, tok = tiny
    policy = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=3)
    ref, critic = rlhf.frozen_copy(policy), rlhf.make_critic(policy)
    cfg = rlhf.Config(beta=0.0, max_new_tokens=3, minibatch=6, epochs=4, lr=1e-2)
    reward = lambda p, r: torch.tensor([1.0 if x.startswith("1") else 0.0 for x in r])
    exp = rlhf.make_experience(policy, ref, critic, reward, tok, PROMPTS * 4, cfg,
                               torch.Generator().manual_seed(0))
    opt_p = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    opt_c = torch.optim.Adam(critic.parameters(), lr=1e-2)
    stats = rlhf.ppo_update(policy, critic, exp, cfg, opt_p, opt_c, torch.Generator())
    assert set(stats) >= {"clip_fraction", "approx_kl", "entropy", "value_loss"}
    with torch.no_grad():
        new = rlhf.response_logprobs(policy, exp.sequences, exp.attention_mask,
                                     exp.response_start)
    change = ((new - exp.logp) * exp.action_mask).sum(1)
    good = exp.score > 0
    assert good.any() and (~good).any()
    assert float(change[good].mean()) > float(change[~good].mean())


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        rlhf.Config(beta=-0.1)
    with pytest.raises(ValueError, match="kl_target"):
        rlhf.Config(beta=0.0, kl_target=1.0)
    with pytest.raises(ValueError):
        rlhf.Config(n_prompts=0)
    with pytest.raises(ValueError, match="'rm' or 'gold'"):
        rlhf.reward_function("oracle")
    with pytest.raises(ValueError, match="responses"):
        rlhf.gold_reward_fn(["1+1="], [])


# ---- a tiny end-to-end run -------------------------------------------------------------------

TINY_SFT = SFTConfig(model=lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), pretrain_steps=4,
                     sft_steps=2, batch_size=16, warmup=1, n_heldout=20)


def test_train_end_to_end_on_a_tiny_model(tmp_path):
    res = rlhf.train(0, reward="gold", progress=False, sft_cfg=TINY_SFT, root=tmp_path,
                     updates=3, n_prompts=8, minibatch=8, epochs=1, eval_every=2, n_eval=20,
                     kl_target=0.5)
    for key in ("proxy_reward", "gold_reward", "kl_to_ref", "entropy", "response_length",
                "clip_fraction", "beta", "tokens_per_s"):
        assert len(res.history[key]) == 3, key
    assert res.history["eval_update"] == [0, 2, 3]
    for key in ("gold_accuracy", "proxy_reward", "kl_to_ref", "response_length", "seconds"):
        assert math.isfinite(res.final[key]), key
    assert 0 <= res.final["gold_accuracy"] <= 1 and res.final["kl_to_ref"] >= 0
    assert res.history["proxy_reward"] == res.history["gold_reward"]  # the oracle is the proxy
    assert res.history["beta"][0] == res.config.beta


def test_beta_follows_the_reward_unless_given(tmp_path, monkeypatch):
    """The learned RM gets RM_BETA, the gold reward and custom reward functions Config.beta,
    and an explicit beta always wins."""
    monkeypatch.setattr(rlhf, "reward_function",
                        lambda reward, seed, rm_overrides, **kw: (rlhf.gold_reward_fn, None))
    tiny = dict(progress=False, sft_cfg=TINY_SFT, root=tmp_path, updates=1, n_prompts=8,
                minibatch=8, epochs=1, eval_every=0, n_eval=20)
    assert rlhf.RM_BETA != rlhf.Config.beta
    assert rlhf.train(0, reward="rm", **tiny).config.beta == rlhf.RM_BETA
    assert rlhf.train(0, reward="gold", **tiny).config.beta == rlhf.Config.beta
    custom = rlhf.train(0, reward="rm", reward_fn=rlhf.gold_reward_fn, **tiny)
    assert custom.config.beta == rlhf.Config.beta
    assert rlhf.train(0, reward="rm", beta=0.7, **tiny).config.beta == 0.7


def test_reference_equal_to_policy_reads_zero_kl(tmp_path):
    res = rlhf.train(0, reward="gold", progress=False, sft_cfg=TINY_SFT, root=tmp_path,
                     updates=2, n_prompts=8, minibatch=8, epochs=1, eval_every=0, n_eval=20,
                     ref_is_policy=True, lr=1e-2)
    assert res.history["kl_to_ref"] == [0.0, 0.0]
    assert res.final["kl_to_ref"] > 0  # the final KL is measured against the frozen SFT model


def test_gold_reward_fn_scores_like_the_verifier():
    got = rlhf.gold_reward_fn(["12+35=", "47+38="], ["47", "75"])
    want = [task.gold_reward("12+35=", "47"), task.gold_reward("47+38=", "75")]
    assert got.tolist() == pytest.approx(want) and want[0] == 1.0 and want[1] < 1.0


def test_stored_experiment_settings_are_valid_and_summaries_are_json(tmp_path):
    import json
    from dataclasses import replace

    for name, settings in rlhf.experiment_grid().items():
        assert settings, name
        for s in settings:
            extra = {"seed", "reward", "label", "rm_overrides"}
            replace(rlhf.Config(), **{k: v for k, v in s.items() if k not in extra})
            assert s.get("reward", "rm") in ("rm", "gold")
    res = rlhf.train(1, reward="gold", progress=False, sft_cfg=TINY_SFT, root=tmp_path,
                     updates=1, n_prompts=4, minibatch=4, epochs=1, eval_every=0, n_eval=10)
    out = json.loads(json.dumps(rlhf.summary(res)))
    assert set(out) == {"start", "final", "history"} and len(out["history"]["beta"]) == 1
