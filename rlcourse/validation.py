"""Argument checks used at the API boundary, so bad input fails early with a clear message."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_gamma(gamma: float, name: str = "gamma") -> float:
    """Return ``gamma`` as a float in [0, 1], else raise ``ValueError``."""
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [0, 1], got {gamma!r}") from None
    if not 0.0 <= g <= 1.0 or np.isnan(g):
        raise ValueError(f"{name} must lie in [0, 1], got {gamma!r}")
    return g


def check_in_range(value: float, name: str, low: float, high: float,
                   low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if it lies in the interval, else raise ``ValueError``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    ok_low = v > low if low_open else v >= low
    ok_high = v < high if high_open else v <= high
    if not (ok_low and ok_high) or np.isnan(v):
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lb}{low}, {high}{rb}, got {value!r}")
    return v


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int >= 1, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def as_float_array(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a finite float array (with ``ndim`` dimensions if given), else raise."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric, got {type(x).__name__}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_distribution(p: np.ndarray, name: str, axis: int = -1, atol: float = 1e-8) -> None:
    """Raise unless ``p`` is non-negative and sums to 1 along ``axis``."""
    if np.any(p < -atol):
        raise ValueError(f"{name} has negative probabilities (min {p.min():.3g})")
    sums = p.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=1e-6):
        worst = np.unravel_index(np.argmax(np.abs(sums - 1.0)), sums.shape)
        raise ValueError(f"{name} must sum to 1 along axis {axis}; entry {tuple(map(int, worst))}"
                         f" sums to {float(sums[worst]):.6g}")


def check_same_length(**arrays: Any) -> int:
    """Raise unless all keyword arrays have the same length; return that length."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"length mismatch: {desc}")
    return next(iter(lengths.values())) if lengths else 0


def check_discrete_space(space: Any, what: str) -> int:
    """Return ``space.n`` for a gymnasium ``Discrete`` space, else raise ``TypeError``."""
    from gymnasium import spaces

    if not isinstance(space, spaces.Discrete):
        raise TypeError(f"{what} needs a Discrete space, got {type(space).__name__} ({space}); "
                        "tabular methods only work with finitely many states and actions")
    if int(space.start) != 0:
        raise ValueError(f"{what} needs a Discrete space starting at 0, got start={space.start}")
    return int(space.n)
