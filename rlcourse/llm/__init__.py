"""Part III: language models as policies, trained from scratch on a 2-core CPU (notebooks 09-11).

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
========================  ==================================================================
"""
