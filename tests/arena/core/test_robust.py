"""Robust (max–min) mixture and weighted Nash over criteria: a golden game with a closed form,
an independent LP / entropy solve (cvxpy), the reduction to the ordinary Nash, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.core.nash import nash_from_preferences
from arena.core.robust import (
    RobustMixture, criterion_values, robust_mixture, weighted_nash, weighted_preferences,
)
from arena.errors import InputError


def random_preferences(rng, n):
    U = rng.uniform(size=(n, n))
    P = np.triu(U, 1) + np.tril(1.0 - U.T, -1)
    np.fill_diagonal(P, 0.5)
    return P


def two_models(pa=0.9, pb=0.7):
    """Criterion a: model 0 beats 1 with pa; criterion b: model 1 beats 0 with pb."""
    return {"a": np.array([[0.5, pa], [1 - pa, 0.5]]), "b": np.array([[0.5, 1 - pb], [pb, 0.5]])}


def cvxpy_maximin(P):
    cp = pytest.importorskip("cvxpy")
    C, n, _ = P.shape
    p, v = cp.Variable(n), cp.Variable()
    cons = [p >= 0, cp.sum(p) == 1] + [P[c].T @ p >= v for c in range(C)]
    cp.Problem(cp.Maximize(v), cons).solve(solver="CLARABEL")
    return np.asarray(p.value), float(v.value)


def cvxpy_max_entropy_maximin(P, v):
    cp = pytest.importorskip("cvxpy")
    C, n, _ = P.shape
    p = cp.Variable(n)
    cons = [p >= 0, cp.sum(p) == 1] + [P[c].T @ p >= v - 1e-9 for c in range(C)]
    cp.Problem(cp.Maximize(cp.sum(cp.entr(p))), cons).solve(solver="CLARABEL")
    return np.asarray(p.value)


def test_conflicting_two_models_closed_form():
    # guarantees: a: 0.1 + 0.4 π_0, b: 0.5 − 0.2 π_0  ->  π_0 = 2/3, v = 11/30;
    # adversary: λ_a = 1/3 (opponent model 0 on a, model 1 on b).
    r = robust_mixture(two_models())
    assert isinstance(r, RobustMixture)
    np.testing.assert_allclose(r.weights, [2 / 3, 1 / 3], atol=1e-9)
    assert r.value == pytest.approx(11 / 30, abs=1e-9)
    assert r.value < 0.5
    assert r.criteria == ("a", "b")
    assert set(r.binding) == {"a", "b"}
    np.testing.assert_allclose(r.criterion_weights, [1 / 3, 2 / 3], atol=1e-9)
    np.testing.assert_allclose(r.opponents, [[1, 0], [0, 1]], atol=1e-9)
    np.testing.assert_allclose(r.exploitability, 0.5 - 11 / 30, atol=1e-9)
    assert 0 <= r.gap <= 1e-7
    assert r.upper_bound == pytest.approx(11 / 30, abs=1e-9)


def test_an_indifferent_criterion_does_not_bind():
    # criterion c cannot tell the models apart: its guarantee stays ½, the adversary ignores it
    P = two_models() | {"c": np.full((2, 2), 0.5)}
    r = robust_mixture(P)
    assert r.value == pytest.approx(11 / 30, abs=1e-9)
    assert r.binding == ("a", "b")
    np.testing.assert_allclose(r.criterion_values, [11 / 30, 11 / 30, 0.5], atol=1e-9)
    np.testing.assert_allclose(r.criterion_weights, [1 / 3, 2 / 3, 0.0], atol=1e-9)
    np.testing.assert_allclose(r.opponents[2], [0.5, 0.5])  # no weight: reported uniform


@pytest.mark.parametrize("seed", range(8))
def test_matches_independent_lp(seed):
    rng = np.random.default_rng(seed)
    C, n = 1 + seed % 4, 3 + seed
    P = np.stack([random_preferences(rng, n) for _ in range(C)])
    r = robust_mixture(P)
    p_ref, v_ref = cvxpy_maximin(P)
    assert r.value == pytest.approx(v_ref, abs=1e-7)
    assert r.value <= 0.5 + 1e-12
    # random games have a unique maximin mixture
    np.testing.assert_allclose(r.weights, p_ref, atol=1e-5)
    np.testing.assert_allclose(r.criterion_values, criterion_values(P, r.weights), atol=1e-15)
    # the certificate, recomputed here from the dual mixture
    upper = np.einsum("cij,c,cj->i", P, r.criterion_weights, r.opponents).max()
    assert upper == pytest.approx(r.upper_bound, abs=1e-12)
    assert upper - r.value <= 1e-7
    assert r.criterion_weights.sum() == pytest.approx(1.0)


def duplicated(P, k):
    """Add a copy of model k (a non-unique equilibrium face: mass can be split between the copies)."""
    n = P.shape[0]
    Q = np.full((n + 1, n + 1), 0.5)
    Q[:n, :n] = P
    Q[n, :n], Q[:n, n] = P[k], P[:, k]
    Q[n, k] = Q[k, n] = 0.5
    return Q


def test_identical_criteria_give_the_max_entropy_nash():
    rng = np.random.default_rng(3)
    P1 = duplicated(random_preferences(rng, 5), 0)
    nash = nash_from_preferences(P1)
    r = robust_mixture({"helpful": P1, "honest": P1, "harmless": P1})
    assert r.value == pytest.approx(0.5, abs=1e-9)
    np.testing.assert_allclose(r.weights, nash.p, atol=1e-7)
    assert r.entropy == pytest.approx(nash.entropy, abs=1e-7)
    assert set(r.binding) == {"helpful", "honest", "harmless"}


def test_identical_criteria_with_many_copies_give_the_max_entropy_nash():
    # 25 models plus copies of the six strongest (three of them twice): a 9-dimensional face
    rng = np.random.default_rng(1)
    P = random_preferences(rng, 25)
    top = np.argsort(-nash_from_preferences(P).p)[:6]
    idx = np.r_[np.arange(25), top, top[:3]]
    Q = P[np.ix_(idx, idx)]
    Q[idx[:, None] == idx[None, :]] = 0.5
    nash = nash_from_preferences(Q)
    r = robust_mixture(np.stack([Q, Q, Q]))
    np.testing.assert_allclose(r.weights, nash.p, atol=1e-7)
    assert r.weights[top[0]] == pytest.approx(r.weights[25], abs=1e-8) == pytest.approx(r.weights[31], abs=1e-8)


def test_agreeing_criteria_share_the_nash_even_when_they_differ():
    # two different games with the same (unique) equilibrium: weighted RPS with equal stakes per model
    P1 = np.array([[0.5, 0.8, 0.2], [0.2, 0.5, 0.8], [0.8, 0.2, 0.5]])
    P2 = np.array([[0.5, 0.6, 0.4], [0.4, 0.5, 0.6], [0.6, 0.4, 0.5]])
    r = robust_mixture(np.stack([P1, P2]))
    np.testing.assert_allclose(r.weights, [1 / 3] * 3, atol=1e-9)
    assert r.value == pytest.approx(0.5, abs=1e-12)
    np.testing.assert_allclose(r.exploitability, 0.0, atol=1e-9)


def test_max_entropy_tie_break_matches_cvxpy():
    # conflicting criteria on a game with a duplicated model: the maximin set is not a point
    rng = np.random.default_rng(11)
    P = np.stack([duplicated(random_preferences(rng, 4), 1) for _ in range(2)])
    P[1, :, 4], P[1, 4, :] = P[1, :, 1], P[1, 1, :]  # model 4 is a copy of model 1 on both criteria
    P[1, 4, 4] = P[1, 1, 4] = P[1, 4, 1] = 0.5
    r = robust_mixture(P)
    p_ref = cvxpy_max_entropy_maximin(P, r.value)
    np.testing.assert_allclose(r.weights, p_ref, atol=1e-5)
    assert r.weights[1] == pytest.approx(r.weights[4], abs=1e-7)


def test_weighted_nash_is_the_nash_of_the_mixture():
    rng = np.random.default_rng(5)
    P = {"helpful": random_preferences(rng, 5), "harmless": random_preferences(rng, 5)}
    w = {"helpful": 0.25, "harmless": 0.75}
    eq = weighted_nash(P, w)
    Pw = 0.25 * P["helpful"] + 0.75 * P["harmless"]
    np.testing.assert_allclose(weighted_preferences(P, w), Pw, atol=1e-15)
    np.testing.assert_allclose(eq.p, nash_from_preferences(Pw).p, atol=1e-12)
    # swapping the weights changes the answer (a swapped coefficient would be caught)
    assert np.abs(weighted_nash(P, [0.75, 0.25]).p - eq.p).max() > 1e-3
    # weight on one criterion = that criterion's Nash
    np.testing.assert_allclose(weighted_nash(P, {"helpful": 1.0}).p, nash_from_preferences(P["helpful"]).p, atol=1e-12)


def test_robust_guarantee_beats_every_weighted_guarantee():
    rng = np.random.default_rng(8)
    P = np.stack([random_preferences(rng, 6) for _ in range(3)])
    r = robust_mixture(P)
    for w in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1 / 3] * 3, [0.2, 0.5, 0.3]):
        assert criterion_values(P, weighted_nash(P, w).p).min() <= r.value + 1e-9


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 7))
def test_properties(seed, C, n):
    rng = np.random.default_rng(seed)
    P = np.stack([random_preferences(rng, n) for _ in range(C)])
    r = robust_mixture(P)
    assert np.all(r.weights >= 0) and r.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert r.value <= 0.5 + 1e-12 and 0 <= r.gap <= 1e-7
    assert len(r.binding) >= 1
    # relabelling the models relabels the answer
    perm = rng.permutation(n)
    r2 = robust_mixture(P[:, perm][:, :, perm])
    assert r2.value == pytest.approx(r.value, abs=1e-9)


@pytest.mark.parametrize("P, kwargs, match", [
    (np.full((3, 3), 0.5), {}, "stack the criteria"),
    (np.full((2, 3, 4), 0.5), {}, "shape"),
    (np.array([[[0.5, 0.7], [0.7, 0.5]]]), {}, "not complementary.*P\\[0, 1\\] \\+ P\\[1, 0\\] = 1.4"),
    (np.array([[[0.5, 1.2], [-0.2, 0.5]]]), {}, "\\[0, 1\\]"),
    (np.array([[[0.5, np.nan], [0.5, 0.5]]]), {}, "not finite"),
    (np.full((2, 2, 2), 0.5), {"criteria": ["a"]}, "one name per criterion"),
    (np.full((2, 2, 2), 0.5), {"criteria": ["a", "a"]}, "distinct"),
    ({"a": np.full((2, 2), 0.5), "b": np.full((3, 3), 0.5)}, {}, "same shape"),
    ({}, {}, "no criteria"),
])
def test_bad_preferences_refused(P, kwargs, match):
    with pytest.raises(InputError, match=match):
        robust_mixture(P, **kwargs)


@pytest.mark.parametrize("w, match", [
    ([0.5, 0.6], "sum to 1; got sum 1.1"),
    ([1.2, -0.2], ">= 0"),
    ([1.0], "one entry per criterion"),
    ({"a": 0.5, "z": 0.5}, "unknown criteria \\['z'\\]"),
    ([np.nan, 1.0], "finite"),
])
def test_bad_weights_refused(w, match):
    with pytest.raises(InputError, match=match):
        weighted_nash(two_models(), w)
