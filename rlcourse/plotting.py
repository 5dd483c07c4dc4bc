"""Plotting helpers: learning curves with bands over seeds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rlcourse.validation import check_positive_int


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average along the last axis; the first values average what exists.

    Shapes: ``x`` [..., T] -> [..., T].
    """
    window = check_positive_int(window, "window")
    x = np.asarray(x, dtype=float)
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., window:] = c[..., window:] - c[..., :-window]
    counts = np.minimum(np.arange(1, x.shape[-1] + 1), window)
    return out / counts


def seed_band(curves: np.ndarray, band: str = "ci95") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and band of ``curves`` [n_seeds, T] -> (mean, low, high), each [T].

    ``band``: 'ci95' (normal 95% interval of the mean), 'std' (one standard deviation) or
    'minmax' (range over seeds).
    """
    c = np.asarray(curves, dtype=float)
    if c.ndim != 2:
        raise ValueError(f"curves must have shape [n_seeds, T], got {c.shape}")
    mean = c.mean(axis=0)
    if band == "minmax":
        return mean, c.min(axis=0), c.max(axis=0)
    sd = c.std(axis=0, ddof=1) if c.shape[0] > 1 else np.zeros_like(mean)
    if band == "std":
        half = sd
    elif band == "ci95":
        half = 1.96 * sd / np.sqrt(c.shape[0])
    else:
        raise ValueError(f"band must be 'ci95', 'std' or 'minmax', got {band!r}")
    return mean, mean - half, mean + half


def plot_curves(curves: Mapping[str, np.ndarray], ax=None, *, x: np.ndarray | None = None,
                smooth: int = 1, band: str = "ci95", xlabel: str = "step",
                ylabel: str = "", title: str = "", logy: bool = False):
    """Plot one line per entry of ``curves`` ({label: [n_seeds, T]}) with a band over seeds."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    for label, data in curves.items():
        data = np.atleast_2d(np.asarray(data, dtype=float))
        if smooth > 1:
            data = moving_average(data, smooth)
        mean, low, high = seed_band(data, band)
        xs = np.arange(1, mean.shape[0] + 1) if x is None else np.asarray(x)
        (line,) = ax.plot(xs, mean, label=label)
        if data.shape[0] > 1:
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if len(curves) > 1:
        ax.legend()
    return ax
