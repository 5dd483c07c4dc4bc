"""rlcourse.setup: seeding, device choice, threads, plot style."""

from __future__ import annotations

import random

import matplotlib as mpl
import numpy as np
import pytest
import torch

import rlcourse
from rlcourse import core


def _draws():
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_setup_makes_python_numpy_and_torch_reproducible(capsys):
    rlcourse.setup(seed=7)
    first = _draws()
    session = rlcourse.setup(seed=7)
    assert _draws() == first
    rlcourse.setup(seed=8, verbose=False)
    assert _draws() != first
    out = capsys.readouterr().out
    assert "seed 7" in out and "device cpu" in out and "torch threads" in out
    assert session.seed == 7 and session.elapsed() >= 0
    assert core.current_session().seed == 8


def test_setup_sets_threads_and_plot_style():
    s = rlcourse.setup(seed=0, threads=1, verbose=False)
    assert torch.get_num_threads() == 1 == s.threads
    assert mpl.rcParams["axes.grid"] is True


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        rlcourse.seed_everything(seed)


def test_bad_thread_count_is_rejected():
    with pytest.raises(ValueError, match="threads"):
        rlcourse.setup(seed=0, threads=0, verbose=False)


def test_default_threads(monkeypatch):
    monkeypatch.delenv(core.THREADS_ENV, raising=False)
    assert core.default_threads(2) == 1
    assert core.default_threads(1) == 1
    assert core.default_threads(8) == 4
    assert core.default_threads(64) == 8
    monkeypatch.setenv(core.THREADS_ENV, "3")
    assert core.default_threads(2) == 3
    monkeypatch.setenv(core.THREADS_ENV, "0")
    with pytest.raises(ValueError, match=core.THREADS_ENV):
        core.default_threads(2)


def test_pick_device(monkeypatch):
    monkeypatch.delenv(core.DEVICE_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert rlcourse.pick_device() == expected
    assert rlcourse.pick_device("cpu") == "cpu"
    monkeypatch.setenv(core.DEVICE_ENV, "cpu")
    assert rlcourse.pick_device() == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        rlcourse.pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_requesting_a_missing_gpu_is_an_error():
    with pytest.raises(RuntimeError, match="no CUDA"):
        rlcourse.pick_device("cuda")
