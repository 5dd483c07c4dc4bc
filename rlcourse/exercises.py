"""Exercise checks: a verdict, a hint, and a safe fallback to the reference implementation.

A notebook exercise is always a function the learner completes. The cell after it calls::

    discounted_returns = check("mdp.discounted_returns", discounted_returns)

:func:`check` runs the registered tests on the learner's function and prints one of:

* passed  - the learner's function is used from here on;
* blank   - the exercise still raises ``NotImplementedError``; the reference from ``rlcourse``
  is used instead, with a message saying so, so the rest of the notebook still runs;
* failed  - what went wrong and a hint; the reference is used until the exercise passes.

Solution notebooks call :func:`strict_mode`, which turns *blank* and *failed* into errors.
Checks are registered with :func:`register` in the modules of :mod:`rlcourse.checks`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Status = Literal["passed", "blank", "failed"]


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: its tests, the reference implementation and a hint."""

    name: str
    notebook: str
    reference: Callable[..., Any]
    test: Callable[[Callable[..., Any]], None]
    hint: str

    @property
    def reference_name(self) -> str:
        ref = self.reference
        return f"{ref.__module__}.{ref.__qualname__}"


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check. ``message`` says what failed (empty when passed)."""

    name: str
    status: Status
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class ExerciseFailed(AssertionError):
    """Raised in strict mode (solution notebooks) when a check does not pass."""


class CheckFailure(AssertionError):
    """Raised by a check's test function; its message is shown to the learner."""


REGISTRY: dict[str, Exercise] = {}
_strict = False


def register(name: str, *, notebook: str, reference: Callable[..., Any], hint: str):
    """Decorator: register ``test(fn)`` as the check named ``name``.

    ``test`` calls the candidate on fixed inputs and raises :class:`CheckFailure` (or any
    ``AssertionError``) with a learner-readable message when an answer is wrong.
    """

    def decorate(test: Callable[[Callable[..., Any]], None]):
        if name in REGISTRY:
            raise ValueError(f"exercise {name!r} is registered twice")
        REGISTRY[name] = Exercise(name, notebook, reference, test, hint)
        return test

    return decorate


def get(name: str) -> Exercise:
    """The registered exercise called ``name`` (a clear error for unknown names)."""
    if name not in REGISTRY:
        _load_checks(name.split(".")[0])
    if name not in REGISTRY:
        _load_checks()
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"no exercise called {name!r}. Known exercises: {known}")
    return REGISTRY[name]


def evaluate(name: str, candidate: Callable[..., Any]) -> CheckResult:
    """Run the check ``name`` on ``candidate`` and return the verdict; never raises."""
    ex = get(name)
    if not callable(candidate):
        return CheckResult(name, "failed", f"expected a function, got {type(candidate).__name__}")
    try:
        ex.test(candidate)
    except NotImplementedError:
        return CheckResult(name, "blank", "the exercise still raises NotImplementedError")
    except AssertionError as err:
        return CheckResult(name, "failed", str(err) or "a test assertion failed")
    except Exception as err:  # a learner's code may raise anything; report it, don't crash
        return CheckResult(name, "failed", f"your function raised {type(err).__name__}: {err}")
    return CheckResult(name, "passed")


def check(name: str, candidate: Callable[..., Any]) -> Callable[..., Any]:
    """Check ``candidate``, print the verdict, and return the function to use from now on.

    Returns ``candidate`` when it passes, otherwise the reference implementation (so the
    rest of the notebook runs). In strict mode a blank or failed check raises instead.
    """
    ex = get(name)
    result = evaluate(name, candidate)
    if result.status == "passed":
        print(f"[PASS] {name}: all checks passed. Your implementation is used from here on.")
        return candidate
    if _strict:
        raise ExerciseFailed(f"{name}: {result.status}: {result.message}")
    if result.status == "blank":
        print(f"[SKIP] {name}: not attempted yet (still raises NotImplementedError).\n"
              f"       The notebook continues with the reference {ex.reference_name}.")
    else:
        print(f"[FAIL] {name}: {result.message}\n"
              f"       Hint: {ex.hint}\n"
              f"       The notebook continues with the reference {ex.reference_name}.")
    return ex.reference


def strict_mode(on: bool = True) -> None:
    """Make :func:`check` raise on blank or failed exercises (used by solution notebooks)."""
    global _strict
    _strict = bool(on)


def is_strict() -> bool:
    """Whether :func:`strict_mode` is on (i.e. this is a solution notebook)."""
    return _strict


def _load_checks(topic: str | None = None) -> None:
    """Import the checks of one topic (``rlcourse.checks.<topic>``), or all of them."""
    if topic is not None:
        try:
            importlib.import_module(f"rlcourse.checks.{topic}")
        except ModuleNotFoundError:
            pass
        return
    importlib.import_module("rlcourse.checks").load_all()


# ---- helpers for writing checks --------------------------------------------------------------

def expect_close(got: Any, expected: Any, what: str, atol: float = 1e-6, rtol: float = 1e-6
                 ) -> None:
    """Raise :class:`CheckFailure` unless ``got`` matches ``expected`` in shape and value."""
    exp = np.asarray(expected, dtype=float)
    try:
        arr = np.asarray(_to_numpy(got), dtype=float)
    except (TypeError, ValueError) as err:
        raise CheckFailure(f"{what}: could not read your result as numbers ({err})") from None
    if arr.shape != exp.shape:
        raise CheckFailure(f"{what}: expected shape {exp.shape}, got shape {arr.shape}")
    if not np.allclose(arr, exp, atol=atol, rtol=rtol, equal_nan=False):
        raise CheckFailure(f"{what}: expected {_fmt(exp)}, got {_fmt(arr)}")


def expect_true(condition: bool, message: str) -> None:
    """Raise :class:`CheckFailure` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailure(message)


def expect_type(got: Any, expected: type | tuple[type, ...], what: str, length: int | None = None
                ) -> None:
    """Raise :class:`CheckFailure` unless ``got`` is an ``expected`` instance (of ``length``).

    Use it before unpacking or calling methods on a learner's result, so a wrong return type
    is reported as such instead of as an error raised deep inside the check.
    """
    types = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(t.__name__ for t in types)
    if length is not None:
        wanted = f"{wanted} of {length} items"
    if not isinstance(got, types):
        raise CheckFailure(f"{what}: expected a {wanted}, got a {type(got).__name__}")
    if length is not None and len(got) != length:
        raise CheckFailure(f"{what}: expected a {wanted}, got {len(got)} items")


def call_with(fn: Callable[..., Any], what: str, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, reporting a crash as a :class:`CheckFailure` that names ``what``.

    ``NotImplementedError`` (a blank exercise) and assertion failures pass through unchanged.
    """
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as err:
        raise CheckFailure(f"{what}: your function raised {type(err).__name__}: {err}") from None


def expect_params_close(got: Any, expected: Any, what: str, atol: float = 1e-5,
                        hint: str = "") -> None:
    """Raise :class:`CheckFailure` unless two modules (or state dicts) hold the same parameters.

    Built for algorithm-step checks: run the learner's update and the reference on copies of the
    same network, optimiser state and batch, then compare. The message names the parameter
    with the largest difference, e.g. "parameters differ after your update: largest difference
    0.31 in critic.2.weight", followed by ``hint`` (what usually causes it).
    """
    g = got.state_dict() if hasattr(got, "state_dict") else dict(got)
    e = expected.state_dict() if hasattr(expected, "state_dict") else dict(expected)
    if set(g) != set(e):
        raise CheckFailure(f"{what}: the network's parameter names changed: expected "
                           f"{sorted(e)}, got {sorted(g)}")
    worst_name, worst = "", 0.0
    for name, ref in e.items():
        ref_arr = np.asarray(_to_numpy(ref), dtype=float)
        arr = np.asarray(_to_numpy(g[name]), dtype=float)
        if arr.shape != ref_arr.shape:
            raise CheckFailure(f"{what}: {name} has shape {arr.shape}, expected {ref_arr.shape}")
        diff = float(np.max(np.abs(arr - ref_arr))) if arr.size else 0.0
        if not np.isfinite(diff):
            diff = float("inf")
        if diff > worst:
            worst_name, worst = name, diff
    if worst > atol:
        msg = f"{what}: largest difference {worst:.3g} in {worst_name}"
        raise CheckFailure(f"{msg}. {hint}" if hint else msg)


def show_source(obj: Callable[..., Any]) -> str:
    """The package source of ``obj`` with its file and line, to compare with your own version.

    Returns the text (a notebook prints it): a header ``# rlcourse/ppo.py, line 521`` and the
    function's code.
    """
    import inspect
    from pathlib import Path

    target = inspect.unwrap(obj)
    path = Path(inspect.getsourcefile(target) or "?")
    parts = path.parts
    shown = "/".join(parts[parts.index("rlcourse"):]) if "rlcourse" in parts else path.name
    lines, start = inspect.getsourcelines(target)
    return f"# {shown}, line {start}\n" + "".join(lines)


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.round(a, 4), precision=4, separator=", ", threshold=12)
