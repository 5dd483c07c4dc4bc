"""rlcourse: the tested helper package behind the rlcourse notebooks.

Every notebook starts with ``rlcourse.setup(seed=...)``. The topic modules mirror the notebooks:

========================  =========================================
notebook                  module
========================  =========================================
00 Orientation            :mod:`rlcourse.envs`
01 Bandits                :mod:`rlcourse.bandits`
02 MDPs and DP            :mod:`rlcourse.mdp`
03 Model-free RL          :mod:`rlcourse.tabular`
04 DQN                    :mod:`rlcourse.dqn`
05 Policy gradients       :mod:`rlcourse.pg`
06 Actor-critic and GAE   :mod:`rlcourse.actor_critic`, :mod:`rlcourse.advantages`
07 Trust regions and PPO  :mod:`rlcourse.ppo`
08 The wider map          :mod:`rlcourse.wider`
09-11 Part III lab        :mod:`rlcourse.llm` (task, annotator, model, cache, logprobs, sft, ...)
========================  =========================================

Part II shares :mod:`rlcourse.deeprl` (vector envs, evaluation) and the benchmark CLI
``python -m rlcourse.bench``. Notebook 07's stored experiments come from
``python -m rlcourse.ppo_sweep``. Part III (language-model alignment) lives in the sub-package
:mod:`rlcourse.llm`, built on the same advantage and PPO functions.

Exercise checks live in :mod:`rlcourse.checks`, the checking machinery in
:mod:`rlcourse.exercises`.
"""

from rlcourse.core import Session, pick_device, seed_everything, setup

__version__ = "0.1.0"
__all__ = ["Session", "pick_device", "seed_everything", "setup", "__version__"]
