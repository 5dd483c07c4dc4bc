# %% [markdown]
# # 09 · Language models as policies
#
# Part III applies the reinforcement learning of Parts I and II to language models. This
# notebook builds the lab that notebooks 10-14 stand on: a task whose answers a program can
# check, a real `transformers` GPT-2 trained from scratch on a CPU, and the three things every
# later method needs, namely the log-probability of a response, a supervised fine-tuning (SFT)
# step, and sampling.
#
# **Learning goals.** After this notebook you can
# 1. write prompt → response generation as an MDP (state, action, transition, reward, policy)
#    and say when the token-level and the sequence-level (bandit) views are used;
# 2. compute the log-probability of a response from logits with the one-token shift, `gather`
#    and a mask, and check it against a brute-force loop over tokens;
# 3. pretrain a small GPT live and read its learning curve;
# 4. write the SFT step with the loss on response tokens only, train with it, and measure what
#    changes when the prompt tokens are not masked;
# 5. sample with temperature and top-k, and measure a policy with a verifier: greedy accuracy,
#    per-sample accuracy and pass@k, the headroom that RL will use in notebooks 11-13.
#
# **The lab.** Prompts are additions `a+b=` with $a, b \in [10, 99]$; the response is the sum
# followed by an end-of-sequence token. The SFT demonstrations come from a sloppy demonstrator
# who often forgets the carry from the ones into the tens ($47+35$: $82$ written as $72$).
# Everything lives in `rlcourse.llm`: `task` (problems, verifier, gold reward), `model`
# (tokenizer, GPT-2 builder, `generate`), `logprobs`, `sft` and `sampling`.

# %%
import copy
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

import rlcourse
import rlcourse.results
from rlcourse.exercises import check
from rlcourse.llm import model as lm
from rlcourse.llm import sampling, sft, task

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# `rlcourse.setup` keeps one torch thread on a 2-core machine. For this model two threads can
# be faster on an *idle* 2-core machine, and much slower when other processes compete for the
# cores; if you want to try, call `torch.set_num_threads(2)` here and compare the tokens/s of
# the pretraining bar below.
#
# ## 1. A task with a verifier
#
# The reward of this lab is computed by code, so every stage can be scored against the truth.
# `task.parse_answer` is the **verifier**: it accepts only a short canonical string of digits
# and never evaluates the text (no `eval`, no `exec`). `task.gold_reward` gives partial credit
# in $[0, 1]$: a share for a well-formed number, a share for the right number of digits, and
# the rest times the fraction of digits right, counted from the right (the shares are printed
# below); exactly 1 for the right answer.

# %%
train_set, held_out = task.split_problems(seed=0, n_heldout=500)
held_carry = [p for p in held_out if p.carry]
example = task.Problem(47, 35)
print(f"gold reward shares: well-formed {task.CREDIT_FORMAT}, right length "
      f"{task.CREDIT_LENGTH}, digits {task.CREDIT_DIGITS}")
print(f"{len(train_set)} training and {len(held_out)} held-out problems; "
      f"{task.carry_fraction(held_out):.0%} of the held-out ones carry")
for response in ["82<eos>", "72", "8", "082", "8 2", "__import__('os')", "9" * 40]:
    shown = response if len(response) <= 20 else f"{response[:6]}... ({len(response)} chars)"
    print(f"  {example.prompt}{shown!r:26} verifier -> "
          f"{task.parse_answer(response)!s:5} "
          f"gold reward {task.gold_reward(example, response):.2f}")
print(f"forgotten carry: {example.prompt} -> {task.forgotten_carry_answer(example)}")

# %% [markdown]
# ## 2. Generation as a Markov decision process
#
# A causal language model $\pi_\theta$ writes a response $y = (y_1, \dots, y_L)$ to a prompt
# $x$ one token at a time. Read this as an MDP:
#
# | | token-level MDP |
# |---|---|
# | state $s_t$ | the prompt and the tokens so far, $(x, y_{<t})$ |
# | action $a_t$ | the next token $y_t$, one of the $\lvert V \rvert$ tokens of the vocabulary |
# | transition | deterministic: append the token, $s_{t+1} = (x, y_{\le t})$ |
# | end | the end-of-sequence token, or the length limit |
# | reward | $r_t = 0$ before the end, then the verifier's or reward model's score $R(x, y)$ of the text |
# | policy | $\pi_\theta(y_t \mid x, y_{<t})$: the softmax of the model's logits |
#
# The probability of a whole response is the product of the token probabilities,
# $$\pi_\theta(y \mid x) = \prod_{t=1}^{L} \pi_\theta(y_t \mid x, y_{<t}), \qquad
#   \log \pi_\theta(y \mid x) = \sum_{t=1}^{L} \log \pi_\theta(y_t \mid x, y_{<t}).$$
# With $\gamma = 1$ the return from the start is the **sum of the rewards**,
# $G_0 = \sum_t r_t = R(x, y)$, and the value of a prefix, $V(s_t) = \mathbb E_\pi[R(x, y)
# \mid x, y_{<t}]$, is the expected final score of the responses that continue it. The reward
# is computed from the *text* (the decoded token ids), never from the logits.
#
# The same problem has a second, **sequence-level** reading: a contextual bandit whose context
# is $x$, whose action is the whole response $y$ and whose reward is $R(x, y)$. Both are
# correct; they differ in where the credit goes. PPO for language models (notebook 11) uses the
# token MDP, so that it can add a per-token KL penalty and run GAE over tokens; DPO, RLOO and
# GRPO (notebooks 12-13) treat the response as one action scored once. The cell below writes
# one episode out state by state.

# %%
tokenizer = lm.build_tokenizer()
response = example.answer
ids = tokenizer(example.prompt + response + tokenizer.eos_token)["input_ids"]
prompt_len = len(tokenizer(example.prompt)["input_ids"])
final = task.gold_reward(example, response)
print(f"vocabulary: {len(tokenizer)} tokens; {example.prompt}{response}<eos> is ids {ids}")
for t in range(prompt_len, len(ids)):
    state = tokenizer.decode(ids[:t])
    action = tokenizer.convert_ids_to_tokens(ids[t])
    reward = final if t == len(ids) - 1 else 0.0
    print(f"  state {state!r:12} action {action!r:8} reward {reward:.1f}")
n_plain = len(tokenizer) - len(tokenizer.all_special_tokens)
n_responses = sum(n_plain ** n for n in range(1, task.MAX_ANSWER_CHARS + 1))
print(f"return of the episode = sum of rewards = {final:.1f}; as one sequence-level action the "
      f"response is one of about {n_responses:.1e} strings of 1 to {task.MAX_ANSWER_CHARS} "
      f"non-special tokens")

# %% [markdown]
# ## 3. Sequence log-probabilities: the shift, `gather` and the mask
#
# A causal LM reads the whole sequence $x_0, \dots, x_{T-1}$ in one pass, and its logits at
# position $t$ score the **next** token $x_{t+1}$. So the per-token log-probabilities are
# `log_softmax(logits[:, :-1])`, and from each row we `gather` the entry of the token that
# actually came next, `input_ids[:, 1:]`: $T-1$ columns, column $t$ scoring token $t+1$.
# The log-probability of the response counts only the columns that score response tokens
# (the end token included), never the prompt or the padding:
# $$\log\pi_\theta(y\mid x) = \sum_{t=0}^{T-2} m_t \,
#   \log \mathrm{softmax}(\ell_t)[x_{t+1}], \qquad m_t = 1 \text{ if } x_{t+1}
#   \text{ is a response token}.$$
# `sft.make_batch` builds right-padded batches with such a mask, `response_mask`.
#
# ### Exercise 1: the log-probability of a response
# Complete `response_logprob(logits, input_ids, mask)`. The result must have gradients (the
# RL notebooks differentiate it).

# %%
def response_logprob(logits, input_ids, mask):
    """Sequence log-probabilities [B].

    logits [B, T, V] (unnormalised), input_ids [B, T], mask [B, T-1] where mask[:, t] = 1 if
    the token input_ids[:, t + 1] is counted. Returns the sum of the counted tokens'
    log-probabilities per row.
    """
    ### BEGIN SOLUTION
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, input_ids[:, 1:].long().unsqueeze(-1)).squeeze(-1)
    return (picked * mask.to(picked.dtype)).sum(-1)
    ### END SOLUTION


response_logprob = check("llm_policies.response_logprob", response_logprob)

# %% [markdown]
# Check it on a real model against the slowest possible definition: for every response token,
# run the model on the prefix alone, take the softmax of its last logits, and multiply the
# probabilities of the tokens that came next. The rows have different lengths, so the batch is
# padded; the mask must make the padding irrelevant.

# %%
cfg = sft.SFTConfig(pretrain_steps=400)
tokenizer = lm.build_tokenizer(max_length=cfg.model.n_positions)
base = lm.build_model(tokenizer, cfg.model, seed=0)
print(f"GPT-2 with {lm.count_parameters(base) / 1e6:.2f}M parameters: {cfg.model}")


def brute_force_logprob(model, prompt: str, response: str) -> float:
    """log pi(response + eos | prompt), one forward pass per response token."""
    ids = tokenizer(prompt + response + tokenizer.eos_token)["input_ids"]
    start = len(tokenizer(prompt)["input_ids"])
    prob = 1.0
    with torch.no_grad():
        for t in range(start, len(ids)):
            next_probs = torch.softmax(model(torch.tensor([ids[:t]])).logits[0, -1], dim=-1)
            prob *= float(next_probs[ids[t]])
    return float(np.log(prob))


pairs = [("47+35=", "82"), ("12+13=", "25"), ("99+99=", "198"), ("50+50=", "7")]
demo = sft.make_batch(tokenizer, [p for p, _ in pairs], [r for _, r in pairs])
with torch.no_grad():
    logits = base(input_ids=demo.input_ids, attention_mask=demo.attention_mask).logits
    fast = response_logprob(logits, demo.input_ids, demo.response_mask)
slow = [brute_force_logprob(base, p, r) for p, r in pairs]
for (p, r), f, s in zip(pairs, fast.tolist(), slow):
    print(f"  log pi({r + '<eos>'!r:12} | {p!r}) = {f:8.4f} (batched)  {s:8.4f} (loop)")
logprob_gap = float(np.max(np.abs(fast.numpy() - np.array(slow))))
per_token = float(fast.sum() / demo.response_mask.sum())
print(f"largest difference {logprob_gap:.1e}; on average {per_token:.2f} nats per response "
      f"token, against ln |V| = {np.log(len(tokenizer)):.2f} for a uniform guess")
assert logprob_gap < 1e-4

# %% [markdown]
# The untrained model spreads its probability over the vocabulary, so each token costs about
# as much as a uniform guess, $\ln\lvert V\rvert$ nats. Longer responses have lower log-probability simply because they
# have more factors below 1: compare sequence log-probabilities of different lengths with care
# (notebook 12's DPO compares the same response under two models, which cancels this).
#
# ## 4. Pretraining, live
#
# Pretraining teaches the format and the arithmetic from correct equations
# `"47+35=82<eos>"`, with the next-token cross-entropy on **every** token. The prompt digits
# are random, so about $\ln 10$ nats per prompt digit can never be learned; the answer digits
# can. Every 50 steps we measure greedy exact-match accuracy on 200 held-out problems.

# %%
cpu_pre = time.process_time()
pre_hist = sft.pretrain(base, tokenizer, train_set, cfg, seed=0, eval_problems=held_out[:200],
                        eval_every=50)
pretrain_cpu = time.process_time() - cpu_pre
base_eval = sft.evaluate(base, tokenizer, held_out)
print(f"{cfg.pretrain_steps} steps in {pretrain_cpu:.0f} CPU-s "
      f"({np.median(pre_hist['tokens_per_s']):,.0f} tokens/s); held-out greedy accuracy "
      f"{base_eval['accuracy']:.1%} (carry {base_eval['accuracy_carry']:.1%}, "
      f"no carry {base_eval['accuracy_no_carry']:.1%})")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(pre_hist["loss"])
axes[0].set_xlabel("step")
axes[0].set_ylabel("mean next-token NLL (all tokens)")
axes[1].plot(pre_hist["eval_step"], pre_hist["eval"], marker="o")
axes[1].set_xlabel("step")
axes[1].set_ylabel("held-out greedy accuracy")
axes[1].set_ylim(0, 1.02)
plt.show()
assert base_eval["accuracy"] >= 0.95

# %% [markdown]
# The loss falls fast while the model learns the format, then settles near the floor set by
# the random prompt digits; the accuracy rises only once the answer digits are right, carry
# included.
#
# ## 5. Supervised fine-tuning on uneven demonstrations
#
# SFT imitates demonstrations. Ours come from a demonstrator who forgets the carry on carry
# problems with probability `p_forget`, so they are right on every problem without a carry and
# mostly wrong on the others. The SFT loss is the mean negative log-likelihood of the
# **response tokens** only:
# $$\mathcal L_{\text{SFT}}(\theta) = -\frac{1}{\sum_{i,t} m_{i,t}} \sum_{i,t} m_{i,t}\,
#   \log\pi_\theta(x_{i,t+1} \mid x_{i,\le t}).$$
# Minimising it is maximum likelihood, i.e. minimising the forward KL
# $\mathrm{KL}(\pi_{\text{demo}} \,\|\, \pi_\theta)$ from the demonstrator: the model learns
# to reproduce the demonstrator's *mix* of right and wrong answers, not to beat it.

# %%
rng = np.random.default_rng(0)
sample_problems = [train_set[i] for i in rng.integers(0, len(train_set), 2000)]
demos = task.demonstrations(sample_problems, cfg.p_forget, rng)
right = np.array([task.exact_match(p, d) for p, d in zip(sample_problems, demos)])
carry = np.array([p.carry for p in sample_problems])
print(f"p_forget = {cfg.p_forget}: demonstrations right on {right[~carry].mean():.0%} of "
      f"problems without a carry, {right[carry].mean():.0%} of carry problems, "
      f"{right.mean():.0%} overall")
for p, d in list(zip(sample_problems, demos))[:4]:
    print(f"  {p.prompt}{d}   (correct: {p.answer})")
row_tokens = tokenizer.convert_ids_to_tokens(demo.input_ids[3].tolist())
print(f"row {row_tokens}: the mask column t belongs to token t + 1")
print("  " + "  ".join(f"{tok}:{int(m)}" for tok, m in zip(row_tokens[1:],
                                                            demo.response_mask[3].tolist())))

# %% [markdown]
# ### Exercise 2: the SFT step
# Complete `sft_step(model, batch, optimizer, max_grad_norm)`: one update of the model on the
# SFT loss above. `batch` is an `sft.Batch` (right-padded `input_ids` and `attention_mask`
# `[B, T]`, `response_mask` and `all_mask` `[B, T-1]`). You may reuse your
# `response_logprob` ideas, or `rlcourse.llm.logprobs`. The check runs your step and a
# reference step from the same weights, with stale gradients left on the parameters, and
# compares the loss and every parameter afterwards.

# %%
def sft_step(model, batch, optimizer, max_grad_norm=1.0):
    """One SFT update; returns the loss (a float) computed before the update.

    Loss: mean next-token NLL over the response tokens of the batch (batch.response_mask),
    each counted token weighing the same. Update: clear old gradients, backpropagate, clip
    the global gradient norm to max_grad_norm, take one optimizer step.
    """
    ### BEGIN SOLUTION
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = batch.response_mask.to(picked.dtype)
    loss = -(picked * mask).sum() / mask.sum().clamp_min(1.0)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return float(loss.detach())
    ### END SOLUTION


sft_step = check("llm_policies.sft_step", sft_step)

# %% [markdown]
# Now SFT the pretrained model with your step: AdamW, the course's warm-up and cosine
# schedule (`sft.lr_at`), fresh batches of demonstrations. `unmask=True` will be used in
# section 6: it hands the step a batch whose "response" mask covers every real token.

# %%
def run_sft(model, unmask: bool = False, seed: int = 0) -> list[float]:
    """SFT ``model`` in place with ``sft_step`` for cfg.sft_steps batches; returns the losses."""
    sample = sft.batch_sampler(tokenizer, train_set, cfg.batch_size,
                               np.random.default_rng([seed, 2]), p_forget=cfg.p_forget)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr, weight_decay=0.01)
    losses, tokens, started = [], 0, time.perf_counter()
    model.train()
    bar = tqdm(range(cfg.sft_steps), desc="SFT (prompt unmasked)" if unmask else "SFT",
               leave=False)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = sft.lr_at(step, cfg.sft_steps, cfg.sft_lr, cfg.warmup)
        batch = sample()
        if unmask:
            batch = dataclasses.replace(batch, response_mask=batch.all_mask)
        losses.append(sft_step(model, batch, opt, cfg.max_grad_norm))
        tokens += batch.n_tokens
        bar.set_postfix(loss=f"{losses[-1]:.3f}",
                        tok_s=f"{tokens / (time.perf_counter() - started):,.0f}")
    model.eval()
    return losses


cpu_sft = time.process_time()
sft_policy = copy.deepcopy(base)
sft_losses = run_sft(sft_policy)
sft_cpu = time.process_time() - cpu_sft
sft_eval = sft.evaluate(sft_policy, tokenizer, held_out)
print(f"SFT: {cfg.sft_steps} steps in {sft_cpu:.0f} CPU-s; held-out greedy accuracy "
      f"{sft_eval['accuracy']:.1%} (carry {sft_eval['accuracy_carry']:.1%}, "
      f"no carry {sft_eval['accuracy_no_carry']:.1%}); the base had {base_eval['accuracy']:.1%}")
assert sft_eval["accuracy_no_carry"] >= 0.9 and sft_eval["accuracy_carry"] <= 0.3

# %% [markdown]
# SFT did what it was asked: the model now writes what the demonstrator writes. Without a
# carry that is the right answer; with a carry the demonstrator's majority answer is the
# forgotten carry, and greedy decoding picks the majority. A perfectly good base model got
# *worse* by imitation: SFT cannot be better than its demonstrations, only as good.
# Notebooks 10 and 11 start from a checkpoint made by the same recipe, `sft.sft_model()`
# (the package's training loop, a longer pretraining run, kept in the checkpoint cache), so
# that they begin in seconds.
#
# ## 6. What changes when the prompt tokens are not masked
#
# Train a second copy of the same base with the same batches, the same schedule and your same
# step, but with every real token counted (the prompt as well as the response). Then measure
# both models on held-out demonstrations, separately on response and prompt tokens.

# %%
unmasked_policy = copy.deepcopy(base)
unmasked_losses = run_sft(unmasked_policy, unmask=True)
unmasked_eval = sft.evaluate(unmasked_policy, tokenizer, held_out)
held_demos = task.demonstrations(held_out, cfg.p_forget, np.random.default_rng(1))
held_batch = sft.make_batch(tokenizer, [p.prompt for p in held_out], held_demos)
prompt_cols = held_batch.all_mask - held_batch.response_mask


def nll_on(model, mask) -> float:
    """Mean NLL of ``model`` over the columns of ``held_batch`` selected by ``mask``."""
    with torch.no_grad():
        return float(sft.masked_nll(model(input_ids=held_batch.input_ids,
                                          attention_mask=held_batch.attention_mask).logits,
                                    held_batch.input_ids, mask))


def forgot_fraction(model) -> float:
    """Fraction of held-out carry problems answered greedily with the forgotten carry."""
    gen = lm.generate(model, tokenizer, [p.prompt for p in held_carry])
    return float(np.mean([r == task.forgotten_carry_answer(p)
                          for p, r in zip(held_carry, gen.responses)]))


compare = {}
for name, model in [("base", base), ("SFT, response only", sft_policy),
                    ("SFT, prompt unmasked", unmasked_policy)]:
    ev = sft.evaluate(model, tokenizer, held_out)
    compare[name] = {"response NLL": nll_on(model, held_batch.response_mask),
                     "prompt NLL": nll_on(model, prompt_cols),
                     "carry acc.": ev["accuracy_carry"], "no-carry acc.": ev["accuracy_no_carry"],
                     "forgets carry": forgot_fraction(model)}
print(f"{'':22}" + "".join(f"{k:>15}" for k in compare["base"]))
for name, row in compare.items():
    print(f"{name:22}" + "".join(f"{v:15.3f}" for v in row.values()))
reported = {"masked": np.mean(sft_losses[-10:]), "unmasked": np.mean(unmasked_losses[-10:])}
print(f"training loss over the last 10 steps: response only {reported['masked']:.3f}, "
      f"prompt unmasked {reported['unmasked']:.3f}")

# %% [markdown]
# Two numbers in that table deserve a closer look. The prompt digits are random, so there is a
# floor no model can beat. The columns that score prompt tokens predict the second digit of $a$
# (10 choices), `+` (certain), the first digit of $b$ (9 choices, 1-9), its second digit (10)
# and `=` (certain): on average $(2\ln 10 + \ln 9)/5$ nats per column. And how much of the
# unmasked update comes from the prompt? Split the unmasked loss of one batch into its prompt
# and response parts (each weighted by its share of the tokens, so the two add up to the
# unmasked loss) and compare their gradients at the start of SFT.

# %%
prompt_floor = (2 * np.log(10) + np.log(9)) / 5
print(f"prompt NLL floor {prompt_floor:.3f} nats per column; measured: "
      + ", ".join(f"{name} {row['prompt NLL']:.3f}" for name, row in compare.items()))


def grad_norm_of(model, loss) -> float:
    """Norm of d loss / d parameters (gradients cleared before and after)."""
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        norm = float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())))
    model.zero_grad()
    return norm


probe_model = copy.deepcopy(base)
one = sft.batch_sampler(tokenizer, train_set, cfg.batch_size, np.random.default_rng([0, 2]),
                        p_forget=cfg.p_forget)()
n_prompt = float((one.all_mask - one.response_mask).sum())
n_resp = float(one.response_mask.sum())
parts = {}
for name, mask, weight in [("prompt", one.all_mask - one.response_mask, n_prompt),
                           ("response", one.response_mask, n_resp)]:
    logits = probe_model(input_ids=one.input_ids, attention_mask=one.attention_mask).logits
    loss = sft.masked_nll(logits, one.input_ids, mask) * weight / (n_prompt + n_resp)
    parts[name] = (float(loss.detach()), grad_norm_of(probe_model, loss))
for name, (loss, norm) in parts.items():
    print(f"{name:8} tokens: {loss:.3f} of the unmasked loss, gradient norm {norm:.3f}")
assert reported["unmasked"] > 5 * reported["masked"]
assert parts["prompt"][0] > parts["response"][0]
assert parts["prompt"][1] < 0.25 * parts["response"][1]
assert all(abs(row["prompt NLL"] - prompt_floor) < 0.05 for row in compare.values())
assert abs(compare["SFT, response only"]["response NLL"]
           - compare["SFT, prompt unmasked"]["response NLL"]) < 0.05

# %% [markdown]
# What the measurements say, in this lab:
# * **The reported loss changes meaning.** With the prompt unmasked, most of the training loss
#   is the prompt's irreducible entropy: the curve sits near its floor whatever happens to the
#   answers, and a learning curve read from it says little about the answers. Always log the
#   response loss on its own.
# * **The answers were learned equally well.** Both runs reached the same response NLL on
#   held-out demonstrations and both forgot the carry. The base model already models the
#   prompts at their floor, so the prompt part is most of the unmasked loss yet contributes
#   only a small gradient (printed above): there is nothing left to learn there. The masked
#   model is no longer trained on prompts, so its prompt NLL may drift from the floor (compare
#   the table), which costs nothing because prompts are always given.
# * **Where it matters more.** In real SFT, prompts are user messages drawn from another
#   distribution than the model's own text, often much longer than the answers. Unmasked, the
#   update spends most of its tokens teaching the model to write user messages, and the answer
#   tokens become a small fraction of the loss. That is why chat SFT masks everything but the
#   assistant's turns.
#
# ## 7. Sampling: temperature and top-k
#
# Greedy decoding takes the most likely token at every step. RL needs the policy to *explore*:
# it samples, and the reward tells it which samples to make more likely. Two knobs shape the
# distribution a sampler draws the next token from, given the logits $\ell$:
# * **temperature** $\tau > 0$: $p_i \propto \exp(\ell_i / \tau)$; $\tau < 1$ sharpens
#   towards greedy ($\tau \to 0$), $\tau > 1$ flattens towards uniform;
# * **top-k**: only the $k$ tokens with the largest logits keep probability, renormalised;
#   $k = 1$ is greedy.
#
# ### Exercise 3: the sampling distribution
# Complete `next_token_distribution(logits, temperature, top_k)`. It must work on any leading
# shape (`[V]`, `[B, V]`) and keep tokens tied with the $k$-th largest logit.

# %%
def next_token_distribution(logits, temperature=1.0, top_k=None):
    """Probabilities [..., V] to sample the next token from, given logits [..., V].

    temperature > 0 rescales the logits; top_k (an int, or None for the whole vocabulary)
    restricts sampling to the k most likely tokens. Each row sums to 1.
    """
    ### BEGIN SOLUTION
    scaled = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.softmax(scaled, dim=-1)
    ### END SOLUTION


next_token_distribution = check("llm_policies.next_token_distribution", next_token_distribution)

# %% [markdown]
# Look at the one decision that matters on a carry problem: the tens digit. For the problem
# below the SFT model puts most of its mass on the forgotten-carry digit and some on the right
# one; the knobs move that mass.

# %%
probe = next(p for p in held_carry if p.a + p.b < 100)
probe_ids = torch.tensor([tokenizer(probe.prompt)["input_ids"]])
with torch.no_grad():
    probe_logits = sft_policy(probe_ids).logits[0, -1]
digits = [str(d) for d in range(10)]
digit_ids = tokenizer.convert_tokens_to_ids(digits)
settings = [(0.5, None), (1.0, None), (1.5, None), (1.0, 2)]
right_digit, wrong_digit = probe.answer[0], task.forgotten_carry_answer(probe)[0]
fig, ax = plt.subplots(figsize=(9, 3.2))
width = 0.8 / len(settings)
for j, (temp, k) in enumerate(settings):
    p = next_token_distribution(probe_logits, temp, k)[digit_ids].numpy()
    ax.bar(np.arange(10) + j * width, p, width, label=f"τ={temp}, top-k={k}")
    print(f"τ={temp}, top-k={k}: P(right tens digit {right_digit}) = "
          f"{p[int(right_digit)]:.3f}, P(forgotten-carry digit {wrong_digit}) = "
          f"{p[int(wrong_digit)]:.3f}")
ax.set_xticks(np.arange(10) + 0.4, digits)
ax.set_xlabel(f"first answer token after {probe.prompt!r} (right: {right_digit})")
ax.set_ylabel("probability")
ax.legend()
plt.show()

# %% [markdown]
# ## 8. Measuring a policy with the verifier
#
# We sample 16 responses for every held-out carry problem with `sampling.sample_responses`, a
# plain sampling loop driven by *your* `next_token_distribution`, and score them with the
# verifier. Three numbers describe the policy on these problems:
# * **greedy accuracy**: what the policy says when it must give one answer;
# * **per-sample accuracy**: the fraction of samples that are right;
# * **pass@k**: the probability that at least one of $k$ samples is right. From $n$ samples
#   with $c$ right, $1 - \binom{n-c}{k} / \binom{n}{k}$ estimates it without bias
#   (`sampling.pass_at_k`).
#
# Pass@k is the headroom of RL: a method that only reinforces what it samples (notebooks
# 11-13) can fix a problem only if the right answer is sampled at all.

# %%
n_samples = 16
ks = [1, 2, 4, 8, 16]
sample_settings = [(0.7, None), (1.0, None), (1.5, None), (1.0, 3)]
carry_prompts = [p.prompt for p in held_carry]
stats = {}
for temp, k in tqdm(sample_settings, desc="sampling", leave=False):
    gen = torch.Generator().manual_seed(0)
    samples = sampling.sample_responses(sft_policy, tokenizer, carry_prompts, n_samples,
                                        temperature=temp, top_k=k,
                                        distribution=next_token_distribution, generator=gen)
    right = np.array([sum(task.exact_match(p, r) for r in rs)
                      for p, rs in zip(held_carry, samples)])
    stats[(temp, k)] = {
        "per_sample": right.mean() / n_samples,
        "pass": [np.mean([sampling.pass_at_k(n_samples, int(c), kk) for c in right])
                 for kk in ks],
        "gold": np.mean([task.gold_reward(p, r) for p, rs in zip(held_carry, samples)
                         for r in rs]),
        "valid": np.mean([task.parse_answer(r) is not None for rs in samples for r in rs])}

fig, ax = plt.subplots(figsize=(7, 3.5))
for (temp, k), s in stats.items():
    ax.plot(ks, s["pass"], marker="o", label=f"τ={temp}, top-k={k}")
ax.axhline(sft_eval["accuracy_carry"], color="k", ls="--", label="greedy")
ax.set_xscale("log", base=2)
ax.set_xlabel("k samples")
ax.set_ylabel("pass@k on held-out carry problems")
ax.legend()
plt.show()
print(f"greedy accuracy on carry problems: {sft_eval['accuracy_carry']:.1%}")
for (temp, k), s in stats.items():
    print(f"τ={temp}, top-k={k}: per-sample accuracy {s['per_sample']:.1%}, pass@4 "
          f"{s['pass'][2]:.1%}, pass@16 {s['pass'][-1]:.1%}, mean gold reward {s['gold']:.3f}, "
          f"well-formed {s['valid']:.1%}")
t1 = stats[(1.0, None)]
assert t1["per_sample"] >= 0.05 and t1["pass"][-1] >= 0.5
assert t1["pass"][-1] > sft_eval["accuracy_carry"] + 0.3

# %% [markdown]
# **The value of a prefix.** Section 2 said that with $\gamma = 1$ the value of a state
# $(x, y_{<t})$ is the expected final score of the responses that continue it. Estimate it by
# Monte Carlo for the problem of section 7: the prompt alone, the prompt followed by the right
# tens digit, and the prompt followed by the forgotten-carry digit.

# %%
prefixes = {"prompt": probe.prompt, "right tens digit": probe.prompt + right_digit,
            "forgotten-carry digit": probe.prompt + wrong_digit}
values = {}
for name, prefix in prefixes.items():
    tails = sampling.sample_responses(sft_policy, tokenizer, [prefix], 400,
                                      distribution=next_token_distribution,
                                      generator=torch.Generator().manual_seed(1))[0]
    written = prefix[len(probe.prompt):]
    values[name] = np.mean([task.gold_reward(probe, written + tail) for tail in tails])
    print(f"V({prefix!r:10}) = {values[name]:.3f}  ({name})")
assert values["right tens digit"] > values["prompt"] > values["forgotten-carry digit"]

# %% [markdown]
# One token decides the episode: after the right tens digit the answer is almost surely right,
# after the forgotten-carry digit it almost surely earns only partial credit, and the value of
# the prompt is their mixture. This is the credit-assignment problem that a token-level critic
# (notebook 11) learns to solve.
#
# Sampling buys exploration at a price. A low temperature is close to greedy: few right
# answers, and the same wrong answer over and over. A higher temperature finds the right carry
# digit more often, and pass@16 is far above the greedy accuracy: the knowledge the base model
# had is still in the SFT policy's distribution, only no longer on top. Top-k cuts the long tail
# of junk tokens, which matters more for a large vocabulary than for ours. RL in notebooks
# 11-13 samples at temperature 1 and moves probability onto the samples the verifier likes.
#
# ## Common misconceptions
#
# * *"The action of a language-model policy is the whole answer"* and, elsewhere, *"the action
#   is the next token"*, without saying which. Both readings are valid, but they are two
#   different formulations: the token-level MDP (action = next token, state = prompt + tokens
#   so far, deterministic transitions, reward at the end) is what PPO with GAE and a per-token
#   KL uses; the sequence-level contextual bandit (action = the whole response) is what DPO,
#   RLOO and GRPO use (section 2). <!-- E-14 -->
# * *"The return is the total probability given by the reward model."* The return is a sum of
#   rewards: with $\gamma = 1$ and a single reward at the end it is the final score $R(x, y)$
#   itself (section 2). Probabilities enter elsewhere, as $\pi_\theta(y\mid x)$, the
#   product of token probabilities that the policy gradient differentiates (section 3).
#   <!-- E-36 -->
# * *"The environment is the reward model, and it reads the policy's logits."* The
#   environment is the concatenation of tokens plus a scorer at the end, and the scorer (a
#   verifier such as `task.gold_reward`, or a reward model in notebook 10) reads the **text**,
#   i.e. the sampled token ids, never the policy's logits; the policy's logits only decide
#   which tokens get sampled (sections 1, 2 and 8). <!-- E-39 -->
# * *"SFT teaches the model the task."* SFT is maximum likelihood on demonstrations, i.e. it
#   imitates them, mistakes included: our base model answered carry problems correctly, and
#   SFT on carry-forgetting demonstrations taught it to forget the carry (section 5).
# * *"Greedy accuracy is what the model knows."* The SFT model answers few carry problems right
#   greedily, yet most of them have the right answer among 16 samples (section 8).
#
# ## What to remember
#
# * Token MDP: state $(x, y_{<t})$, action $y_t$, deterministic concatenation, reward from a
#   verifier or reward model at the end; sequence-level view: one action $y$, one reward.
# * $\log\pi_\theta(y\mid x) = \sum_t \log\pi_\theta(y_t\mid x, y_{<t})$: the logits at
#   position $t$ score token $t+1$ (shift), `gather` picks the observed token, the mask keeps
#   response tokens only.
# * SFT loss: mean NLL over response tokens; it is maximum likelihood (forward KL to the
#   demonstrator), so the model becomes as good as its demonstrations, not better.
# * Not masking the prompt makes the reported loss mostly irreducible prompt entropy and
#   spends the update on modelling prompts; measure the response loss separately.
# * Temperature rescales logits before the softmax; top-k keeps the k largest logits. Greedy
#   is $\tau \to 0$ or $k = 1$.
# * Judge a policy with a verifier: greedy accuracy, per-sample accuracy and pass@k; pass@k
#   above greedy accuracy is the headroom that RL on samples can turn into accuracy.
#
# ## Further reading
#
# * Radford et al. (2019), "Language models are unsupervised multitask learners" (GPT-2, the
#   architecture used here).
# * Ouyang et al. (2022), "Training language models to follow instructions with human
#   feedback" (InstructGPT: SFT, reward model, PPO).
# * Holtzman et al. (2020), "The curious case of neural text degeneration" (temperature,
#   top-k and nucleus sampling).
# * Chen et al. (2021), "Evaluating large language models trained on code" (the unbiased
#   pass@k estimator).
# * Ramamurthy et al. (2023), "Is reinforcement learning (not) for natural language
#   processing?" (language generation as a token-level MDP).
#
# ## 9. Interview questions
#
# 1. In RLHF, what are the state, the action, the transition, the reward and the policy?
#
# <details><summary>Answer</summary>
#
# State: the prompt plus the tokens generated so far. Action: the next token (a choice among
# the vocabulary). Transition: deterministic, append the token. Reward: usually 0 until the end
# of the response, then the reward model's or verifier's score of the text (plus, in PPO-RLHF,
# a per-token KL penalty). Policy: the language model's next-token distribution. With
# $\gamma = 1$, $V(s_t)$ is the expected final score given the prefix.
# </details>
#
# 2. Token-level or sequence-level action: which algorithms use which, and why?
#
# <details><summary>Answer</summary>
#
# PPO-RLHF uses the token-level MDP: it has a critic per token, runs GAE over tokens and adds
# the KL penalty per token. DPO, RLOO and GRPO treat the whole response as one action of a
# contextual bandit: one reward per response, compared with other responses to the same
# prompt, and the sequence log-probability (a sum over tokens) carries it to the tokens.
# </details>
#
# 3. How do you compute $\log\pi_\theta(y\mid x)$ from a causal LM's logits, and what goes
# wrong without the shift or the mask?
#
# <details><summary>Answer</summary>
#
# `log_softmax(logits[:, :-1])`, then `gather` with `input_ids[:, 1:]`, then sum over the
# columns whose target is a response token. Without the shift you score each token with the
# logits computed after it was seen, which is meaningless. Without the mask you add the
# prompt's log-probability (the same for every response to that prompt, but it adds noise and
# changes per-prompt comparisons) and, worse, the padding's.
# </details>
#
# 4. Why is the SFT loss computed on response tokens only? What did masking change in this
# lab?
#
# <details><summary>Answer</summary>
#
# The model should learn to answer prompts, not to write them: prompts are given at test time.
# Counting prompt tokens spends updates on modelling the prompt distribution, and in chat data
# teaches the model to imitate users. In this lab the prompts are random digits the base
# already models, so section 6 measured mainly a reported loss dominated by irreducible prompt
# entropy, with the answers learned about as well either way.
# </details>
#
# 5. Why SFT before RLHF, and why RL after SFT?
#
# <details><summary>Answer</summary>
#
# SFT puts the model in the right format and region of behaviour cheaply, so that RL samples
# are mostly sensible and the reward signal is informative (RL from a raw base explores far
# worse). But SFT only imitates: it cannot exceed its demonstrations (section 5). RL uses a
# sequence-level reward, which is easier to give than a demonstration (judging is cheaper than
# writing), and can push the policy beyond the demonstrations as long as the better answers
# are sampled (section 8's pass@k).
# </details>
#
# 6. What do temperature and top-k do, and which would you use for RL rollouts and for
# evaluation?
#
# <details><summary>Answer</summary>
#
# Temperature divides the logits before the softmax (sharper below 1, flatter above 1); top-k
# removes all but the k most likely tokens. RL rollouts usually sample at temperature 1
# without truncation, so that the samples come from the policy whose log-probabilities the
# update uses; evaluation reports greedy accuracy and pass@k (with a stated temperature).
# </details>
#
# 7. SFT as a divergence: which KL does it minimise?
#
# <details><summary>Answer</summary>
#
# The forward KL from the data: $\min_\theta \mathbb E_{y\sim\pi_{\text{demo}}}[-\log
# \pi_\theta(y\mid x)] = \min_\theta \mathrm{KL}(\pi_{\text{demo}}\,\|\,\pi_\theta) +
# \text{const}$. It is mass-covering: the model keeps probability on everything the
# demonstrator does, which is why the right carry answer (the $1 - p_{\text{forget}}$ share of
# carry demonstrations) is still sampled.
# </details>
#
# 8. Name the stages of the RLHF pipeline, the dataset each one uses and which models are
# trained or frozen in each.
#
# <details><summary>Answer</summary>
#
# Pretraining on raw text (this notebook: correct equations); SFT on prompt-response
# demonstrations (the model is trained); reward-model training on pairwise preferences
# (notebook 10: the RM is trained, the policy untouched); RL (notebook 11: on a dataset of
# prompts only, the policy and the critic are trained while the reward model and the
# reference, a frozen copy of the SFT model, are not). A held-out evaluation set of prompts,
# scored here by the verifier, measures the result.
# </details>
#
# 9. What are the "3H" goals and the "alignment tax"?
#
# <details><summary>Answer</summary>
#
# Helpful, honest, harmless. The alignment tax is what alignment costs: some sources mean lost
# general capability on standard benchmarks, others lost output diversity or fluency. Both are
# measurable: benchmark accuracy before and after, and diversity such as the entropy or the
# number of distinct samples per prompt.
# </details>

# %%
cpu_seconds = time.process_time() - cpu_start
rlcourse.results.record(
    "09_lm_policies",
    title="Language models as policies",
    topics="token MDP, sequence log-probs, pretraining, masked SFT, temperature and top-k, "
           "pass@k with a verifier",
    headline=(f"live-pretrained GPT {base_eval['accuracy']:.0%} held-out greedy; SFT on "
              f"carry-forgetting demos {sft_eval['accuracy']:.0%} (carry "
              f"{sft_eval['accuracy_carry']:.0%}), yet pass@16 at τ=1 finds "
              f"{t1['pass'][-1]:.0%} of carry answers; log-probs match a token loop to "
              f"{logprob_gap:.0e}"),
    metrics={"base_accuracy": base_eval["accuracy"], "sft_accuracy": sft_eval["accuracy"],
             "sft_accuracy_carry": sft_eval["accuracy_carry"],
             "sft_accuracy_no_carry": sft_eval["accuracy_no_carry"],
             "unmasked_accuracy": unmasked_eval["accuracy"],
             "per_sample_carry_t1": t1["per_sample"], "pass16_carry_t1": t1["pass"][-1],
             "logprob_gap": logprob_gap, "pretrain_cpu_s": pretrain_cpu, "sft_cpu_s": sft_cpu,
             "cpu_seconds": cpu_seconds},
)
print(f"total time {session.elapsed():.1f} s wall-clock, {cpu_seconds:.1f} s CPU")
