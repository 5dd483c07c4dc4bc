# %% [markdown]
# # 14 · Head to head, and reasoning at test time
#
# Notebooks 11-13 trained the same SFT model of the lab (the small GPT that adds two numbers and
# usually forgets the carry) in three ways: PPO against a learned reward model (RLHF-PPO), DPO on
# preference pairs, and GRPO with a verifiable reward. This notebook puts them side by side,
# from the lab bench's stored runs, and measures what each one holds in memory. Then it turns
# from training to **inference**: with a fixed model, how much accuracy can more samples buy, and
# which selector (a verifier, a reward model, a majority vote) turns samples into accuracy? A toy
# of multi-step solutions compares outcome and process reward models. The notebook ends with a
# summary of the critic-free methods and an interview-question bank for the whole of Part III.
#
# **Learning goals.** After this notebook you can
# 1. compare RM+PPO, DPO and GRPO on gold accuracy, KL to the reference, wall-clock, models in
#    memory and seed spread, and say which budget each one spent;
# 2. explain from the numbers why RLHF-PPO with a learned RM gains less here than PPO with the
#    gold reward, and when DPO or GRPO is the better tool;
# 3. implement best-of-N selection and majority voting, plot accuracy against N and read its
#    diminishing returns and its ceilings;
# 4. tell an outcome reward model from a process reward model, and say what each costs to label
#    and what step-level search buys;
# 5. place GRPO, Dr. GRPO, RLOO, REINFORCE++, PPO and DPO in one table (baseline, normalisation,
#    KL placement, models), and answer the standard interview questions on Part III;
# 6. run the same GRPO and DPO through TRL's trainers, knowing which of its defaults change the
#    algorithm (no KL term, token-level loss, a tiny learning rate, the appended end token).
#
# **Notation.** $x$ a prompt, $y$ a response, $\pi_\text{ref}$ the frozen SFT model, N the number
# of samples drawn per prompt at test time. *Gold accuracy* is greedy exact-match accuracy on the
# 500 held-out prompts; KL is $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$ in nats per response.

# %%
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import rlcourse
import rlcourse.results
from rlcourse.exercises import check
from rlcourse.llm import lab, rlhf, sampling, sft, task, testtime
from rlcourse.llm.reward_model import load_reward_model

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. Head to head: RM+PPO, DPO and GRPO from the same SFT model
#
# The lab bench (`python -m rlcourse.llm.lab --stages all --seeds 3 --compare --json`, run by
# `make lab-bench`) trains every method from the same cached SFT model of each seed and
# evaluates it the same way. Four runs per seed:
#
# * **RM+PPO**: the reward model of notebook 10 (trained on annotated preference pairs), then
#   PPO against it (notebook 11);
# * **PPO, gold reward**: the same PPO against the exact verifier, the *oracle control*: what PPO
#   reaches when its reward is right;
# * **DPO**: the DPO loss on the same annotated preference pairs the RM learned from
#   (notebook 12), with no reward model and no sampling during training;
# * **GRPO**: groups of samples scored by the verifier, group-normalised advantages, no critic
#   (notebook 13).
#
# We read the stored report (3 seeds, medians) rather than retrain: the whole bench takes
# several CPU-minutes.

# %%
LAB_JSON = Path(rlcourse.__file__).resolve().parents[1] / "results" / "lab" / "lab.json"
report = json.loads(LAB_JSON.read_text(encoding="utf-8"))
compare = lab.compare_rows(report)  # the rows of `python -m rlcourse.llm.lab --compare`
rows = {r["stage"]: r for r in compare}
sft_acc = report["median"]["sft"]["gold_accuracy"]
print(f"{len(report['seeds'])} seeds; SFT model: gold accuracy {sft_acc:.3f}")
print(f"{'method':>17} {'gold acc':>8} {'gain':>6} {'KL':>5} {'seconds':>8} {'samples':>8} "
      f"{'pairs':>6} {'seed std':>8}")
for r in compare:
    print(f"{r['method']:>17} {r['gold_accuracy']:>8.3f} {r['gain_over_sft']:>+6.3f} "
          f"{r['kl_to_ref']:>5.2f} {r['seconds']:>8.1f} {r['samples']:>8,} {r['pairs']:>6,} "
          f"{r['seed_std']:>8.3f}")

# %% [markdown]
# Which budget did each method spend? Not the same one, and the table should be read with that
# in mind:
#
# * **PPO** (both rewards) generated one response for each of its prompts per update:
#   `updates × n_prompts` samples, each scored once, with 4 PPO epochs over them.
# * **GRPO** generated G samples for each prompt: `updates × n_prompts × G` samples, and took one
#   gradient step per batch. It sees more samples than PPO for fewer seconds, because it has no
#   critic to run and train.
# * **DPO** generated **nothing** during training: it is offline. Its budget is the preference
#   pairs (made once, by sampling the SFT model and asking the annotator, the same pairs the RM
#   learned from) and its gradient steps (`pairs` counts the pairs it went through:
#   steps × batch size).
# * **RM+PPO** also paid for the reward model before PPO started, which dominates its seconds.
#
# Equal *samples* would favour PPO (it reuses each sample four times), equal *seconds* favour
# GRPO (it is cheaper per sample). The fair statement is per method: what it reached, at which
# cost, in which currency.

# %%
per_seed = report["per_seed"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for i, (stage, r) in enumerate(rows.items()):
    accs = [run[stage]["gold_accuracy"] for run in per_seed]
    kls = [run[stage]["kl_to_ref"] for run in per_seed]
    ax1.scatter(kls, accs, color=f"C{i}", alpha=0.4)
    ax1.scatter(r["kl_to_ref"], r["gold_accuracy"], color=f"C{i}", marker="D", s=60,
                label=r["method"])
    ax2.errorbar(r["seconds"], r["gold_accuracy"], yerr=r["seed_std"], color=f"C{i}", fmt="D",
                 capsize=4, label=r["method"])
for ax in (ax1, ax2):
    ax.axhline(sft_acc, color="grey", ls=":", label="SFT model")
    ax.set_ylabel("gold accuracy (held out)")
ax1.set(xlabel="KL to the reference [nats]", title="accuracy vs KL (dots: seeds, diamonds: median)")
ax2.set(xlabel="training seconds (RM+PPO includes the RM)", xscale="log",
        title="accuracy vs wall-clock (bars: seed std)")
ax1.legend(fontsize=8)
plt.tight_layout()
plt.show()

gain = {s: r["gain_over_sft"] for s, r in rows.items()}
assert min(gain["dpo"], gain["grpo"], gain["ppo_gold"]) >= 0.25
assert gain["ppo"] < gain["ppo_gold"] - 0.1                 # the learned RM limits PPO
assert rows["ppo"]["seed_std"] > max(rows[s]["seed_std"] for s in ("ppo_gold", "dpo", "grpo"))
assert rows["grpo"]["seconds"] < 0.6 * rows["ppo_gold"]["seconds"]
assert rows["dpo"]["samples"] == 0 < rows["ppo"]["samples"] < rows["grpo"]["samples"]

# %% [markdown]
# **At an equal budget.** PPO and GRPO both sample from the policy, so for these two an equal
# number of *policy samples* is a meaningful budget. GRPO's default run draws twice PPO's, but
# notebook 13's stored group-size sweep (`results/lab/grpo_group_sweep.json`, the same seeds
# and defaults) evaluated GRPO along the way, so we can read it at PPO's budget.

# %%
SWEEP_JSON = LAB_JSON.parent / "grpo_group_sweep.json"
grpo_sweep = json.loads(SWEEP_JSON.read_text(encoding="utf-8"))
ppo_budget = rows["ppo_gold"]["samples"]
grpo_cfg = report["config"]["grpo"]
at_budget = [r["gold_accuracy"][r["samples"].index(ppo_budget)] for r in grpo_sweep["runs"]
             if r["group_size"] == grpo_cfg["group_size"]
             and r["n_prompts"] == grpo_cfg["n_prompts"] and ppo_budget in r["samples"]]
grpo_at_budget = float(np.median(at_budget))
grpo_secs_at_budget = rows["grpo"]["seconds"] * ppo_budget / rows["grpo"]["samples"]
print(f"at {ppo_budget:,} policy samples: PPO with the gold reward {rows['ppo_gold']['gold_accuracy']:.3f} "
      f"({rows['ppo_gold']['seconds']:.0f} s), GRPO {grpo_at_budget:.3f} (median of "
      f"{len(at_budget)} seeds, about {grpo_secs_at_budget:.0f} s)")
assert len(at_budget) >= 3 and grpo_at_budget < rows["ppo_gold"]["gold_accuracy"]

# %% [markdown]
# Per sample, PPO is the more efficient learner here: it takes four epochs of minibatch steps on
# every batch and has a critic to lower the variance, where GRPO takes one step per batch. Per
# second, GRPO is: its samples are cheaper (no critic to run or train), so it comes close to
# PPO's accuracy in less wall-clock by drawing more of them. Which budget matters depends on
# what is scarce: on a real LLM, generation dominates the cost and samples are the currency,
# which is why GRPO variants reuse each batch for several epochs too.

# %% [markdown]
# What the numbers say, and what they do not:
#
# * **The reward decides.** PPO with the gold reward, GRPO (gold verifier) and DPO all end far
#   above the SFT model. PPO with the *learned* RM gains much less, and its seeds disagree most:
#   the RM is right on the forgotten carry only part of the time (notebook 10), and PPO can only
#   climb as far as its reward is right. The same PPO code with a correct reward (the oracle
#   row) does as well as the others. This is a statement about the reward, not about PPO.
# * **DPO did well here** with the same annotated pairs that trained the RM: it skips the step
#   where the RM's errors enter (fitting a scalar model, then optimising against it off the data).
#   It is offline, so it cannot explore beyond what the pairs contain; on this task the pairs
#   already contrast right answers with forgotten carries, which is exactly what is needed.
# * **GRPO** is the fastest here: a verifiable reward, no critic, no RM. It needs a reward that
#   code can compute; for "be helpful" there is none, and one is back to an RM.
# * **KL**: all runs end at a KL of the same order (the table). KL is not comparable across
#   methods as a cost: DPO's β and GRPO's β are different knobs on different losses.
#
# With three seeds and one small task, rankings within a few points are noise; the assertions
# above test only gaps much larger than the seed spread.
#
# ### Memory: count the models
# The bench measured the parameter memory of each run; here we measure it live, from the cached
# models. A method holds a trained policy, a frozen reference, and possibly a critic (trained)
# and a reward model (frozen). A trained model costs about four times its weights (weights,
# gradients and Adam's two moments, measured in notebook 11); a frozen one costs its weights.

# %%
policy, tokenizer, _ = sft.sft_model(sft.SFTConfig(), seed=0)
rm = load_reward_model(0, sft=sft.SFTConfig())
ref = rlhf.frozen_copy(policy)
critic = rlhf.make_critic(policy)
weights = {name: rlhf.parameter_bytes(m) for name, m in
           (("policy", policy), ("reference", ref), ("critic", critic), ("reward model", rm.model))}
HOLDS = {"ppo": ("policy", "reference", "critic", "reward model"),
         "ppo_gold": ("policy", "reference", "critic"),
         "dpo": ("policy", "reference"), "grpo": ("policy", "reference")}
TRAINED = ("policy", "critic")
print("measured weights: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in weights.items()))
print(f"{'method':>17} {'models':>6} {'weights MB':>10} {'+ training state MB':>20}")
memory = {}
for stage, names in HOLDS.items():
    w = sum(weights[n] for n in names)
    train_state = sum(3 * weights[n] for n in names if n in TRAINED)
    memory[stage] = w + train_state
    bench_models, bench_bytes = rows[stage]["models_in_memory"], rows[stage]["parameter_bytes"]
    note = "" if bench_bytes is None else (f"   (the bench measured {bench_models:.0f} models, "
                                           f"{bench_bytes / 1e6:.2f} MB)")
    print(f"{rows[stage]['method']:>17} {len(names):>6} {w / 1e6:>10.2f} "
          f"{memory[stage] / 1e6:>20.2f}" + note)
    assert bench_models is None or bench_models == len(names)
assert abs(weights["critic"] - weights["policy"]) < 0.3 * weights["policy"]
assert memory["grpo"] < 0.6 * memory["ppo"] and memory["dpo"] == memory["grpo"]

# %% [markdown]
# The critic is about as large as the policy (the same transformer body, a scalar head instead
# of the vocabulary head), so dropping it, as GRPO, RLOO and DPO do, removes the largest trained
# model after the policy itself. At the scale of real LLMs this, not the arithmetic, is why the
# critic-free methods spread: a 70B critic needs its own 70B worth of weights, gradients and
# optimiser state.
#
# ### DPO vs PPO vs SFT, and GRPO vs PPO
#
# | | SFT | DPO | RLHF-PPO | GRPO |
# |---|---|---|---|---|
# | data | demonstrations | fixed preference pairs | prompts + a reward model | prompts + a reward (often a verifier) |
# | samples from the policy while training | no | no (offline) | yes (online) | yes, G per prompt |
# | loss | cross-entropy on the demonstrations | logistic loss on implicit-reward margins | clipped surrogate + value loss | clipped surrogate + k3 KL in the loss |
# | baseline / advantage | – | – | critic + GAE | group mean (and std) |
# | KL to the reference | – | implicit, through β | per-token, in the reward | per-token k3, in the loss |
# | models in memory | 1 | 2 | 4 | 2 with a verifier, 3 with an RM |
# | can exceed its data | no, imitates | limited to the pairs' contrasts | yes, explores | yes, explores |
#
# **Online vs offline.** DPO trains on pairs sampled once from the SFT model; as the policy moves,
# the pairs describe a distribution it no longer produces. *Iterative* (online) DPO samples new
# pairs from the current policy every round, labels them (with an RM or an annotator) and trains
# again; it recovers much of the exploration of online RL while keeping DPO's simple loss.
# Published comparisons tend to favour online methods when an accurate reward is available; on
# our task the offline pairs already hold the right contrast, so offline DPO suffices.

# %% [markdown]
# ## 2. Test-time compute: best-of-N and majority vote
#
# Training changes the model. At test time we can instead spend more **inference** on a fixed
# model: sample N answers and pick one. How we pick matters:
#
# * **best-of-N with a verifier** (here the gold checker): pick a correct answer if any sample is
#   one. This is the oracle "pass@N" selection: only possible when answers can be checked, as in
#   maths with known results, code with unit tests, or our addition;
# * **best-of-N with a reward model**: pick the sample with the highest RM score. No ground truth
#   needed, but the RM's errors become the selector's errors;
# * **majority vote** (self-consistency): parse each answer and return the most frequent one. No
#   verifier and no RM, only a parser.
#
# We sample N = 32 answers at temperature 1 from the SFT model for 200 held-out prompts (200 × 32
# short generations, a few CPU-seconds) and score them all once with the RM.

# %%
N_MAX, N_PROMPTS = 32, 200
_, held_out = task.split_problems(0, 500)
problems = held_out[:N_PROMPTS]
prompts = [p.prompt for p in problems]
targets = [p.a + p.b for p in problems]
samples = sampling.sample_responses(policy, tokenizer, prompts, n_samples=N_MAX,
                                    max_new_tokens=6, temperature=1.0,
                                    generator=torch.Generator().manual_seed(0))
flat_prompts = [p for p in prompts for _ in range(N_MAX)]
rm_scores = rm.score(flat_prompts, [r for row in samples for r in row]).reshape(N_PROMPTS, N_MAX)
answers = [[task.parse_answer(r) for r in row] for row in samples]
correct = np.array([[a == t for a in row] for row, t in zip(answers, targets)], dtype=float)
carry = np.array([p.carry for p in problems])
greedy = sft.greedy_accuracy(policy, tokenizer, problems)
print(f"greedy accuracy {greedy:.3f}; one sample at temperature 1: {correct.mean():.3f} "
      f"(carry problems {correct[carry].mean():.3f}, others {correct[~carry].mean():.3f}); "
      f"unparsed answers {np.mean([a is None for row in answers for a in row]):.1%}")
for i in (int(np.argmax(carry)), int(np.argmin(carry))):  # the first carry and no-carry prompt
    print(f"  {prompts[i]} (carry: {carry[i]}) first 8 samples {samples[i][:8]}, right answer "
          f"{targets[i]}")

# %% [markdown]
# ### Exercise 1: majority vote
# Each prompt gives a list of parsed answers, `None` where the parser rejected the response.
# Return, per prompt, the most frequent answer. Unparsed answers are not votes. Ties need a rule
# that does not depend on the values: take the tied answer that was **sampled first**. A prompt
# with nothing parsed gets `None`.

# %%
def majority_vote(answers):
    """Per prompt, the most frequent non-None answer (ties: sampled first; none parsed: None).

    answers: a list of P lists of ints or None. Returns a list of P ints or None.
    """
    ### BEGIN SOLUTION
    out = []
    for row in answers:
        counts = {}
        for a in row:
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
        out.append(max(counts, key=counts.get) if counts else None)
    return out
    ### END SOLUTION


majority_vote = check("llm_testtime.majority_vote", majority_vote)

# %% [markdown]
# ### Exercise 2: best-of-N accuracy
# Given scores and correctness for N samples per prompt, compute the accuracy of picking the
# highest-scoring sample among the **first n** of each prompt (the first on ties). With the
# verifier's 0/1 as the score this is oracle selection; with the RM's score it is RM selection.

# %%
def best_of_n(scores, correct, n):
    """Share of prompts whose highest-scoring sample among the first n is correct.

    scores, correct: arrays [P, N] (correct is 0/1); n: 1 <= n <= N. Ties go to the earliest
    sample. Returns a float.
    """
    ### BEGIN SOLUTION
    s, c = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float)
    pick = s[:, :n].argmax(1)
    return float(c[np.arange(len(c)), pick].mean())
    ### END SOLUTION


best_of_n = check("llm_testtime.best_of_n", best_of_n)

# %% [markdown]
# Now accuracy against N for the three selectors, with your functions. A single order of the 32
# samples gives a noisy curve, so the RM and majority curves average over 20 random orders; the
# verifier's curve uses the unbiased pass@N estimate from all 32 samples
# (`testtime.oracle_accuracy`, built on `sampling.pass_at_k` of notebook 09).

# %%
NS = [1, 2, 4, 8, 16, 32]
rng = np.random.default_rng(0)
orders = [rng.permutation(N_MAX) for _ in range(20)]
curve = {"verifier (oracle)": np.array([testtime.oracle_accuracy(correct, n) for n in NS])}
rm_np = rm_scores.numpy()
curve["reward model"] = np.array([np.mean([best_of_n(rm_np[:, o], correct[:, o], n)
                                           for o in orders]) for n in NS])
votes = {n: [majority_vote([[row[j] for j in o[:n]] for row in answers]) for o in orders]
         for n in NS}
curve["majority vote"] = np.array([np.mean([np.mean([v == t for v, t in zip(vs, targets)])
                                            for vs in votes[n]]) for n in NS])
carry_curve = {"reward model": [np.mean([best_of_n(rm_np[carry][:, o], correct[carry][:, o], n)
                                         for o in orders]) for n in NS],
               "majority vote": [np.mean([np.mean([v == t for v, t, c in
                                                   zip(vs, targets, carry) if c])
                                          for vs in votes[n]]) for n in NS]}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for i, (name, acc) in enumerate(curve.items()):
    ax1.plot(NS, acc, marker="o", color=f"C{i}", label=name)
    print(f"{name:>18}: " + "  ".join(f"N={n}: {a:.3f}" for n, a in zip(NS, acc)))
for i, (name, acc) in enumerate(carry_curve.items(), start=1):
    ax2.plot(NS, acc, marker="o", color=f"C{i}", label=name)
    print(f"{name:>18} on carry problems: {acc[0]:.3f} -> {acc[-1]:.3f}")
ax1.axhline(greedy, color="grey", ls=":", label="greedy")
for ax, title in ((ax1, "all 200 prompts"), (ax2, "carry problems only")):
    ax.set(xscale="log", xlabel="N samples per prompt", ylabel="accuracy", title=title)
    ax.set_xticks(NS, [str(n) for n in NS])
ax1.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
oracle, rm_curve, vote_curve = curve["verifier (oracle)"], curve["reward model"], curve["majority vote"]
best_n = NS[int(np.argmax(rm_curve))]
print(f"this RM (on SFT samples {rm.info['onpolicy_accuracy']:.3f}): best-of-N peaks at N = "
      f"{best_n} ({max(rm_curve):.3f}, {max(rm_curve) - rm_curve[0]:+.3f} over N = 1)")
assert np.all(np.diff(oracle) >= 0) and oracle[-1] >= oracle[0] + 0.25
assert oracle[-1] >= max(rm_curve) + 0.05                  # the RM's pick stays below the verifier
assert rm_curve[-1] - rm_curve[-2] < 0.05                  # and stops rising
assert (oracle[-1] - oracle[-2]) / 16 < 0.1 * (oracle[1] - oracle[0])  # diminishing returns
assert abs(vote_curve[-1] - vote_curve[0]) < 0.05 and carry_curve["majority vote"][-1] < 0.1

# %% [markdown]
# First, a detail of the printout: one sample at temperature 1 is about as accurate as greedy
# decoding, or slightly better, because greedy decoding always takes the likelier
# forgotten-carry digit while sampling sometimes writes the carry. Then three lessons, each in
# the plot:
#
# * **Diminishing returns.** Each doubling of N costs as much inference as all the samples
#   before it and buys less. With the verifier the curve climbs towards 1 (at least one right
#   answer is almost always among 32), but the gain per extra sample shrinks by more than ten
#   times between N = 2 and N = 32.
# * **The selector sets the ceiling.** The RM's pick stays below the verifier's, and stops
#   rising: once the right answer is usually among the samples, what limits accuracy is how
#   often the RM prefers it, which is its carry accuracy from notebook 10, not N. That accuracy
#   varies between training runs of the RM, so the height of this curve does too; the stored
#   sweep after the next cell shows the range.
# * **Majority vote converges to the model's mode.** On carry problems the SFT model writes the
#   forgotten-carry answer most of the time; voting over more samples only makes that wrong
#   answer win more reliably, so its accuracy there stays near zero whatever N. Voting helps
#   when the model is right more often than it is wrong *in any single way*; it cannot fix a
#   systematic error. This is the honest answer to "does more test-time compute help on hard
#   problems?": only if the model sometimes solves them *and* there is a way to recognise the
#   right answer.
#
# ### Which reward model? A stored sweep
# How much best-of-N gains with a reward model depends on the RM. The sweep below repeats the
# experiment (same 200 prompts, 32 samples) with the reward models of notebook 10's recipes for
# seed 0, and with the course RM and SFT model of seeds 1 and 2, all from the cache. Regenerate it
# with `python -m rlcourse.llm.testtime` (about a CPU-minute from a warm cache), which writes
# `results/lab/testtime_rm.json`.

# %%
SWEEP_JSON = LAB_JSON.parent / "testtime_rm.json"
sweep = json.loads(SWEEP_JSON.read_text(encoding="utf-8"))
fig, ax = plt.subplots(figsize=(7, 3.8))
cmap = plt.get_cmap("viridis")
for run in sorted(sweep["runs"], key=lambda r: r["rm_onpolicy_accuracy"]):
    acc = run["rm_onpolicy_accuracy"]
    ax.plot(sweep["ns"], run["reward_model"], marker="o", color=cmap((acc - 0.4) / 0.45),
            label=f"{run['label'][:38]} (RM {acc:.2f})")
    print(f"{run['label']:<52} RM on SFT samples {acc:.3f}, carry {run['rm_carry_accuracy']:.3f}:"
          f" N=1 {run['reward_model'][0]:.3f}, best {max(run['reward_model']):.3f}, "
          f"N=32 {run['reward_model'][-1]:.3f}")
ax.plot(sweep["ns"], sweep["runs"][0]["oracle"], "k:", label="verifier (seed 0)")
ax.set(xscale="log", xlabel="N samples per prompt", ylabel="accuracy",
       title="best-of-N by reward models of different quality")
ax.set_xticks(sweep["ns"], [str(n) for n in sweep["ns"]])
ax.legend(fontsize=6, loc="lower left")
plt.show()
good = [r for r in sweep["runs"] if r["rm_onpolicy_accuracy"] >= 0.65]
weak = [r for r in sweep["runs"] if r["rm_onpolicy_accuracy"] < 0.55]
assert len(good) >= 2 and len(weak) >= 2
assert all(max(r["reward_model"]) >= r["reward_model"][0] + 0.1 for r in good)
assert all(r["reward_model"][-1] <= r["reward_model"][0] - 0.05 for r in weak)
assert all(r["oracle"][-1] >= max(r["reward_model"]) + 0.1 for r in sweep["runs"])

# %% [markdown]
# The better the RM ranks the model's own samples, the more best-of-N gains, but every RM's
# curve eventually bends down, and the weak ones end *below a single sample*: with 32 samples
# there are more wrong answers for the RM to prefer, and it finds them. This is reward
# over-optimisation again, at inference time, with N playing the role of the optimisation
# pressure (Gao et al. measured the same shape for best-of-N against a gold RM). A verifier has
# no such failure, which is why test-time compute pays off most on checkable tasks.
#
# ### Exercise 3: a best-of-N sampler
# Now the algorithm that produces responses: sample N per prompt from a model and return the
# selected one per prompt. Use `sampling.sample_responses(model, tokenizer, prompts,
# n_samples=n, max_new_tokens=..., temperature=..., generator=generator)` (one call; it returns
# one list of n texts per prompt), score all P × n pairs in one call of `score_fn(prompts,
# responses)` (which returns a tensor `[P*n]`), and keep each prompt's highest-scoring response.
# The cell after it calls your sampler with the RM and with the gold reward.

# %%
def best_of_n_generate(policy, tokenizer, prompts, n, score_fn, generator, max_new_tokens=6,
                       temperature=1.0):
    """The highest-scoring of n sampled responses for each prompt (first on ties).

    prompts: P strings; score_fn(prompts, responses) -> tensor [P*n], with the inputs flattened
    prompt by prompt; generator: the torch.Generator to sample with. Returns a list of P strings.
    """
    ### BEGIN SOLUTION
    samples = sampling.sample_responses(policy, tokenizer, list(prompts), n_samples=n,
                                        max_new_tokens=max_new_tokens, temperature=temperature,
                                        generator=generator)
    flat_p = [p for p in prompts for _ in range(n)]
    flat_r = [r for row in samples for r in row]
    scores = torch.as_tensor(score_fn(flat_p, flat_r), dtype=torch.float64)
    pick = scores.reshape(len(prompts), n).argmax(1).tolist()
    return [row[j] for row, j in zip(samples, pick)]
    ### END SOLUTION


best_of_n_generate = check("llm_testtime.best_of_n_generate", best_of_n_generate)

# %%
N_LIVE = 8
fresh = held_out[N_PROMPTS:N_PROMPTS + 200]  # prompts the curves above did not use
live = {}
for name, fn in (("reward model", rm.score), ("gold reward", rlhf.gold_reward_fn)):
    picked = best_of_n_generate(policy, tokenizer, [p.prompt for p in fresh], N_LIVE, fn,
                                torch.Generator().manual_seed(1))
    live[name] = float(np.mean([task.exact_match(p, r) for p, r in zip(fresh, picked)]))
fresh_greedy = sft.greedy_accuracy(policy, tokenizer, fresh)
print(f"on 200 fresh prompts, N = {N_LIVE}: greedy {fresh_greedy:.3f}, best-of-{N_LIVE} by the RM "
      f"{live['reward model']:.3f}, by the gold reward {live['gold reward']:.3f}")
assert live["gold reward"] >= fresh_greedy + 0.2 and live["gold reward"] > live["reward model"]

# %% [markdown]
# The gold reward here is the *partial-credit* reward of notebook 09, not the 0/1 checker, yet
# its maximum is always the exact answer when one was sampled, so it selects like the verifier.
# On prompts the curves never saw, best-of-8 lands where the curves at N = 8 predicted. Note the cost:
# every answer now costs 8 generations and 8 RM passes, at every query, for as long as the model
# is served. Training (Section 1) pays once; test-time compute pays per query. Best-of-N is also
# a way to *make training data*: keep the selected answers and fine-tune on them (rejection
# sampling, used in the R1 pipeline, Section 5).
#
# ## 3. Outcome vs process reward models (a toy)
#
# Our additions are one step long. Real reasoning is many steps (a chain of thought), and the
# reward can be given at two granularities:
#
# * an **outcome reward model (ORM)** scores the final answer: one label per solution, cheap to
#   collect (compare with the known result), but silent about *where* a solution went wrong;
# * a **process reward model (PRM)** scores every step: "is this step still on a path to the
#   right answer?". Its labels cost much more (a person judging each step, or, as in
#   Math-Shepherd, Monte Carlo rollouts from every prefix), but it can guide **search**: extend
#   only the prefixes it likes.
#
# A numpy toy, not a language model: a solution is K = 6 steps; each step is right with a
# probability `p_step` that depends on the problem (drawn between 0.55 and 0.95); one wrong step
# makes the answer wrong. Both reward models are noisy: each label they give is the true one plus
# Gaussian noise of std 0.5. We compare, at the same budget of generated steps (N × K):
#
# * **ORM best-of-N**: generate N full solutions, pick the one with the best outcome score;
# * **PRM beam search**: keep `width` = √N partial solutions, extend each with N/width candidate
#   next steps, keep the best `width` by PRM score (the minimum over their steps), repeat.

# %%
K_STEPS, NOISE, N_TOY = 6, 0.5, 2000
toy_rng = np.random.default_rng(0)
p_step = toy_rng.uniform(0.55, 0.95, N_TOY)
toy = {"ORM best-of-N": [], "PRM beam search": [], "oracle best-of-N": []}
for n in (1, 4, 16, 64):
    labels = testtime.sample_steps(toy_rng, p_step[:, None], (N_TOY, n), K_STEPS)
    width = int(np.sqrt(n))
    toy["oracle best-of-N"].append(float(labels[..., -1].any(1).mean()))
    toy["ORM best-of-N"].append(testtime.orm_best_of_n(labels, NOISE, toy_rng))
    toy["PRM beam search"].append(testtime.prm_beam_search(toy_rng, p_step, N_TOY, K_STEPS,
                                                           width, n // width, NOISE))
fig, ax = plt.subplots(figsize=(6, 3.4))
for name, acc in toy.items():
    ax.plot([1, 4, 16, 64], acc, marker="o", ls=":" if "oracle" in name else "-", label=name)
    print(f"{name:>17}: " + "  ".join(f"N={n}: {a:.3f}" for n, a in zip((1, 4, 16, 64), acc)))
ax.set(xscale="log", xlabel="N (budget: N x K generated steps)", ylabel="problems solved",
       title="toy: ORM selection vs PRM-guided search")
ax.legend(fontsize=8)
plt.show()
assert toy["PRM beam search"][2] >= toy["ORM best-of-N"][2] + 0.15
assert toy["PRM beam search"][2] >= toy["oracle best-of-N"][2]

# %% [markdown]
# With the same number of generated steps, PRM-guided search solves more problems than even a
# *perfect* outcome verifier choosing among N complete solutions: selection can only pick among
# finished solutions, and with six steps most of them contain an early error; search discards a
# bad prefix as soon as the PRM flags it and spends the budget on continuations of good ones.
#
# The price is in the labels. An ORM needs one label per solution. A PRM needs one per step, and
# Math-Shepherd's automatic labels estimate each step's value by completing the prefix M times
# and counting how often the answer comes out right (`testtime.mc_step_labels`):

# %%
M_ROLLOUTS = 32
example = testtime.sample_steps(toy_rng, 0.8, (4,), K_STEPS)
mc = testtime.mc_step_labels(toy_rng, example, 0.8, M_ROLLOUTS)
for lab_row, mc_row in zip(example, mc):
    print("prefix right:", "".join("1" if x else "0" for x in lab_row), "  MC labels:",
          " ".join(f"{v:.2f}" for v in mc_row))
print(f"labels for one solution: ORM 1 (compare the answer); PRM {K_STEPS} step judgements by "
      f"hand, or {K_STEPS} x {M_ROLLOUTS} = {K_STEPS * M_ROLLOUTS} rollouts for Monte Carlo labels")
assert np.all(mc[~example] == 0)

# %% [markdown]
# Along a right prefix the label grows, since fewer steps remain in which to fail; after the
# first wrong step it is 0 for good. With a few dozen rollouts the labels are noisy estimates,
# and each costs a full completion: this is why process labels cost far more than outcome
# labels, here K × M completions per solution (printed above) against one answer check.
#
# So a PRM is worth its cost when the solutions are long (errors compound over steps), when
# search can use it, and when step labels can be produced at scale. Lightman et al. (2023, "Let's
# Verify Step by Step") found on competition maths that a PRM trained on human step labels
# selected solutions better than an ORM; the toy reproduces the direction of that result for
# search, not its size. Beyond beam search, the same PRM can drive Monte Carlo tree search
# over steps (selection by an upper confidence bound, expansion, evaluation by the PRM or a
# rollout, backup of the values), at a higher cost per query.
#
# ## 4. The critic-free methods in one table
#
# Every method of notebooks 11-13 is a policy gradient whose advantage is "reward minus a
# baseline", with PPO's clip or without it. They differ in where the baseline comes from, how it
# is scaled, and where the KL to the reference goes. (G is the group size, responses $o_i$ to
# one prompt with rewards $r_i$.)
#
# | method | baseline | normalisation | KL to the reference | models held (with an RM) |
# |---|---|---|---|---|
# | PPO (RLHF) | learned critic $V_\psi$ with GAE, per token | advantages whitened over the batch | k1 per token, **in the reward** | 4: policy, critic, RM, reference |
# | GRPO | mean of the group (G samples of the same prompt) | divide by the group's std; loss averaged $1/\lvert o_i\rvert$ per response | k3 per token, **in the loss** | 3 (2 with a verifier) |
# | Dr. GRPO | mean of the group | none: no std division, a constant instead of $1/\lvert o_i\rvert$ | as GRPO (or none) | 3 (2) |
# | RLOO | mean of the **other** G−1 samples (leave-one-out) | none needed | usually in the reward, per sequence | 3 (2) |
# | REINFORCE++ | mean of the **whole batch** (no groups needed) | divide by the batch std | k1 per token in the reward, summed to the end | 3 (2) |
# | DPO | none: no sampling, no RL loop | – | implicit: β in the logistic loss on log-ratios | 2: policy, reference |
#
# Two consequences worth saying aloud: GRPO's std division and per-response $1/\lvert o_i\rvert$
# both change the weights of the gradient (over-weighting near-unanimous groups and
# under-weighting long responses), which is what Dr. GRPO removes; and RLOO's leave-one-out keeps
# the baseline independent of the sample it scores, so its gradient is unbiased, whereas
# including the sample itself shrinks it by (G−1)/G.

# %% [markdown]
# ## 5. Reasoning models and the wider picture
#
# **R1-Zero and R1.** DeepSeek-R1-Zero applied GRPO with rule-based rewards (answer correctness
# and a format check) **directly to the base model**, with no SFT; long chains of thought and
# self-checking emerged, but the outputs were hard to read and mixed languages. DeepSeek-R1 is a
# different, multi-stage pipeline: (1) **cold-start SFT** on a few thousand long chain-of-thought
# examples, (2) **reasoning RL** (GRPO with rule rewards plus a language-consistency reward),
# (3) **rejection sampling**: sample many answers from that checkpoint and keep the good ones,
# (4) **SFT** on those plus general data, (5) **RL for all scenarios**, with rule rewards for
# reasoning and reward models for helpfulness and harmlessness. Smaller models were then distilled
# from R1's outputs by SFT. "RL only activates capabilities the base model already has" is a
# hypothesis supported by some studies, not a theorem.
#
# **Multi-objective rewards.** Helpfulness, harmlessness, length and format pull in different
# directions. Options: a weighted sum (normalise each reward's scale first, or β and the weights
# mean nothing), a constrained problem (maximise helpfulness subject to expected harm ≤ a budget,
# solved with a Lagrange multiplier, as in Safe RLHF), or conditioning the policy on the weights.
#
# **Agents and code.** Code RL uses unit tests as the verifier (the pass rate is the reward);
# agentic RL trains multi-step tool use with a task-success reward at the end of an episode,
# which brings back credit assignment over many turns, long contexts, and environments that are
# slow and stateful.
#
# **Evaluation.** Reward-model scores and automatic judges are cheap but gameable; blind pairwise
# comparisons by people remain the reference; red-teaming looks for failures on purpose. For
# verifiable tasks, held-out accuracy with a checker (our gold accuracy) is the honest metric,
# and pass@k should be reported with the unbiased estimator.

# %% [markdown]
# ## 6. From scratch to the library: the same runs in TRL
#
# Notebooks 11-13 wrote every line of RLHF-PPO, DPO and GRPO so that each could be read and
# tested. In practice you will use a library, most often Hugging Face's **TRL**, whose
# `GRPOTrainer` and `DPOTrainer` implement the algorithms of notebooks 13 and 12. The step from
# one to the other is small if you know what the library decides for you.
# `rlcourse.llm.trl_bridge` runs both trainers on *the same* cached SFT model, the same gold
# reward and the same preference pairs as the course's `grpo.train` and `dpo.train`, with every
# setting that differs by default written out, so that the two runs differ only in the code that
# executes them.
#
# TRL is an optional extra: `pip install -e ".[trl]"` (`make test` installs it). Without it this
# section prints that line and skips its cells.
#
# **Read the defaults before the curves.** Three of TRL's defaults change the algorithm, not
# just its speed; the cell below reads them from the installed version:
# * `GRPOConfig.beta` is 0: **no KL term** toward the reference unless you set one. The course's
#   GRPO uses β = 0.04 with the k3 estimator (notebook 13), so the bridge sets it.
# * `GRPOConfig.loss_type` is `"dapo"`: one average over all tokens of the batch, DAPO's
#   token-level loss, not GRPO's mean over each response's tokens and then over responses
#   (notebook 13 worked out the per-token weights of each). The bridge asks for `"grpo"`.
# * Both trainers' learning rate is 1e-6, sized for models with billions of parameters. On our
#   0.8M-parameter GPT nothing would move; the bridge uses the course's 1e-4.
# * `DPOTrainer` **appends the end-of-sequence token** to the chosen and rejected texts itself,
#   so their log-probabilities include the decision to stop, as the course's pair encoder does.
#   A pipeline that adds the token itself and then hands the text to a library that adds it
#   again scores a different sequence from the one it sampled; the cell after next checks
#   that every tokenised chosen response ends with exactly the one end token.

# %%
from rlcourse.llm import trl_bridge

trl_reason = trl_bridge.missing()
if trl_reason is not None:
    print(f"[SKIP] {trl_reason}")
else:
    trl_defaults = trl_bridge.trl_defaults()
    print(f"TRL {trl_defaults['trl']} defaults: GRPO beta = {trl_defaults['grpo_beta']}, "
          f"loss_type = {trl_defaults['grpo_loss_type']!r}, "
          f"learning rate = {trl_defaults['grpo_learning_rate']:.0e}; "
          f"DPO beta = {trl_defaults['dpo_beta']}, "
          f"learning rate = {trl_defaults['dpo_learning_rate']:.0e}")
    # the prose above describes these defaults; if a new TRL changes them, the text must change
    assert trl_defaults["grpo_beta"] == 0.0 and trl_defaults["grpo_loss_type"] == "dapo"
    assert trl_defaults["grpo_learning_rate"] < 1e-5 and trl_defaults["dpo_learning_rate"] < 1e-5

# %% [markdown]
# **The same runs, live.** GRPO for 20 updates (16 prompts × 8 samples each) and DPO for 60
# steps (64 pairs each) from the SFT model of seed 0, evaluated on the same 200 held-out
# prompts at the same steps. The DPO pairs are the annotator's, on synthetic candidates and on
# SFT samples of 200 training prompts (fewer than the lab's, to save time); both sides get the
# same list. The seconds are wall-clock of each training loop with its evaluations.

# %%
TRL_GRPO_UPDATES, TRL_DPO_STEPS, TRL_PAIR_PROMPTS = 20, 60, 200
lib_runs = {}
if trl_reason is None:
    lib_runs["GRPO"] = (trl_bridge.course_grpo(0, updates=TRL_GRPO_UPDATES, eval_every=5),
                        trl_bridge.trl_grpo(0, updates=TRL_GRPO_UPDATES, eval_every=5))
    lib_runs["DPO"] = (trl_bridge.course_dpo(0, steps=TRL_DPO_STEPS, eval_every=20,
                                             onpolicy_prompts=TRL_PAIR_PROMPTS),
                       trl_bridge.trl_dpo(0, steps=TRL_DPO_STEPS, eval_every=20,
                                          onpolicy_prompts=TRL_PAIR_PROMPTS))
    print(f"{'run':<18} {'gold acc: start -> end':>24} {'KL (nats)':>10} {'s/step':>8}")
    for ours, theirs in lib_runs.values():
        for r in (ours, theirs):
            print(f"{r.name:<18} {r.gold_accuracy[0]:>13.3f} -> {r.gold_accuracy[-1]:.3f} "
                  f"{r.final['kl_to_ref']:>10.2f} {r.seconds_per_step:>8.2f}")
    trl_dpo_run, trl_grpo_run = lib_runs["DPO"][1], lib_runs["GRPO"][1]
    print(f"TRL's first DPO loss {trl_dpo_run.extra['loss'][0]:.4f} (ln 2 = {np.log(2):.4f}); "
          f"first GRPO KL {trl_grpo_run.extra['kl'][0]:.4f}; chosen responses ending with "
          f"the end token: {trl_dpo_run.extra['chosen_ends_with_eos']:.0%}")
    # the library computes the same quantities as notebooks 12 and 13: at step 1 the policy is
    # the reference, so DPO's loss is ln 2 and GRPO's KL is 0; TRL added the end token itself
    assert abs(trl_dpo_run.extra["loss"][0] - np.log(2)) < 1e-3
    assert abs(trl_grpo_run.extra["kl"][0]) < 1e-6
    assert trl_dpo_run.extra["chosen_ends_with_eos"] == 1.0
    for ours, theirs in lib_runs.values():
        assert ours.steps == theirs.steps and ours.gold_accuracy[0] == theirs.gold_accuracy[0]
    assert lib_runs["DPO"][0].gold_accuracy[-1] >= lib_runs["DPO"][0].gold_accuracy[0] + 0.1

# %%
if lib_runs:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, (algo, runs) in zip(axes, lib_runs.items()):
        for r, style in zip(runs, ("o-", "s--")):
            ax.plot(r.steps, r.gold_accuracy, style, label=r.name)
        ax.set(title=f"{algo}: the course's trainer and TRL's, seed 0",
               xlabel="optimiser step", ylabel="greedy gold accuracy (200 prompts)")
        ax.legend()
    plt.tight_layout()
    plt.show()

# %% [markdown]
# One seed of 20 GRPO updates is noisy: a single unlucky update can cost both trainers ten
# points. The stored comparison below runs both trainers on three seeds with the same settings
# (`python -m rlcourse.llm.trl_bridge --seeds 3 --out results/lab/trl_compare.json`, on one
# thread of an otherwise idle 2-core machine).

# %%
trl_store = Path(rlcourse.__file__).resolve().parents[1] / "results" / "lab" / "trl_compare.json"
trl_cmp = json.loads(trl_store.read_text(encoding="utf-8"))
print(f"TRL {trl_cmp['trl']}, seeds {trl_cmp['seeds']}: GRPO {trl_cmp['grpo_updates']} updates, "
      f"DPO {trl_cmp['dpo_steps']} steps")
print(f"{'':<6} {'side':<7} {'final gold acc (per seed)':<34} {'KL':>6} {'s/step':>7}")
for algo in ("grpo", "dpo"):
    for side in ("course", "trl"):
        per = ", ".join(f"{r['final_gold_accuracy']:.2f}" for r in trl_cmp[algo][side])
        med = trl_cmp["median"][algo][side]
        print(f"{algo.upper():<6} {side:<7} {med['final_gold_accuracy']:.3f} ({per}){'':<6} "
              f"{med['kl_to_ref']:>6.2f} {med['seconds_per_step']:>7.2f}")
slower = {algo: trl_cmp["median"][algo]["trl"]["seconds_per_step"]
          / trl_cmp["median"][algo]["course"]["seconds_per_step"] for algo in ("grpo", "dpo")}
print(f"TRL's time per step relative to the course's loop: GRPO {slower['grpo']:.2f}x, "
      f"DPO {slower['dpo']:.2f}x")
for algo in ("grpo", "dpo"):
    med = trl_cmp["median"][algo]
    assert abs(med["trl"]["final_gold_accuracy"] - med["course"]["final_gold_accuracy"]) < 0.1

# %% [markdown]
# **Reading the comparison.** Same algorithm, same model, same data: the library's runs and the
# course's land within the spread over seeds of each other, and a single seed can differ more
# than the medians do (GRPO's seed 0 above). The time per step differs for ordinary reasons.
# With one optimiser epoch per batch the ratio is exactly 1 at the only step, and TRL's GRPO
# skips the forward pass that would compute the old log-probs; the course's loop, written for
# any number of epochs, always makes it (and one more to log the entropy). Neither difference
# is a reason to prefer one over the other. Write the loop to understand the algorithm; use the
# library to scale it (several GPUs, fast generation servers, adapters), after testing it
# against your loop on a small problem, as here, and after reading its defaults.

# %% [markdown]
# ## Common misconceptions
#
# * "DeepSeek-R1 is GRPO with rule rewards applied to the base model." That describes
#   R1-Zero. R1 first fine-tunes on cold-start chain-of-thought data, then runs reasoning RL,
#   rejection sampling and SFT, and a final RL stage for all scenarios (Section 5). <!-- E-30 -->
# * "On hard problems, more inference compute beats a bigger model." This is contested: Snell
#   et al. (2024) found test-time compute most effective on easy and medium problems, with more
#   pretraining compute winning on the hardest ones. In Section 2, more samples did nothing for
#   the problems the model gets systematically wrong when voting, and helped only as far as the
#   selector could recognise a right answer. <!-- E-33 -->
# * "RLHF-PPO lost the comparison, so PPO is worse than GRPO or DPO." The same PPO with the gold
#   reward matched them (Section 1); the gap belonged to the learned reward model.
# * "Best-of-N keeps improving with N." Only with a perfect verifier; with a reward model it
#   plateaus at the RM's own accuracy (Section 2).

# %% [markdown]
# ## What to remember
#
# * Compare methods on the same model, task and evaluation, over several seeds, and name the
#   budget: samples, seconds or preference pairs. Differences smaller than the seed spread mean
#   nothing.
# * The reward is usually the bottleneck: PPO with a learned RM gained much less than PPO with
#   the gold reward, same code.
# * DPO: offline, 2 models, no sampling while training, limited to what its pairs contrast.
#   GRPO: online, no critic, needs a reward per sample (ideally a verifier). PPO: online, 4
#   models, the most general and the most expensive.
# * A critic costs about as much as the policy; dropping it is the main saving of GRPO/RLOO.
# * Test-time compute: best-of-N with a verifier rises towards pass@N with diminishing returns;
#   with an RM it plateaus at the RM's accuracy; majority vote converges to the model's mode and
#   cannot fix systematic errors.
# * Training pays once, test-time compute pays at every query.
# * ORM: one cheap label per solution. PRM: a label per step, costly, but it enables step-level
#   search, which beats selection among complete solutions when solutions are long.
# * Critic-free baselines: group mean (GRPO, with std; Dr. GRPO without), leave-one-out (RLOO),
#   batch mean (REINFORCE++); KL in the reward (PPO, REINFORCE++) or in the loss (GRPO).
# * R1-Zero = RL on the base model; R1 = cold-start SFT, RL, rejection sampling, SFT, RL.
# * Before trusting a library's curve, read its defaults: TRL's GRPO has no KL term (β = 0)
#   and a token-level loss unless told otherwise, and both trainers' learning rate suits
#   billion-parameter models, not ours.

# %% [markdown]
# ## Further reading
#
# * Ouyang et al., *Training Language Models to Follow Instructions with Human Feedback* (2022):
#   the SFT → RM → PPO pipeline.
# * Rafailov et al., *Direct Preference Optimization* (2023).
# * Shao et al., *DeepSeekMath* (2024): GRPO.
# * DeepSeek-AI, *DeepSeek-R1* (2025): R1-Zero and the multi-stage R1 pipeline.
# * Ahmadian et al., *Back to Basics: Revisiting REINFORCE Style Optimization for Learning from
#   Human Feedback in LLMs* (2024): RLOO.
# * Liu et al., *Understanding R1-Zero-Like Training: A Critical Perspective* (2025): Dr. GRPO.
# * Wang et al., *Self-Consistency Improves Chain of Thought Reasoning in Language Models*
#   (2022): majority voting.
# * Cobbe et al., *Training Verifiers to Solve Math Word Problems* (2021): best-of-N with a
#   verifier.
# * Gao, Schulman and Hilton, *Scaling Laws for Reward Model Overoptimization* (2022): best-of-N
#   and RL against a proxy RM, measured with a gold RM.
# * Lightman et al., *Let's Verify Step by Step* (2023): process vs outcome supervision.
# * Wang et al., *Math-Shepherd* (2023): Monte Carlo step labels for PRMs.
# * Snell et al., *Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling
#   Model Parameters* (2024): when test-time compute helps, and when it does not.
# * von Werra et al., *TRL: Transformer Reinforcement Learning* (GitHub, huggingface/trl): the
#   library of Section 6; read its GRPO and DPO trainer documentation for every default.

# %% [markdown]
# ## Interview questions
#
# These cover all of Part III (notebooks 09-14), grouped by topic.
#
# ### Language models as policies (09)
#
# 1. In what sense is a language model a policy? What are the states, actions and episodes?
#
# <details><summary>Answer</summary>
#
# The state is the prompt plus the tokens generated so far, the action is the next token, the
# policy is the model's next-token distribution, and an episode ends at the end-of-sequence
# token or a length limit. The reward usually arrives only at the end (a score for the whole
# response), so it is a sparse-reward, deterministic-transition MDP.
# </details>
#
# 2. Why does SFT alone not fix the carry errors of our lab model, and what does RL add?
#
# <details><summary>Answer</summary>
#
# SFT imitates its demonstrations, errors included: most demonstrations forget the carry, so
# the model does too. RL optimises a reward on the model's own samples: the rare correct carry
# it sometimes produces gets reinforced. RL can exceed the demonstrator when the reward can tell
# right from wrong.
# </details>
#
# 3. What is pass@k, and why is 1 − C(n−c, k)/C(n, k) used instead of "1 − (1 − c/n)^k"?
#
# <details><summary>Answer</summary>
#
# The probability that at least one of k samples is correct. With n ≥ k samples of which c are
# correct, 1 − C(n−c, k)/C(n, k) is the exact probability for k drawn without replacement from
# those n, an unbiased estimate of pass@k; plugging the estimated rate c/n into 1 − (1−p)^k is
# biased (it is a non-linear function of the estimate).
# </details>
#
# ### Reward models (10)
#
# 4. How is a reward model trained, and what does its loss assume?
#
# <details><summary>Answer</summary>
#
# On preference pairs (chosen, rejected) with the Bradley-Terry loss
# −log σ(r(x, y_w) − r(x, y_l)): it assumes the probability of preferring y_w is a logistic
# function of a score difference. Only differences are identified, so the scale and offset of
# r are arbitrary (which is why β must follow the reward's spread).
# </details>
#
# 5. Your RM has 84% pair accuracy. Is it good enough for RL?
#
# <details><summary>Answer</summary>
#
# Not necessarily: what matters is its accuracy on the contrasts the policy will exploit, on the
# policy's own samples as it moves. Our RM is good on average and weaker on the forgotten carry,
# which is the one contrast RL needed, so RLHF-PPO gained much less than PPO with the gold
# reward (Section 1). Check it on on-policy samples and on the hard cases.
# </details>
#
# 6. What is reward hacking, and how do you detect it?
#
# <details><summary>Answer</summary>
#
# The policy raises the proxy reward by exploiting the RM's errors while the true quality stays
# flat or falls (Goodhart). Detect it with an independent signal: a gold or held-out check, a
# second RM, human spot checks, and the KL, length and entropy curves.
# </details>
#
# ### RLHF with PPO (11)
#
# 7. Name the four models of RLHF-PPO and their roles.
#
# <details><summary>Answer</summary>
#
# Actor (the policy, trained), critic (per-token values for GAE, trained), reward model (scores
# finished responses, frozen), reference (the SFT model, the KL anchor, frozen).
# </details>
#
# 8. Where does the KL term go in RLHF-PPO, and which direction is it?
#
# <details><summary>Answer</summary>
#
# Into the per-token reward: −β(log π_old(y_t) − log π_ref(y_t)) on every token and the RM score
# on the last one, so the return is r − β log(π/π_ref). It estimates D_KL(π_θ‖π_ref) on the
# policy's own samples, the reverse, mode-seeking direction.
# </details>
#
# 9. Why does RLHF-PPO need a critic if it already has a reward model?
#
# <details><summary>Answer</summary>
#
# The RM scores finished responses once; the critic predicts, for every prefix, the expected
# return under the current policy, which GAE needs to give each token an advantage with low
# variance. The RM is frozen; the critic must track the changing policy.
# </details>
#
# ### DPO and friends (12)
#
# 10. Derive the DPO loss in three lines.
#
# <details><summary>Answer</summary>
#
# The KL-regularised optimum is π*(y|x) = π_ref(y|x) exp(r/β)/Z(x), so r = β log(π*/π_ref) +
# β log Z(x). In the Bradley-Terry difference r(y_w) − r(y_l) the log Z(x) cancels. Replacing π*
# by π_θ and maximising the likelihood of the preferences gives
# L = −log σ(β[(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))]).
# </details>
#
# 11. Your DPO loss starts at ln 2 and never moves. What do you check?
#
# <details><summary>Answer</summary>
#
# At the start π_θ = π_ref so every logit is 0 and the loss is ln 2: that is expected. If it
# stays there, the policy and the reference are the same object (or the reference is updated
# with the policy), the log-probs are not summed over the response tokens or include the prompt,
# the gradient does not reach the policy, or the learning rate is zero.
# </details>
#
# 12. DPO vs RLHF-PPO: when would you pick each?
#
# <details><summary>Answer</summary>
#
# DPO: fixed preference data, limited compute, 2 models, a stable supervised-style loss; but it
# is offline and cannot explore beyond its pairs, and chosen and rejected likelihoods can both
# fall. PPO: when an accurate reward exists and online exploration pays, at 4 models and more
# tuning. Iterative DPO (fresh pairs from the current policy each round) sits between them.
# </details>
#
# 13. What do IPO, KTO and ORPO change relative to DPO?
#
# <details><summary>Answer</summary>
#
# IPO replaces the logistic loss by a squared loss towards a finite margin, so margins do not
# grow without bound on deterministic preferences. KTO needs only unpaired good/bad labels and
# weighs them against a reference point (prospect theory, with loss aversion). ORPO drops the
# reference model and adds an odds-ratio penalty to the SFT loss.
# </details>
#
# ### GRPO and friends (13)
#
# 14. Why does GRPO need no critic, and what does it pay instead?
#
# <details><summary>Answer</summary>
#
# Its baseline is the mean reward of G samples of the same prompt (divided by their std): the
# other samples play the critic's role. It pays in sampling (G responses per prompt), and its
# signal vanishes when all G samples get the same reward (all right or all wrong).
# </details>
#
# 15. Does GRPO compare groups with each other?
#
# <details><summary>Answer</summary>
#
# No. It compares each sample with the other samples *within its own group* (the responses to
# one prompt); groups of different prompts are never compared. It is PPO's clipped objective
# with a group baseline, not a variant of DPO.
# </details>
#
# 16. What does Dr. GRPO remove from GRPO, and why?
#
# <details><summary>Answer</summary>
#
# The division by the group std (which over-weights prompts where nearly all samples agree) and
# the 1/|o_i| per-response averaging (which gives a wrong long response a smaller per-token
# penalty, so wrong answers drift long). It uses r − mean and a constant normaliser.
# </details>
#
# 17. Name DAPO's four changes.
#
# <details><summary>Answer</summary>
#
# Clip-higher (a larger upper clip, so low-probability tokens can rise and entropy does not
# collapse), dynamic sampling (drop all-correct and all-wrong groups and refill the batch), a
# token-level loss (every token weighted equally across the batch), and overlong reward shaping
# (a soft penalty near the length limit, or masking truncated samples).
# </details>
#
# 18. How do RLOO and REINFORCE++ build their baselines?
#
# <details><summary>Answer</summary>
#
# RLOO: the mean reward of the other G−1 samples of the same prompt, which keeps the gradient
# unbiased. REINFORCE++: the mean (and std) over the whole batch, with the KL as a per-token
# reward, so it needs no groups of samples per prompt.
# </details>
#
# ### Head to head and test-time compute (14)
#
# 19. GRPO beat RLHF-PPO on the lab. Does that make GRPO the better algorithm?
#
# <details><summary>Answer</summary>
#
# Not from this evidence. GRPO used the gold verifier and PPO a learned RM; PPO with the gold
# reward matched GRPO. The comparison shows the value of a correct reward; GRPO's own advantages
# are the missing critic (memory, speed) and simplicity.
# </details>
#
# 20. How do best-of-N, majority vote and RM reranking differ, and when does each stop helping?
#
# <details><summary>Answer</summary>
#
# Best-of-N with a verifier picks any correct sample, so it tracks pass@N and saturates only
# when problems are never solved. RM reranking is limited by the RM's accuracy and can get worse
# with N as more wrong-but-liked samples appear. Majority vote returns the mode of the parsed
# answers: it helps when the right answer is the most common one and cannot fix systematic
# errors.
# </details>
#
# 21. ORM or PRM?
#
# <details><summary>Answer</summary>
#
# ORM: one label per solution, cheap, enough for best-of-N on short answers. PRM: labels per
# step (human or Monte Carlo rollouts, much more expensive), but it localises errors and guides
# step-level search (beam search, MCTS); it pays off on long multi-step solutions.
# </details>
#
# 22. Does test-time compute substitute for a bigger model?
#
# <details><summary>Answer</summary>
#
# Sometimes: on problems the model can solve now and then, with a good verifier, more samples
# or search are cheap accuracy. On problems beyond the model, or without a way to recognise the
# right answer, it does little (Snell et al., 2024 found pretraining compute more effective on
# the hardest problems). And it costs at every query, while training costs once.
# </details>
#
# ### Reasoning models, agents, evaluation, libraries
#
# 23. How were DeepSeek-R1-Zero and DeepSeek-R1 trained?
#
# <details><summary>Answer</summary>
#
# R1-Zero: GRPO with rule rewards directly on the base model. R1: cold-start SFT on long
# chain-of-thought data, reasoning RL, rejection sampling to build a new SFT set, SFT, then RL
# for all scenarios with rule rewards and RMs. Distilled smaller models were trained by SFT on
# R1's outputs.
# </details>
#
# 24. You must combine helpfulness and safety rewards. How?
#
# <details><summary>Answer</summary>
#
# A weighted sum after normalising each reward's scale, or a constrained objective (maximise
# helpfulness subject to a cost budget, with a Lagrange multiplier adapted during training, as
# in Safe RLHF), and check the trade-off as a Pareto front rather than one number.
# </details>
#
# 25. How do you evaluate an aligned model?
#
# <details><summary>Answer</summary>
#
# With several signals, because each can be gamed: held-out accuracy with a checker where the
# task allows it (and pass@k with the unbiased estimator), reward-model or LLM-judge scores as
# cheap proxies, blind pairwise comparisons by people as the reference, red-teaming for harmful
# behaviour, and the KL to the reference and response length as drift indicators. For
# multi-turn use, judge whole conversations, not single replies.
# </details>
#
# 26. What changes when RL trains an agent that uses tools over many turns?
#
# <details><summary>Answer</summary>
#
# The episode is many model calls with tool results in between, the reward (task success) often
# comes only at the end, so credit assignment over turns is hard again; contexts grow long;
# environments are slow, stateful and sometimes non-deterministic, so rollouts dominate the cost;
# and tool outputs are not the policy's actions, so they must be masked out of the loss.
# </details>
#
# 27. How would you switch the course's GRPO loop to a library such as TRL, and what would you
#     check first?
#
# <details><summary>Answer</summary>
#
# Feed the same model, reward function and prompts, then compare the defaults with yours before
# comparing curves: the KL coefficient (TRL's GRPO uses β = 0 by default, so no KL term), the
# loss aggregation (its default loss type is DAPO's token-level one), the group size, clip
# ranges and how end tokens are appended. Then check that the library's curves match the
# course's on the same seed budget.
# </details>

# %%
rlcourse.results.record(
    "14_head_to_head",
    title="Head to head, and reasoning at test time",
    topics="RM+PPO vs DPO vs GRPO (lab bench, 3 seeds), measured model memory, best-of-N with "
           "verifier and RM, majority vote, accuracy vs N, ORM vs PRM toy, critic-free table, "
           "Part III interview bank, the same GRPO and DPO through TRL",
    headline=(f"gain over SFT: GRPO {gain['grpo']:+.2f}, DPO {gain['dpo']:+.2f}, PPO gold "
              f"{gain['ppo_gold']:+.2f}, RM+PPO {gain['ppo']:+.2f}; test time N=1->32: verifier "
              f"{oracle[0]:.2f}->{oracle[-1]:.2f}, RM {rm_curve[0]:.2f}->{rm_curve[-1]:.2f}, "
              f"majority {vote_curve[0]:.2f}->{vote_curve[-1]:.2f}; TRL time per step vs the "
              f"course's (stored, 3 seeds): GRPO {slower['grpo']:.2f}x, DPO {slower['dpo']:.2f}x"),
    metrics={"grpo_gain": gain["grpo"], "dpo_gain": gain["dpo"], "ppo_gain": gain["ppo"],
             "ppo_gold_gain": gain["ppo_gold"], "oracle_32": oracle[-1], "rm_32": rm_curve[-1],
             "vote_32": vote_curve[-1], "rm_best_of_8_live": live["reward model"],
             "trl_grpo_step_ratio": slower["grpo"], "trl_dpo_step_ratio": slower["dpo"],
             "trl_ran_live": bool(lib_runs)},
)
print(f"total time {session.elapsed():.1f} s, CPU {time.process_time() - cpu_start:.1f} s")
