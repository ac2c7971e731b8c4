"""Preference matrix from counts (Wilson / Jeffreys intervals) and from probabilities."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta as beta_dist
from scipy.stats import binomtest

from arena.core.matrix import (
    PROBABILITY_TOL,
    preference_matrix_from_counts,
    preference_matrix_from_probabilities,
)
from arena.errors import InputError


def counts_3():
    # 0 beats 1 seven times in 10; 1 beats 2 6.5 in 10 (a tie); 2 beats 0 7 in 10; 0-3 unplayed
    W = np.array([[0, 7, 3, 0], [3, 0, 6.5, 2], [7, 3.5, 0, 0], [0, 3, 0, 0]], dtype=float)
    return W, W + W.T


def test_point_estimate_symmetry_and_unplayed_cells():
    W, N = counts_3()
    m = preference_matrix_from_counts(W, N)
    assert m.P[0, 1] == pytest.approx(0.7) and m.P[1, 2] == pytest.approx(0.65) and m.P[3, 1] == pytest.approx(0.6)
    np.testing.assert_allclose(m.P + m.P.T, 1.0, atol=1e-15)
    np.testing.assert_allclose(np.diag(m.P), 0.5)
    assert m.P[0, 3] == 0.5 and m.lo[0, 3] == 0.0 and m.hi[0, 3] == 1.0  # never met
    np.testing.assert_allclose(m.lo, 1.0 - m.hi.T, atol=1e-15)
    assert np.all(m.lo <= m.P + 1e-15) and np.all(m.P <= m.hi + 1e-15)
    np.testing.assert_array_equal(m.N, N)


def test_wilson_matches_reference_implementation():
    W, N = counts_3()
    m = preference_matrix_from_counts(W, N, level=0.9)
    ci = binomtest(7, 10).proportion_ci(confidence_level=0.9, method="wilson")
    assert m.lo[0, 1] == pytest.approx(ci.low, abs=1e-12)
    assert m.hi[0, 1] == pytest.approx(ci.high, abs=1e-12)
    # the mirrored cell is the interval of the complementary proportion (asymmetric: 3/10)
    ci3 = binomtest(3, 10).proportion_ci(confidence_level=0.9, method="wilson")
    assert m.lo[1, 0] == pytest.approx(ci3.low, abs=1e-12) and m.hi[1, 0] == pytest.approx(ci3.high, abs=1e-12)


def test_jeffreys_interval_and_level():
    W, N = counts_3()
    m = preference_matrix_from_counts(W, N, level=0.95, method="jeffreys")
    assert m.lo[0, 1] == pytest.approx(beta_dist.ppf(0.025, 7.5, 3.5), abs=1e-12)
    assert m.hi[0, 1] == pytest.approx(beta_dist.ppf(0.975, 7.5, 3.5), abs=1e-12)
    wide = preference_matrix_from_counts(W, N, level=0.99, method="jeffreys")
    assert wide.lo[0, 1] < m.lo[0, 1] and wide.hi[0, 1] > m.hi[0, 1]


def test_all_wins_interval_reaches_one_for_jeffreys():
    W = np.array([[0, 5.0], [0, 0]])
    m = preference_matrix_from_counts(W, W + W.T, method="jeffreys")
    assert m.P[0, 1] == 1.0 and m.hi[0, 1] == 1.0 and m.lo[1, 0] == 0.0 and m.lo[0, 1] > 0.5


def test_count_validation():
    W, N = counts_3()
    with pytest.raises(InputError, match="must equal"):
        preference_matrix_from_counts(W, N + np.eye(4)[[1, 0, 2, 3]])  # inconsistent games
    with pytest.raises(InputError, match="symmetric"):
        bad = N.copy()
        bad[0, 1] += 1
        preference_matrix_from_counts(W, bad)
    with pytest.raises(InputError, match="square"):
        preference_matrix_from_counts(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(InputError, match="not finite"):
        preference_matrix_from_counts(np.full((2, 2), np.nan), N[:2, :2])
    with pytest.raises(InputError, match="level"):
        preference_matrix_from_counts(W, N, level=95)
    with pytest.raises(InputError, match="method"):
        preference_matrix_from_counts(W, N, method="wald")
    with pytest.raises(InputError, match="non-negative"):
        preference_matrix_from_counts(-W, -N)


def test_from_probabilities_symmetrises_and_validates():
    P = np.array([[0.5, 0.8, 0.3], [0.2, 0.5, 0.6], [0.7, 0.4, 0.5]])
    noisy = P + np.array([[0, 1e-8, 0], [0, 0, 0], [0, 0, 0]])
    m = preference_matrix_from_probabilities(noisy)
    np.testing.assert_allclose(m.P + m.P.T, 1.0, atol=1e-15)
    assert m.P[0, 1] == pytest.approx(0.8 + 5e-9) and m.N is None
    np.testing.assert_array_equal(m.lo, m.P)
    with pytest.raises(InputError, match="must be 1"):
        preference_matrix_from_probabilities(P + np.array([[0, 10 * PROBABILITY_TOL, 0], [0, 0, 0], [0, 0, 0]]))
    with pytest.raises(InputError, match="diagonal"):
        preference_matrix_from_probabilities(P + np.diag([0.1, 0, 0]))
    with pytest.raises(InputError, match="probability"):
        preference_matrix_from_probabilities(np.array([[0.5, 1.5], [-0.5, 0.5]]))
    with pytest.raises(InputError, match="square"):
        preference_matrix_from_probabilities(np.ones(3))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 7), st.integers(0, 2**32 - 1), st.sampled_from(["wilson", "jeffreys"]))
def test_property_counts_give_valid_matrix(n, seed, method):
    rng = np.random.default_rng(seed)
    N = np.triu(rng.integers(0, 30, size=(n, n)), 1).astype(float)
    N = N + N.T
    frac = rng.random((n, n))
    W = np.round(np.triu(N * frac, 1) * 2) / 2  # half-integer wins (ties)
    W = W + np.triu(N - W, 1).T
    m = preference_matrix_from_counts(W, N, method=method)
    np.testing.assert_allclose(m.P + m.P.T, 1.0, atol=1e-12)
    assert np.all((m.lo >= 0) & (m.hi <= 1) & (m.lo <= m.P + 1e-12) & (m.P <= m.hi + 1e-12))
    np.testing.assert_allclose(m.lo, 1 - m.hi.T, atol=1e-12)


def test_soft_counts_give_exactly_complementary_matrix():
    # (W/N + 1 - Wᵀ/N)/2 and its mirror can differ from 1 - each other by one rounding;
    # the lower triangle is built as 1 - upper, so P + Pᵀ = 1 holds with ==, not approx.
    rng = np.random.default_rng(0)
    n = 8
    for _ in range(50):
        N = np.triu(rng.integers(1, 50, size=(n, n)).astype(float), 1)
        N = N + N.T
        W = np.triu(rng.random((n, n)) * N, 1)  # soft scores: arbitrary fractional wins
        W = W + np.tril(N - W.T, -1)
        m = preference_matrix_from_counts(W, N)
        assert np.array_equal(m.P + m.P.T, np.ones((n, n)))
        assert np.array_equal(m.lo + m.hi.T, np.ones((n, n)))
