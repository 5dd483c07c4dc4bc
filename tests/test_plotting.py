"""Learning-curve helpers against brute-force computations."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from rlcourse.plotting import moving_average, plot_curves, seed_band


def test_moving_average_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 50))
    got = moving_average(x, 7)
    brute = np.array([[row[max(0, t - 6): t + 1].mean() for t in range(50)] for row in x])
    np.testing.assert_allclose(got, brute, atol=1e-12)
    np.testing.assert_allclose(moving_average(x, 1), x)


def test_seed_band_values():
    c = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    mean, lo, hi = seed_band(c, "minmax")
    np.testing.assert_allclose(mean, [2, 3])
    np.testing.assert_allclose(lo, [0, 1])
    np.testing.assert_allclose(hi, [4, 5])
    _, lo, hi = seed_band(c, "std")
    np.testing.assert_allclose(hi - mean, [2, 2])
    _, lo, hi = seed_band(c, "ci95")
    np.testing.assert_allclose(hi - mean, 1.96 * 2 / np.sqrt(3))
    with pytest.raises(ValueError, match="band"):
        seed_band(c, "iqr")
    with pytest.raises(ValueError, match="n_seeds"):
        seed_band(np.zeros(3))


def test_plot_curves_draws_a_line_and_band_per_label():
    ax = plot_curves({"a": np.ones((4, 10)), "b": np.zeros((1, 10))}, smooth=3,
                     xlabel="episode", ylabel="return", title="t", logy=False)
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert len(ax.collections) == 1  # a band only where there are several seeds
    assert ax.get_xlabel() == "episode"
    plt.close("all")
    ax = plot_curves({"a": np.ones((2, 5)) + 1}, logy=True)
    assert ax.get_yscale() == "log"
    plt.close("all")
    with pytest.raises(ValueError, match="window"):
        moving_average(np.ones(3), 0)
