"""Cycles: majority graph, components top first, Condorcet winner, triangles, HodgeRank."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.core.cycles import analyze_cycles
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
