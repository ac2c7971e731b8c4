"""The surrogate control variate of the sampled Nash-MP gradient (trainers.lab.control_variate),
checked by enumeration on a toy game: unbiased whatever the surrogate, the plain estimator at
K = 2, antisymmetric by construction, and a fit that recovers a known class matrix."""

import itertools

import numpy as np
import pytest

from trainers.lab.control_variate import Surrogate, cv_preference_grad

# a 3-class game, not symmetric under any relabelling: a biased cycle (P + Pᵀ = 1)
P = np.array([[0.5, 0.8, 0.3],
              [0.2, 0.5, 0.9],
              [0.7, 0.1, 0.5]])
PI = np.array([[0.6, 0.3, 0.1],
               [0.2, 0.5, 0.3]])                      # two prompts, different policies
# a deliberately wrong surrogate (S + Sᵀ = 1, but the cycle's direction reversed in part)
S_WRONG = np.array([[0.5, 0.1, 0.6],
                    [0.9, 0.5, 0.4],
                    [0.4, 0.6, 0.5]])


def expected_grad(S, K, all_samples):
    """E over all K-tuples of samples (enumerated, weighted by Π π(y_k)) of cv_preference_grad."""
    X, Y = PI.shape
    total = np.zeros((X, Y))
    for ys in itertools.product(range(Y), repeat=K):
        ys_x = np.tile(ys, (X, 1))                                            # (X, K)
        weight = np.prod(PI[np.arange(X)[:, None], ys_x], axis=1)             # (X,)
        p = P[ys_x[:, 0], ys_x[:, 1]]
        total += weight[:, None] * cv_preference_grad(PI, ys_x, p, S, all_samples=all_samples)
    return total


@pytest.mark.parametrize("K", [2, 3, 4])
@pytest.mark.parametrize("all_samples", [False, True])
@pytest.mark.parametrize("S", [S_WRONG, P, np.full((3, 3), 0.5)], ids=["wrong", "exact", "half"])
def test_unbiased_whatever_the_surrogate(K, all_samples, S):
    exact = -PI * (PI @ P.T - 0.5)                                             # −π ⊙ (Pπ − ½), (X, Y)
    np.testing.assert_allclose(expected_grad(S, K, all_samples), exact, atol=1e-12)


def test_wrong_surrogate_shifts_the_single_sample_estimate():
    """The test above could pass with a surrogate that is ignored; this one cannot: one draw's
    estimate depends on S, only its expectation does not."""
    ys = np.array([[0, 1, 2], [2, 0, 1]])
    p = P[ys[:, 0], ys[:, 1]]
    a = cv_preference_grad(PI, ys, p, S_WRONG, all_samples=True)
    b = cv_preference_grad(PI, ys, p, P, all_samples=True)
    assert np.abs(a - b).max() > 0.05


def test_two_samples_is_the_plain_symmetrised_estimator():
    ys = np.array([[0, 2], [1, 1]])
    p = P[ys[:, 0], ys[:, 1]]
    e = np.eye(3)
    plain = np.stack([-0.5 * (p[x] - 0.5) * (e[ys[x, 0]] - PI[x]) - 0.5 * (0.5 - p[x]) * (e[ys[x, 1]] - PI[x])
                      for x in range(2)])
    for all_samples in (False, True):
        np.testing.assert_allclose(cv_preference_grad(PI, ys, p, S_WRONG, all_samples=all_samples), plain, atol=1e-15)


def test_exact_surrogate_opponent_mean():
    """With S = P the advantage of y_1 is the mean of P(y_1 ≻ y_j) over the other samples."""
    ys = np.array([[0, 1, 2, 1]])
    p = P[ys[:, 0], ys[:, 1]]
    g = cv_preference_grad(PI[:1], ys, p, P, all_samples=False)
    adv1 = np.mean([P[0, 1], P[0, 2], P[0, 1]]) - 0.5
    adv2 = np.mean([P[1, 0], P[1, 2], P[1, 1]]) - 0.5
    e = np.eye(3)
    want = -0.5 * (adv1 * (e[0] - PI[0]) + adv2 * (e[1] - PI[0]))
    np.testing.assert_allclose(g[0], want, atol=1e-15)


def test_surrogate_antisymmetric_by_construction():
    rng = np.random.default_rng(0)
    s = Surrogate.zeros(4)
    s = Surrogate(w=rng.normal(size=4), U=rng.normal(size=(4, 4)), m=s.m, v=s.v)
    phi = rng.normal(size=(6, 4))
    S = s.probs(phi)
    np.testing.assert_allclose(S + S.T, 1.0, atol=1e-12)
    assert np.abs(S - 0.5).max() > 0.1                                         # not trivially ½


def test_fit_recovers_a_known_class_matrix_from_soft_labels():
    """A transitive part plus a cycle on 4 one-hot classes, soft labels = the true S; the fit
    on pairs drawn from a skewed policy recovers S to within 0.02."""
    phi = np.eye(4)
    truth = Surrogate.zeros(4)
    U = np.zeros((4, 4))
    U[0, 1], U[1, 2], U[2, 0] = 1.2, 0.8, 1.0                                  # a cycle among 0, 1, 2
    truth = Surrogate(w=np.array([0.5, 0.0, -0.3, -1.0]), U=U, m=truth.m, v=truth.v)
    S_true = truth.probs(phi)
    rng = np.random.default_rng(1)
    a, b = (rng.choice(4, size=4000, p=[0.4, 0.3, 0.2, 0.1]) for _ in range(2))
    fit = Surrogate.zeros(4)
    for _ in range(1500):
        fit = fit.adam_step(phi, a, b, S_true[a, b], l2=0.0)
    np.testing.assert_allclose(fit.probs(phi), S_true, atol=0.02)


def test_bad_shapes_say_what_is_expected():
    with pytest.raises(ValueError, match=r"ys \(X, K\) with K >= 2"):
        cv_preference_grad(PI, np.zeros((2, 1), dtype=int), np.zeros(2), P, all_samples=True)
    with pytest.raises(ValueError, match="non-empty"):
        Surrogate.zeros(3).grad(np.eye(3), np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0))


@pytest.mark.parametrize("q", [1.0, 0.5, 0.2])
def test_sparse_labels_keep_the_gradient_unbiased_over_the_judging_draw(q):
    """Each prompt judged with probability q, its correction weighted 1/q: averaged over who is
    judged (enumerated), the gradient equals the fully judged one for any samples and surrogate."""
    from trainers.lab.control_variate import sparse_labels

    ys = np.array([[0, 2, 1, 1], [1, 0, 2, 0]])
    p = P[ys[:, 0], ys[:, 1]]
    s = S_WRONG[ys[:, 0], ys[:, 1]]
    full = cv_preference_grad(PI, ys, p, S_WRONG, all_samples=True)
    mean = np.zeros_like(full)
    for judged in itertools.product([False, True], repeat=len(ys)):
        judged = np.array(judged)
        weight = np.prod(np.where(judged, q, 1 - q))
        mean += weight * cv_preference_grad(PI, ys, sparse_labels(p, s, judged, q), S_WRONG, all_samples=True)
    np.testing.assert_allclose(mean, full, atol=1e-12)
    unjudged = cv_preference_grad(PI, ys, sparse_labels(p, s, np.zeros(2, bool), q), S_WRONG, all_samples=True)
    if q < 1:                            # a prompt not judged learns from the surrogate alone
        assert not np.allclose(unjudged, full)
    with pytest.raises(ValueError, match="q must be in"):
        sparse_labels(p, s, np.ones(2, bool), 0.0)


def test_sparse_judging_spends_the_same_budget_and_beats_dense_with_an_exact_surrogate(monkeypatch):
    """benchmarks/bench_convergence.py --sparse on a small cyclic game: with S = P, judging a third
    of the pairs for three times the steps costs the same queries and ends closer to π*_β."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3] / "benchmarks"))  # as when run as a script
    from bench_convergence import noisy_surrogate, sparse_cv_tv

    from trainers.lab.games import Game
    from trainers.lab.nash import regularized_nash

    X = 20
    rng = np.random.default_rng(0)
    pi_ref = rng.dirichlet(np.ones(3) * 2, size=X)
    game = Game(P=np.repeat(P[None], X, 0), pi_ref=pi_ref, weights=np.full(X, 1 / X))
    pi_star = regularized_nash(game, 0.1).pi
    S = noisy_surrogate(P, 0.05, np.random.default_rng(1))
    np.testing.assert_allclose(S + S.T, 1.0)
    dense = [sparse_cv_tv(game, pi_star, beta=0.1, pairs_per_prompt=30, q=1.0, sigma=0.0, lr=5.0, seed=s)
             for s in range(3)]
    sparse = [sparse_cv_tv(game, pi_star, beta=0.1, pairs_per_prompt=30, q=1 / 3, sigma=0.0, lr=5.0, seed=s)
              for s in range(3)]
    assert all(n == 30 * X for _, n, _ in dense)
    assert all(abs(n - 30 * X) < 0.15 * 30 * X for _, n, _ in sparse)     # the same budget in expectation
    assert np.mean([tv for tv, _, _ in sparse]) < 0.8 * np.mean([tv for tv, _, _ in dense])
