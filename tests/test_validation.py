"""Argument checks at the API boundary."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlcourse import validation as v


@pytest.mark.parametrize("g", [-0.1, 1.01, float("nan")])
def test_gamma_outside_unit_interval(g):
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\]"):
        v.check_gamma(g)


def test_gamma_ok_and_wrong_type():
    assert v.check_gamma(1) == 1.0 and v.check_gamma(0) == 0.0
    with pytest.raises(TypeError, match="gamma"):
        v.check_gamma("high")


def test_ranges_and_ints():
    assert v.check_in_range(0.5, "eps", 0, 1) == 0.5
    with pytest.raises(ValueError, match=r"eps must lie in \(0, 1\]"):
        v.check_in_range(0, "eps", 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        v.check_in_range(1, "eps", 0, 1, high_open=True)
    with pytest.raises(TypeError, match="eps must be a number"):
        v.check_in_range("big", "eps", 0, 1)
    assert v.check_positive_int(np.int64(3), "n") == 3
    with pytest.raises(TypeError, match="n must be a positive integer"):
        v.check_positive_int(2.0, "n")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        v.check_positive_int(0, "n")


def test_arrays_and_distributions():
    with pytest.raises(ValueError, match="2 dimension"):
        v.as_float_array([1, 2], "x", ndim=2)
    with pytest.raises(ValueError, match="NaN"):
        v.as_float_array([1, np.inf], "x")
    with pytest.raises(TypeError, match="numeric"):
        v.as_float_array(["a"], "x")
    with pytest.raises(ValueError, match=r"entry \(1,\) sums to 0.9"):
        v.check_distribution(np.array([[0.5, 0.5], [0.4, 0.5]]), "P")
    with pytest.raises(ValueError, match="negative"):
        v.check_distribution(np.array([1.5, -0.5]), "p")
    assert v.check_same_length(a=[1, 2], b=(3, 4)) == 2
    with pytest.raises(ValueError, match="a=2, b=3"):
        v.check_same_length(a=[1, 2], b=[1, 2, 3])


def test_discrete_space():
    assert v.check_discrete_space(gym.spaces.Discrete(5), "Q-learning") == 5
    with pytest.raises(TypeError, match="Q-learning needs a Discrete space, got Box"):
        v.check_discrete_space(gym.spaces.Box(-1, 1, (4,)), "Q-learning")
    with pytest.raises(ValueError, match="start"):
        v.check_discrete_space(gym.spaces.Discrete(3, start=1), "Q-learning")
