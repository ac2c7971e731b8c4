"""Non-transitive structure of a preference matrix: majority graph, cycles, HodgeRank.

Majority graph: i -> j when P[i, j] > ½ + margin (or, with `significant=True`, when the
interval lo[i, j] > ½ excludes a tie). Its strongly connected components, ordered top first
(a topological order of the condensation), group models that beat each other in cycles;
a Condorcet winner exists iff the top component is a single model that beats every other.
Cyclic triangles i ≻ j ≻ k ≻ i are listed once each, rotated so that i is the smallest index.

HodgeRank (Jiang, Lim, Yao, Ye 2011, "Statistical ranking and combinatorial Hodge theory",
Math. Program. 127:203, arXiv 0811.1067): the edge flow Y_ij = log(P_ij / P_ji) on the
comparison graph splits orthogonally (in the weighted inner product <X, Y>_w = sum w_ij X_ij Y_ij)
into a gradient flow s_i - s_j, found by weighted least squares (the graph Laplacian system
L s = div Y), and a cyclic remainder. The cyclic share ‖Y - grad s‖²_w / ‖Y‖²_w is 0 for a
Bradley–Terry-consistent matrix and 1 for rock-paper-scissors.

Saturated pairs. A unanimous pair (P_ij = 1, e.g. a 10-0 record) has infinite log-odds, so P
is clipped to [eps, 1 - eps] (eps = LOG_ODDS_EPS, |Y| <= Y_MAX = log((1 - eps)/eps) ≈ 13.8).
Plain clipping would give every unanimous pair the same flow Y_MAX, which no gradient can
match: a perfectly transitive 0/1 matrix of 3, 4, 8 models would report a cyclic share of
11%, 17%, 25%, and a Bradley–Terry matrix with gaps beyond Y_MAX a positive one. So a
saturated edge is treated as censored: it says only that the log-odds are at least Y_MAX,
and its residual is the shortfall max(0, Y_MAX - (s_i - s_j)). The gradient part is then

    s* = argmin_s  Σ_{uncensored} w_ij (Y_ij - s_i + s_j)² + Σ_{censored i ≻ j} w_ij max(0, Y_MAX - s_i + s_j)²,

a convex piecewise-quadratic problem solved by an active-set Newton method (each step a
weighted least-squares fit on the edges whose residual counts, with backtracking) until its
gradient vanishes to HODGE_GRAD_TOL, the certificate of the minimum (SolverError otherwise). The cyclic share is that minimum over
‖Y‖²_w with Y clipped. Without saturated pairs this is plain HodgeRank; a Bradley–Terry-consistent matrix,
saturated or not, has share 0; a unanimous cycle (0/1 rock-paper-scissors) has share 1.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from arena.errors import InputError, SolverError

__all__ = ["Cycles", "analyze_cycles", "MAJORITY_MARGIN", "LOG_ODDS_EPS", "MAX_TRIANGLES", "HODGE_MAX_ITER",
           "HODGE_MIN_STEP", "HODGE_GRAD_TOL"]

#: P[i, j] must exceed ½ by more than this for an edge i -> j (floating-point ties are no edge)
MAJORITY_MARGIN = 1e-12
#: P is clipped to [eps, 1 - eps] before taking log-odds (a 1-0 record has infinite log-odds);
#: a clipped (saturated) pair is a censored edge of the HodgeRank fit, see the module docstring
LOG_ODDS_EPS = 1e-6
#: active-set Newton iterations allowed for the censored HodgeRank fit (it usually needs 1-3)
HODGE_MAX_ITER = 100
#: shortest step (as a fraction of the Newton step) the backtracking line search tries
HODGE_MIN_STEP = 1e-12
#: certificate: the fit's gradient norm must be below this times sqrt(‖Y‖²_w · Σ w)
#: (an upper bound on it), else SolverError
HODGE_GRAD_TOL = 1e-9
#: default cap on the number of triangles listed (the total is always counted)
MAX_TRIANGLES = 10_000


@dataclass(frozen=True)
class Cycles:
    """majority (n, n) bool: i -> j (i beats j). components: strongly connected components,
    top first, each sorted. condorcet_winner: index or None. triangles: (i, j, k) meaning
    i ≻ j ≻ k ≻ i, each cycle once with i its smallest index, at most max_triangles of them
    in lexicographic order; n_triangles: total number of cyclic triangles. cyclic_share: the
    HodgeRank cyclic share of the log-odds flow, in [0, 1], unanimous pairs counted as censored
    log-odds >= log((1 - LOG_ODDS_EPS)/LOG_ODDS_EPS) (module docstring)."""

    majority: np.ndarray
    components: list[list[int]]
    condorcet_winner: int | None
    triangles: list[tuple[int, int, int]]
    n_triangles: int
    cyclic_share: float


def _components_top_first(M: np.ndarray, P: np.ndarray) -> list[list[int]]:
    n = M.shape[0]
    n_comp, label = connected_components(csr_matrix(M), directed=True, connection="strong")
    # condensation DAG; Kahn's algorithm, ties between incomparable components broken by
    # the higher mean preference (then the smaller first index) so the order is stable
    C = np.zeros((n_comp, n_comp), dtype=bool)
    src, dst = np.nonzero(M)
    C[label[src], label[dst]] = True
    np.fill_diagonal(C, False)
    indeg = C.sum(axis=0)
    mean_pref = np.bincount(label, weights=P.mean(axis=1), minlength=n_comp) / np.bincount(label, minlength=n_comp)
    first = np.full(n_comp, n)
    np.minimum.at(first, label, np.arange(n))
    heap = [(-mean_pref[c], first[c], c) for c in range(n_comp) if indeg[c] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, _, c = heapq.heappop(heap)
        order.append(c)
        for d in np.flatnonzero(C[c]):
            indeg[d] -= 1
            if indeg[d] == 0:
                heapq.heappush(heap, (-mean_pref[d], first[d], d))
    return [np.flatnonzero(label == c).tolist() for c in order]


def _triangles(M: np.ndarray, cap: int) -> tuple[list[tuple[int, int, int]], int]:
    Mi = M.astype(np.float64)
    total = int(round(np.trace(Mi @ Mi @ Mi) / 3.0))
    out: list[tuple[int, int, int]] = []
    n = M.shape[0]
    for i in range(n):
        if len(out) >= cap:
            break
        js = np.flatnonzero(M[i, i + 1:]) + i + 1  # i -> j
        ks = np.flatnonzero(M[i + 1:, i]) + i + 1  # k -> i
        if js.size == 0 or ks.size == 0:
            continue
        for a, b in np.argwhere(M[np.ix_(js, ks)]):  # j -> k
            out.append((i, int(js[a]), int(ks[b])))
            if len(out) >= cap:
                break
    return out, total


def _laplacian_step(i, j, sign, w, r, n) -> np.ndarray:
    """argmin_d Σ_e w_e (r_e - sign_e (d_i - d_j))²: the weighted graph Laplacian system L d = div r."""
    L = np.zeros((n, n))
    np.add.at(L, (i, j), -w)
    np.add.at(L, (j, i), -w)
    L[np.diag_indices(n)] = -L.sum(axis=1)
    div = np.bincount(i, weights=w * sign * r, minlength=n) - np.bincount(j, weights=w * sign * r, minlength=n)
    return np.linalg.lstsq(L, div, rcond=None)[0]


def _cyclic_share(P: np.ndarray, weights: np.ndarray) -> float:
    """HodgeRank cyclic share of the clipped log-odds flow, unanimous pairs censored."""
    n = P.shape[0]
    i, j = np.triu_indices(n, 1)
    edge = weights[i, j] > 0  # pairs with N = 0 are not edges
    i, j = i[edge], j[edge]
    w, p = weights[i, j], P[i, j]
    pc = np.clip(p, LOG_ODDS_EPS, 1.0 - LOG_ODDS_EPS)
    # Orient every edge so that a unanimous one reads "winner ≻ loser, log-odds >= y_max".
    sign = np.where(p <= LOG_ODDS_EPS, -1.0, 1.0)
    y = sign * (np.log(pc) - np.log1p(-pc))  # (e,) oriented clipped log-odds
    censored = (p <= LOG_ODDS_EPS) | (p >= 1.0 - LOG_ODDS_EPS)
    norm2 = float((w * y * y).sum())
    if norm2 <= 0.0:
        return 0.0

    def residual(s: np.ndarray) -> np.ndarray:  # (e,) y - oriented gradient of s
        return y - sign * (s[i] - s[j])

    def loss(s: np.ndarray) -> float:
        r = residual(s)
        r = np.where(censored, np.maximum(r, 0.0), r)
        return float((w * r * r).sum())

    def gradient(s: np.ndarray) -> np.ndarray:  # ∇ of the objective / (-2)
        r = residual(s)
        rho = w * sign * np.where(censored, np.maximum(r, 0.0), r)
        return np.bincount(i, weights=rho, minlength=n) - np.bincount(j, weights=rho, minlength=n)

    # Certificate scale: |gradient| <= sqrt(2 f Σw) <= sqrt(2 ‖Y‖²_w Σw) for any s.
    scale = np.sqrt(norm2 * w.sum())
    s = _laplacian_step(i, j, sign, w, y, n)  # plain HodgeRank: final when nothing is censored
    f = loss(s)
    for _ in range(HODGE_MAX_ITER):
        if np.linalg.norm(gradient(s)) <= HODGE_GRAD_TOL * scale:
            break  # stationary point of a convex objective: the minimum
        # Newton step of the piecewise quadratic: least squares on the edges whose residual
        # counts here (uncensored, or censored and short of y_max); backtrack until f decreases.
        r = residual(s)
        on = ~censored | (r > 0)
        step = _laplacian_step(i[on], j[on], sign[on], w[on], r[on], n)
        t = 1.0
        while t > HODGE_MIN_STEP and loss(s + t * step) >= f:
            t *= 0.5
        if t <= HODGE_MIN_STEP:
            break  # no decrease left: the certificate below decides
        s = s + t * step
        f = loss(s)
    g = float(np.linalg.norm(gradient(s)))
    if not g <= HODGE_GRAD_TOL * scale:
        raise SolverError(
            f"HodgeRank fit not certified: gradient {g:.1e} > {HODGE_GRAD_TOL:.0e} x {scale:.1e} "
            "after the active-set Newton steps; please report the preference matrix"
        )
    return min(max(f / norm2, 0.0), 1.0)


def analyze_cycles(
    P,
    *,
    lo=None,
    hi=None,
    significant: bool = False,
    N=None,
    margin: float = MAJORITY_MARGIN,
    max_triangles: int = MAX_TRIANGLES,
) -> Cycles:
    """Majority graph, its strongly connected components (top first), the Condorcet winner,
    the cyclic triangles and the HodgeRank cyclic share of P (see the module docstring).

    significant=True draws i -> j only when lo[i, j] > ½ (needs lo and hi, e.g. from
    `preference_matrix_from_counts`). N: game counts used as HodgeRank edge weights (pairs
    with N = 0 are not edges); None weighs every pair 1. A unanimous pair (P within
    LOG_ODDS_EPS of 0 or 1) is a censored edge of the HodgeRank fit, so a perfectly
    transitive 0/1 matrix has cyclic share 0 (see the module docstring).
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise InputError(f"P must be a non-empty square (n, n) matrix; got shape {P.shape}")
    if not np.all(np.isfinite(P)) or P.min() < 0 or P.max() > 1:
        raise InputError("P must hold finite probabilities in [0, 1]; build it with arena.core.matrix")
    if max_triangles < 0:
        raise InputError(f"max_triangles must be >= 0; got {max_triangles}")
    n = P.shape[0]
    P = (P + 1.0 - P.T) / 2.0  # P + Pᵀ = 1 by construction
    if significant:
        if lo is None or hi is None:
            raise InputError(
                "significant=True needs the interval bounds lo and hi (from preference_matrix_from_counts)"
            )
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        if lo.shape != P.shape or hi.shape != P.shape:
            raise InputError(f"lo and hi must have the shape of P {P.shape}; got {lo.shape} and {hi.shape}")
        M = lo > 0.5 + margin
    else:
        M = P > 0.5 + margin
    np.fill_diagonal(M, False)
    if N is None:
        weights = np.ones((n, n))
    else:
        weights = np.asarray(N, dtype=np.float64)
        if weights.shape != P.shape or not np.all(np.isfinite(weights)) or weights.min() < 0:
            raise InputError(f"N must be a non-negative (n, n) count matrix of shape {P.shape}")
        weights = (weights + weights.T) / 2.0
    components = _components_top_first(M, P)
    top = components[0]
    winner = top[0] if len(top) == 1 and M[top[0]].sum() == n - 1 else None
    triangles, total = _triangles(M, max_triangles)
    return Cycles(
        majority=M,
        components=components,
        condorcet_winner=winner,
        triangles=triangles,
        n_triangles=total,
        cyclic_share=_cyclic_share(P, weights),
    )
