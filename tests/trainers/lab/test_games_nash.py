"""Games and the exact regularised Nash: fixed point to 1e-12, certified by the duality gap."""

import numpy as np
import pytest

from arena.errors import InputError
from trainers.lab.games import Game, lowrank_game, matrix_game, preference_against, random_game, rock_paper_scissors
from trainers.lab.nash import duality_gap, fixed_point_residual, kl, kl_from_logs, regularized_nash


@pytest.mark.parametrize("make", [lambda s: random_game(4, 6, seed=s, reference="random"),
                                  lambda s: lowrank_game(8, 12, 3, 2.0, s, reference="random")])
def test_games_are_preference_models(make):
    g = make(3)
    assert np.allclose(g.P + np.swapaxes(g.P, 1, 2), 1.0, atol=1e-15)
    assert np.allclose(np.diagonal(g.P, axis1=1, axis2=2), 0.5)
    assert np.allclose(g.pi_ref.sum(1), 1.0) and np.allclose(g.weights.sum(), 1.0)
    # seeded: same seed same game, another seed another game
    assert np.array_equal(make(3).P, g.P) and not np.allclose(make(4).P, g.P)


def test_lowrank_has_low_rank_logits():
    g = lowrank_game(5, 15, 2, 1.0, 0)
    logit = np.log(g.P) - np.log1p(-g.P)  # = A - Aᵀ, rank ≤ 2r
    assert max(np.linalg.matrix_rank(logit[x], tol=1e-8) for x in range(5)) <= 4


def test_matrix_game_validates_and_symmetrises():
    with pytest.raises(InputError, match="P \\+ Pᵀ"):
        matrix_game(np.array([[0.5, 0.7], [0.7, 0.5]]))
    with pytest.raises(InputError, match="square"):
        matrix_game(np.ones((2, 3)) / 2)
    g = matrix_game(np.array([[0.5, 0.7000001], [0.3, 0.5]]))
    assert np.allclose(g.P[0] + g.P[0].T, 1.0, atol=1e-15)


def test_kl_asymmetric_known_value():
    p = np.array([[0.9, 0.1]])
    q = np.array([[0.5, 0.5]])
    expected = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    assert kl(p, q)[0] == pytest.approx(expected, rel=1e-14)
    assert kl(q, p)[0] != pytest.approx(expected, rel=1e-3)
    assert kl_from_logs(np.log(p), np.log(q))[0] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("beta", [1.0, 0.1, 0.01, 0.001])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_point_to_machine_precision(beta, seed):
    g = lowrank_game(20, 15, 3, 3.0, seed, reference="random")
    sol = regularized_nash(g, beta)
    # π = softmax(log π_ref + P π / β), checked here independently of the solver's own residual
    logits = np.log(g.pi_ref) + preference_against(g.P, sol.pi) / beta
    T = np.exp(logits - logits.max(1, keepdims=True))
    T /= T.sum(1, keepdims=True)
    assert np.max(np.abs(np.log(T) - sol.log_pi)) < 1e-12
    assert sol.residual < 1e-12
    assert 0 <= sol.gap < 1e-20
    # the certificate is not vacuous: a slightly perturbed policy has a clearly positive gap
    bad = sol.log_pi.copy()
    bad[:, 0] += 1e-3
    bad -= np.log(np.exp(bad).sum(1, keepdims=True))
    assert np.dot(g.weights, duality_gap(g, bad, beta)) > 1e-9
    assert fixed_point_residual(g, bad, beta) > 1e-4


def test_duality_gap_matches_best_response_definition():
    """gap(π) = max_π' J(π', π) − min_π' J(π, π'), computed from the closed-form best responses."""
    g = random_game(1, 4, seed=5, reference="random")
    beta = 0.3
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(4))[None]
    ref = g.pi_ref[0]
    # max_π' π'ᵀ P π − β KL(π'‖ref) = β log Σ ref exp(Pπ/β)
    v1 = beta * np.log(np.sum(ref * np.exp(g.P[0] @ pi[0] / beta)))
    # min_π' πᵀ P π' + β KL(π'‖ref) = −β log Σ ref exp(−Pᵀπ/β)
    v2 = -beta * np.log(np.sum(ref * np.exp(-(g.P[0].T @ pi[0]) / beta)))
    klr = kl(pi, g.pi_ref)[0]
    direct = (v1 + beta * klr) - (v2 - beta * klr)
    assert duality_gap(g, np.log(pi), beta)[0] == pytest.approx(direct, rel=1e-10)


def test_rps_uniform_reference_gives_uniform():
    sol = regularized_nash(rock_paper_scissors(), 0.05)
    assert np.allclose(sol.pi, 1 / 3, atol=1e-14)


def test_game_rejects_bad_inputs():
    g = random_game(2, 3, seed=0)
    with pytest.raises(InputError, match="pi_ref"):
        Game(P=g.P, pi_ref=np.ones((2, 3)), weights=g.weights)
    with pytest.raises(InputError, match="beta"):
        regularized_nash(g, 0.0)


def test_small_beta_approaches_max_entropy_nash():
    """β → 0 with a uniform reference: π*_β → the analytics core's maximum-entropy Nash, linearly in β."""
    from trainers.lab.nash import unregularized_nash

    # rows 0 and 1 are duplicates: the Nash set is a segment, max-entropy splits them evenly
    P = np.array([[0.5, 0.5, 0.2, 0.9], [0.5, 0.5, 0.2, 0.9], [0.8, 0.8, 0.5, 0.3], [0.1, 0.1, 0.7, 0.5]])
    for g in (matrix_game(P), random_game(3, 7, seed=4)):
        ne = unregularized_nash(g)
        errs = [np.max(np.abs(regularized_nash(g, b).pi - ne)) for b in (1e-3, 1e-4, 1e-5)]
        assert errs[0] > errs[1] > errs[2] and errs[2] < 2e-4, errs
    sol = regularized_nash(matrix_game(P), 1e-6)
    assert sol.pi[0, 0] == pytest.approx(sol.pi[0, 1], abs=1e-9)
    assert np.allclose(sol.pi[0], [1 / 9, 1 / 9, 4 / 9, 3 / 9], atol=1e-5)


def test_kl_support_mismatch_and_zeros():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0]])
    q = np.array([[1.0, 0.0, 0.0], [0.3, 0.3, 0.4]])
    out = kl(p, q)
    assert out[0] == np.inf
    assert out[1] == pytest.approx(0.2 * np.log(0.2 / 0.3) + 0.8 * np.log(0.8 / 0.3), rel=1e-13)
    with pytest.raises(InputError, match="same shape"):
        kl(p, q[:1])
