"""Honesty tests for the checks of notebook 03: blanks and plausible wrong answers fail."""

import numpy as np
import pytest

from rlcourse import exercises
from rlcourse import tabular as tb
from tests.honesty import assert_verdict, honesty_cases


def _disc(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return (r * gamma ** np.arange(r.shape[-1])).sum(axis=-1)


def _nstep(power_shift=0, mask=True, discount_rewards=True):
    def fn(rewards, bootstrap, terminated, gamma):
        r = np.asarray(rewards, dtype=float)
        k = r.shape[-1]
        head = _disc(r, gamma) if discount_rewards else r.sum(axis=-1)
        keep = 1.0 - np.asarray(terminated, dtype=float) if mask else 1.0
        return head + gamma ** (k + power_shift) * keep * np.asarray(bootstrap, dtype=float)
    return fn


def _weights_no_zero_case(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    if np.any((q == 0) & (p > 0)):
        raise ValueError("support")
    with np.errstate(invalid="ignore", divide="ignore"):
        return p / q


def _weights_no_support_error(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    return np.divide(p, q, out=np.zeros(p.shape), where=q > 0)


def _weights_first_zero_only(p, q):
    """Checks the support only at q's first zero (q.argmin()), so a later violation slips by."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if q.min() == 0 and p.flat[q.argmin()] > 0:
        raise ValueError("support")
    return np.divide(p, q, out=np.zeros(p.shape), where=q > 0)


def _weights_inverted(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    if np.any((q == 0) & (p > 0)):
        raise ValueError("support")
    return np.divide(q, p, out=np.zeros(p.shape), where=p > 0)


# ---- epsilon_greedy ----------------------------------------------------------------------


def eg_ties_to_first(q, eps, rng):
    """np.argmax: every tie goes to the first action."""
    if rng.random() < eps:
        return int(rng.integers(q.shape[0]))
    return int(np.argmax(q))


def eg_ties_to_last(q, eps, rng):
    if rng.random() < eps:
        return int(rng.integers(q.shape[0]))
    return int(np.flatnonzero(q == q.max())[-1])


def eg_explore_when_above(q, eps, rng):
    """Explores when u >= epsilon: the probabilities of exploring and exploiting swapped."""
    if rng.random() >= eps:
        return int(rng.integers(q.shape[0]))
    best = np.flatnonzero(q == q.max())
    return int(best[rng.integers(best.size)])


def eg_explore_non_greedy_only(q, eps, rng):
    """Exploration picks among the non-greedy actions only."""
    if rng.random() < eps:
        others = np.flatnonzero(q != q.max())
        if others.size:
            return int(others[rng.integers(others.size)])
    best = np.flatnonzero(q == q.max())
    return int(best[rng.integers(best.size)])


def eg_float_for_random_action(q, eps, rng):
    """The random action from a second rng.random() instead of rng.integers (other stream)."""
    if rng.random() < eps:
        return int(rng.random() * q.shape[0])
    best = np.flatnonzero(q == q.max())
    return int(best[rng.integers(best.size)])


def eg_reuses_u(q, eps, rng):
    """The old course scheme: the explore action from u / epsilon (a different contract)."""
    u = rng.random()
    if u < eps:
        return int(u / eps * q.shape[0])
    best = np.flatnonzero(q == q.max())
    return int(best[rng.integers(best.size)])


def eg_min_instead_of_max(q, eps, rng):
    if rng.random() < eps:
        return int(rng.integers(q.shape[0]))
    best = np.flatnonzero(q == q.min())
    return int(best[rng.integers(best.size)])


# ---- q_learning_episode ------------------------------------------------------------------


def _ql(*, mask_terminal=True, stop_on_trunc_as_term=False, sarsa=False, ties_first=False,
        keep_state=False, ignore_truncation=False, choose_before_update=False, copy_q=False,
        discounted_return=False, no_alpha=False, length_shift=0, no_gamma=False):
    """A Q-learning episode with one planted change (all flags False: the right answer)."""
    def act(q_row, eps, rng):
        return eg_ties_to_first(q_row, eps, rng) if ties_first else tb.epsilon_greedy(
            q_row, eps, rng)

    def fn(env, Q, alpha, gamma, epsilon, rng):
        Q = Q.copy() if copy_q else Q
        g = 1.0 if no_gamma else gamma
        s, _ = env.reset()
        a = act(Q[s], epsilon, rng)
        total, steps, t = 0.0, 0, 0
        while True:
            if steps and not (sarsa or choose_before_update):
                a = act(Q[s], epsilon, rng)
            s2, r, term, trunc, _ = env.step(a)
            if sarsa or choose_before_update:
                a2 = act(Q[s2], epsilon, rng)
            end = term or (trunc and stop_on_trunc_as_term)
            boot = Q[s2, a2] if sarsa else np.max(Q[s2])
            target = r + (0.0 if (end and mask_terminal) else g * boot)
            Q[s, a] = target if no_alpha else Q[s, a] + alpha * (target - Q[s, a])
            total += (gamma ** t if discounted_return else 1.0) * r
            steps, t = steps + 1, t + 1
            if not keep_state:
                s = s2
            if sarsa or choose_before_update:
                a = a2
            if term or (trunc and not ignore_truncation):
                return total, steps + length_shift
    return fn


WRONG_EPISODES = {
    "bootstraps-from-terminal-state": _ql(mask_terminal=False),
    "truncation-treated-as-termination": _ql(stop_on_trunc_as_term=True),
    "sarsa-target-next-action": _ql(sarsa=True),
    "ties-always-action-0": _ql(ties_first=True),
    "forgets-the-new-state": _ql(keep_state=True),
    "ignores-truncation": _ql(ignore_truncation=True),
    "next-action-drawn-before-update": _ql(choose_before_update=True),
    "updates-a-copy-of-Q": _ql(copy_q=True),
    "returns-discounted-return": _ql(discounted_return=True),
    "no-step-size": _ql(no_alpha=True),
    "length-off-by-one": _ql(length_shift=1),
    "no-discount": _ql(no_gamma=True),
}


WRONG_ANSWERS = {
    "tabular.td_error": {
        # the seed notes' prose (E-42): gamma multiplies (V(s') - V(s))
        "gamma-on-difference": lambda r, v, v2, t, g: r + g * (1 - np.asarray(t, float)) * (v2 - v),
        "no-terminal-mask": lambda r, v, v2, t, g: r + g * v2 - v,
        "wrong-sign": lambda r, v, v2, t, g: v - (r + g * (1 - np.asarray(t, float)) * v2),
        "no-gamma": lambda r, v, v2, t, g: r + (1 - np.asarray(t, float)) * v2 - v,
    },
    "tabular.n_step_return": {
        "bootstrap-power-k-minus-1": _nstep(power_shift=-1),
        "bootstrap-power-k-plus-1": _nstep(power_shift=1),
        "no-terminal-mask": _nstep(mask=False),
        "undiscounted-rewards": _nstep(discount_rewards=False),
        "first-reward-discounted": lambda r, b, t, g: g * _nstep()(r, b, t, g),
        "len-instead-of-last-axis": lambda r, b, t, g: (
            (np.asarray(r) * g ** np.arange(np.shape(r)[-1])).sum(axis=-1)
            + g ** len(r) * (1 - np.asarray(t, float)) * b),
    },
    "tabular.sarsa_target": {
        "max-instead-of-next-action": lambda r, q, a, t, g: r + (0.0 if t else g * max(q)),
        "no-terminal-mask": lambda r, q, a, t, g: r + g * q[a],
        "first-action": lambda r, q, a, t, g: r + (0.0 if t else g * q[0]),
    },
    "tabular.q_learning_target": {
        "no-terminal-mask": lambda r, q, t, g: r + g * np.max(q),
        "mean-instead-of-max": lambda r, q, t, g: r + (0.0 if t else g * np.mean(q)),
        "max-abs": lambda r, q, t, g: r + (0.0 if t else g * np.max(np.abs(q))),
        "no-gamma": lambda r, q, t, g: r + (0.0 if t else np.max(q)),
    },
    "tabular.importance_weights": {
        "q-over-p": _weights_inverted,
        "nan-where-both-zero": _weights_no_zero_case,
        "no-support-error": _weights_no_support_error,
        "support-checked-at-first-zero-only": _weights_first_zero_only,
    },
    "tabular.shaped_reward": {
        "gamma-on-current-potential": lambda r, p, p2, t, g: r + (1 - np.asarray(t, float)) * p2
        - g * p,
        "sign-flipped": lambda r, p, p2, t, g: r + p - g * (1 - np.asarray(t, float)) * p2,
        "no-terminal-mask": lambda r, p, p2, t, g: r + g * p2 - p,
    },
    "tabular.epsilon_greedy": {
        "ties-to-first-action": eg_ties_to_first,
        "ties-to-last-action": eg_ties_to_last,
        "explores-when-u-above-epsilon": eg_explore_when_above,
        "explores-non-greedy-actions-only": eg_explore_non_greedy_only,
        "random-action-from-rng-random": eg_float_for_random_action,
        "reuses-u-for-the-random-action": eg_reuses_u,
        "min-instead-of-max": eg_min_instead_of_max,
    },
    "tabular.q_learning_episode": WRONG_EPISODES,
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_is_covered():
    exercises.get("tabular.td_error")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "03_model_free"}
    assert mine == set(WRONG_ANSWERS)


def test_failure_messages_name_the_input():
    result = exercises.evaluate("tabular.td_error", WRONG_ANSWERS["tabular.td_error"]["no-gamma"])
    assert result.status == "failed"
    assert "gamma=0.9" in result.message and "expected" in result.message


def test_the_planted_episode_is_right_with_no_flag_set():
    """The factory behind WRONG_EPISODES passes with no planted change, so each failure above
    is caused by its one change."""
    assert exercises.evaluate("tabular.q_learning_episode", _ql()).status == "passed"


def test_episode_scenarios_cover_termination_and_truncation():
    """The exact comparison sees finished episodes (a bootstrap from the exit would show) and
    episodes cut by the time limit (which must still bootstrap)."""
    from rlcourse.checks import tabular as ct

    ends = set()
    for _, Q0, eps, limit, n in ct._episode_scenarios():
        env, Q, rng = ct._maze(limit), Q0.copy(), np.random.default_rng(3)
        for _ in range(n):
            _, steps = tb.q_learning_episode(env, Q, 0.5, 0.9, eps, rng)
            ends.add("terminated" if env.unwrapped.state == 8 else "truncated")
    assert ends == {"terminated", "truncated"}
