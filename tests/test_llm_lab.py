"""The lab CLI: stage registry, errors, JSON schema and medians, model reuse, a tiny real run."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from rlcourse.llm import cache, lab, sft
from rlcourse.llm.model import ModelConfig, build_model, build_tokenizer, count_parameters

TINY = sft.SFTConfig(model=ModelConfig(n_embd=32, n_layer=1, n_head=2), n_heldout=40,
                     batch_size=16, pretrain_steps=4, sft_steps=3, warmup=2)
REPORTED = {"seconds", "cpu_seconds", "gold_accuracy", "gold_reward", "response_length"}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(lab, "course_config", lambda: TINY)


def _last_json(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, "stdout must hold only the JSON line"
    return json.loads(lines[-1])


def test_registry_order_and_prerequisites():
    assert list(lab.STAGES)[:5] == ["pretrain", "sft", "rm", "ppo", "ppo_gold"]
    for name, stage in lab.STAGES.items():
        order = list(lab.STAGES)
        assert all(order.index(n) < order.index(name) for n in stage.needs)
    assert lab._closure("ppo") == ["pretrain", "sft", "rm", "ppo"]
    assert lab.parse_stages("sft, pretrain") == ["pretrain", "sft"]
    assert lab.parse_stages(["sft"]) == ["sft"]
    assert {"pretrain", "sft"} <= set(lab.available_stages())
    with pytest.raises(ValueError, match="unregistered"):
        lab.register(lab.Stage("x", lambda ctx: {}, needs=("nope",)))


@pytest.mark.parametrize("text, message", [
    ("", "no stages given"), (" , ", "no stages given"),
    ("pretrain,sfft", "unknown stage.*'sfft'.*known: pretrain, sft"),
    ("sft,sft", "given twice: sft"),
])
def test_parse_stages_errors(text, message):
    with pytest.raises(lab.LabError, match=message):
        lab.parse_stages(text)


@pytest.fixture
def fake_stages(monkeypatch):
    """Two stages backed by a module that does not exist and by one without the function."""
    stages = dict(lab.STAGES)
    stages["ghost"] = lab.Stage("ghost", lambda ctx: {}, module="rlcourse.llm.no_such_module",
                                attr="train")
    stages["after"] = lab.Stage("after", lambda ctx: {}, needs=("ghost",))
    stages["half"] = lab.Stage("half", lambda ctx: {}, module="rlcourse.llm.task",
                               attr="no_such_function")
    monkeypatch.setattr(lab, "STAGES", stages)


def test_unavailable_stages_give_clear_errors(fake_stages):
    with pytest.raises(lab.LabError, match="'ghost' is not available yet: "
                                           "rlcourse.llm.no_such_module does not exist yet"):
        lab.parse_stages("pretrain,ghost")
    with pytest.raises(lab.LabError, match=r"'ghost' \(needed by 'after'\) is not available"):
        lab.parse_stages("after")
    with pytest.raises(lab.LabError, match=r"task has no no_such_function\(\) yet"):
        lab.parse_stages("half")
    assert "ghost" not in lab.available_stages()


def test_cli_rejects_unavailable_stage(fake_stages, capsys):
    with pytest.raises(SystemExit) as exc:
        lab.main(["--stages", "ghost"])
    assert exc.value.code == 2 and "not available yet" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--first-seed", "-1"], "--first-seed must be non-negative"),
    (["--seeds", "two"], "invalid int value"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--stages", "pretrain,dqn"], "unknown stage"),
    (["--device", "tpu"], "unknown device"),
])
def test_cli_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        lab.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_run_seed_rejects_bad_seeds():
    for seed in (-1, 1.5, True):
        with pytest.raises(lab.LabError, match="seed must be a non-negative integer"):
            lab.run_seed(["pretrain"], seed, cfg=TINY, progress=False)


def test_medians_and_report():
    runs = [{"sft": {"seconds": s, "gold_accuracy": a, "flag": True, "note": "x"},
             "pretrain": {"seconds": 2 * s}} for s, a in [(3.0, 0.5), (1.0, 0.7), (2.0, 0.6)]]
    runs[1]["sft"]["only_here"] = 1.0
    runs[2]["sft"]["gold_accuracy"] = float("nan")
    med = lab.median_metrics(runs)
    assert med == {"sft": {"seconds": 2.0}, "pretrain": {"seconds": 4.0}}
    report = lab.summarize([0, 1, 2], runs, threads=2)
    assert report["seeds"] == [0, 1, 2] and report["threads"] == 2
    assert report["per_seed"][2]["sft"]["gold_accuracy"] is None  # NaN is not JSON
    json.dumps(report, allow_nan=False)
    assert lab._clean(1 / 3) == 0.3333 and lab._clean(np.int64(7)) == 7
    with pytest.raises(ValueError, match="2 seeds but 3"):
        lab.summarize([0, 1], runs)
    with pytest.raises(ValueError, match="empty"):
        lab.median_metrics([])
    with pytest.raises(TypeError, match="cannot report"):
        lab._clean(object())
    table = lab.format_table(lab.summarize([0, 1, 2], [
        {"rm": {"seconds": 1.0, "rm_pair_accuracy": 0.9}}] * 3))
    row = next(line for line in table.splitlines() if line.startswith("rm"))
    assert "90.0%" in row and row.split()[2] == "-"


def test_fresh_cache_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "/somewhere")
    with lab.fresh_cache() as root:
        assert os.environ[cache.CACHE_ENV] == str(root) and root.is_dir()
        assert list(root.iterdir()) == []
    assert os.environ[cache.CACHE_ENV] == "/somewhere" and not root.exists()
    monkeypatch.delenv(cache.CACHE_ENV)
    with lab.fresh_cache(tmp_path) as root:
        assert root == tmp_path
    assert cache.CACHE_ENV not in os.environ


def test_tiny_end_to_end_json(tiny, capsys):
    """A real (tiny) pretrain + SFT run through the CLI, two seeds."""
    before = torch.get_num_threads()
    assert lab.main(["--stages", "pretrain,sft", "--seeds", "2", "--first-seed", "3",
                     "--json", "--no-progress", "--threads", "1"]) == 0
    assert torch.get_num_threads() == before
    captured = capsys.readouterr()
    report = _last_json(captured.out)
    assert "seed 4: sft done" in captured.err
    assert report["seeds"] == [3, 4] and report["stages"] == ["pretrain", "sft"]
    assert report["threads"] == 1 and report["device"] == "cpu"
    totals = report["per_seed_total_seconds"]
    assert len(totals) == 2 and report["total_seconds"] == pytest.approx(statistics.median(totals),
                                                           rel=1e-3)
    for total, run in zip(totals, report["per_seed"]):  # the whole seed, every stage included
        assert total >= 0.999 * sum(m["seconds"] for m in run.values())
    assert report["config"] == {"sft": json.loads(json.dumps(TINY.to_dict()))}
    assert [set(run) for run in report["per_seed"]] == [{"pretrain", "sft"}] * 2
    for stage in ("pretrain", "sft"):
        assert REPORTED <= set(report["median"][stage])
        for key, value in report["median"][stage].items():
            per = [run[stage][key] for run in report["per_seed"]]
            assert value == pytest.approx(statistics.median(per), rel=1e-3)
        for run in report["per_seed"]:
            m = run[stage]
            assert m["seconds"] > 0 and 0 <= m["gold_accuracy"] <= 1
            assert 0 <= m["gold_reward"] <= 1
    assert report["median"]["sft"]["steps"] == TINY.sft_steps
    assert report["per_seed"][0] != report["per_seed"][1]  # seeds differ


def test_table_output(tiny, capsys):
    lab.main(["--stages", "pretrain", "--seeds", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert out.startswith("tiny-GPT lab, median over seeds 0") and "pretrain" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.strip().splitlines()[-1])


def test_stages_match_train_base_and_sft_and_reach_the_cache(tmp_path):
    """The lab's pretrain/SFT stages train exactly what sft.train_base_and_sft trains, and
    publishing them lets sft.sft_model find them under the same key without rebuilding."""
    ctx = lab.LabContext(0, TINY, tmp_path, progress=False)
    lab.ensure(ctx, "sft")
    assert set(ctx.results) == {"pretrain", "sft"}
    base, tuned, _, _ = sft.train_base_and_sft(TINY, 0, progress=False)
    for mine, ref in ((ctx.models["base"], base), (ctx.models["sft"], tuned)):
        for (name, p), q in zip(mine.state_dict().items(), ref.state_dict().values()):
            assert torch.equal(p, q), name
    lab.publish_sft(ctx)
    lab.publish_sft(ctx)  # once only
    model, _, entry = sft.sft_model(TINY, 0, root=tmp_path)
    assert entry.built is False
    for p, q in zip(model.state_dict().values(), tuned.state_dict().values()):
        assert torch.equal(p, q)


def test_device_argument_is_checked():
    ctx = lab.LabContext(0, TINY, None, device="cuda")

    def no_device(seed):
        return None

    def with_device(seed, device="cpu"):
        return None

    with pytest.raises(lab.LabError, match="runs on the CPU only"):
        lab._device_kwargs(no_device, ctx, "RLHF-PPO")
    assert lab._device_kwargs(with_device, ctx, "x") == {"device": "cuda"}
    ctx.device = "cpu"
    assert lab._device_kwargs(no_device, ctx, "x") == {}
    lab.check_device(["ppo_gold"], "cpu")
    lab.check_device(["pretrain", "sft"], "cuda:0")  # the lab's own stages move batches


def test_device_is_checked_before_training(fake_modules, monkeypatch):
    import rlcourse.core

    monkeypatch.setattr(rlcourse.core, "pick_device", lambda device: device)
    with pytest.raises(lab.LabError, match="stage 'rm' runs on the CPU only"):
        lab.check_device(["ppo"], "cuda")
    with pytest.raises(SystemExit):
        lab.main(["--stages", "rm", "--device", "cuda"])
    assert fake_modules == []  # nothing was trained


# ---- rm, ppo and ppo_gold with stand-in modules (the real ones are tested in their own files)
@dataclass
class _FakePPOConfig:
    reward: str
    beta: float = 0.1


@dataclass
class _FakeRM:
    info: dict = field(default_factory=lambda: {"seconds": 1.5, "wall_seconds": 2.5,
                                                "pair_accuracy": 0.93,
                                                "onpolicy_accuracy": 0.88})

    def score(self, prompts, responses):
        assert len(prompts) == len(responses) == TINY.n_heldout
        return torch.tensor([float(len(r)) for r in responses])


@pytest.fixture
def fake_modules(monkeypatch, tmp_path):
    calls = []

    def load_reward_model(seed, *, progress=False, **overrides):
        calls.append(("rm", seed, overrides))
        return _FakeRM()

    def train(seed, *, reward="rm", progress=True, sft_cfg=None, **overrides):
        # what the real module does: load the SFT model from the (lab's temporary) cache
        _, _, entry = sft.sft_model(sft_cfg, seed)
        calls.append((reward, seed, entry.built))
        acc = 0.9 if reward == "gold" else 0.6
        return types.SimpleNamespace(final={"gold_accuracy": acc, "proxy_reward": 0.4,
                                            "kl_to_ref": 0.8, "response_length": 2.0,
                                            "seconds": 3.0}, config=_FakePPOConfig(reward))

    monkeypatch.setitem(sys.modules, "rlcourse.llm.reward_model",
                        types.SimpleNamespace(load_reward_model=load_reward_model))
    monkeypatch.setitem(sys.modules, "rlcourse.llm.rlhf", types.SimpleNamespace(train=train))
    monkeypatch.setattr(lab, "course_config", lambda: TINY)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "user-cache"))
    return calls


def test_rm_and_ppo_stages_reuse_this_runs_models(fake_modules, capsys, tmp_path):
    assert lab.main(["--stages", "ppo_gold,ppo", "--seeds", "1", "--json",
                     "--no-progress"]) == 0
    report = _last_json(capsys.readouterr().out)
    assert report["stages"] == ["ppo", "ppo_gold"]
    # rm ran once as ppo's prerequisite; both PPO runs found this run's SFT model cached
    assert fake_modules == [("rm", 0, {"sft": TINY}), ("rm", 0, False), ("gold", 0, False)]
    run = report["per_seed"][0]
    assert set(run) == {"ppo", "ppo_gold"}
    sft_acc = run["ppo"]["gold_accuracy"] - run["ppo"]["gain_over_sft"]
    assert run["ppo_gold"]["gain_over_sft"] == pytest.approx(0.9 - sft_acc, abs=1e-3)
    assert run["ppo"]["kl_to_ref"] == 0.8 and run["ppo"]["train_seconds"] == 3.0
    assert not (tmp_path / "user-cache").exists()  # the user's cache was never touched
    assert report["config"]["ppo"] == {"reward": "rm", "beta": 0.1}
    assert report["config"]["ppo_gold"]["reward"] == "gold" and "sft" in report["config"]


def test_rm_stage_reports_accuracies_and_proxy_reward(fake_modules, tmp_path):
    out = lab.run_seed(["rm"], 1, cfg=TINY, progress=False, cache_root=tmp_path,
                       overrides={"rm": {"steps": 2}})
    assert fake_modules == [("rm", 1, {"sft": TINY, "steps": 2})]
    m = out["rm"]
    assert (m["rm_pair_accuracy"], m["rm_onpolicy_accuracy"]) == (0.93, 0.88)
    assert (m["train_seconds"], m["train_cpu_seconds"]) == (2.5, 1.5) and m["seconds"] > 0
    # the stand-in scores a response by its length: the proxy is the SFT answers' mean length
    ctx = lab.LabContext(1, TINY, tmp_path / "again", progress=False)
    lab.ensure(ctx, "sft")
    assert m["proxy_reward"] == pytest.approx(ctx.results["sft"]["response_length"])


def test_rm_stage_with_the_real_reward_model(tmp_path):
    """The real reward-model module, tiny: it trains from this run's SFT model (one SFT entry
    in the lab's cache) and leaves its RM in that cache for RLHF-PPO."""
    tiny_rm = dict(steps=3, batch_size=8, warmup=1, onpolicy_prompts=20,
                   onpolicy_samples=2, onpolicy_rounds=1, eval_samples=2)
    configs = {}
    out = lab.run_seed(["rm"], 0, cfg=TINY, progress=False, cache_root=tmp_path,
                       overrides={"rm": tiny_rm}, configs=configs)["rm"]
    assert configs["rm"]["steps"] == 3 and configs["rm"]["sft"] == configs["sft"]
    assert 0 <= out["rm_pair_accuracy"] <= 1 and 0 <= out["rm_onpolicy_accuracy"] <= 1
    assert out["train_cpu_seconds"] > 0 and math.isfinite(out["proxy_reward"])
    assert len(cache.list_entries("lab_sft", tmp_path)) == 1
    assert len(cache.list_entries("lab_rm", tmp_path)) == 1


def test_batches_move_to_the_device():
    tok = build_tokenizer()
    batch = sft.make_batch(tok, ["12+34="], ["46"])
    assert sft.on_device(lambda: batch, "cpu")() is batch
    moved = sft.on_device(lambda: batch, "meta")()  # any non-CPU device; meta needs no GPU
    for name in ("input_ids", "attention_mask", "response_mask", "all_mask"):
        t = getattr(moved, name)
        assert t.device.type == "meta" and t.shape == getattr(batch, name).shape


def test_ppo_gold_stage_with_the_real_rlhf_module(tmp_path):
    """The real RLHF module, tiny: PPO with the gold reward from this run's SFT model."""
    if lab.unavailable_reason("ppo_gold") is not None:
        pytest.skip(lab.unavailable_reason("ppo_gold"))
    tiny_ppo = dict(updates=1, n_prompts=4, minibatch=4, epochs=1, n_eval=20, eval_every=0)
    configs = {}
    run = lab.run_seed(["ppo_gold"], 0, cfg=TINY, progress=False, cache_root=tmp_path,
                       overrides={"ppo_gold": tiny_ppo}, configs=configs)
    assert configs["ppo_gold"]["updates"] == 1
    out = run["ppo_gold"]
    assert 0 <= out["gold_accuracy"] <= 1 and out["kl_to_ref"] >= -1e-6
    assert out["train_seconds"] > 0 and -1 <= out["gain_over_sft"] <= 1
    assert len(cache.list_entries("lab_sft", tmp_path)) == 1


def test_dpo_and_grpo_stages_with_the_real_modules(tmp_path):
    """DPO and GRPO, tiny, from one run's SFT model: both report their final checkpoint and
    its gain over the SFT model, and the SFT model is trained once."""
    tiny = {"dpo": dict(steps=2, batch_size=8, warmup=1, n_eval=20, eval_every=0,
                        rm_overrides={"onpolicy_prompts": 10, "onpolicy_samples": 2}),
            "grpo": dict(updates=1, n_prompts=2, group_size=2, n_eval=20, eval_every=0)}
    configs = {}
    run = lab.run_seed(["dpo", "grpo"], 0, cfg=TINY, progress=False, cache_root=tmp_path,
                       overrides=tiny, configs=configs)
    assert configs["dpo"]["steps"] == 2 and configs["grpo"]["group_size"] == 2
    n_bytes = 4 * count_parameters(build_model(build_tokenizer(), TINY.model))
    for name in ("dpo", "grpo"):
        out = run[name]
        assert 0 <= out["gold_accuracy"] <= 1 and out["kl_to_ref"] >= -1e-6, name
        assert out["train_seconds"] > 0 and -1 <= out["gain_over_sft"] <= 1, name
        # policy and frozen reference: two copies of the SFT model's parameters
        assert out["models_in_memory"] == 2 and out["parameter_bytes"] == 2 * n_bytes, name
    assert len(cache.list_entries("lab_sft", tmp_path)) == 1


def test_warm_cache_builds_once_then_finds(tmp_path, monkeypatch, capsys):
    """`make notebooks` warms the cache first: the SFT and RM entries are built on the first
    call and found, not rebuilt, on the second (and by the CLI flag)."""
    monkeypatch.setattr(lab, "course_config", lambda: TINY)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    tiny_rm = dict(steps=2, batch_size=8, warmup=1, onpolicy_prompts=10,
                   onpolicy_samples=2, onpolicy_rounds=1, eval_samples=2)
    first = lab.warm_cache(0, progress=False, rm_overrides=tiny_rm)
    assert first["sft_built"] and first["rm_built"]
    again = lab.warm_cache(0, progress=False, rm_overrides=tiny_rm)
    assert not again["sft_built"] and not again["rm_built"]
    assert len(cache.list_entries("lab_sft", tmp_path)) == 1
    assert len(cache.list_entries("lab_rm", tmp_path)) == 1
    monkeypatch.setattr(lab, "warm_cache", lambda seed, progress: {"sft_seconds": 0.25,
                                                                   "rm_seconds": 0.5})
    assert lab.main(["--warm-cache", "--no-progress"]) == 0
    assert "lab cache ready: SFT 0.2 s, RM 0.5 s" in capsys.readouterr().out


def test_all_means_every_registered_stage():
    assert lab.parse_stages("all") == list(lab.STAGES)
    with pytest.raises(lab.LabError, match="unknown stage"):
        lab.parse_stages("all,sft")


def _report(per_seed, config=None):
    return lab.summarize(list(range(len(per_seed))), per_seed, config=config or {})


PPO_CFG = {"updates": 40, "n_prompts": 64}
GRPO_CFG = {"updates": 40, "n_prompts": 16, "group_size": 8}
DPO_CFG = {"steps": 150, "batch_size": 64}


def test_compare_rows_medians_std_budgets_and_rm_time():
    runs = [{"rm": {"train_seconds": 100.0 + s},
             "ppo": {"gold_accuracy": a, "kl_to_ref": 0.5, "train_seconds": 30.0 + s,
                     "gain_over_sft": a - 0.57, "models_in_memory": 4,
                     "parameter_bytes": 4000},
             "grpo": {"gold_accuracy": a + 0.2, "kl_to_ref": 0.8, "train_seconds": 12.0,
                      "models_in_memory": 2, "parameter_bytes": 2000}}
            for s, a in [(0.0, 0.70), (2.0, 0.60), (4.0, 0.80)]]
    rows = lab.compare_rows(_report(runs, {"ppo": PPO_CFG, "grpo": GRPO_CFG, "dpo": DPO_CFG}))
    assert [r["method"] for r in rows] == ["RM + PPO", "GRPO"]  # only the methods that ran
    ppo, grpo = rows
    assert ppo["gold_accuracy"] == 0.7 and ppo["seed_std"] == pytest.approx(0.1, abs=1e-4)
    assert ppo["seconds"] == 134.0  # median over seeds of (RM + PPO) training time
    assert ppo["samples"] == 40 * 64 and grpo["samples"] == 40 * 16 * 8
    assert ppo["models_in_memory"] == 4 and grpo["parameter_bytes"] == 2000
    assert grpo["gain_over_sft"] is None and grpo["gold_accuracy"] == 0.9
    one = lab.compare_rows(_report(runs[:1]))
    assert one[0]["seed_std"] is None and one[0]["samples"] is None
    dpo = lab.compare_rows(_report([{"dpo": {"gold_accuracy": 0.9}}], {"dpo": DPO_CFG}))[0]
    assert dpo["samples"] == 0 and dpo["pairs"] == 150 * 64
    with pytest.raises(lab.LabError, match="needs at least one of the stages ppo"):
        lab.compare_rows(_report([{"sft": {"gold_accuracy": 0.5}}]))


def test_format_compare_table():
    rows = [{"method": "GRPO", "gold_accuracy": 0.96, "seed_std": 0.01, "gain_over_sft": 0.39,
             "kl_to_ref": 0.83, "seconds": 12.3, "samples": 5120, "models_in_memory": 2,
             "parameter_bytes": 6_400_000},
            {"method": "DPO", "gold_accuracy": 0.9, "seed_std": None}]
    lines = lab.format_compare(rows).splitlines()
    assert lines[0].split()[:3] == ["method", "gold", "acc"]
    assert lines[1].split() == ["GRPO", "96.0%", "1.0%", "+39.0%", "0.83", "12.3", "5,120",
                                "2", "6.40"]
    assert lines[2].split()[:3] == ["DPO", "90.0%", "-"]


def test_cli_compare_needs_a_method(capsys):
    with pytest.raises(SystemExit) as exc:
        lab.main(["--stages", "pretrain", "--compare"])
    assert exc.value.code == 2 and "--compare needs at least one of" in capsys.readouterr().err


def test_lab_threads_per_machine(monkeypatch):
    monkeypatch.delenv("RLCOURSE_THREADS", raising=False)
    assert [lab.lab_threads(c) for c in (1, 2, 4, 32)] == [1, 2, 2, 8]
