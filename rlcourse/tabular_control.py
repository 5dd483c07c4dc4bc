"""Classic tabular control from Sutton & Barto, chapters 5 and 6 (notebook 15).

Formulas first, as small pure functions that work on NumPy arrays: the Expected SARSA target,
the Double Q-learning update, ordinary and weighted importance-sampling estimates, and the
sample-average update of Monte Carlo control. Then the experiments, each vectorised over
independent runs so that the book's averages over many runs cost seconds:

* SARSA, Expected SARSA and Q-learning on Cliff Walking (the table of gymnasium's env,
  stepped with NumPy for many runs and step sizes at once);
* Q-learning vs Double Q-learning on the maximisation-bias MDP of Example 6.7;
* a NumPy blackjack with the rules of gymnasium's ``Blackjack-v1(sab=True)`` (verified card for
  card against the env in the tests), its exact values by dynamic programming, Monte Carlo
  control with exploring starts, and the off-policy prediction of Example 5.4.

Conventions: ``terminated`` is 1 (True) when the next state is terminal, so nothing is
bootstrapped from it. Blackjack actions follow gymnasium: 0 = stick, 1 = hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from rlcourse.tabular import epsilon_greedy_probs
from rlcourse.validation import (
    as_float_array,
    check_discrete_space,
    check_gamma,
    check_in_range,
    check_positive_int,
)

# ---- the formulas ----------------------------------------------------------------------------


def expected_sarsa_target(reward: Any, q_next: Any, terminated: Any, gamma: float,
                          epsilon: float) -> Any:
    """r + gamma * (1 - terminated) * sum_a pi(a|s') Q(s', a), pi epsilon-greedy on ``q_next``.

    ``q_next`` [..., A] holds the rows Q[s']; ``reward`` and ``terminated`` broadcast against
    its leading axes [...]. Greedy ties share the 1 - epsilon mass (as in the behaviour).
    """
    gamma = check_gamma(gamma)
    q = as_float_array(q_next, "q_next")
    probs = epsilon_greedy_probs(q, epsilon)
    done = np.asarray(terminated, dtype=float)
    return reward + gamma * (1.0 - done) * (probs * q).sum(axis=-1)


def double_q_update(q1: np.ndarray, q2: np.ndarray, s: Any, a: Any, r: Any, s_next: Any,
                    terminated: Any, coin: Any, alpha: float, gamma: float) -> None:
    """One Double Q-learning step for a batch of transitions, in place; returns None.

    ``q1``, ``q2``: float tables [S, A]. ``s``, ``a``, ``s_next``: int [N]; ``r`` [N];
    ``terminated``, ``coin``: bool [N]. Where ``coin`` is True, Q1 is updated towards
    r + gamma * Q2(s', argmax_a Q1(s', a)) (Q1 selects, Q2 evaluates); elsewhere Q2 is updated
    with the roles swapped. The (s, a) pairs of one batch must be distinct.
    """
    s, a, s_next = (np.asarray(x, dtype=int) for x in (s, a, s_next))
    r = np.asarray(r, dtype=float)
    keep = 1.0 - np.asarray(terminated, dtype=float)
    coin = np.asarray(coin, dtype=bool)
    for upd, other, rows in ((q1, q2, coin), (q2, q1, ~coin)):
        sn = s_next[rows]
        best = upd[sn].argmax(axis=-1)
        target = r[rows] + gamma * keep[rows] * other[sn, best]
        upd[s[rows], a[rows]] += alpha * (target - upd[s[rows], a[rows]])


def q_learning_update(q: np.ndarray, s: Any, a: Any, r: Any, s_next: Any, terminated: Any,
                      alpha: float, gamma: float) -> None:
    """One Q-learning step for a batch of transitions on the table ``q`` [S, A], in place.

    Same argument shapes as :func:`double_q_update`; the (s, a) pairs must be distinct.
    """
    s, a, s_next = (np.asarray(x, dtype=int) for x in (s, a, s_next))
    keep = 1.0 - np.asarray(terminated, dtype=float)
    target = np.asarray(r, dtype=float) + gamma * keep * q[s_next].max(axis=-1)
    q[s, a] += alpha * (target - q[s, a])


def ordinary_is_estimates(returns: Any, ratios: Any) -> np.ndarray:
    """Running ordinary importance-sampling estimates along the last axis.

    ``returns``, ``ratios``: [..., n] (episode i's return G_i and ratio rho_i). Entry k of the
    result [..., n] is sum_{i<=k} rho_i G_i / (k + 1): an unbiased average over k + 1 episodes.
    """
    g, rho = as_float_array(returns, "returns"), as_float_array(ratios, "ratios")
    if np.any(rho < 0):
        raise ValueError("importance ratios must be non-negative")
    n = np.broadcast_shapes(g.shape, rho.shape)[-1]
    return np.cumsum(rho * g, axis=-1) / np.arange(1, n + 1)


def weighted_is_update(value: Any, cum_weight: Any, ret: Any, ratio: Any
                       ) -> tuple[np.ndarray, np.ndarray]:
    """One incremental weighted importance-sampling step, elementwise; returns (V, C).

    C <- C + W and V <- V + (W / C) * (G - V) for one more episode with return G and ratio W.
    While C is still 0 (no episode with W > 0 yet) V is left unchanged. All inputs broadcast.
    """
    v = np.asarray(value, dtype=float)
    w = np.asarray(ratio, dtype=float)
    c = np.asarray(cum_weight, dtype=float) + w
    step = np.divide(w, c, out=np.zeros(np.broadcast(w, c).shape), where=c > 0)
    return v + step * (np.asarray(ret, dtype=float) - v), c


def weighted_is_estimates(returns: Any, ratios: Any) -> np.ndarray:
    """Running weighted estimates sum_{i<=k} rho_i G_i / sum_{i<=k} rho_i (0 before any rho > 0).

    Batch form of :func:`weighted_is_update` for [..., n] arrays.
    """
    g, rho = as_float_array(returns, "returns"), as_float_array(ratios, "ratios")
    if np.any(rho < 0):
        raise ValueError("importance ratios must be non-negative")
    num, den = np.cumsum(rho * g, axis=-1), np.cumsum(rho, axis=-1)
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def off_policy_mc_update(Q: np.ndarray, C: np.ndarray, states: Any, actions: Any, rewards: Any,
                         pi_probs: Any, b_probs: Any, gamma: float) -> None:
    """Weighted-IS off-policy Monte Carlo prediction of Q^pi from one episode, in place.

    ``Q``, ``C`` float [S, A] (C: cumulative weights); ``states``, ``actions`` int [T];
    ``rewards`` [T] (reward t follows action t); ``pi_probs``, ``b_probs`` [T]: the target's and
    the behaviour's probabilities of the actions taken. Backwards from the end: G <- gamma G +
    r_t, C <- C + W, Q <- Q + W / C (G - Q) at (s_t, a_t), then W <- W pi_t / b_t; stop once
    W = 0 (no earlier step can get weight).
    """
    g, w = 0.0, 1.0
    for t in range(len(states) - 1, -1, -1):
        s, a = int(states[t]), int(actions[t])
        g = gamma * g + float(rewards[t])
        C[s, a] += w
        Q[s, a] += w / C[s, a] * (g - Q[s, a])
        w *= float(pi_probs[t]) / float(b_probs[t])
        if w == 0.0:
            return


def accumulate_returns(sums: np.ndarray, counts: np.ndarray, states: Any, actions: Any,
                       returns: Any) -> None:
    """Add each return to its (state, action) pair, in place: the data of sample-average MC.

    ``sums`` float [S, A], ``counts`` int [S, A]; ``states``, ``actions`` int [N] and
    ``returns`` [N] list visits; one pair may appear many times in a batch, and every visit
    counts. Afterwards Q = sums / counts where counts > 0.
    """
    s, a = np.asarray(states, dtype=int), np.asarray(actions, dtype=int)
    np.add.at(sums, (s, a), np.asarray(returns, dtype=float))
    np.add.at(counts, (s, a), 1)


# ---- batched epsilon-greedy ------------------------------------------------------------------


def epsilon_greedy_batch(q_rows: np.ndarray, epsilon: float, rng: np.random.Generator,
                         n_valid: int | None = None) -> np.ndarray:
    """One epsilon-greedy action per row of ``q_rows`` [N, A]; ties broken at random.

    Only the first ``n_valid`` actions (default all) are allowed.
    """
    q = q_rows[:, :n_valid] if n_valid is not None else q_rows
    n, n_a = q.shape
    best = q == q.max(axis=1, keepdims=True)
    greedy = (rng.random((n, n_a)) * best).argmax(axis=1)
    explore = rng.random(n) < epsilon
    return np.where(explore, rng.integers(0, n_a, n), greedy)


# ---- Cliff Walking, many runs at once --------------------------------------------------------


@dataclass(frozen=True)
class DeterministicTable:
    """A deterministic tabular env: next state and reward [S, A], terminal flags [S], start."""

    next_state: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    start: int


def deterministic_table(env: Any) -> DeterministicTable:
    """Read a deterministic toy-text env (e.g. CliffWalking) from its table ``unwrapped.P``."""
    n_s = check_discrete_space(env.observation_space, "deterministic_table (observations)")
    n_a = check_discrete_space(env.action_space, "deterministic_table (actions)")
    table = getattr(env.unwrapped, "P", None)
    if not isinstance(table, dict):
        raise TypeError(f"{env!r} has no transition table `P` (toy-text envs do)")
    nxt, rew = np.zeros((n_s, n_a), int), np.zeros((n_s, n_a))
    terminal = np.zeros(n_s, bool)
    for s in range(n_s):
        for a in range(n_a):
            outcomes = table[s][a]
            if len(outcomes) != 1 or outcomes[0][0] != 1.0:
                raise ValueError(f"state {s}, action {a}: the env is not deterministic")
            _, nxt[s, a], rew[s, a], done = outcomes[0]
            terminal[nxt[s, a]] |= bool(done)
    start = int(np.flatnonzero(env.unwrapped.initial_state_distrib)[0])
    return DeterministicTable(nxt, rew, terminal, start)


def _cliff_targets(method: str, r: np.ndarray, q_next: np.ndarray, a_next: np.ndarray,
                   term: np.ndarray, gamma: float, epsilon: float,
                   target_fn: Callable[..., Any] | None) -> np.ndarray:
    keep = 1.0 - term
    if method == "sarsa":
        return r + gamma * keep * q_next[np.arange(len(r)), a_next]
    if method == "q_learning":
        return r + gamma * keep * q_next.max(axis=1)
    fn = target_fn or expected_sarsa_target
    return np.asarray(fn(r, q_next, term, gamma, epsilon), dtype=float)


def td_control_runs(table: DeterministicTable, method: str, n_episodes: int, alphas: Any, *,
                    epsilon: float, gamma: float, seed: int, max_steps: int = 100_000,
                    target_fn: Callable[..., Any] | None = None) -> np.ndarray:
    """SARSA, Expected SARSA or Q-learning, one independent run per entry of ``alphas`` [R].

    All runs step in lockstep (Q0 = 0, epsilon-greedy behaviour); a run stops learning after
    its ``n_episodes``-th episode. ``target_fn`` replaces :func:`expected_sarsa_target` for
    ``method='expected_sarsa'``. Returns the online return of every episode [R, n_episodes].
    """
    if method not in ("sarsa", "expected_sarsa", "q_learning"):
        raise ValueError(f"method must be 'sarsa', 'expected_sarsa' or 'q_learning', "
                         f"got {method!r}")
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    alphas = as_float_array(alphas, "alphas", ndim=1)
    if np.any(alphas <= 0) or np.any(alphas > 1):
        raise ValueError("every step size must lie in (0, 1]")
    epsilon, gamma = check_in_range(epsilon, "epsilon", 0.0, 1.0), check_gamma(gamma)
    rng, n_runs = np.random.default_rng(seed), len(alphas)
    Q = np.zeros((n_runs,) + table.reward.shape)
    rows = np.arange(n_runs)
    s = np.full(n_runs, table.start)
    a = epsilon_greedy_batch(Q[rows, s], epsilon, rng)
    ep, ret = np.zeros(n_runs, int), np.zeros(n_runs)
    out = np.zeros((n_runs, n_episodes))
    for _ in range(max_steps * n_episodes):
        live = ep < n_episodes
        if not live.any():
            return out
        s2, r = table.next_state[s, a], table.reward[s, a]
        term = table.terminal[s2].astype(float)
        a2 = epsilon_greedy_batch(Q[rows, s2], epsilon, rng)
        target = _cliff_targets(method, r, Q[rows, s2], a2, term, gamma, epsilon, target_fn)
        Q[rows, s, a] += np.where(live, alphas, 0.0) * (target - Q[rows, s, a])
        ret += r
        done = live & (term > 0)
        out[rows[done], ep[done]] = ret[done]
        ep, ret[done] = ep + done, 0.0
        s = np.where(done, table.start, s2)
        a = np.where(done, epsilon_greedy_batch(Q[rows, s], epsilon, rng), a2)
    raise RuntimeError("td_control_runs: max_steps reached before every run finished")


# ---- the maximisation-bias MDP (Example 6.7) -------------------------------------------------

STATE_A, STATE_B, TERMINAL = 0, 1, 2
LEFT, RIGHT = 0, 1  # the two actions in A: LEFT leads to B, RIGHT ends the episode


def maximization_bias_runs(method: str, n_runs: int, n_episodes: int, *, n_b_actions: int = 10,
                           alpha: float = 0.1, epsilon: float = 0.1, gamma: float = 1.0,
                           mean: float = -0.1, std: float = 1.0, seed: int = 0,
                           update_fn: Callable[..., None] | None = None) -> np.ndarray:
    """Q-learning or Double Q-learning on Example 6.7 for ``n_runs`` runs; [runs, episodes] bool.

    A has two actions (LEFT -> B with reward 0, RIGHT -> terminal with reward 0); B has
    ``n_b_actions`` actions, each ending the episode with reward ~ N(mean, std^2). Q0 = 0,
    epsilon-greedy on Q (Q1 + Q2 for Double Q). The result says whether each episode went LEFT
    from A. ``update_fn`` replaces :func:`double_q_update` (``method='double_q'``).
    """
    if method not in ("q_learning", "double_q"):
        raise ValueError(f"method must be 'q_learning' or 'double_q', got {method!r}")
    n_runs, n_episodes = check_positive_int(n_runs, "n_runs"), check_positive_int(
        n_episodes, "n_episodes")
    n_b = check_positive_int(n_b_actions, "n_b_actions")
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0, low_open=True)
    epsilon, gamma = check_in_range(epsilon, "epsilon", 0.0, 1.0), check_gamma(gamma)
    rng = np.random.default_rng(seed)
    n_cols = max(n_b, 2)
    tables = [np.zeros((n_runs * 3, n_cols)) for _ in range(2 if method == "double_q" else 1)]
    base = 3 * np.arange(n_runs)  # run i owns rows 3i (A), 3i + 1 (B), 3i + 2 (terminal)
    update = update_fn or double_q_update

    def step(s, a, r, s_next, term):
        if method == "q_learning":
            q_learning_update(tables[0], s, a, r, s_next, term, alpha, gamma)
        else:
            update(tables[0], tables[1], s, a, r, s_next, term, rng.random(len(s)) < 0.5,
                   alpha, gamma)

    went_left = np.zeros((n_runs, n_episodes), bool)
    for ep in range(n_episodes):
        q_a = sum(t[base + STATE_A] for t in tables)
        a = epsilon_greedy_batch(q_a, epsilon, rng, n_valid=2)
        left = a == LEFT
        went_left[:, ep] = left
        s_next = base + np.where(left, STATE_B, TERMINAL)
        step(base + STATE_A, a, np.zeros(n_runs), s_next, ~left)
        rows_b = base[left] + STATE_B
        a_b = epsilon_greedy_batch(sum(t[rows_b] for t in tables), epsilon, rng, n_valid=n_b)
        r_b = rng.normal(mean, std, len(rows_b))
        step(rows_b, a_b, r_b, base[left] + TERMINAL, np.ones(len(rows_b), bool))
    return went_left


# ---- blackjack (Example 5.1, gymnasium's Blackjack-v1 with sab=True) -------------------------

STICK, HIT = 0, 1
CARD_VALUES = np.arange(1, 11)  # ace = 1; 10, jack, queen and king all count 10
CARD_PROBS = np.array([1.0] * 9 + [4.0]) / 13.0  # an infinite deck
MAX_CARDS = 40      # enough for any episode: each hand's hard sum grows by >= 1 per card
MAX_DECISIONS = 21  # a player's hard sum starts >= 2 and busts above 21

# The optimal policy of Sutton & Barto, Figure 5.2 (facts read off the figure; the tests
# recompute it by dynamic programming). Rows: player sum 21 down to 12; columns: the dealer's
# showing card A, 2, ..., 10; "S" = stick, "H" = hit. Below 12 the policy always hits.
BOOK_POLICY_TEXT = {
    "usable ace": ("SSSSSSSSSS", "SSSSSSSSSS", "SSSSSSSSSS", "HSSSSSSSHH", "HHHHHHHHHH",
                   "HHHHHHHHHH", "HHHHHHHHHH", "HHHHHHHHHH", "HHHHHHHHHH", "HHHHHHHHHH"),
    "no usable ace": ("SSSSSSSSSS", "SSSSSSSSSS", "SSSSSSSSSS", "SSSSSSSSSS", "SSSSSSSSSS",
                      "HSSSSSHHHH", "HSSSSSHHHH", "HSSSSSHHHH", "HSSSSSHHHH", "HHHSSSHHHH"),
}


def book_optimal_policy() -> np.ndarray:
    """Figure 5.2 as an int array [usable ace (0, 1), player sum 12..21, dealer 1..10]; 1 = hit."""
    out = np.zeros((2, 10, 10), int)
    for usable, key in ((1, "usable ace"), (0, "no usable ace")):
        rows = BOOK_POLICY_TEXT[key]
        out[usable] = np.array([[c == "H" for c in row] for row in rows[::-1]], int)
    return out


def add_card(total: Any, usable: Any, card: Any) -> tuple[np.ndarray, np.ndarray]:
    """A hand's (total, usable ace) after one more card, elementwise.

    ``total`` counts a usable ace as 11; an ace becomes usable if 11 fits, and a usable ace
    drops back to 1 when the total would pass 21. Same totals as gymnasium's ``sum_hand``.
    """
    total = np.asarray(total) + card
    usable = np.asarray(usable, dtype=bool)
    soft = (np.asarray(card) == 1) & ~usable & (total + 10 <= 21)
    total, usable = np.where(soft, total + 10, total), usable | soft
    hard = usable & (total > 21)
    return np.where(hard, total - 10, total), usable & ~hard


def draw_cards(rng: np.random.Generator, n: int) -> np.ndarray:
    """Cards for ``n`` episodes [n, MAX_CARDS], consumed left to right as gymnasium draws them."""
    shape = (check_positive_int(n, "n"), MAX_CARDS)
    return np.minimum(rng.integers(1, 14, shape, dtype=np.int8), 10)


@dataclass
class BlackjackEpisodes:
    """Simulated episodes: per decision t the player's total, usable ace and action [N, T];
    ``steps`` [N] decisions per episode, ``dealer`` [N] showing card, ``reward`` [N]."""

    total: np.ndarray
    usable: np.ndarray
    action: np.ndarray
    steps: np.ndarray
    dealer: np.ndarray
    reward: np.ndarray

    def mask(self) -> np.ndarray:
        """[N, T] True where decision t happened."""
        return np.arange(self.total.shape[1]) < self.steps[:, None]


def _initial_hands(cards: np.ndarray, start: Any) -> tuple[np.ndarray, ...]:
    n = len(cards)
    zero, no = np.zeros(n, int), np.zeros(n, bool)
    if start is None:  # gymnasium's order: dealer (showing, hidden), then the player's two
        total, usable = add_card(*add_card(zero, no, cards[:, 2]), cards[:, 3])
        return total, usable, cards[:, 0], cards[:, 1], total == 21, np.full(n, 4)
    total, usable, show = (np.broadcast_to(np.asarray(x), (n,)).copy() for x in start)
    usable = usable.astype(bool)
    if np.any(total > 21) or np.any(total < np.where(usable, 12, 4)) or np.any(
            (show < 1) | (show > 10)):
        raise ValueError("start must hold player totals 4..21 (12..21 with a usable ace) and "
                         "dealer cards 1..10")
    return total.astype(int), usable, show.astype(int), cards[:, 0], no, np.ones(n, int)


def _dealer_total(show: np.ndarray, hidden: np.ndarray, cards: np.ndarray, ptr: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    n = len(show)
    total, usable = add_card(*add_card(np.zeros(n, int), np.zeros(n, bool), show), hidden)
    natural = total == 21
    rows = np.arange(n)
    while np.any(draw := total < 17):
        nt, nu = add_card(total, usable, cards[rows, ptr])
        total, usable, ptr = np.where(draw, nt, total), np.where(draw, nu, usable), ptr + draw
    return total, natural


def simulate_blackjack(cards: Any, policy: Callable[..., Any], start: Any = None
                       ) -> BlackjackEpisodes:
    """Play one blackjack episode per row of ``cards`` [N, MAX_CARDS] (from :func:`draw_cards`).

    ``policy(t, total, usable, dealer)`` returns the actions [N] (0 stick, 1 hit) at decision
    t. ``start=None`` deals as gymnasium does (sab rules: a natural beats a dealer's non-natural
    21); ``start=(total, usable, dealer)`` starts there (no natural) and column 0 is the
    dealer's hidden card. The dealer draws to 17 or more and stands on a soft 17.
    """
    cards = np.asarray(cards, dtype=int)
    if cards.ndim != 2 or cards.shape[1] < MAX_CARDS:
        raise ValueError(f"cards must have shape [N, >= {MAX_CARDS}], got {cards.shape}")
    n, rows = len(cards), np.arange(len(cards))
    total, usable, show, hidden, natural, ptr = _initial_hands(cards, start)
    rec = {k: np.zeros((n, MAX_DECISIONS), int) for k in ("total", "usable", "action")}
    steps, active, bust = np.zeros(n, int), np.ones(n, bool), np.zeros(n, bool)
    for t in range(MAX_DECISIONS):
        if not active.any():
            break
        act = np.asarray(policy(t, total, usable, show)).astype(int)
        for key, val in (("total", total), ("usable", usable), ("action", act)):
            rec[key][:, t] = np.where(active, val, 0)
        steps += active
        hit = active & (act == HIT)
        nt, nu = add_card(total, usable, cards[rows, ptr])
        total, usable, ptr = np.where(hit, nt, total), np.where(hit, nu, usable), ptr + hit
        bust |= hit & (total > 21)
        natural &= ~hit  # a hand that took a third card is no natural
        active = hit & ~bust
    dealer, dealer_natural = _dealer_total(show, hidden, cards, ptr)
    score = np.where(dealer > 21, 0, dealer)
    reward = np.sign(total - score).astype(float)
    reward = np.where(natural & ~dealer_natural, 1.0, reward)
    reward = np.where(bust, -1.0, reward)
    return BlackjackEpisodes(rec["total"], rec["usable"].astype(bool), rec["action"], steps,
                             show, reward)


def table_policy(policy: Any) -> Callable[..., np.ndarray]:
    """A ``simulate_blackjack`` policy from a table [2, 10, 10] (usable, sum 12..21, dealer).

    Totals below 12 always hit (no card can bust them).
    """
    table = np.asarray(policy, dtype=int)
    if table.shape != (2, 10, 10):
        raise ValueError(f"policy table must have shape (2, 10, 10), got {table.shape}")

    def act(t: int, total: np.ndarray, usable: np.ndarray, dealer: np.ndarray) -> np.ndarray:
        looked = table[usable.astype(int), np.clip(total - 12, 0, 9), dealer - 1]
        return np.where(total < 12, HIT, looked)
    return act


# ---- exact blackjack values by dynamic programming -------------------------------------------


def _next_hand(total: int, usable: bool, card: int) -> tuple[int, bool]:
    t, u = add_card(total, usable, card)
    return int(t), bool(u)


@cache
def _dealer_outcomes(total: int, usable: bool) -> tuple[float, ...]:
    """P(dealer ends on 17, 18, 19, 20, 21, bust) from a hand (total, usable)."""
    if total >= 17:
        out = [0.0] * 6
        out[min(total, 22) - 17] = 1.0
        return tuple(out)
    probs = np.zeros(6)
    for card, p in zip(CARD_VALUES, CARD_PROBS):
        probs += p * np.array(_dealer_outcomes(*_next_hand(total, usable, int(card))))
    return tuple(probs)


def dealer_final_distribution(show: int) -> np.ndarray:
    """P(dealer's final total is 17, 18, 19, 20, 21, bust) given the showing card [6]."""
    first = _next_hand(0, False, int(show))
    out = np.zeros(6)
    for card, p in zip(CARD_VALUES, CARD_PROBS):
        out += p * np.array(_dealer_outcomes(*_next_hand(*first, int(card))))
    return out


def blackjack_action_values(policy: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact Q [2, 10, 10, 2] (usable, sum 12..21, dealer 1..10, stick/hit) and greedy policy.

    With ``policy`` None, Q = Q* (the optimal policy plays on); otherwise Q^pi of the given
    table [2, 10, 10]. Infinite deck, player not holding a natural. Hard hands are solved from
    21 down first, since hitting a hard hand gives a hard hand, then soft hands.
    """
    table = None if policy is None else np.asarray(policy, dtype=int)
    Q = np.zeros((2, 10, 10, 2))
    final = np.array([dealer_final_distribution(d) for d in range(1, 11)])  # [10, 6]
    for total in range(12, 22):  # stick: win if the dealer busts or ends lower
        sign = np.sign(total - np.arange(17, 22))
        Q[:, total - 12, :, STICK] = final[:, :5] @ sign + final[:, 5]
    V = np.zeros((2, 10, 10))
    for usable in (0, 1):
        for total in range(21, 11, -1):
            hit = np.zeros(10)
            for card, p in zip(CARD_VALUES, CARD_PROBS):
                t2, u2 = _next_hand(total, bool(usable), int(card))
                hit += p * (-1.0 if t2 > 21 else V[int(u2), t2 - 12])
            Q[usable, total - 12, :, HIT] = hit
            q = Q[usable, total - 12]
            V[usable, total - 12] = (q.max(axis=-1) if table is None
                                     else q[np.arange(10), table[usable, total - 12]])
    return Q, (Q[..., HIT] > Q[..., STICK]).astype(int)


# ---- Monte Carlo control with exploring starts -----------------------------------------------


def state_index(total: Any, usable: Any, dealer: Any) -> np.ndarray:
    """Index 0..199 of a blackjack state: usable * 100 + (total - 12) * 10 + (dealer - 1)."""
    return np.asarray(usable, int) * 100 + (np.asarray(total) - 12) * 10 + np.asarray(dealer) - 1


@dataclass
class MCControlResult:
    """Monte Carlo control output: Q [2, 10, 10, 2], visit counts (same shape), greedy policy."""

    Q: np.ndarray
    counts: np.ndarray
    policy: np.ndarray


def mc_exploring_starts(n_episodes: int, *, batch_size: int = 10_000, seed: int = 0,
                        update_fn: Callable[..., None] | None = None,
                        progress: bool = False) -> MCControlResult:
    """Monte Carlo ES on blackjack: every episode starts in a uniformly random state of the
    200 with a uniformly random first action, then follows the current greedy policy.

    Episodes come in batches of ``batch_size`` played with the same policy; after each batch
    every visited (state, action) pair gets the episode's return (``update_fn``, default
    :func:`accumulate_returns`), Q is the sample average and the policy becomes greedy (stick on
    ties). The initial policy sticks only on 20 and 21, as in the book.
    """
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    batch_size = check_positive_int(batch_size, "batch_size")
    rng, update = np.random.default_rng(seed), update_fn or accumulate_returns
    sums, counts = np.zeros((200, 2)), np.zeros((200, 2), int)
    policy = np.ones((2, 10, 10), int)
    policy[:, 8:] = STICK
    batches = range(0, n_episodes, batch_size)
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, desc="MC exploring starts", unit="batch")
    for start in batches:
        n = min(batch_size, n_episodes - start)
        first = rng.integers(0, 2, n)
        greedy = table_policy(policy)
        ep = simulate_blackjack(
            draw_cards(rng, n),
            lambda t, tot, u, d, first=first, greedy=greedy: first if t == 0
            else greedy(t, tot, u, d),
            start=(rng.integers(12, 22, n), rng.integers(0, 2, n), rng.integers(1, 11, n)))
        m = ep.mask()
        s = state_index(ep.total, ep.usable, ep.dealer[:, None])[m]
        update(sums, counts, s, ep.action[m], np.broadcast_to(ep.reward[:, None], m.shape)[m])
        Q = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        policy = (Q[:, HIT] > Q[:, STICK]).astype(int).reshape(2, 10, 10)
    return MCControlResult(Q.reshape(2, 10, 10, 2), counts.reshape(2, 10, 10, 2), policy)


# ---- off-policy prediction (Example 5.4) -----------------------------------------------------

EXAMPLE_5_4_START = (13, True, 2)  # player sum 13 with a usable ace, dealer shows a 2


def example_5_4_episodes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Returns [n] and importance ratios [n] of episodes from the state of Example 5.4.

    Behaviour: hit or stick with probability 1/2 each. Target: stick only on 20 or 21. The
    ratio of an episode is the product over its decisions of pi(a|s) / b(a|s): 2^T when every
    action agrees with the target policy, and 0 as soon as one does not.
    """
    n = check_positive_int(n, "n")
    ep = simulate_blackjack(draw_cards(rng, n),
                            lambda t, tot, u, d: rng.integers(0, 2, len(tot)),
                            start=EXAMPLE_5_4_START)
    agree = (ep.action == (ep.total < 20)) | ~ep.mask()
    ratio = np.where(agree.all(axis=1), 2.0 ** ep.steps, 0.0)
    return ep.reward, ratio


def weighted_is_incremental(returns: Any, ratios: Any,
                            update_fn: Callable[..., Any] | None = None) -> np.ndarray:
    """Run :func:`weighted_is_update` (or ``update_fn``) over episodes; [..., n] -> [..., n].

    Episode i of every run is processed at step i, all runs at once, starting from V = C = 0.
    """
    g, rho = as_float_array(returns, "returns"), as_float_array(ratios, "ratios")
    update = update_fn or weighted_is_update
    v, c = np.zeros(g.shape[:-1]), np.zeros(g.shape[:-1])
    out = np.zeros(g.shape)
    for i in range(g.shape[-1]):
        v, c = update(v, c, g[..., i], rho[..., i])
        out[..., i] = v
    return out


def off_policy_blackjack_q(policy: Any, n_episodes: int, *, seed: int = 0,
                           update_fn: Callable[..., None] | None = None,
                           checkpoints: Any = ()) -> tuple[np.ndarray, np.ndarray, list]:
    """Estimate Q^pi [2, 10, 10, 2] of a policy table from uniformly random behaviour.

    Episodes start in a uniformly random state of the 200 and pick hit or stick with
    probability 1/2 at every decision; each episode goes through ``update_fn`` (default
    :func:`off_policy_mc_update`), gamma = 1. Returns (Q, C, [copies of Q at the episode counts
    in ``checkpoints``]).
    """
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    table = np.asarray(policy, dtype=int)
    if table.shape != (2, 10, 10) or not np.isin(table, (STICK, HIT)).all():
        raise ValueError(f"policy must be a 0/1 table of shape (2, 10, 10), got shape "
                         f"{table.shape}")
    rng, update = np.random.default_rng(seed), update_fn or off_policy_mc_update
    ep = simulate_blackjack(
        draw_cards(rng, n_episodes), lambda t, tot, u, d: rng.integers(0, 2, len(tot)),
        start=(rng.integers(12, 22, n_episodes), rng.integers(0, 2, n_episodes),
               rng.integers(1, 11, n_episodes)))
    s_all = state_index(np.maximum(ep.total, 12), ep.usable, ep.dealer[:, None])
    target = table.reshape(-1)[s_all]  # pi's action in every recorded state
    Q, C, saved, marks = np.zeros((200, 2)), np.zeros((200, 2)), [], set(checkpoints)
    half = np.full(MAX_DECISIONS, 0.5)
    for i in range(n_episodes):
        T = ep.steps[i]
        rewards = np.zeros(T)
        rewards[-1] = ep.reward[i]
        pi = (ep.action[i, :T] == target[i, :T]).astype(float)
        update(Q, C, s_all[i, :T], ep.action[i, :T], rewards, pi, half[:T], 1.0)
        if i + 1 in marks:
            saved.append(Q.reshape(2, 10, 10, 2).copy())
    return Q.reshape(2, 10, 10, 2), C.reshape(2, 10, 10, 2), saved


__all__ = [
    "BOOK_POLICY_TEXT", "BlackjackEpisodes", "DeterministicTable", "MCControlResult",
    "accumulate_returns", "add_card", "blackjack_action_values", "book_optimal_policy",
    "dealer_final_distribution", "deterministic_table", "double_q_update", "draw_cards",
    "epsilon_greedy_batch", "example_5_4_episodes", "expected_sarsa_target",
    "maximization_bias_runs", "mc_exploring_starts", "off_policy_blackjack_q",
    "off_policy_mc_update", "ordinary_is_estimates",
    "q_learning_update", "simulate_blackjack", "state_index", "table_policy", "td_control_runs",
    "weighted_is_estimates", "weighted_is_incremental", "weighted_is_update",
]
