"""Checks for notebook 16 (eligibility traces, planning and linear function approximation).

Each step exercise is checked twice: on hand-computed single steps (each one isolates one
stage: the trace reset, the trace decay, the terminal mask, the planning draw ...) and by
behaviour, running the learner's step and the reference side by side on a fixed stream and
comparing the results exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcourse import traces_planning as tp
from rlcourse.exercises import (
    CheckFailure,
    call_with,
    expect_close,
    expect_params_close,
    expect_type,
    register,
)

NB = "16_traces_planning_approx"


def _pair(fn: Callable, what: str, *args) -> tuple[np.ndarray, np.ndarray]:
    out = call_with(fn, what, *args)
    expect_type(out, (tuple, list), what, length=2)
    return np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)


def _td_lambda_single_steps(fn: Callable) -> None:
    w, x, x2 = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    old_z = np.array([1.0, 0.5, 0.25])
    args = "w=[0.5, -1, 2], x=[1, 0, 0], x_next=[0, 1, 0], reward=1, alpha=0.1, gamma=0.9, lam=0.8"
    cases = [  # (z, terminated, first, what it isolates)
        (old_z, False, True, "first=True (a new episode: the old trace [1, 0.5, 0.25] must be "
                             "cleared before adding x)"),
        (old_z, False, False, "first=False (the trace [1, 0.5, 0.25] decays by gamma * lam, "
                              "then x is added)"),
        (old_z, True, False, "terminated=True (nothing is bootstrapped from a terminal state)"),
    ]
    for z, term, first, what in cases:
        w_ref, z_ref = tp.td_lambda_step(w, z, x, x2, 1.0, term, first, 0.1, 0.9, 0.8)
        label = f"td_lambda_step({args}, z={z.tolist()}, terminated={term}, first={first})"
        w_got, z_got = _pair(fn, label, w.copy(), z.copy(), x, x2, 1.0, term, first, 0.1, 0.9,
                             0.8)
        expect_close(z_got, z_ref, f"{label}: the new trace z, case {what}")
        expect_close(w_got, w_ref, f"{label}: the new weights w, case {what}")


def _walk_stream(n_steps: int, seed: int) -> tuple[np.ndarray, ...]:
    """A 5-state random walk (states 1..5, terminals 0 and 6) as one stream of episodes."""
    rng = np.random.default_rng(seed)
    s, states, nexts, first = 3, [], [], []
    new = True
    for _ in range(n_steps):
        s2 = s + int(rng.choice((-1, 1)))
        states.append(s), nexts.append(s2), first.append(new)
        new = s2 in (0, 6)
        s = 3 if new else s2
    nexts = np.array(nexts)
    return np.array(states), nexts, (nexts == 6) * 1.0 - (nexts == 0), nexts % 6 == 0, \
        np.array(first)


@register("traces_planning.td_lambda_step", notebook=NB, reference=tp.td_lambda_step,
          hint="Clear the trace when s_t starts an episode (first), decay it by gamma * lam, add "
               "x (accumulating: add, do not replace), then move w by alpha * delta along the "
               "NEW trace; delta bootstraps from w . x_next only when not terminated. Sum over "
               "the last axis and broadcast over the leading ones; return new arrays.")
def _(fn: Callable) -> None:
    _td_lambda_single_steps(fn)
    states, nexts, rewards, term, first = _walk_stream(60, seed=3)
    eye = np.eye(7)
    alpha = np.array([[0.1], [0.4]])  # [2 step sizes, 1]: the sweep's broadcasting
    w_got = w_ref = np.zeros((2, 3, 7))
    z_got = z_ref = np.zeros((2, 3, 7))
    for k in range(len(states)):
        x, x2 = np.broadcast_to(eye[states[k]], (3, 7)), np.broadcast_to(eye[nexts[k]], (3, 7))
        r, t, f = (np.full(3, v) for v in (rewards[k], term[k], first[k]))
        w_got, z_got = _pair(fn, f"td_lambda_step on [2, 3, 7] arrays at step {k}", w_got,
                             z_got, x, x2, r, t, f, alpha, 0.9, 0.8)
        w_ref, z_ref = tp.td_lambda_step(w_ref, z_ref, x, x2, r, t, f, alpha, 0.9, 0.8)
        expect_params_close({"z": z_got, "w": w_got}, {"z": z_ref, "w": w_ref},
                            f"a 5-state walk, one-hot features, arrays [2 step sizes, 3 runs, 7],"
                            f" after step {k + 1} (episode start: {bool(first[k])}, terminated: "
                            f"{bool(term[k])})", atol=1e-9,
                            hint="Check the trace reset at episode starts and the broadcasting "
                                 "of alpha [2, 1] over the leading axes.")
    _expect_inputs_unchanged(fn)


def _expect_inputs_unchanged(fn: Callable) -> None:
    w, z = np.array([1.0, 2.0]), np.array([0.5, 0.5])
    fn(w, z, np.array([1.0, 0.0]), np.array([0.0, 1.0]), 1.0, False, False, 0.5, 0.9, 0.8)
    if not (np.array_equal(w, [1.0, 2.0]) and np.array_equal(z, [0.5, 0.5])):
        raise CheckFailure("td_lambda_step changed its input arrays w or z in place; return new "
                           "arrays instead (the sweep keeps the old ones for finished runs)")


# ---- Dyna-Q ---------------------------------------------------------------------------------

def _chain_tables() -> tp.GridTables:
    """A 1x5 corridor with the goal at the right end (start in the middle)."""
    return tp.grid_tables(("..S.G",))


def _dyna_first_steps(fn: Callable) -> None:
    Q, model = np.zeros((5, 4)), tp.DynaModel.empty(5, 4)
    call_with(fn, "dyna_q_step on an empty model", Q, model, 3, 3, 1.0, 4, True, 0,
              0.5, 0.9, np.random.default_rng(0))
    expect_close(Q[3, 3], 0.5, "dyna_q_step(s=3, a=3, r=1, s_next=4, terminated=True, "
                               "n_planning=0, alpha=0.5) from Q = 0: the direct update Q[3, 3]")
    expect_close(Q.sum(), 0.5, "dyna_q_step with n_planning=0: only Q[3, 3] may change")
    stored = (model.seen[3, 3], model.next_state[3, 3], model.reward[3, 3],
              model.terminated[3, 3])
    if stored != (True, 4, 1.0, True):
        raise CheckFailure(f"after dyna_q_step(s=3, a=3, r=1, s_next=4, terminated=True) the "
                           f"model should hold seen=True, next_state=4, reward=1, terminated="
                           f"True for (3, 3); got {stored}")
    Q, model = np.zeros((5, 4)), tp.DynaModel.empty(5, 4)
    Q[4] = 2.0  # e.g. an optimistic initial value in the (terminal) goal's row
    call_with(fn, "dyna_q_step with Q[4] = [2, 2, 2, 2]", Q, model, 3, 3, 1.0, 4, True, 0,
              0.5, 0.9, np.random.default_rng(0))
    expect_close(Q[3, 3], 0.5, "dyna_q_step(s=3, a=3, r=1, s_next=4, terminated=True, "
                               "n_planning=0, alpha=0.5, gamma=0.9) with Q[4] = [2, 2, 2, 2]: "
                               "the target of a transition into a terminal state is r alone")
    Q, model = np.zeros((5, 4)), tp.DynaModel.empty(5, 4)
    call_with(fn, "dyna_q_step on an empty model with n_planning=3 (the transition just "
                  "observed must be in the model before planning starts)", Q, model, 3, 3, 1.0,
              4, True, 3, 0.5, 0.9, np.random.default_rng(0))
    expect_close(Q[3, 3], 1 - 0.5**4, "dyna_q_step(s=3, a=3, r=1, s_next=4, terminated=True, "
                 "n_planning=3, alpha=0.5) from an empty model and Q = 0: the only pair the "
                 "model knows is (3, 3), so the direct update and 3 planning updates all move "
                 "Q[3, 3] towards 1")
    expect_close(Q.sum(), Q[3, 3], "planning with a model that has seen only (3, 3): no other "
                                   "entry of Q may change")


@register("traces_planning.dyna_q_step", notebook=NB, reference=tp.dyna_q_step,
          hint="Order: the direct Q-learning update, then store the transition in the model, "
               "then plan. Plan only from pairs the model has seen (np.flatnonzero(model.seen)), "
               "draw all n_planning picks at once with rng.integers(len(pairs), size=n_planning) "
               "and apply them one after the other; a terminal transition has target r only.")
def _(fn: Callable) -> None:
    _dyna_first_steps(fn)
    tables = _chain_tables()
    rng_data = np.random.default_rng(7)
    Q_got, Q_ref = np.full((5, 4), 0.5), np.full((5, 4), 0.5)  # optimistic: Q(G, .) = 0.5 too
    m_got, m_ref = tp.DynaModel.empty(5, 4), tp.DynaModel.empty(5, 4)
    rng_got, rng_ref = np.random.default_rng(11), np.random.default_rng(11)
    s = tables.start
    for k in range(40):
        a = int(rng_data.integers(4))
        s2, r, done = tables.next_state[s, a], tables.reward[s, a], tables.terminated[s, a]
        args = (s, a, float(r), int(s2), bool(done), 5, 0.5, 0.9)
        call_with(fn, f"dyna_q_step at step {k + 1} of a random walk in a corridor", Q_got,
                  m_got, *args, rng_got)
        tp.dyna_q_step(Q_ref, m_ref, *args, rng_ref)
        expect_params_close({"Q": Q_got, "model.seen": m_got.seen}, {"Q": Q_ref,
                            "model.seen": m_ref.seen},
                            f"Dyna-Q with n_planning=5 in a 1x5 corridor from Q = 0.5 "
                            f"everywhere (the goal's row too, as with optimistic values), "
                            f"after real step {k + 1} "
                            f"(s={s}, a={a}, s_next={int(s2)}, terminated={bool(done)})",
                            atol=1e-9,
                            hint="Plan only from seen pairs, update the model before planning, "
                                 "and do not bootstrap from a terminal next state.")
        s = tables.start if done else int(s2)


# ---- linear TD(0) with an importance ratio --------------------------------------------------

@register("traces_planning.linear_td_step", notebook=NB, reference=tp.linear_td_step,
          hint="delta = reward + gamma * (1 - terminated) * w . x_next - w . x, and "
               "w + alpha * rho * delta * x. Semi-gradient: the target is a constant, so the "
               "direction is x, not x - gamma * x_next. Sum over the last axis and broadcast "
               "over the leading ones.")
def _(fn: Callable) -> None:
    w, x, x2 = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0])
    args = "w=[1, -2, 0.5], x=[2, 0, 1], x_next=[0, 1, 2], reward=0.5, alpha=0.1, gamma=0.9"
    for term, rho in ((False, 1.0), (True, 1.0), (False, 7.0), (False, 0.0)):
        want = tp.linear_td_step(w, x, x2, 0.5, term, 0.1, 0.9, rho)
        label = f"linear_td_step({args}, terminated={term}, rho={rho})"
        expect_close(call_with(fn, label, w.copy(), x, x2, 0.5, term, 0.1, 0.9, rho), want,
                     label)
    want = tp.linear_td_step(w, x, x2, 0.5, False, 0.1, 0.9)
    expect_close(call_with(fn, "linear_td_step without rho", w.copy(), x, x2, 0.5, False, 0.1,
                           0.9), want, f"linear_td_step({args}, terminated=False) with the "
                                       f"default rho=1")
    X = tp.baird_features()
    rng = np.random.default_rng(5)
    w_got = w_ref = tp.BAIRD_W0[None].repeat(2, axis=0)  # [2 runs, 8]
    s = np.array([0, 6])
    for k in range(30):
        solid = rng.random(2) < 1 / 7
        s2 = np.where(solid, 6, rng.integers(0, 6, size=2))
        rho = np.where(solid, 7.0, 0.0)
        w_got = np.asarray(call_with(fn, f"linear_td_step on Baird's features at step {k + 1}",
                                     w_got, X[s], X[s2], np.zeros(2), np.zeros(2, bool), 0.01,
                                     0.99, rho), dtype=float)
        w_ref = tp.linear_td_step(w_ref, X[s], X[s2], np.zeros(2), np.zeros(2, bool), 0.01,
                                  0.99, rho)
        expect_params_close({"w": w_got}, {"w": w_ref}, f"off-policy TD(0) on Baird's "
                            f"counterexample, 2 runs [2, 8], after step {k + 1}", atol=1e-9,
                            hint="Multiply the update by rho elementwise (one ratio per run).")
        s = s2
