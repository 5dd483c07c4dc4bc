# %% [markdown]
# # rlcourse: reinforcement learning from bandits to aligned language models
#
# Welcome. This course takes you from a multi-armed bandit to aligning a small GPT with a reward
# model and PPO, with DPO and with GRPO, on a laptop CPU and fully offline. Work through the
# notebooks in order; each one builds on the previous one (Part IV says where its
# notebooks fit).
#
# ## Part I: foundations and tabular RL
#
# | # | Notebook | You will learn |
# |---|---|---|
# | 00 | [Orientation](00_orientation.ipynb) | How the exercises work; the agent–environment loop in gymnasium; termination vs truncation; RL vs supervised learning |
# | 01 | [Multi-armed bandits](01_bandits.ipynb) | ε-greedy, UCB, Thompson sampling, gradient bandits, non-stationary bandits, regret |
# | 02 | [MDPs, Bellman and dynamic programming](02_mdp_dp.ipynb) | Returns, V/Q/A, Bellman equations, the matrix solution, policy and value iteration |
# | 03 | [Model-free prediction and control](03_model_free.ipynb) | MC, TD, n-step, SARSA vs Q-learning, importance sampling, reward shaping |
#
# ## Part II: deep reinforcement learning
#
# | # | Notebook | You will learn |
# |---|---|---|
# | 04 | [DQN](04_dqn.ipynb) | Q-networks, replay, target networks, terminal vs truncated targets, Double and dueling DQN |
# | 05 | [Policy gradients](05_policy_gradients.ipynb) | The log-derivative trick, REINFORCE, reward-to-go, baselines and variance |
# | 06 | [Actor-critic and GAE](06_actor_critic_gae.ipynb) | A2C, n-step advantages, GAE and its λ limits, critic targets |
# | 07 | [Trust regions and PPO](07_ppo.ipynb) | KL divergence, the importance-weighted surrogate, TRPO's idea, PPO-clip and its tricks |
# | 08 | [The wider map](08_wider_map.ipynb) | SAC, TD3, multi-agent RL, offline RL, safe RL, MCTS and self-play |
#
# ## Part III: aligning a small language model
#
# One lab runs through all six notebooks: a 0.8M-parameter GPT learns two-digit addition, is
# fine-tuned on demonstrations that often forget the carry, and is then improved with a reward
# model and PPO, with DPO and with GRPO, while a gold reward computed by code shows whether the
# improvement is real.
#
# | # | Notebook | You will learn |
# |---|---|---|
# | 09 | [Language models as policies](09_lm_policies.ipynb) | The token MDP, sequence log-probs, pretraining and masked SFT, sampling, pass@k with a verifier |
# | 10 | [Reward models](10_reward_models.ipynb) | Bradley–Terry preferences, the reward-model loss, reading the last token, label noise and length bias |
# | 11 | [RLHF with PPO](11_rlhf_ppo.ipynb) | The KL-regularised objective, the four models, per-token KL rewards, token-level GAE, β, reward hacking |
# | 12 | [DPO and friends](12_dpo.ipynb) | The closed-form optimum, the DPO loss and its sign, implicit rewards, likelihood displacement, IPO, KTO, ORPO |
# | 13 | [GRPO and friends](13_grpo.ipynb) | Group-normalised advantages, token-level losses, verifiable rewards, Dr. GRPO, DAPO, RLOO, REINFORCE++ |
# | 14 | [Head to head, and reasoning at test time](14_head_to_head.ipynb) | RM + PPO vs DPO vs GRPO on one task, best-of-N and majority vote, ORM vs PRM, the same runs in TRL |
#
# ## Part IV: beyond the study notes
#
# Three notebooks that a reader of Sutton & Barto or Spinning Up will look for. They come last
# in the numbering but need only Parts I–II: take 15 and 16 any time after notebook 03 (16
# before 04 is a good moment, as it shows the deadly triad that DQN's target network answers),
# and 17 after notebooks 07–08.
#
# | # | Notebook | You will learn |
# |---|---|---|
# | 15 | [Classic tabular control](15_tabular_control.ipynb) | Expected SARSA, maximisation bias and Double Q-learning, Monte Carlo control on blackjack, ordinary vs weighted importance sampling |
# | 16 | [Traces, planning and linear function approximation](16_traces_planning_approx.ipynb) | TD(λ) and eligibility traces (and GAE's λ), Dyna-Q, semi-gradient TD, Baird's counterexample and the deadly triad |
# | 17 | [Continuous control](17_continuous_control.ipynb) | Gaussian policies, the tanh-squashing correction, PPO on continuous actions, SAC with twin critics and automatic temperature |
#
# ## How the exercises work
#
# * An exercise is a function with a `raise NotImplementedError` line. Replace that line with
#   your code and run the cell.
# * The same cell runs a **check**. It prints `[PASS]` when your function is right, `[FAIL]` with
#   the input that went wrong and a hint when it is not, and `[SKIP]` while you have not started.
# * If you skip an exercise or it fails, the notebook keeps going with the reference
#   implementation from the `rlcourse` package and tells you so. Once your function passes, the
#   rest of the notebook uses **your** code.
# * Stuck? The worked solutions are in [`solutions/`](solutions/).
#
# ## Words
#
# The [glossary](../GLOSSARY.md) pairs each English term with the Chinese term that many study
# notes use, and flags the places where such notes often go wrong.
#
# ## Check your setup
#
# Run the cell below. It seeds every random generator, picks the device (a CUDA GPU if there is
# one, else Apple's MPS, else the CPU) and reports the versions of the main libraries.

# %%
import gymnasium
import numpy
import torch

import rlcourse

session = rlcourse.setup(seed=0)
print(f"numpy {numpy.__version__} | torch {torch.__version__} | gymnasium {gymnasium.__version__}")
assert int(gymnasium.__version__.split(".")[0]) >= 1, "the course needs gymnasium >= 1.0"
