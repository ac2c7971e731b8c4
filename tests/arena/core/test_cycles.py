"""Cycles: majority graph, components top first, Condorcet winner, triangles, HodgeRank."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.core.cycles import LOG_ODDS_EPS, analyze_cycles
from arena.core.matrix import preference_matrix_from_counts
from arena.errors import InputError


def bt_matrix(theta):
    theta = np.asarray(theta, dtype=float)
    return 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))


def rps(p=0.8):
    # 0 beats 1, 1 beats 2, 2 beats 0
    return np.array([[0.5, p, 1 - p], [1 - p, 0.5, p], [p, 1 - p, 0.5]])


def test_rock_paper_scissors_triangle_and_full_cyclic_share():
    c = analyze_cycles(rps())
    assert c.triangles == [(0, 1, 2)] and c.n_triangles == 1
    assert c.components == [[0, 1, 2]] and c.condorcet_winner is None
    assert c.cyclic_share == pytest.approx(1.0, abs=1e-12)
    # orientation: the reversed cycle is listed as 0 ≻ 2 ≻ 1 ≻ 0
    assert analyze_cycles(rps().T).triangles == [(0, 2, 1)]


def test_transitive_has_condorcet_winner_no_cycles_zero_share():
    theta = [0.3, 1.2, -0.5, 0.2, 0.9]
    c = analyze_cycles(bt_matrix(theta))
    assert c.condorcet_winner == 1 and c.triangles == [] and c.n_triangles == 0
    assert c.components == [[1], [4], [0], [3], [2]]  # top first, by strength
    assert c.cyclic_share == pytest.approx(0.0, abs=1e-12)
    assert c.majority[1].sum() == 4 and not c.majority[:, 1].any()


def test_cycle_below_a_winner_components_ordered():
    # model 3 beats everyone; 0, 1, 2 form a cycle; model 4 loses to everyone
    P = np.full((5, 5), 0.5)
    P[:3, :3] = rps(0.7)
    P[3, :] = 0.9
    P[:, 4] = 0.8
    P[3, 3] = P[4, 4] = 0.5
    P = (P + 1 - P.T) / 2
    c = analyze_cycles(P)
    assert c.condorcet_winner == 3
    assert c.components == [[3], [0, 1, 2], [4]]
    assert c.triangles == [(0, 1, 2)]
    assert 0 < c.cyclic_share < 1


def test_top_cycle_means_no_condorcet_winner_even_if_someone_beats_the_rest():
    P = np.full((4, 4), 0.5)
    P[:3, :3] = rps(0.6)
    P[:3, 3] = 0.9
    P = (P + 1 - P.T) / 2
    c = analyze_cycles(P)
    assert c.condorcet_winner is None and c.components == [[0, 1, 2], [3]]


def test_triangles_brute_force_and_cap():
    rng = np.random.default_rng(3)
    n = 12
    G = rng.random((n, n))
    P = np.triu(G, 1) + np.tril(1 - G.T, -1)
    np.fill_diagonal(P, 0.5)
    c = analyze_cycles(P)
    M = P > 0.5
    brute = sorted(
        (i, j, k)
        for i, j, k in itertools.permutations(range(n), 3)
        if i < j and i < k and M[i, j] and M[j, k] and M[k, i]
    )
    assert c.triangles == brute and c.n_triangles == len(brute) > 5
    capped = analyze_cycles(P, max_triangles=5)
    assert capped.triangles == brute[:5] and capped.n_triangles == len(brute)


def test_significant_only_keeps_edges_whose_interval_excludes_half():
    # 0 ≻ 1 ≻ 2 ≻ 0 but 2 ≻ 0 is only 6 wins in 10 games: not significant
    W = np.array([[0, 80, 4], [20, 0, 75], [6, 25, 0]], dtype=float)
    m = preference_matrix_from_counts(W, W + W.T)
    assert analyze_cycles(m.P).triangles == [(0, 1, 2)]
    sig = analyze_cycles(m.P, lo=m.lo, hi=m.hi, significant=True)
    assert sig.triangles == [] and sig.condorcet_winner is None
    assert sig.majority[0, 1] and sig.majority[1, 2] and not sig.majority[2, 0]
    assert sig.components == [[0], [1], [2]]
    with pytest.raises(InputError, match="lo and hi"):
        analyze_cycles(m.P, significant=True)


def test_hodgerank_weights_use_game_counts():
    # a cycle on a weakly observed edge matters less when weighted by games
    P = rps(0.8)
    P[0, 1], P[1, 0] = 0.9, 0.1
    N = np.array([[0, 1000, 1], [1000, 0, 1000], [1, 1000, 0]], dtype=float)
    unweighted = analyze_cycles(P).cyclic_share
    weighted = analyze_cycles(P, N=N).cyclic_share
    assert 0 < weighted < unweighted < 1


def test_cyclic_share_matches_explicit_least_squares():
    rng = np.random.default_rng(0)
    n = 6
    G = rng.random((n, n)) * 0.8 + 0.1
    P = np.triu(G, 1) + np.tril(1 - G.T, -1)
    np.fill_diagonal(P, 0.5)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
    y = np.array([np.log(P[i, j] / P[j, i]) for i, j in edges])
    D = np.zeros((len(edges), n))
    for e, (i, j) in enumerate(edges):
        D[e, i], D[e, j] = 1, -1
    s = np.linalg.lstsq(D, y, rcond=None)[0]
    expected = ((y - D @ s) ** 2).sum() / (y**2).sum()
    assert analyze_cycles(P).cyclic_share == pytest.approx(expected, rel=1e-10)


def test_input_errors():
    with pytest.raises(InputError, match="square"):
        analyze_cycles(np.zeros((2, 3)))
    with pytest.raises(InputError, match="probabilities"):
        analyze_cycles(np.array([[0.5, np.nan], [0.5, 0.5]]))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 9), st.integers(0, 2**32 - 1))
def test_property_bt_matrices_are_acyclic_with_a_winner(n, seed):
    theta = np.random.default_rng(seed).normal(size=n) * 2
    c = analyze_cycles(bt_matrix(theta))
    if np.sort(theta)[-1] - np.sort(theta)[-2] > 1e-9:
        assert c.condorcet_winner == int(np.argmax(theta))
    assert c.n_triangles == 0 and c.cyclic_share < 1e-12
    assert sorted(sum(c.components, [])) == list(range(n))


# --------------------------------------------------------------------------- saturated pairs


def _censored_share_by_bounded_least_squares(P, N):
    """Independent solution of the censored HodgeRank problem: scipy's bounded least squares.

    Variables (s, t >= 0): an uncensored edge asks s_i - s_j = y_ij, a unanimous edge i ≻ j
    asks s_i - s_j = y_max + t_e, so its residual is the shortfall max(0, y_max - s_i + s_j).
    """
    from scipy.optimize import lsq_linear

    eps = LOG_ODDS_EPS
    y_max = np.log((1 - eps) / eps)
    n = P.shape[0]
    rows, rhs, censored = [], [], []
    for i in range(n):
        for j in range(n):
            if i == j or N[i, j] <= 0:
                continue
            if P[i, j] >= 1 - eps:  # i ≻ j unanimously: one censored edge, oriented i -> j
                rows.append((i, j, N[i, j]))
                rhs.append(y_max)
                censored.append(True)
            elif i < j and P[i, j] > eps:
                rows.append((i, j, N[i, j]))
                rhs.append(np.log(P[i, j] / P[j, i]))
                censored.append(False)
    c = sum(censored)
    A = np.zeros((len(rows), n + c))
    k = 0
    for e, ((i, j, w), cen) in enumerate(zip(rows, censored)):
        A[e, i], A[e, j] = np.sqrt(w), -np.sqrt(w)
        if cen:
            A[e, n + k] = -np.sqrt(w)
            k += 1
    b = np.array(rhs) * np.sqrt([w for _, _, w in rows])
    lb = np.concatenate([np.full(n, -np.inf), np.zeros(c)])
    res = lsq_linear(A, b, bounds=(lb, np.inf), method="bvls", tol=1e-14)
    assert res.status > 0
    return float(((A @ res.x - b) ** 2).sum() / (b**2).sum())


@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_unanimous_transitive_order_has_zero_cyclic_share(n):
    # Every pair decided unanimously along one order (a 10-0 record on each pair): clipping
    # the log-odds at one level used to report 11% (n = 3) to 25% (n = 8) of it as cyclic.
    order = np.random.default_rng(n).permutation(n)
    rank = np.argsort(order)
    P = np.where(rank[:, None] < rank[None, :], 1.0, 0.0)
    np.fill_diagonal(P, 0.5)
    c = analyze_cycles(P)
    assert c.cyclic_share == pytest.approx(0.0, abs=1e-12)
    assert c.condorcet_winner == order[0] and c.n_triangles == 0
    N = np.full((n, n), 10.0) + np.arange(n)[:, None] + np.arange(n)[None, :]  # uneven games
    np.fill_diagonal(N, 0.0)
    assert analyze_cycles(P, N=N).cyclic_share == pytest.approx(0.0, abs=1e-12)


def test_bradley_terry_matrix_beyond_the_clip_stays_acyclic():
    theta = np.array([0.0, 7.5, 15.0, 22.5, 3.0])  # gaps far beyond log((1 - eps)/eps) ≈ 13.8
    c = analyze_cycles(bt_matrix(theta))
    assert c.cyclic_share == pytest.approx(0.0, abs=1e-12)


def test_unanimous_cycle_is_fully_cyclic():
    P = rps(1.0)
    assert analyze_cycles(P).cyclic_share == pytest.approx(1.0, abs=1e-12)
    # a unanimous cycle under a unanimous winner: the winner's edges fit, the cycle does not
    Q = np.full((4, 4), 1.0)
    Q[1:, 1:] = rps(1.0)
    Q[1:, 0] = 0.0
    Q[0, 0] = 0.5
    share = analyze_cycles(Q).cyclic_share
    assert share == pytest.approx(0.5, abs=1e-12)  # 3 cyclic edges of 6, all |Y| = y_max


@pytest.mark.parametrize("seed", range(6))
def test_censored_share_matches_bounded_least_squares(seed):
    # A noisy Bradley–Terry order whose widely separated pairs are unanimous, plus one
    # unanimous upset: the censored edges matter (a plain clipped fit is more cyclic).
    rng = np.random.default_rng(seed)
    n = 6
    theta = np.sort(rng.normal(size=n) * 12.0)
    D = theta[:, None] - theta[None, :] + np.triu(rng.normal(size=(n, n)), 1)
    G = 1 / (1 + np.exp(-D))
    G[np.abs(D) > 8.0] = np.round(G[np.abs(D) > 8.0])
    G[0, 1] = 1.0  # an upset: the weakest beats the next one every time
    P = np.triu(G, 1) + np.tril(1 - G.T, -1)
    np.fill_diagonal(P, 0.5)
    N = np.triu(rng.integers(1, 30, size=(n, n)).astype(float), 1)
    N = N + N.T
    expected = _censored_share_by_bounded_least_squares(P, N)
    assert analyze_cycles(P, N=N).cyclic_share == pytest.approx(expected, abs=1e-9)
    # censoring only removes residual: never more cyclic than plain clipped HodgeRank
    assert 0.0 < expected < _plain_clipped_share(P, N) - 1e-6


def _plain_clipped_share(P, N):
    Pc = np.clip(P, LOG_ODDS_EPS, 1 - LOG_ODDS_EPS)
    Y = np.log(Pc / Pc.T)
    L = np.diag(N.sum(axis=1)) - N
    s = np.linalg.lstsq(L, (N * Y).sum(axis=1), rcond=None)[0]
    R = Y - (s[:, None] - s[None, :])
    return float((N * R * R).sum() / (N * Y * Y).sum())


def test_hodgerank_fit_is_certified(monkeypatch):
    # A fit that never moves (every step zero) must not be reported: the gradient check fails.
    import arena.core.cycles as cycles
    from arena.errors import SolverError

    P = bt_matrix([0.0, 1.0, 3.0])
    monkeypatch.setattr(cycles, "_laplacian_step", lambda i, j, sign, w, r, n: np.zeros(n))
    with pytest.raises(SolverError, match="not certified"):
        analyze_cycles(P)
