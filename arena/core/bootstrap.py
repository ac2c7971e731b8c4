"""Confidence intervals for Bradley–Terry log-strengths: bootstrap and analytic.

Bootstrap (Efron 1979; percentile intervals). Two resampling schemes:

* ``multinomial`` (no prompt ids): the m comparisons are i.i.d. draws from the table of distinct
  outcomes, so a bootstrap sample is a Multinomial(m, counts/m) draw over that table. As in
  FastChat's Chatbot Arena notebook (Chiang et al. 2024, arXiv 2403.04132) we resample the
  table of distinct (pair, outcome) cells, not the battles, so the cost of a round does not
  depend on m. Cells that give the same contribution to W (a ≻ b recorded as (a, b, 1) or as
  (b, a, 0)) are merged first; merging categories of a multinomial is exact.
* ``cluster`` (prompt ids present): judgments of the same prompt are dependent, so whole
  prompts are resampled (the cluster bootstrap; Field & Welsh 2007, JRSS-B 69:369). Each
  prompt's contribution to W is precomputed as one row of a sparse (clusters × pairs)
  matrix; a round is a Multinomial(C, 1/C) weight vector times that matrix.

Every round is a Bradley–Terry fit (``arena.core.bradley_terry``), warm-started from the
full-data fit and run as one batched Newton solve for a chunk of rounds. When prior == 0 a
resampled graph can lose strong connectivity (its MLE does not exist); such rounds are fitted
with the small ridge prior ``FALLBACK_PRIOR`` and counted in ``BTIntervals.degenerate``.

Analytic intervals: θ̂ is asymptotically normal with covariance I(θ)^{-1} on the mean-zero
subspace, I = L(N ∘ p ∘ (1 − p)) + λ·Id the observed Fisher information (a Laplacian, plus
the prior precision). With soft scores or ties the binomial variance p(1 − p) overstates the
per-comparison variance, so given the records we use the sandwich (Huber 1967; White 1980)
I^{-1} B I^{-1}, B = Σ_k r_k² (e_a − e_b)(e_a − e_b)ᵀ with residuals r_k = s_k − p_{a_k b_k},
or, with prompt ids, the cluster-robust B = Σ_c g_c g_cᵀ, g_c = Σ_{k ∈ c} r_k (e_{a_k} − e_{b_k}).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import ndtri

from arena.core.bradley_terry import (
    DEFAULT_TOL,
    BTFit,
    fit_bradley_terry,
    fit_bradley_terry_batch,
)
from arena.core.records import Records, pair_counts
from arena.errors import InputError

__all__ = [
    "BTIntervals",
    "bootstrap_bradley_terry",
    "analytic_bradley_terry_intervals",
    "FALLBACK_PRIOR",
]

# Ridge prior for bootstrap rounds whose resampled win graph is not strongly connected.
FALLBACK_PRIOR = 1e-3
# Elements of one (rounds, pairs) block; bounds the memory of a chunk of rounds (~40 MB).
_CHUNK_ELEMENTS = 5_000_000
# Chord (simplified Newton) iterations per round before falling back to full Newton.
_CHORD_ITER = 60


@dataclass(frozen=True)
class BTIntervals:
    """Bradley–Terry estimate with per-model intervals at ``level``.

    Attributes:
      theta: (n,) full-data estimate (mean zero).
      lo, hi: (n,) interval ends for theta.
      se: (n,) standard errors (bootstrap standard deviation, or analytic).
      rounds: bootstrap rounds (0 for analytic intervals).
      method: "multinomial" | "cluster" (bootstrap) or "fisher" | "sandwich" |
        "cluster-sandwich" (analytic).
      level: coverage level, e.g. 0.95.
      degenerate: bootstrap rounds fitted with FALLBACK_PRIOR (their graph was not strongly
        connected); 0 for analytic intervals.
      samples: (rounds, n) bootstrap estimates, or None for analytic intervals.
    """

    theta: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rounds: int
    method: str
    level: float = 0.95
    se: np.ndarray | None = None
    degenerate: int = 0
    samples: np.ndarray | None = None


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    return level


def _pair_index(records: Records) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orient every record to its unordered pair (i < j): (pair id, score for i, n pairs)."""
    n = records.n_models
    a, b, s = records.a, records.b, records.score
    swap = a > b
    i = np.where(swap, b, a)
    j = np.where(swap, a, b)
    s_low = np.where(swap, 1.0 - s, s)  # P(i ≻ j) with i < j
    return i * n + j, s_low, n


def _unit_tables(records: Records) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray, str]:
    """Resampling units and their contributions.

    Returns (U, size, cells, method): U is a sparse (units × 2·pairs) matrix, row u = the
    contribution of unit u to [soft wins of the lower index, games] of each used pair;
    ``size`` the multinomial counts of the units in the data (the multinomial scheme) or
    ones (the cluster scheme); ``cells`` the flat pair ids i·n + j (i < j) of the columns.
    """
    key, s_low, n = _pair_index(records)
    cells, pair = np.unique(key, return_inverse=True)
    p = cells.size
    if records.cluster is None:
        # Distinct (pair, oriented score) outcomes with their counts, via one integer key.
        values, code = np.unique(s_low, return_inverse=True)
        units, size = np.unique(pair * values.size + code.reshape(-1), return_counts=True)
        k = units.size
        unit_pair, unit_score = np.divmod(units, values.size)
        rows = np.arange(k)
        U = sparse.csr_matrix(
            (np.concatenate([values[unit_score], np.ones(k)]),
             (np.concatenate([rows, rows]), np.concatenate([unit_pair, unit_pair + p]))),
            shape=(k, 2 * p),
        )
        return U, size.astype(np.float64), cells, "multinomial"
    c = records.cluster
    n_clusters = int(c.max()) + 1
    U = sparse.csr_matrix(
        (np.concatenate([s_low, np.ones_like(s_low)]),
         (np.concatenate([c, c]), np.concatenate([pair, pair + p]))),
        shape=(n_clusters, 2 * p),
    )  # duplicates are summed
    return U, np.ones(n_clusters), cells, "cluster"


def _multinomial(rng: np.random.Generator, total: int, prob: np.ndarray, rounds: int) -> np.ndarray:
    """Exact Multinomial(total, prob) draws, (rounds, K), in O(K + √total) per round.

    Poissonisation: counts X_k ~ Poisson(λ prob_k) with λ = total − 3√total are the category
    counts of the first S ~ Poisson(λ) i.i.d. draws from ``prob``; if S <= total, adding the
    categories of total − S further i.i.d. draws gives exactly Multinomial(total, prob); a round
    with S > total (probability ≈ 0.1%) is redrawn. numpy's own sampler needs one binomial per
    category, a few times slower for large tables.
    """
    k = prob.size
    lam = max(0.0, total - 3.0 * np.sqrt(total))
    counts = rng.poisson(lam * prob, size=(rounds, k))
    sums = counts.sum(axis=1)
    while (over := sums > total).any():
        counts[over] = rng.poisson(lam * prob, size=(int(over.sum()), k))
        sums = counts.sum(axis=1)
    extra = total - sums  # (rounds,)
    cdf = np.cumsum(prob)
    cdf /= cdf[-1]
    cat = np.minimum(np.searchsorted(cdf, rng.random(int(extra.sum())), side="right"), k - 1)
    row = np.repeat(np.arange(rounds), extra)
    counts += np.bincount(row * k + cat, minlength=rounds * k).reshape(rounds, k)
    return counts


def _wins_from_pairs(wins_low: np.ndarray, games: np.ndarray, cells: np.ndarray, n: int) -> np.ndarray:
    """(r, pairs) lower-index wins and games -> (r, n, n) win tables."""
    r = wins_low.shape[0]
    i, j = np.divmod(cells, n)
    W = np.zeros((r, n, n))
    W[:, i, j] = wins_low
    W[:, j, i] = games - wins_low
    return W


def _strongly_connected(wins_low: np.ndarray, games: np.ndarray, i: np.ndarray, j: np.ndarray, n: int) -> bool:
    """Is one round's win graph (edge i → j when i beat j at least partly) strongly connected?"""
    fwd = wins_low > 0
    bwd = games - wins_low > 0
    if i.size == n * (n - 1) // 2 and fwd.all() and bwd.all():
        return True  # every pair won both ways: the complete digraph
    rows = np.concatenate([i[fwd], j[bwd]])
    cols = np.concatenate([j[fwd], i[bwd]])
    graph = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    k, _ = connected_components(graph, directed=True, connection="strong")
    return k == 1


def _laplacian(C: np.ndarray) -> np.ndarray:
    L = -C.copy()
    np.fill_diagonal(L, C.sum(axis=1) - np.diag(C))
    return L


def _inverse_information(N: np.ndarray, theta: np.ndarray, prior: float) -> np.ndarray:
    """(I + 11ᵀ/n)⁻¹, I = L(N ∘ p ∘ (1 − p)) + prior·Id: the inverse on the mean-zero subspace."""
    n = theta.shape[0]
    P = 0.5 * (1.0 + np.tanh(0.5 * (theta[:, None] - theta[None, :])))
    info = _laplacian(N * P * (1.0 - P)) + prior * np.eye(n)
    return np.linalg.inv(info + np.full((n, n), 1.0 / n))


def _chord_fits(
    wins_low: np.ndarray,
    games: np.ndarray,
    E: sparse.csr_matrix,
    i: np.ndarray,
    j: np.ndarray,
    theta0: np.ndarray,
    Hinv: np.ndarray,
    prior: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Simplified Newton (chord) iterations θ ← θ − ∇f(θ) H₀⁻¹ for r resampled tables at once.

    H₀ is the full-data Hessian, inverted once; a resampled Hessian differs from it by
    O(1/√games), so the iteration contracts fast, at the cost of one gradient per step
    (O(r · pairs)). Returns (theta (r, n), converged (r,) bool); a round that stalls is
    reported unconverged (the caller refits it by full Newton).
    """
    r, n = wins_low.shape[0], theta0.shape[0]
    theta = np.broadcast_to(theta0, (r, n)).copy()
    scale = np.maximum(1.0, games.sum(axis=1))  # (r,) games per round
    active = np.ones(r, dtype=bool)
    converged = np.zeros(r, dtype=bool)
    last = np.full(r, np.inf)
    ET = E.T.tocsr()  # (n, pairs)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        th = theta[idx]
        D = th[:, i] - th[:, j]  # (r, pairs)
        resid = wins_low[idx] - games[idx] * (0.5 * (1.0 + np.tanh(0.5 * D)))
        g = prior * th - np.asarray(ET @ resid.T).T  # ∇ of the negative log-posterior (r, n)
        gnorm = np.linalg.norm(g, axis=1) / scale[idx]
        done = gnorm <= tol
        # A contraction shrinks the gradient by a constant factor; anything slower is a stall.
        stalled = ~done & (gnorm > 0.5 * last[idx])
        converged[idx[done]] = True
        active[idx[done | stalled]] = False
        last[idx] = gnorm
        go = ~(done | stalled)
        step = g[go] @ Hinv  # Hinv symmetric
        step -= step.mean(axis=1, keepdims=True)
        theta[idx[go]] = th[go] - step
    return theta, converged


def bootstrap_bradley_terry(
    records: Records,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    prior: float = 0.0,
    chunk: int | None = None,
    tol: float = DEFAULT_TOL,
) -> BTIntervals:
    """Percentile bootstrap intervals for the Bradley–Terry fit of ``records``.

    Resamples prompts (clusters) when ``records.cluster`` is set, otherwise the multinomial
    table of distinct outcomes (see the module docstring); seeded and deterministic. Every
    round is fitted to the same gradient certificate ``tol`` as the full-data fit.

    Args:
      records: validated comparison records.
      rounds: bootstrap rounds (>= 1).
      seed: seed of numpy's default generator.
      level: interval coverage; the percentiles are (1 ∓ level)/2.
      prior: Gaussian prior precision of every fit (see `fit_bradley_terry`).
      chunk: rounds fitted together (default: bounded by memory).
      tol: gradient-norm certificate per game that every round's fit must reach.

    Raises InputError for bad arguments or a full-data graph without an MLE (prior == 0).
    """
    level = _check_level(level)
    if int(rounds) < 1:
        raise InputError(f"rounds must be >= 1; got {rounds}")
    rounds = int(rounds)
    n = records.n_models
    W_full, N_full = pair_counts(records)
    full = fit_bradley_terry(W_full, prior=prior, models=records.models, tol=tol)

    U, size, cells, method = _unit_tables(records)
    UT = U.T.tocsr()  # (2·pairs, units)
    total = int(round(size.sum()))
    prob = size / size.sum()
    p = cells.size
    pi, pj = np.divmod(cells, n)
    # Incidence (pairs × n): +1 at the lower index, −1 at the higher; ∇ℓ = Eᵀ residuals.
    E = sparse.csr_matrix(
        (np.concatenate([np.ones(p), -np.ones(p)]),
         (np.concatenate([np.arange(p), np.arange(p)]), np.concatenate([pi, pj]))),
        shape=(p, n),
    )
    Hinv = _inverse_information(N_full, full.theta, full.prior)
    rng = np.random.default_rng(seed)
    if chunk is None:
        chunk = max(1, min(rounds, _CHUNK_ELEMENTS // max(p, U.shape[0])))
    samples = np.empty((rounds, n))
    degenerate = 0
    for start in range(0, rounds, chunk):
        r = min(chunk, rounds - start)
        weights = _multinomial(rng, total, prob, r).astype(np.float64)  # (r, units)
        pair_sums = np.asarray(UT @ weights.T).T  # (r, 2·pairs)
        wins_low, games = pair_sums[:, :p], pair_sums[:, p:]
        if prior == 0.0:
            ok = np.array([_strongly_connected(wins_low[k], games[k], pi, pj, n) for k in range(r)])
        else:
            ok = np.ones(r, dtype=bool)
        theta = np.empty((r, n))
        if ok.any():
            th, conv = _chord_fits(wins_low[ok], games[ok], E, pi, pj, full.theta, Hinv, prior, tol, _CHORD_ITER)
            if not conv.all():
                # The chord iteration stalled (a round far from the full data): full Newton.
                W = _wins_from_pairs(wins_low[ok][~conv], games[ok][~conv], cells, n)
                th[~conv], _, _ = fit_bradley_terry_batch(W, prior=prior, init=full.theta, tol=tol)
            theta[ok] = th
        if not ok.all():
            degenerate += int((~ok).sum())
            W = _wins_from_pairs(wins_low[~ok], games[~ok], cells, n)
            theta[~ok], _, _ = fit_bradley_terry_batch(
                W, prior=FALLBACK_PRIOR, init=full.theta, tol=tol, max_iter=200
            )
        samples[start:start + r] = theta
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
    return BTIntervals(
        theta=full.theta, lo=lo, hi=hi, rounds=rounds, method=method, level=level,
        se=samples.std(axis=0, ddof=1) if rounds > 1 else np.zeros(n),
        degenerate=degenerate, samples=samples,
    )


def analytic_bradley_terry_intervals(
    W: np.ndarray,
    N: np.ndarray,
    fit: BTFit,
    *,
    level: float = 0.95,
    records: Records | None = None,
) -> BTIntervals:
    """Normal-approximation intervals θ̂ ± z·se from the observed Fisher information.

    Without ``records``: Cov = Π (I + 11ᵀ/n)⁻¹ Π with I = L(N ∘ p ∘ (1 − p)) + prior·Id and
    Π the projection on mean-zero vectors ("fisher"). With ``records``: the sandwich
    Cov = I⁺ B I⁺ from per-comparison residuals ("sandwich"), cluster-robust when the records
    carry prompt ids ("cluster-sandwich"); use it for soft scores and ties.
    """
    level = _check_level(level)
    W = np.asarray(W, dtype=np.float64)
    N = np.asarray(N, dtype=np.float64)
    theta = np.asarray(fit.theta, dtype=np.float64)
    n = theta.shape[0]
    if W.shape != (n, n) or N.shape != (n, n):
        raise InputError(f"W and N must be ({n}, {n}) to match the fit; got {W.shape}, {N.shape}")
    Pi = np.eye(n) - np.full((n, n), 1.0 / n)
    Hinv = Pi @ _inverse_information(N, theta, fit.prior) @ Pi
    if records is None:
        cov = Hinv
        method = "fisher"
    else:
        if records.n_models != n:
            raise InputError(f"records have {records.n_models} models but the fit has {n}")
        D = theta[records.a] - theta[records.b]
        resid = records.score - 0.5 * (1.0 + np.tanh(0.5 * D))  # (m,)
        if records.cluster is None:
            S = np.zeros((n, n))
            np.add.at(S, (records.a, records.b), resid**2)
            B = _laplacian(S + S.T)
            method = "sandwich"
        else:
            n_c = int(records.cluster.max()) + 1
            c = records.cluster
            G = sparse.csr_matrix(
                (np.concatenate([resid, -resid]),
                 (np.concatenate([c, c]), np.concatenate([records.a, records.b]))),
                shape=(n_c, n),
            )  # row c = g_c, duplicates summed
            B = np.asarray((G.T @ G).todense())
            method = "cluster-sandwich"
        cov = Hinv @ B @ Hinv
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    z = float(ndtri(0.5 + level / 2.0))
    return BTIntervals(
        theta=theta, lo=theta - z * se, hi=theta + z * se, rounds=0, method=method,
        level=level, se=se,
    )
