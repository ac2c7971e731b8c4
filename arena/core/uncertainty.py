"""Uncertainty of every derived claim, from one shared set of bootstrap resamples.

`arena.core.bootstrap.bootstrap_bradley_terry(..., keep_pairs=True)` draws R resamples of the
data (whole prompts when prompt ids exist: the cluster bootstrap, Field & Welsh 2007, JRSS-B
69:369; otherwise the multinomial table of outcomes) and returns, round by round, the
Bradley–Terry strengths θ_r and the per-pair preferences P_r. Everything here is a function of
those same R rounds, so the figures agree with one another (a model whose rank interval is
[1, 1] is also in every resampled Nash support it should be, and so on).

* Matrix cells (`matrix_intervals`): percentile interval of P_r[i, j] over the rounds,
  widened to contain the point estimate. With prompt ids this respects the dependence of
  judgments on one prompt, which a per-cell Wilson interval ignores (it undercovers: 0.85–0.91
  instead of 0.95 with 32 prompts × 4 judgments and a between-prompt spread).
* Ranks (`rank_intervals`): rank_r(i) = 1 + #{j : θ_r[j] > θ_r[i]}; the interval is the
  (α/2, 1 − α/2) quantiles of rank_r(i), as LMArena reports them (Chiang et al. 2024,
  arXiv 2403.04132).
* Nash (`nash_uncertainty`): the maximum-entropy Nash mixture p_r of each resampled game
  A_r = P_r − ½ (Balduzzi et al. 2018, arXiv 1806.02643). Per model, the percentile interval
  of p_r[i] and the support probability Pr(p_r[i] > SUPPORT_TOL); and the exploitability of
  the reported mixture p̂ in each resampled game, e_r = max_i (A_r p̂)_i ≥ 0 (a distribution;
  its median and upper quantile). The Nash is not a smooth function of P: where the true game
  has a strategy on the edge of the support, or a near-tie decides the support, the percentile
  intervals cover less than their level (see docs/verdicts.md for the measured figure).
* Significance claims (`significant_top_set`): the smallest set of models each of which
  significantly beats (interval above ½) every model outside it, the Smith set of significant
  wins. It is one model exactly when that model is a significant Condorcet winner; it is all
  models when the data cannot separate any model from the top.
* Cycles (`cycle_survival`): the share of rounds in which a cyclic triangle a ≻ b ≻ c ≻ a keeps
  every one of its majority edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from arena.errors import InputError, SolverError

__all__ = [
    "NashUncertainty",
    "matrix_intervals",
    "rank_intervals",
    "nash_uncertainty",
    "significant_top_set",
    "cycle_survival",
    "judgments_to_separate",
    "SUPPORT_TOL",
    "NASH_ROUNDS",
    "SIGNIFICANCE_MARGIN",
]

#: a Nash weight above this counts as "in the support" (the report shows smaller ones as 0)
SUPPORT_TOL = 1e-6
#: Nash mixtures are solved on at most this many of the shared rounds (the first ones): each
#: is an equilibrium solve, and 200 rounds put the Monte Carlo error of a 95% percentile
#: interval's coverage near ±1.5 points
NASH_ROUNDS = 200
#: an interval end must clear ½ by more than this to count as significant (rounding is no evidence)
SIGNIFICANCE_MARGIN = 1e-12


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    return level


def _check_pairs(pair_samples, cells, n: int) -> tuple[np.ndarray, np.ndarray]:
    S = np.asarray(pair_samples)
    cells = np.asarray(cells, dtype=np.int64)
    if S.ndim != 2 or S.shape[1] != cells.shape[0] or S.shape[0] < 1:
        raise InputError(f"pair_samples must be (rounds, pairs) with one column per cell; got {S.shape} "
                         f"for {cells.shape[0]} cells: pass BTIntervals.pair_samples and .cells together")
    if cells.size and (cells.min() < 0 or cells.max() >= n * n or np.any(cells // n >= cells % n)):
        raise InputError(f"cells must be flat ids i·n + j with i < j < n = {n}: pass BTIntervals.cells")
    return S, cells


def resampled_matrix(pair_samples, cells, n: int, r: int) -> np.ndarray:
    """(n, n) matrix of round r: P_r[i, j] from the pair samples, 1 − that below, ½ elsewhere."""
    P = np.full((n, n), 0.5)
    i, j = np.divmod(cells, n)
    v = np.asarray(pair_samples[r], dtype=np.float64)
    P[i, j] = v
    P[j, i] = 1.0 - v
    return P


def matrix_intervals(pair_samples, cells, P, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) (n, n): percentile intervals of the resampled cells, containing the estimate P.

    lo[i, j], hi[i, j] = the (α/2, 1 − α/2) quantiles of P_r[i, j] over the rounds (α = 1 −
    level), then lo ≤ P[i, j] ≤ hi enforced; lo[j, i] = 1 − hi[i, j] by construction; pairs that
    were never compared get [0, 1]; the diagonal is ½.
    """
    level = _check_level(level)
    P = np.asarray(P, dtype=np.float64)
    n = P.shape[0]
    S, cells = _check_pairs(pair_samples, cells, n)
    alpha = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(S, [alpha, 1.0 - alpha], axis=0)  # (pairs,)
    i, j = np.divmod(cells, n)
    lo = np.zeros((n, n))
    hi = np.ones((n, n))
    lo[i, j] = np.minimum(q_lo, P[i, j])
    hi[i, j] = np.maximum(q_hi, P[i, j])
    lo[j, i] = 1.0 - hi[i, j]
    hi[j, i] = 1.0 - lo[i, j]
    np.fill_diagonal(lo, 0.5)
    np.fill_diagonal(hi, 0.5)
    return lo, hi


def rank_intervals(theta_samples, *, level: float = 0.95) -> np.ndarray:
    """(n, 2) int [best, worst] rank of each model (1 = top) over the resampled strengths.

    rank_r(i) = 1 + #{j : θ_r[j] > θ_r[i]}; best = the α/2 quantile (rounded down), worst =
    the 1 − α/2 quantile (rounded up) of rank_r(i).
    """
    level = _check_level(level)
    T = np.asarray(theta_samples, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] < 1:
        raise InputError(f"theta_samples must be (rounds, n); got shape {T.shape}: pass BTIntervals.samples")
    order = np.argsort(-T, axis=1, kind="stable")
    sorted_T = np.take_along_axis(T, order, axis=1)
    # rank = 1 + number strictly greater = 1 + position of the first equal value in the sorted row
    ranks = np.empty_like(T, dtype=np.int64)
    for r in range(T.shape[0]):  # (n,) searchsorted per round; cheap next to the fits
        ranks[r, order[r]] = 1 + np.searchsorted(-sorted_T[r], -sorted_T[r], side="left")
    alpha = (1.0 - level) / 2.0
    best = np.quantile(ranks, alpha, axis=0, method="lower")
    worst = np.quantile(ranks, 1.0 - alpha, axis=0, method="higher")
    return np.stack([best, worst], axis=1).astype(np.int64)


@dataclass(frozen=True)
class NashUncertainty:
    """Spread of the maximum-entropy Nash mixture over the resampled games.

    lo, hi: (n,) percentile interval of each model's weight. support_probability: (n,) share of
    rounds whose mixture gives the model more than SUPPORT_TOL. exploitability: (rounds,)
    e_r = max_i (A_r p̂)_i of the reported mixture p̂ in each resampled game A_r = P_r − ½
    (≥ 0; 0 means no model beats p̂ in that game); exploitability_median and
    exploitability_upper (its `level` quantile) summarise it. rounds: rounds solved; failed:
    rounds whose equilibrium solve raised SolverError (left out, counted here). level: as given.
    weights: (rounds, n) the resampled mixtures p_r (`arena.core.design` measures their TV spread).
    """

    lo: np.ndarray
    hi: np.ndarray
    support_probability: np.ndarray
    exploitability: np.ndarray
    exploitability_median: float
    exploitability_upper: float
    rounds: int
    failed: int
    level: float
    weights: np.ndarray | None = None


def nash_uncertainty(pair_samples, cells, p_hat, *, level: float = 0.95,
                     max_rounds: int = NASH_ROUNDS) -> NashUncertainty:
    """Nash weight intervals, support probabilities and the exploitability of p̂ (module docstring).

    Uses the first min(rounds, max_rounds) rounds of `pair_samples` for the equilibria and
    every round for the exploitability of p̂ (one matrix-vector product per round).
    """
    from arena.core.nash import nash_from_preferences

    level = _check_level(level)
    p_hat = np.asarray(p_hat, dtype=np.float64)
    n = p_hat.shape[0]
    S, cells = _check_pairs(pair_samples, cells, n)
    if int(max_rounds) < 1:
        raise InputError(f"max_rounds must be >= 1; got {max_rounds}")
    i, j = np.divmod(cells, n)
    # (A_r p̂)_i = Σ_j (P_r[i, j] − ½) p̂_j for every round at once: with D = S − ½ (R, pairs),
    # Ap = D M for the sparse (pairs, n) M with p̂_j at (k, i_k) and −p̂_i at (k, j_k); unplayed
    # pairs are ½ in every round and add nothing. No dense (R, pairs) float64 copy is made.
    k = np.arange(cells.size)
    M = csr_matrix((np.concatenate([p_hat[j], -p_hat[i]]), (np.concatenate([k, k]), np.concatenate([i, j]))),
                   shape=(cells.size, n))
    Ap = np.asarray((M.T @ S.T).T, dtype=np.float64) - 0.5 * np.asarray(M.sum(axis=0)).ravel()  # (R, n)
    expl = np.maximum(Ap.max(axis=1), 0.0)
    rounds = min(S.shape[0], int(max_rounds))
    weights, failed = [], 0
    for r in range(rounds):
        try:
            weights.append(nash_from_preferences(resampled_matrix(S, cells, n, r)).p)
        except SolverError:
            failed += 1
    if not weights:
        raise SolverError(f"no resampled game could be solved ({failed} failures); please report the data")
    Wt = np.array(weights)  # (rounds, n)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(Wt, [alpha, 1.0 - alpha], axis=0)
    return NashUncertainty(
        lo=lo, hi=hi, support_probability=(Wt > SUPPORT_TOL).mean(axis=0),
        exploitability=expl, exploitability_median=float(np.median(expl)),
        exploitability_upper=float(np.quantile(expl, level)), rounds=len(weights), failed=failed, level=level,
        weights=Wt,
    )


def significant_top_set(lo, *, margin: float = SIGNIFICANCE_MARGIN) -> list[int]:
    """Smallest set T of models such that every member significantly beats every outsider.

    "i significantly beats j" means lo[i, j] > ½ + margin. T is the source strongly connected
    component of the relation "j is not significantly beaten by i" (complete, since two models
    cannot both significantly beat each other), so it exists and is unique. |T| = 1 is a
    significant Condorcet winner; T = everyone means no model is separable from the top.
    Returns the sorted indices of T.
    """
    lo = np.asarray(lo, dtype=np.float64)
    if lo.ndim != 2 or lo.shape[0] != lo.shape[1] or lo.shape[0] == 0:
        raise InputError(f"lo must be a non-empty square (n, n) matrix; got shape {lo.shape}")
    beats = lo > 0.5 + margin
    np.fill_diagonal(beats, False)
    # R[j, i]: j is not significantly beaten by i -> an edge j -> i; T has no edge coming in.
    R = ~beats.T
    np.fill_diagonal(R, False)
    n_comp, label = connected_components(csr_matrix(R), directed=True, connection="strong")
    src, dst = np.nonzero(R)
    entered = np.zeros(n_comp, dtype=bool)
    cross = label[src] != label[dst]
    entered[label[dst[cross]]] = True
    sources = np.flatnonzero(~entered)
    # The relation is complete, so its condensation is a transitive tournament with one source;
    # with several (impossible for valid intervals) the union is the honest answer.
    return np.flatnonzero(np.isin(label, sources)).tolist()


def cycle_survival(pair_samples, cells, n: int, triangles) -> np.ndarray:
    """(k,) share of rounds in which each cyclic triangle (a, b, c), a ≻ b ≻ c ≻ a, keeps all three edges."""
    S, cells = _check_pairs(pair_samples, cells, n)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if triangles.size == 0:
        return np.zeros(0)
    col = np.full(n * n, -1, dtype=np.int64)
    col[cells] = np.arange(cells.size)

    def edge(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # (R, k) bool: x ≻ y in round r
        lo_, hi_ = np.minimum(x, y), np.maximum(x, y)
        c = col[lo_ * n + hi_]
        v = np.where(c >= 0, S[:, np.maximum(c, 0)], 0.5)
        return np.where(x < y, v > 0.5, v < 0.5) & (c >= 0)

    a, b, c = triangles.T
    keep = edge(a, b) & edge(b, c) & edge(c, a)
    return keep.mean(axis=0)


def judgments_to_separate(p: float, lo: float, hi: float, games: float) -> float | None:
    """Rough number of judgments of a pair needed for its interval to exclude ½.

    An interval's half-width shrinks like 1/√games, so with half-width h now and a gap
    |p − ½|, about games · (h / |p − ½|)² judgments are needed in all (None when p = ½ or
    there are no games: then no number of judgments is predicted to separate the pair).
    """
    gap = abs(float(p) - 0.5)
    if not games > 0 or gap <= SIGNIFICANCE_MARGIN:
        return None
    half = max(float(hi) - float(p), float(p) - float(lo))
    return float(games) * (half / gap) ** 2
