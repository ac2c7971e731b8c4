"""Tabular and contextual preference games: the ground truth for every NLHF algorithm.

A game is a preference model P(y ≻ y' | x) over a finite set of contexts x (prompts) and
actions y (responses), a reference policy π_ref(y | x) and a context distribution ρ(x).
Policies are (X, Y) arrays of probabilities (or log-probabilities); P(y ≻ π | x) is the
matrix-vector product P[x] @ π[x].

The contextual low-rank game is the synthetic benchmark of Tiapkin et al. 2025,
"Accelerating Nash learning from human feedback via Mirror Prox" (arXiv 2505.19731):

    P(y ≻ y' | x) = σ(A_x[y, y'] − A_x[y', y]),    A_x = scale · U Θ_x Vᵀ,

with U, V (Y, r) shared across contexts and Θ_x (r, r) drawn per context. P[x] + P[x]ᵀ = 1
holds by construction (σ(z) + σ(−z) = 1), the diagonal is exactly ½.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_softmax

from arena.errors import InputError

# A user-supplied matrix may carry rounding in its entries (e.g. 3-decimal CSV files):
# P + Pᵀ must equal 1 within this tolerance before we symmetrise it.
SYMMETRY_TOL = 1e-6

REFERENCES = ("uniform", "random")


@dataclass(frozen=True)
class Game:
    """A contextual preference game.

    P: (X, Y, Y) with P[x, y, y'] = P(y ≻ y' | x) and P[x] + P[x]ᵀ = 1.
    pi_ref: (X, Y) reference policy, rows on the simplex, strictly positive.
    weights: (X,) context distribution ρ, on the simplex.
    """

    P: np.ndarray
    pi_ref: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        P, pi_ref, weights = self.P, self.pi_ref, self.weights
        if P.ndim != 3 or P.shape[1] != P.shape[2]:
            raise InputError(f"P must have shape (contexts, actions, actions); got {P.shape}")
        X, Y = P.shape[0], P.shape[1]
        if Y < 2:
            raise InputError(f"a game needs at least 2 actions; got {Y}")
        if pi_ref.shape != (X, Y):
            raise InputError(f"pi_ref must have shape {(X, Y)} to match P; got {pi_ref.shape}")
        if weights.shape != (X,):
            raise InputError(f"weights must have shape {(X,)} (one per context); got {weights.shape}")
        if not (np.all(np.isfinite(P)) and np.all(np.isfinite(pi_ref)) and np.all(np.isfinite(weights))):
            raise InputError("P, pi_ref and weights must be finite; remove NaN/inf entries")
        if np.any(P < 0) or np.any(P > 1):
            raise InputError("P entries are probabilities; clip them to [0, 1]")
        if np.max(np.abs(P + np.swapaxes(P, 1, 2) - 1.0)) > SYMMETRY_TOL:
            raise InputError("P[x] + P[x]ᵀ must equal 1; build P as (P + 1 - Pᵀ)/2 or use matrix_game()")
        if np.any(pi_ref <= 0) or np.max(np.abs(pi_ref.sum(axis=1) - 1.0)) > 1e-9:
            raise InputError("pi_ref rows must be strictly positive and sum to 1; normalise them (softmax of logits)")
        if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-9:
            raise InputError("weights must be a probability vector over contexts; divide by their sum")

    @property
    def n_contexts(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def log_pi_ref(self) -> np.ndarray:
        return np.log(self.pi_ref)


def preference_against(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """P(y ≻ π | x) for every (x, y): (X, Y, Y) @ (X, Y) -> (X, Y) (one batched matmul)."""
    return np.matmul(P, pi[..., None])[..., 0]


def _reference(kind: str, X: int, Y: int, rng: np.random.Generator, ref_scale: float) -> np.ndarray:
    if kind == "uniform":
        return np.full((X, Y), 1.0 / Y)
    if kind == "random":
        return np.exp(log_softmax(ref_scale * rng.standard_normal((X, Y)), axis=1))
    raise InputError(f"unknown reference {kind!r}; use one of {', '.join(REFERENCES)}")


def _check_sizes(n_contexts: int, n_actions: int) -> None:
    if n_contexts < 1:
        raise InputError(f"n_contexts must be >= 1; got {n_contexts}")
    if n_actions < 2:
        raise InputError(f"n_actions must be >= 2; got {n_actions}")


def random_game(
    n_contexts: int = 1,
    n_actions: int = 5,
    *,
    seed: int = 0,
    reference: str = "uniform",
    ref_scale: float = 1.0,
) -> Game:
    """Independent uniform P(y ≻ y' | x) for y < y' (P[x, y', y] = 1 − P[x, y, y'], diagonal ½)."""
    _check_sizes(n_contexts, n_actions)
    rng = np.random.default_rng(seed)
    U = rng.uniform(size=(n_contexts, n_actions, n_actions))
    upper = np.triu(np.ones((n_actions, n_actions), dtype=bool), k=1)
    P = np.where(upper, U, 1.0 - np.swapaxes(U, 1, 2))
    P[:, np.arange(n_actions), np.arange(n_actions)] = 0.5
    pi_ref = _reference(reference, n_contexts, n_actions, rng, ref_scale)
    return Game(P=P, pi_ref=pi_ref, weights=np.full(n_contexts, 1.0 / n_contexts))


def lowrank_game(
    n_contexts: int = 10,
    n_actions: int = 20,
    rank: int = 4,
    scale: float = 1.0,
    seed: int = 0,
    *,
    reference: str = "uniform",
    ref_scale: float = 1.0,
) -> Game:
    """Contextual low-rank game P(y ≻ y'|x) = σ(A_x[y,y'] − A_x[y',y]), A_x = scale · U Θ_x Vᵀ.

    U, V have i.i.d. N(0, 1/rank) entries and Θ_x i.i.d. N(0, 1), so A_x has entries of order
    `scale` whatever the rank; a larger scale gives sharper preferences (a harder game for
    plain mirror descent).
    """
    _check_sizes(n_contexts, n_actions)
    if not 1 <= rank <= n_actions:
        raise InputError(f"rank must be in [1, n_actions={n_actions}]; got {rank}")
    if not (np.isfinite(scale) and scale >= 0):
        raise InputError(f"scale must be a finite number >= 0; got {scale}")
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_actions, rank)) / np.sqrt(rank)
    V = rng.standard_normal((n_actions, rank)) / np.sqrt(rank)
    Theta = rng.standard_normal((n_contexts, rank, rank))
    A = scale * np.einsum("ar,xrs,bs->xab", U, Theta, V)  # (X, Y, Y)
    P = expit(A - np.swapaxes(A, 1, 2))
    pi_ref = _reference(reference, n_contexts, n_actions, rng, ref_scale)
    return Game(P=P, pi_ref=pi_ref, weights=np.full(n_contexts, 1.0 / n_contexts))


def matrix_game(P: np.ndarray, *, pi_ref: np.ndarray | None = None) -> Game:
    """A single-context game from a user matrix P[i, j] = P(i ≻ j).

    P must be square with entries in [0, 1] and P + Pᵀ = 1 within SYMMETRY_TOL; it is
    symmetrised as (P + 1 − Pᵀ)/2 so that the identity holds exactly. pi_ref defaults to uniform.
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise InputError(f"a preference matrix must be square (n, n); got shape {P.shape}")
    n = P.shape[0]
    if n < 2:
        raise InputError(f"a preference matrix needs at least 2 rows; got {n}")
    if not np.all(np.isfinite(P)):
        raise InputError("the preference matrix has NaN/inf entries; fill every cell with P(i beats j)")
    if np.any(P < 0) or np.any(P > 1):
        raise InputError("preference matrix entries must be probabilities in [0, 1]")
    dev = np.max(np.abs(P + P.T - 1.0))
    if dev > SYMMETRY_TOL:
        raise InputError(
            f"P + Pᵀ must equal 1 (P[j, i] = 1 − P[i, j]); largest deviation {dev:.3g}: "
            "fix the cells or pass (P + 1 − Pᵀ)/2"
        )
    P = (P + 1.0 - P.T) / 2.0
    if pi_ref is None:
        ref = np.full((1, n), 1.0 / n)
    else:
        ref = np.asarray(pi_ref, dtype=np.float64).reshape(1, -1)
    return Game(P=P[None], pi_ref=ref, weights=np.ones(1))


def rock_paper_scissors() -> Game:
    """Rock-paper-scissors as a preference game: the beaten action loses with certainty."""
    P = np.array([[0.5, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]])
    return matrix_game(P)
