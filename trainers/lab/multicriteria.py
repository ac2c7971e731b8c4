"""Exact dynamics on multi-criteria preference games: weighted Nash-MP and the max–min variant.

A multi-criteria game holds one preference model per criterion c (helpful, honest, ...):
P_c(y ≻ y' | x), each complementary, over shared contexts x (weights ρ) and actions y.

* **Weighted** (`weighted_game`, `run_weighted`): fixed criterion weights w collapse the
  criteria into the ordinary game P_w = Σ_c w_c P_c; Nash-MP (`trainers.lab.algorithms.
  nash_mp_step`, Tiapkin et al. 2025, arXiv 2505.19731) on P_w converges to its π*_β
  (`trainers.lab.nash.regularized_nash`), unchanged.

* **Max–min** (`max_min_step`, `run_max_min`): the robust objective of `arena.core.robust`,

      max_π min_c Σ_x ρ(x) min_{π'_c(·|x)} P_c(π ≻ π'_c | x),

  played as a game between the policy π (X, Y), one opponent policy q_c (X, Y) per criterion
  and an adversary over criteria λ (C,) on the simplex. Payoff to π:
  u = Σ_c λ_c Σ_x ρ(x) π(x)ᵀ P_c[x] q_c(x). Every player runs the entropic mirror-prox
  (extragradient) step that Nash-MP is built on — multiplicative weights on its own
  gains, one half step from the current point, then the full step from the same point with
  the gains at the half step (Nemirovski 2004):

      π(x)  ∝ π_k(x)  exp( η Σ_c λ_c P_c[x] q_c(x))               (policy, per context)
      q_c(x) ∝ q_c,k(x) exp(−η P_c[x]ᵀ π(x))                      (opponent c, its own criterion)
      λ_c   ∝ λ_k,c  exp(−η_λ Σ_x ρ(x) π(x)ᵀ P_c[x] q_c(x))        (criteria: weight the worst one up)

  Each player has vanishing regret against its own gains, so the averages of the half-step
  iterates — π̄ and the joint adversary r̄_c(x) = mean λ_c q_c(x) — form an ε-saddle point
  with ε -> 0: by weak duality the guarantee of π̄ and the adversary's bound
  Σ_x ρ(x) max_y Σ_c (P_c[x] r̄_c(x))_y sandwich the robust value v*, and their difference
  (`gap`) is a certificate computed from the arrays. With one context this is the LP of
  `arena.core.robust.robust_mixture` (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from arena.core.robust import check_criteria, check_weights
from arena.errors import InputError
from trainers.lab import algorithms as alg
from trainers.lab.games import Game, lowrank_game, random_game
from trainers.lab.nash import RegularizedNash, kl_from_logs, regularized_nash


@dataclass(frozen=True)
class MultiGame:
    """A contextual preference game with one preference model per criterion.

    P: (C, X, Y, Y) with P[c, x, y, y'] = P_c(y ≻ y' | x), each P[c, x] complementary.
    pi_ref: (X, Y) reference policy shared by all criteria.
    weights: (X,) context distribution ρ.
    criteria: (C,) criterion names.
    """

    P: np.ndarray
    pi_ref: np.ndarray
    weights: np.ndarray
    criteria: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.P.ndim != 4:
            raise InputError(f"P must have shape (criteria, contexts, actions, actions); got {self.P.shape}")
        if len(self.criteria) != self.P.shape[0] or len(set(self.criteria)) != len(self.criteria):
            raise InputError(f"give one distinct name per criterion ({self.P.shape[0]}); got {list(self.criteria)}")
        for c in range(self.P.shape[0]):
            Game(P=self.P[c], pi_ref=self.pi_ref, weights=self.weights)  # checks shapes and P_c + P_cᵀ = 1

    @property
    def n_criteria(self) -> int:
        return self.P.shape[0]

    def game(self, criterion: str) -> Game:
        """The single-criterion game of one criterion."""
        if criterion not in self.criteria:
            raise InputError(f"unknown criterion {criterion!r}; the criteria are {list(self.criteria)}")
        return Game(P=self.P[self.criteria.index(criterion)], pi_ref=self.pi_ref, weights=self.weights)


def multi_game(games: Mapping[str, Game]) -> MultiGame:
    """Stack single-criterion games over the same contexts, π_ref and ρ into a MultiGame."""
    if not games:
        raise InputError("no criteria given; pass a dict name -> Game")
    first = next(iter(games.values()))
    for name, g in games.items():
        if g.P.shape != first.P.shape or not (np.allclose(g.pi_ref, first.pi_ref) and np.allclose(g.weights, first.weights)):
            raise InputError(f"criterion {name!r}: every game must share the contexts, actions, pi_ref and weights "
                             "of the first; build them with the same sizes and reference")
    return MultiGame(P=np.stack([g.P for g in games.values()]), pi_ref=first.pi_ref, weights=first.weights,
                     criteria=tuple(games))


def multi_matrix_game(P, *, criteria: Sequence[str] | None = None, pi_ref: np.ndarray | None = None) -> MultiGame:
    """A single-context game from (C, n, n) matrices or a dict name -> (n, n) (checked by arena.core.robust)."""
    P, names = check_criteria(P, criteria=criteria)
    n = P.shape[1]
    if n < 2:
        raise InputError(f"a game needs at least 2 actions; got {n}")
    ref = np.full((1, n), 1.0 / n) if pi_ref is None else np.asarray(pi_ref, dtype=np.float64).reshape(1, -1)
    return MultiGame(P=P[:, None], pi_ref=ref, weights=np.ones(1), criteria=names)


def multi_random_game(criteria: Sequence[str] = ("a", "b"), n_contexts: int = 1, n_actions: int = 5, *,
                      seed: int = 0) -> MultiGame:
    """Independent `random_game`s per criterion (seeds seed, seed+1, ...), uniform π_ref."""
    return multi_game({c: random_game(n_contexts, n_actions, seed=seed + k) for k, c in enumerate(criteria)})


def multi_lowrank_game(criteria: Sequence[str] = ("a", "b"), n_contexts: int = 4, n_actions: int = 6, rank: int = 2,
                       scale: float = 1.0, seed: int = 0) -> MultiGame:
    """Independent `lowrank_game`s per criterion (seeds seed, seed+1, ...), uniform π_ref."""
    return multi_game({c: lowrank_game(n_contexts, n_actions, rank, scale, seed + k) for k, c in enumerate(criteria)})


def weighted_game(game: MultiGame, weights) -> Game:
    """The ordinary game P_w = Σ_c w_c P_c; weights (C,) or a dict name -> weight, >= 0, sum 1."""
    w = check_weights(weights, game.criteria)
    return Game(P=np.einsum("c,cxij->xij", w, game.P), pi_ref=game.pi_ref, weights=game.weights)


@dataclass(frozen=True)
class WeightedRun:
    """Nash-MP on P_w. log_pi: (X, Y) final policy; kl: (steps + 1,) Σ_x ρ KL(π*_β ‖ π_t); nash: π*_β of P_w."""

    weights: np.ndarray
    log_pi: np.ndarray
    kl: np.ndarray
    nash: RegularizedNash


def run_weighted(game: MultiGame, weights, *, beta: float, eta: float | None = None, steps: int = 100) -> WeightedRun:
    """Nash-MP (the existing exact update) from π_ref on the weighted game; KL to its π*_β per step."""
    if steps < 1:
        raise InputError(f"steps must be >= 1; got {steps}")
    w = check_weights(weights, game.criteria)
    g = weighted_game(game, w)
    sol = regularized_nash(g, beta)
    eta = 2.0 * beta if eta is None else eta
    log_pi = log_softmax(g.log_pi_ref, axis=1)
    kl = np.empty(steps + 1)
    kl[0] = float(g.weights @ kl_from_logs(sol.log_pi, log_pi))
    for t in range(steps):
        log_pi = alg.nash_mp_step(log_pi, game=g, beta=beta, eta=eta)
        kl[t + 1] = float(g.weights @ kl_from_logs(sol.log_pi, log_pi))
    return WeightedRun(weights=w, log_pi=log_pi, kl=kl, nash=sol)


@dataclass(frozen=True)
class MaxMinState:
    """Log-iterates of the max–min game. log_pi: (X, Y); log_opp: (C, X, Y); log_lam: (C,)."""

    log_pi: np.ndarray
    log_opp: np.ndarray
    log_lam: np.ndarray


def initial_state(game: MultiGame) -> MaxMinState:
    """π = π_ref, opponents uniform, criterion weights uniform."""
    C, X, Y = game.P.shape[:3]
    return MaxMinState(log_pi=np.log(game.pi_ref), log_opp=np.full((C, X, Y), -np.log(Y)),
                       log_lam=np.full(C, -np.log(C)))


def _gains(game: MultiGame, pi: np.ndarray, opp: np.ndarray, lam: np.ndarray):
    """Each player's gains at (π, q, λ): policy (X, Y), opponents (C, X, Y) (to be decreased), criteria (C,)."""
    Pq = np.einsum("cxij,cxj->cxi", game.P, opp)  # (C, X, Y): P_c(y ≻ q_c | x)
    g_pi = np.einsum("c,cxi->xi", lam, Pq)
    g_opp = np.einsum("cxij,xi->cxj", game.P, pi)  # (C, X, Y): P_c(π ≻ y' | x)
    g_lam = np.einsum("x,xi,cxi->c", game.weights, pi, Pq)  # π's win rate against q_c on c
    return g_pi, g_opp, g_lam


def max_min_step(state: MaxMinState, *, game: MultiGame, eta: float, eta_lam: float | None = None
                 ) -> tuple[MaxMinState, MaxMinState]:
    """One mirror-prox step of every player (module docstring). Returns (next state, half state)."""
    eta_lam = eta if eta_lam is None else eta_lam
    for name, value in (("eta", eta), ("eta_lam", eta_lam)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a finite number > 0; got {value}")

    def move(s: MaxMinState, at: MaxMinState) -> MaxMinState:
        g_pi, g_opp, g_lam = _gains(game, np.exp(at.log_pi), np.exp(at.log_opp), np.exp(at.log_lam))
        return MaxMinState(log_pi=log_softmax(s.log_pi + eta * g_pi, axis=1),
                           log_opp=log_softmax(s.log_opp - eta * g_opp, axis=2),
                           log_lam=log_softmax(s.log_lam - eta_lam * g_lam))

    half = move(state, state)
    return move(state, half), half


def robust_guarantee(game: MultiGame, pi: np.ndarray) -> np.ndarray:
    """Σ_x ρ(x) min_y' P_c(π ≻ y' | x) per criterion: (C,), what π guarantees on each."""
    return np.einsum("x,cx->c", game.weights, np.einsum("cxij,xi->cxj", game.P, pi).min(axis=2))


def adversary_bound(game: MultiGame, r: np.ndarray) -> float:
    """Σ_x ρ(x) max_y Σ_c (P_c[x] r_c(x))_y for a joint adversary r (C, X, Y): no policy guarantees more."""
    return float(game.weights @ np.einsum("cxij,cxj->xi", game.P, r).max(axis=1))


@dataclass(frozen=True)
class MaxMinRun:
    """Averages of the max–min dynamics with their certificate.

    pi: (X, Y) average policy π̄; criterion_weights: (C,) average λ̄; opponents: (C, X, Y) r̄_c / λ̄_c.
    value: min_c robust_guarantee(π̄); criterion_values: (C,) robust_guarantee(π̄).
    upper_bound: adversary_bound(r̄) >= v* >= value; gap: upper_bound − value (-> 0).
    gaps: (steps,) the gap of the running averages after each step.
    """

    pi: np.ndarray
    criterion_weights: np.ndarray
    opponents: np.ndarray
    value: float
    criterion_values: np.ndarray
    upper_bound: float
    gap: float
    gaps: np.ndarray


def run_max_min(game: MultiGame, *, steps: int = 1000, eta: float = 4.0, eta_lam: float | None = None) -> MaxMinRun:
    """Run `max_min_step` from `initial_state` and average the half-step iterates."""
    if steps < 1:
        raise InputError(f"steps must be >= 1; got {steps}")
    s = initial_state(game)
    sum_pi = np.zeros_like(game.pi_ref)
    sum_r = np.zeros(game.P.shape[:3])  # (C, X, Y): Σ_t λ_t,c q_t,c(x)
    gaps = np.empty(steps)
    for t in range(steps):
        s, half = max_min_step(s, game=game, eta=eta, eta_lam=eta_lam)
        sum_pi += np.exp(half.log_pi)
        sum_r += np.exp(half.log_lam)[:, None, None] * np.exp(half.log_opp)
        pi_bar, r_bar = sum_pi / (t + 1), sum_r / (t + 1)
        gaps[t] = adversary_bound(game, r_bar) - robust_guarantee(game, pi_bar).min()
    values = robust_guarantee(game, pi_bar)
    lam = r_bar[:, 0].sum(axis=1)  # Σ_y r̄_c(x, y) = λ̄_c in every context
    upper = adversary_bound(game, r_bar)
    return MaxMinRun(pi=pi_bar, criterion_weights=lam, opponents=r_bar / lam[:, None, None],
                     value=float(values.min()), criterion_values=values, upper_bound=upper,
                     gap=upper - float(values.min()), gaps=gaps)


# ---------------------------------------------------------------------------- the LM max–min adversary, exactly

def bank_preferences(game: MultiGame, lam: np.ndarray, opp: np.ndarray) -> Game:
    """The preference `trainers.lm.criteria.MaxMinCriteriaJudge` hands the trainer, as a game.

    P̃[x, y, y'] = ½ + ½ (s_x(y) − s_x(y')) with s_x(y) = Σ_c λ_c (P_c[x] q_c(x))_y: complementary,
    and Nash-MP's symmetrised gradient on it is that of Σ_c λ_c P_c(π ≻ q_c) at half scale.
    lam: (C,) criterion weights; opp: (C, X, Y) opponents (the bank = every action).
    """
    s = np.einsum("c,cxij,cxj->xi", lam, game.P, opp)  # (X, Y)
    P = 0.5 + 0.5 * (s[:, :, None] - s[:, None, :])
    return Game(P=P, pi_ref=game.pi_ref, weights=game.weights)


def adversary_step(game: MultiGame, pi: np.ndarray, rho: np.ndarray, lam: np.ndarray, opp: np.ndarray, *,
                   eta_lam: float, eta_q: float) -> tuple[np.ndarray, np.ndarray]:
    """One multiplicative-weights step of the criterion weights and the opponents against π.

    q_c(x) ∝ q_c(x) exp(−eta_q P_c[x]ᵀ π(x)) for the contexts with ρ(x) > 0;
    λ_c ∝ λ_c exp(−eta_lam Σ_x ρ(x) π(x)ᵀ P_c[x] q_c(x)). Returns (lam, opp).
    pi: (X, Y) the policy (the LM wrapper: the batch's response shares); rho: (X,) context shares.
    """
    _, g_opp, g_lam = _gains(game, pi, opp, lam)
    g_lam = np.einsum("x,xi,cxij,cxj->c", rho, pi, game.P, opp)
    lam = lam * np.exp(-eta_lam * g_lam)
    lam = lam / lam.sum()
    live = rho > 0
    new = opp.copy()
    new[:, live] = opp[:, live] * np.exp(-eta_q * g_opp[:, live])
    new[:, live] /= new[:, live].sum(axis=2, keepdims=True)
    return lam, new


@dataclass(frozen=True)
class BankMaxMinRun:
    """Exact Nash-MP against the max–min adversary. pi: (X, Y) final policy; pi_bar: (X, Y) average;
    lam: (C,) final criterion weights; guarantee: (steps,) min_c robust_guarantee of the average policy."""

    pi: np.ndarray
    pi_bar: np.ndarray
    lam: np.ndarray
    guarantee: np.ndarray


def run_bank_max_min(game: MultiGame, *, beta: float, eta: float | None = None, steps: int = 500,
                     eta_lam: float = 1.0, eta_q: float = 1.0) -> BankMaxMinRun:
    """What `arena train nash-mp --criteria-weights maxmin` does in expectation: each step, Nash-MP
    (`trainers.lab.algorithms.nash_mp_step`) on `bank_preferences` of the current adversary, then
    `adversary_step` against the policy; from π_ref, uniform λ and opponents."""
    if steps < 1:
        raise InputError(f"steps must be >= 1; got {steps}")
    eta = 2.0 * beta if eta is None else eta
    s = initial_state(game)
    log_pi, lam, opp = s.log_pi, np.exp(s.log_lam), np.exp(s.log_opp)
    total = np.zeros_like(game.pi_ref)
    guarantee = np.empty(steps)
    for t in range(steps):
        log_pi = alg.nash_mp_step(log_pi, game=bank_preferences(game, lam, opp), beta=beta, eta=eta)
        pi = np.exp(log_pi)
        lam, opp = adversary_step(game, pi, game.weights, lam, opp, eta_lam=eta_lam, eta_q=eta_q)
        total += pi
        guarantee[t] = robust_guarantee(game, total / (t + 1)).min()
    return BankMaxMinRun(pi=np.exp(log_pi), pi_bar=total / steps, lam=lam, guarantee=guarantee)
