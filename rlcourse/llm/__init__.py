"""Part III: language models as policies, trained from scratch on a 2-core CPU (notebooks 09-14).

The lab world is small on purpose, so that every stage runs in seconds to minutes:

========================  ==================================================================
module                    concept
========================  ==================================================================
:mod:`.task`              the arithmetic task, safe verifier, gold reward, demonstrations
:mod:`.annotator`         a synthetic annotator: preference pairs with noise and length bias
:mod:`.model`             character tokenizer, GPT-2 config model, loading real checkpoints
:mod:`.cache`             a versioned, locked safetensors checkpoint cache
:mod:`.logprobs`          per-token and sequence log-probabilities with masks (pure)
:mod:`.sft`               pretraining, supervised fine-tuning, greedy accuracy
:mod:`.sampling`          temperature / top-k, a sampling loop, pass@k (notebook 09)
:mod:`.reward_model`      Bradley-Terry reward model on the last real token (notebook 10)
:mod:`.rlhf`              RLHF-PPO: experience, per-token KL rewards, the update (notebook 11)
:mod:`.dpo`               DPO, IPO, KTO, ORPO losses and the KL-regularised optimum (pure)
:mod:`.grpo`              GRPO, Dr. GRPO, DAPO, RLOO, REINFORCE++ advantages and losses (pure)
:mod:`.lab`               ``python -m rlcourse.llm.lab``: the whole lab from scratch, as JSON
========================  ==================================================================
"""
