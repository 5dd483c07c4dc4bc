"""The wider map (notebook 08): small, exact pieces of SAC, TD3, safe RL and MCTS.

The notebook covers these families at interview level; this module holds the formulas it
checks and a compact Monte-Carlo tree search (UCT) that plays tic-tac-toe.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from rlcourse.validation import check_gamma, check_in_range, check_positive_int

Tensor = torch.Tensor


# ---- maximum-entropy RL (SAC) -------------------------------------------------------------

def soft_state_value(q: Tensor, log_probs: Tensor, alpha: float) -> Tensor:
    """V(s) = sum_a pi(a|s) [Q(s,a) - alpha log pi(a|s)] for a discrete policy.

    Shapes: q [..., A], log_probs [..., A] -> [...]. This is SAC's soft value: the expected Q
    plus alpha times the policy's entropy.
    """
    if q.shape != log_probs.shape:
        raise ValueError(f"q {tuple(q.shape)} and log_probs {tuple(log_probs.shape)} differ")
    alpha = check_in_range(alpha, "alpha", 0.0, math.inf)
    return (log_probs.exp() * (q - alpha * log_probs)).sum(-1)


def soft_optimal_policy(q: Tensor, alpha: float) -> Tensor:
    """The policy maximising E_pi[Q] + alpha H(pi): softmax(Q / alpha). Shapes [..., A]."""
    alpha = check_in_range(alpha, "alpha", 0.0, math.inf, low_open=True)
    return torch.softmax(q / alpha, dim=-1)


# ---- TD3 ------------------------------------------------------------------------------------

def td3_target(rewards: Tensor, q1_next: Tensor, q2_next: Tensor, terminated: Tensor,
               gamma: float) -> Tensor:
    """Clipped double-Q target r + gamma (1 - terminated) min(Q1', Q2'). All shapes [B]."""
    gamma = check_gamma(gamma)
    if not (rewards.shape == q1_next.shape == q2_next.shape == terminated.shape):
        raise ValueError("rewards, q1_next, q2_next and terminated must have the same shape")
    alive = 1.0 - terminated.to(rewards.dtype)
    return rewards + gamma * alive * torch.minimum(q1_next, q2_next)


# ---- constrained MDPs (safe RL) -------------------------------------------------------------

def lagrange_step(lam: float, avg_cost: float, limit: float, lr: float) -> float:
    """Dual ascent on the Lagrange multiplier: lam <- max(0, lam + lr (cost - limit))."""
    lr = check_in_range(lr, "lr", 0.0, math.inf, low_open=True)
    return max(0.0, float(lam) + lr * (float(avg_cost) - float(limit)))


# ---- Monte-Carlo tree search ----------------------------------------------------------------

def uct_score(value_sum: float, visits: int, parent_visits: int, c: float = 1.4) -> float:
    """UCT: mean value + c sqrt(ln N_parent / N_child); unvisited children score +inf."""
    if visits == 0:
        return math.inf
    return value_sum / visits + c * math.sqrt(math.log(parent_visits) / visits)


LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
Board = tuple[int, ...]  # 9 cells: 1 = X, -1 = O, 0 = empty; X moves first


def winner(board: Board) -> int | None:
    """1 or -1 for a win, 0 for a draw, None while the game goes on."""
    for a, b, c in LINES:
        if board[a] != 0 and board[a] == board[b] == board[c]:
            return board[a]
    return 0 if 0 not in board else None


def to_move(board: Board) -> int:
    """Whose turn it is: X (1) when the counts are equal, else O (-1)."""
    return 1 if board.count(1) == board.count(-1) else -1


def legal_moves(board: Board) -> list[int]:
    """Indices of the empty cells."""
    return [i for i, v in enumerate(board) if v == 0]


def play(board: Board, move: int) -> Board:
    """The board after the player to move takes cell ``move``."""
    if not 0 <= move < 9 or board[move] != 0:
        raise ValueError(f"illegal move {move} on board {board}")
    cells = list(board)
    cells[move] = to_move(board)
    return tuple(cells)


@dataclass
class _Node:
    board: Board
    children: dict[int, _Node] = field(default_factory=dict)
    visits: int = 0
    value_sum: float = 0.0  # from the view of the player who moved INTO this node


def _rollout(board: Board, rng: np.random.Generator) -> int:
    while (w := winner(board)) is None:
        board = play(board, int(rng.choice(legal_moves(board))))
    return w


ScoreFn = Callable[[float, int, int, float], float]  # (value_sum, visits, parent_visits, c)


def mcts_move(board: Board, n_simulations: int, rng: np.random.Generator, c: float = 1.4,
              score: ScoreFn = uct_score) -> int:
    """Pick a move for the player to move with UCT search and random rollouts.

    ``score(value_sum, visits, parent_visits, c)`` ranks children during selection (default
    :func:`uct_score`; a notebook passes the learner's version here).
    """
    check_positive_int(n_simulations, "n_simulations")
    if not callable(score):
        raise TypeError(f"score must be a function, got {type(score).__name__}")
    if winner(board) is not None:
        raise ValueError("the game is already over")
    root = _Node(board)
    for _ in range(n_simulations):
        node, path = root, [root]
        while winner(node.board) is None and len(node.children) == len(legal_moves(node.board)):
            node = max(node.children.values(),
                       key=lambda ch: score(ch.value_sum, ch.visits, node.visits, c))
            path.append(node)
        if winner(node.board) is None:  # expand one untried move
            move = next(m for m in legal_moves(node.board) if m not in node.children)
            node.children[move] = _Node(play(node.board, move))
            node = node.children[move]
            path.append(node)
        result = _rollout(node.board, rng)
        for n in path:
            n.visits += 1
            mover = -to_move(n.board)  # the player who just moved into n
            n.value_sum += 1.0 if result == mover else 0.5 if result == 0 else 0.0
    return max(root.children, key=lambda m: root.children[m].visits)


def play_game(x_sims: int | None, o_sims: int | None, rng: np.random.Generator,
              score: ScoreFn = uct_score) -> int:
    """One game; each side is MCTS with that many simulations, or random if None.

    Returns the winner (1 = X, -1 = O) or 0 for a draw. ``score`` is passed to :func:`mcts_move`.
    """
    board: Board = (0,) * 9
    while winner(board) is None:
        sims = x_sims if to_move(board) == 1 else o_sims
        move = (int(rng.choice(legal_moves(board))) if sims is None
                else mcts_move(board, sims, rng, score=score))
        board = play(board, move)
    return winner(board)
