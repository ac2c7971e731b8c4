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
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from arena.errors import InputError

__all__ = ["Cycles", "analyze_cycles", "MAJORITY_MARGIN", "LOG_ODDS_EPS", "MAX_TRIANGLES"]

#: P[i, j] must exceed ½ by more than this for an edge i -> j (floating-point ties are no edge)
MAJORITY_MARGIN = 1e-12
#: P is clipped to [eps, 1 - eps] before taking log-odds (a 1-0 record has infinite log-odds)
LOG_ODDS_EPS = 1e-6
#: default cap on the number of triangles listed (the total is always counted)
MAX_TRIANGLES = 10_000


@dataclass(frozen=True)
class Cycles:
    """majority (n, n) bool: i -> j (i beats j). components: strongly connected components,
    top first, each sorted. condorcet_winner: index or None. triangles: (i, j, k) meaning
    i ≻ j ≻ k ≻ i, each cycle once with i its smallest index, at most max_triangles of them
    in lexicographic order; n_triangles: total number of cyclic triangles. cyclic_share: the
    HodgeRank cyclic share of the log-odds flow, in [0, 1]."""

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


def _cyclic_share(P: np.ndarray, weights: np.ndarray) -> float:
    n = P.shape[0]
    Pc = np.clip(P, LOG_ODDS_EPS, 1.0 - LOG_ODDS_EPS)
    Y = np.log(Pc) - np.log(Pc.T)  # antisymmetric edge flow
    w = np.triu(weights, 1)
    w = w + w.T  # symmetric weights, zero diagonal
    norm2 = float((w * Y * Y).sum()) / 2.0
    if norm2 <= 0.0:
        return 0.0
    L = np.diag(w.sum(axis=1)) - w
    div = (w * Y).sum(axis=1)
    s = np.linalg.lstsq(L, div, rcond=None)[0]
    R = Y - (s[:, None] - s[None, :])
    share = float((w * R * R).sum()) / 2.0 / norm2
    return min(max(share, 0.0), 1.0)


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
    with N = 0 are not edges); None weighs every pair 1.
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
