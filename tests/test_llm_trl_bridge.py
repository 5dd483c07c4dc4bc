"""The TRL bridge (optional extra): install message without TRL; with it, tiny real runs of
TRL's GRPOTrainer and DPOTrainer whose first-step numbers match the course's math."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from rlcourse.llm import sft, trl_bridge
from rlcourse.llm.model import ModelConfig

TINY = sft.SFTConfig(model=ModelConfig(n_embd=32, n_layer=1, n_head=2), n_heldout=40,
                     batch_size=16, pretrain_steps=4, sft_steps=3, warmup=2)


def test_missing_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "trl" else real(name, *a))
    reason = trl_bridge.missing()
    assert reason.startswith("trl not installed") and 'pip install -e ".[trl]"' in reason
    with pytest.raises(ModuleNotFoundError, match="trl not installed"):
        trl_bridge.trl_defaults()


def test_run_seconds_per_step():
    run = trl_bridge.Run("x", [0, 5, 10], [0.5, 0.6, 0.7], 4.0, {})
    assert run.seconds_per_step == 0.4


needs_trl = pytest.mark.skipif(trl_bridge.missing() is not None, reason="TRL not installed")


@needs_trl
def test_defaults_that_bite_are_read_from_trl():
    d = trl_bridge.trl_defaults()
    assert d["grpo_beta"] == 0.0 and d["grpo_loss_type"] == "dapo"  # what notebook 14 warns of
    assert d["grpo_learning_rate"] < 1e-5 and d["dpo_learning_rate"] < 1e-5


@needs_trl
@pytest.mark.slow
def test_trl_grpo_runs_the_course_setting(tmp_path):
    run = trl_bridge.trl_grpo(0, updates=2, eval_every=1, n_eval=20, sft_cfg=TINY,
                              root=tmp_path, n_prompts=2, group_size=4)
    assert run.steps == [0, 1, 2] and len(run.gold_accuracy) == 3
    assert all(0 <= a <= 1 for a in run.gold_accuracy) and run.seconds > 0
    assert run.extra["kl"][0] == pytest.approx(0.0, abs=1e-6)  # policy = reference at step 1
    assert len(run.extra["kl"]) == 2 and 0 <= run.final["gold_accuracy"] <= 1


@needs_trl
@pytest.mark.slow
def test_trl_dpo_starts_at_ln2_and_appends_eos(tmp_path):
    run = trl_bridge.trl_dpo(0, steps=2, eval_every=1, n_eval=20, onpolicy_prompts=8,
                             sft_cfg=TINY, root=tmp_path, batch_size=8, warmup=1)
    assert run.steps == [0, 1, 2]
    assert run.extra["chosen_ends_with_eos"] == 1.0  # TRL appended EOS; our texts had none
    assert run.extra["loss"][0] == pytest.approx(math.log(2), abs=1e-4)  # policy = reference
    assert run.extra["pairs"] > 0 and len(run.extra["loss"]) == 2


def _fake(name):
    def run(seed, **kw):
        acc = 0.5 + 0.1 * seed + (0.05 if name.startswith("trl") else 0.0)
        return trl_bridge.Run(name, [0, 10], [0.5, acc], 2.0 + seed, {"gold_accuracy": acc,
                                                                       "kl_to_ref": 0.1 * seed})
    return run


@needs_trl
def test_compare_and_cli_store_medians(tmp_path, monkeypatch):
    for name in ("course_grpo", "trl_grpo", "course_dpo", "trl_dpo"):
        monkeypatch.setattr(trl_bridge, name, _fake(name))
    out = tmp_path / "cmp.json"
    assert trl_bridge.main(["--seeds", "3", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["seeds"] == [0, 1, 2] and len(data["grpo"]["trl"]) == 3
    assert data["dpo"]["course"][2]["final_gold_accuracy"] == 0.7
    med = data["median"]["grpo"]
    assert med["course"]["final_gold_accuracy"] == pytest.approx(0.6)
    assert med["trl"]["final_gold_accuracy"] == pytest.approx(0.65)
    assert med["trl"]["seconds_per_step"] == pytest.approx(0.3)  # median of 2, 3, 4 s / 10 steps
    assert not (tmp_path / "cmp.json.tmp").exists()


def test_cli_rejects_bad_seeds(capsys):
    with pytest.raises(SystemExit) as exc:
        trl_bridge.main(["--seeds", "0"])
    assert exc.value.code == 2 and "--seeds must be at least 1" in capsys.readouterr().err


def test_end_token_check_counts_missing_and_doubled_end_tokens():
    class Data:
        column_names = ["prompt_input_ids", "chosen_input_ids"]

        def __getitem__(self, key):
            return [[4, 5, 2], [4, 5], [4, 2, 2], [2]]  # ok, missing, doubled, ok

    class Tok:
        eos_token_id = 2

    assert trl_bridge._ends_with_eos(Data(), Tok()) == 0.5
