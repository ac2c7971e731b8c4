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
from scipy.special import ndtri, pdtr

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
# Poisson rates above this are drawn by numpy's sampler instead of a tabulated inverse CDF.
_TABLE_MAX_RATE = 1e5


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


def _guided_table(cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guide table (Chen & Asau 1974) for inverting a discrete CDF F(0..L-1) with one uniform.

    Returns (cdf with +inf appended, guide) where guide[t] = first index with F > t/G: a uniform
    in [t/G, (t+1)/G) starts its search there and rarely needs a step (G = 4L).
    """
    g = 4 * cdf.size
    return np.append(cdf, np.inf), np.searchsorted(cdf, np.arange(g) / g, side="right")


def _invert(cdf_ext: np.ndarray, guide: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Smallest index x with F(x) > u, for a flat array of uniforms u (exact, like searchsorted)."""
    x = guide[(u * guide.size).astype(np.intp)]
    step = np.flatnonzero(cdf_ext[x] <= u)
    while step.size:
        x[step] += 1
        step = step[cdf_ext[x[step]] <= u[step]]
    return x


def _multinomial_sampler(total: int, size: np.ndarray):
    """Exact Multinomial(total, size/Σsize) sampler; returns draw(rng, rounds) -> (K, rounds).

    Poissonisation: X_k ~ Poisson(λ p_k) with λ = total − 2√total are the category counts of
    the first S ~ Poisson(λ) of a stream of i.i.d. draws from p; if S <= total, adding the
    categories of total − S further i.i.d. draws gives exactly Multinomial(total, p) (a round with
    S > total, probability ≈ 2%, is redrawn). The Poisson draws are by inversion of the Poisson
    CDF, tabulated once per distinct rate (the rates are counts times one factor, so there are
    few) on a window of ±10 standard deviations (the mass outside is below 1e-20), with one
    uniform per draw and a guide table: several times faster than numpy's multinomial (one
    binomial per category) or its Poisson sampler. O(K + √total) per round.
    """
    size = np.asarray(size, dtype=np.float64)
    k = size.size
    prob = size / size.sum()
    lam = max(0.0, total - 2.0 * np.sqrt(total))
    rates = lam * prob
    order = np.argsort(rates, kind="stable")
    sorted_rates = rates[order]
    values, starts = np.unique(sorted_rates, return_index=True)
    ends = np.append(starts[1:], k)
    groups = []
    for v, s, e in zip(values, starts, ends):
        if v > _TABLE_MAX_RATE:
            groups.append((order[s:e], v, 0, None, None))
            continue
        lo = max(0, int(np.floor(v - 10.0 * np.sqrt(v) - 10.0)))
        hi = int(np.ceil(v + 10.0 * np.sqrt(v) + 30.0))
        cdf_ext, guide = _guided_table(pdtr(np.arange(lo, hi + 1), v))  # F(lo), ..., F(hi)
        groups.append((order[s:e], v, lo, cdf_ext, guide))
    contiguous = bool(np.all(order == np.arange(k)))
    cdf_units = np.cumsum(prob)
    cdf_units /= cdf_units[-1]
    units_ext, units_guide = _guided_table(cdf_units)

    def poisson_block(rng: np.random.Generator, rounds: int) -> np.ndarray:
        u = rng.random((k, rounds))
        out = np.empty((k, rounds), dtype=np.int64)
        for (idx, v, lo, cdf, guide), s, e in zip(groups, starts, ends):
            rows = slice(s, e) if contiguous else idx
            if cdf is None:
                out[rows] = rng.poisson(v, size=(e - s, rounds))
                continue
            out[rows] = lo + _invert(cdf, guide, u[rows].reshape(-1)).reshape(e - s, rounds)
        return out

    def draw(rng: np.random.Generator, rounds: int) -> np.ndarray:
        counts = poisson_block(rng, rounds)
        sums = counts.sum(axis=0)
        while (over := np.flatnonzero(sums > total)).size:
            counts[:, over] = poisson_block(rng, over.size)
            sums = counts.sum(axis=0)
        extra = (total - sums).astype(np.int64)  # (rounds,)
        cat = np.minimum(_invert(units_ext, units_guide, rng.random(int(extra.sum()))), k - 1)
        col = np.repeat(np.arange(rounds), extra)
        counts += np.bincount(cat * rounds + col, minlength=k * rounds).reshape(k, rounds)
        return counts

    return draw


def _wins_from_pairs(wins_low: np.ndarray, games: np.ndarray, cells: np.ndarray, n: int) -> np.ndarray:
    """(pairs, r) lower-index wins and games -> (r, n, n) win tables."""
    r = wins_low.shape[1]
    i, j = np.divmod(cells, n)
    W = np.zeros((r, n, n))
    W[:, i, j] = wins_low.T
    W[:, j, i] = np.maximum(games - wins_low, 0.0).T
    return W


def _edge_structure(wins_low: np.ndarray, games: np.ndarray, i: np.ndarray, j: np.ndarray, n: int):
    """CSR skeleton of the full-data win graph, to test resampled graphs without rebuilding it.

    Edges: i → j for pairs where the lower index won something, j → i where the higher did.
    Returns (src, indices, indptr): ``src`` maps each CSR entry (edge) to a row of the
    per-round presence mask [wins_low > 0; games − wins_low > 0] (2·pairs rows).
    """
    p = i.size
    fwd = np.flatnonzero(wins_low > 0)
    bwd = np.flatnonzero(games - wins_low > 0)
    rows = np.concatenate([i[fwd], j[bwd]])
    cols = np.concatenate([j[fwd], i[bwd]])
    src = np.concatenate([fwd, p + bwd])
    order = np.lexsort((cols, rows))
    indptr = np.searchsorted(rows[order], np.arange(n + 1)).astype(np.int32)
    return src[order], cols[order].astype(np.int32), indptr


def _connected_rounds(wins_low: np.ndarray, games: np.ndarray, structure, n: int) -> np.ndarray:
    """(r,) bool: is each round's win graph strongly connected (Hunter 2004, Assumption 1)?

    A resampled graph is a subgraph of the full-data graph, which is strongly connected. A
    round that keeps every edge is; so is one where every lost edge u → v still has a path
    u → w → v (then every path of the full graph survives). Other rounds get a full test.
    """
    src, indices, indptr = structure
    present = np.concatenate([wins_low > 0, games - wins_low > 0], axis=0)[src]  # (edges, r)
    ok = present.all(axis=0)
    bad = np.flatnonzero(~ok)
    if bad.size == 0:
        return ok
    rows = np.repeat(np.arange(n), np.diff(indptr))
    A = np.zeros((bad.size, n * n), dtype=bool)
    A[:, rows * n + indices] = present[:, bad].T
    A = A.reshape(bad.size, n, n)
    edge, which = np.nonzero(~present[:, bad])  # lost edge e in round bad[which]
    u, v = rows[edge], indices[edge]
    bridged = (A[which, u, :] & A[which, :, v]).any(axis=1)
    unbridged = np.zeros(bad.size, dtype=bool)
    unbridged[which[~bridged]] = True
    ok[bad[~unbridged]] = True
    for k in bad[unbridged]:
        # Copies: eliminate_zeros works in place and the skeleton serves every round.
        graph = sparse.csr_matrix((present[:, k].astype(np.float64), indices.copy(), indptr.copy()), shape=(n, n))
        graph.eliminate_zeros()  # csgraph counts explicit zeros as edges
        ok[k] = connected_components(graph, directed=True, connection="strong")[0] == 1
    return ok


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
    ET: sparse.csr_matrix,
    i: np.ndarray,
    j: np.ndarray,
    theta0: np.ndarray,
    Hinv: np.ndarray,
    prior: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Simplified Newton (chord) iterations θ ← θ − H₀⁻¹ ∇f(θ) for r resampled tables at once.

    wins_low, games: (pairs, r); ET: (n, pairs) incidence, +1 at the lower index i and −1 at
    j, so that ∇ℓ = ET · residuals. H₀ is the full-data Hessian, inverted once; a resampled
    Hessian differs from it by O(1/√games), so the iteration contracts fast at the cost of
    one gradient per step, O(pairs · r). σ(θ_i − θ_j) = e_i / (e_i + e_j) with e = exp(θ − max θ)
    avoids a transcendental per pair. Returns (theta (n, r), converged (r,) bool); a round
    that stalls is reported unconverged (the caller refits it by full Newton).
    """
    n, r = theta0.shape[0], wins_low.shape[1]
    theta = np.repeat(theta0[:, None], r, axis=1)  # (n, r)
    converged = np.zeros(r, dtype=bool)
    cols = np.arange(r)  # rounds still iterating, and their data
    wl, gm, th = wins_low, games, theta.copy()
    scale = np.maximum(1.0, games.sum(axis=0))
    last = np.full(r, np.inf)
    for _ in range(max_iter):
        if cols.size == 0:
            break
        e = np.exp(th - th.max(axis=0))  # (n, a)
        ei = e[i]  # (pairs, a)
        resid = e[j]
        resid += ei
        np.divide(ei, resid, out=resid)  # σ(θ_i − θ_j)
        resid *= gm
        np.subtract(wl, resid, out=resid)
        g = prior * th - ET @ resid  # ∇ of the negative log-posterior (n, a)
        gnorm = np.linalg.norm(g, axis=0) / scale[cols]
        done = gnorm <= tol
        # A contraction shrinks the gradient by a constant factor; slower (or NaN) is a stall.
        stalled = ~done & ~(gnorm <= 0.5 * last[cols])
        last[cols] = gnorm
        theta[:, cols] = th
        converged[cols[done]] = True
        keep = ~(done | stalled)
        if not keep.all():
            cols, wl, gm, th, g = cols[keep], wl[:, keep], gm[:, keep], th[:, keep], g[:, keep]
        step = Hinv @ g  # (n, a)
        th = th - (step - step.mean(axis=0))
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
    draw = _multinomial_sampler(int(round(size.sum())), size)
    p = cells.size
    pi, pj = np.divmod(cells, n)
    # Incidence (n × pairs): +1 at the lower index, −1 at the higher; ∇ℓ = ET · residuals.
    ET = sparse.csr_matrix(
        (np.concatenate([np.ones(p), -np.ones(p)]),
         (np.concatenate([pi, pj]), np.concatenate([np.arange(p), np.arange(p)]))),
        shape=(n, p),
    )
    Hinv = _inverse_information(N_full, full.theta, full.prior)
    structure = _edge_structure(W_full[pi, pj], N_full[pi, pj], pi, pj, n)
    rng = np.random.default_rng(seed)
    if chunk is None:
        chunk = max(1, min(rounds, _CHUNK_ELEMENTS // max(p, U.shape[0])))
    samples = np.empty((rounds, n))
    degenerate = 0
    for start in range(0, rounds, chunk):
        r = min(chunk, rounds - start)
        weights = draw(rng, r).astype(np.float64)  # (units, r)
        pair_sums = UT @ weights  # (2·pairs, r)
        wins_low, games = pair_sums[:p], pair_sums[p:]
        if prior == 0.0:
            ok = _connected_rounds(wins_low, games, structure, n)
        else:
            ok = np.ones(r, dtype=bool)
        theta = np.empty((n, r))
        if ok.any():
            th, conv = _chord_fits(wins_low[:, ok], games[:, ok], ET, pi, pj, full.theta, Hinv, prior, tol, _CHORD_ITER)
            if not conv.all():
                # The chord iteration stalled (a round far from the full data): full Newton.
                sel = np.flatnonzero(ok)[~conv]
                W = _wins_from_pairs(wins_low[:, sel], games[:, sel], cells, n)
                th[:, ~conv] = fit_bradley_terry_batch(W, prior=prior, init=full.theta, tol=tol)[0].T
            theta[:, ok] = th
        if not ok.all():
            degenerate += int((~ok).sum())
            W = _wins_from_pairs(wins_low[:, ~ok], games[:, ~ok], cells, n)
            theta[:, ~ok] = fit_bradley_terry_batch(
                W, prior=FALLBACK_PRIOR, init=full.theta, tol=tol, max_iter=200
            )[0].T
        samples[start:start + r] = theta.T
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
