"""Honesty tests for the checks of notebook 16: blanks and plausible wrong answers fail."""

import numpy as np
import pytest

from rlcourse import exercises
from rlcourse import traces_planning as tp
from tests.honesty import assert_verdict, honesty_cases


def _td_lambda(decay="gl", reset=True, replace=False, mask=True, old_trace=False, inplace=False):
    """td_lambda_step with one planted mistake, selected by the keyword arguments."""
    def fn(w, z, x, x_next, reward, terminated, first, alpha, gamma, lam):
        keep = 1.0 - np.asarray(first, float)[..., None] if reset else 1.0
        factor = {"gl": gamma * lam, "l": lam, "g": gamma, "none": 1.0}[decay]
        decayed = factor * keep * z
        z_new = np.where(x > 0, x, decayed) if replace else decayed + x
        alive = (1.0 - np.asarray(terminated, float)) if mask else 1.0
        delta = reward + gamma * alive * (w * x_next).sum(-1) - (w * x).sum(-1)
        step = (np.asarray(alpha, float) * delta)[..., None] * (z if old_trace else z_new)
        if inplace:
            w += step
            z[...] = z_new
            return w, z
        return w + step, z_new
    return fn


def _dyna(all_pairs=False, model_after=False, mask=True, no_direct=False, frozen_q=False,
          guard=False):
    """dyna_q_step with one planted mistake."""
    def update(Q, s, a, r, s2, term, alpha, gamma, Q_boot=None):
        boot = (Q if Q_boot is None else Q_boot)[s2].max()
        target = r if (term and mask) else r + gamma * boot
        Q[s, a] += alpha * (target - Q[s, a])

    def store(model, s, a, r, s2, term):
        model.next_state[s, a], model.reward[s, a] = s2, r
        model.terminated[s, a], model.seen[s, a] = term, True

    def fn(Q, model, s, a, r, s_next, terminated, n_planning, alpha, gamma, rng):
        if not no_direct:
            update(Q, s, a, r, s_next, terminated, alpha, gamma)
        if not model_after:
            store(model, s, a, r, s_next, terminated)
        pairs = np.arange(model.seen.size) if all_pairs else np.flatnonzero(model.seen)
        frozen = Q.copy() if frozen_q else None
        if guard and len(pairs) == 0:  # skips planning instead of crashing on an empty model
            n_planning = 0
        for pick in rng.integers(len(pairs), size=n_planning):
            ps, pa = divmod(int(pairs[pick]), Q.shape[1])
            update(Q, ps, pa, model.reward[ps, pa], model.next_state[ps, pa],
                   model.terminated[ps, pa], alpha, gamma, frozen)
        if model_after:
            store(model, s, a, r, s_next, terminated)
    return fn


def _linear(full_gradient=False, ratio=True, mask=True, ratio_on_target=False):
    def fn(w, x, x_next, reward, terminated, alpha, gamma, rho=1.0):
        alive = (1.0 - np.asarray(terminated, float)) if mask else 1.0
        rho = np.asarray(rho, float)
        target = reward + gamma * alive * (w * x_next).sum(-1)
        if ratio_on_target:
            target = rho * target
        delta = target - (w * x).sum(-1)
        grad = x - gamma * alive * x_next if full_gradient else x
        scale = alpha * (rho if ratio and not ratio_on_target else 1.0) * delta
        return w + np.asarray(scale)[..., None] * grad
    return fn


WRONG_ANSWERS = {
    "traces_planning.td_lambda_step": {
        "trace-not-decayed": _td_lambda(decay="none"),
        "decay-by-lambda-only": _td_lambda(decay="l"),
        "decay-by-gamma-only": _td_lambda(decay="g"),
        "replacing-instead-of-accumulating": _td_lambda(replace=True),
        "no-reset-at-episode-start": _td_lambda(reset=False),
        "bootstraps-through-terminal": _td_lambda(mask=False),
        "update-with-old-trace": _td_lambda(old_trace=True),
        "modifies-inputs-in-place": _td_lambda(inplace=True),
    },
    "traces_planning.dyna_q_step": {
        "plans-from-unvisited-pairs": _dyna(all_pairs=True),
        "model-updated-after-planning": _dyna(model_after=True),
        "model-updated-after-planning-guarded": _dyna(model_after=True, guard=True),
        "bootstraps-through-terminal": _dyna(mask=False),
        "no-direct-update": _dyna(no_direct=True),
        "planning-targets-from-frozen-Q": _dyna(frozen_q=True),
    },
    "traces_planning.linear_td_step": {
        "full-gradient": _linear(full_gradient=True),
        "ratio-not-applied": _linear(ratio=False),
        "bootstraps-through-terminal": _linear(mask=False),
        "ratio-on-target-only": _linear(ratio_on_target=True),
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_is_covered():
    exercises.get("traces_planning.td_lambda_step")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items()
            if ex.notebook == "16_traces_planning_approx"}
    assert mine == set(WRONG_ANSWERS)


def test_the_planted_mistakes_are_correct_apart_from_the_mistake():
    """Sanity of the planted versions: with the mistake's trigger absent they agree."""
    w, z = np.array([0.5, -1.0]), np.array([0.2, 0.1])
    x, x2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    args = (1.0, False, False, 0.1, 0.9, 0.8)
    ref = tp.td_lambda_step(w, z, x, x2, *args)
    got = _td_lambda()(w.copy(), z.copy(), x, x2, *args)
    assert np.allclose(ref[0], got[0]) and np.allclose(ref[1], got[1])
    assert np.allclose(_linear()(w, x, x2, 1.0, False, 0.1, 0.9, 2.0),
                       tp.linear_td_step(w, x, x2, 1.0, False, 0.1, 0.9, 2.0))


def test_failure_messages_name_the_stage():
    result = exercises.evaluate("traces_planning.td_lambda_step",
                                WRONG_ANSWERS["traces_planning.td_lambda_step"]
                                ["no-reset-at-episode-start"])
    assert result.status == "failed" and "first=True" in result.message
    result = exercises.evaluate("traces_planning.dyna_q_step",
                                WRONG_ANSWERS["traces_planning.dyna_q_step"]
                                ["plans-from-unvisited-pairs"])
    assert result.status == "failed" and "the only pair the model knows" in result.message
