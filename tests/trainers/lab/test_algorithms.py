"""Exact and sampled NLHF updates: closed forms against their argmin problems, Nash-MP's rate."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax

from arena.errors import InputError
from trainers.lab import algorithms as alg
from trainers.lab import sampled as smp
from trainers.lab.games import lowrank_game, random_game, rock_paper_scissors
from trainers.lab.nash import kl_from_logs, regularized_nash
from trainers.lab.run import ALGORITHMS, EXACT, SAMPLED, LabConfig, run_algorithm


def test_prox_step_solves_its_argmin():
    """argmin_π P(π_opp ≻ π) + β KL(π‖π_ref) + (β/η) KL(π‖π_k), checked by a generic optimiser."""
    g = random_game(1, 5, seed=7, reference="random")
    rng = np.random.default_rng(1)
    log_k = log_softmax(rng.standard_normal((1, 5)), axis=1)
    opp = np.exp(log_softmax(rng.standard_normal((1, 5)), axis=1))
    beta, eta = 0.3, 0.45

    def objective(z):
        lp = log_softmax(z)
        p = np.exp(lp)
        # P(π_opp ≻ π) = Σ_{y', y} π_opp(y') P(y' ≻ y) π(y)
        return (opp[0] @ g.P[0] @ p + beta * np.sum(p * (lp - g.log_pi_ref[0]))
                + (beta / eta) * np.sum(p * (lp - log_k[0])))

    res = minimize(objective, np.zeros(5), method="BFGS", options={"gtol": 1e-12})
    closed = alg.prox_step(log_k, opp, game=g, beta=beta, eta=eta)
    assert np.allclose(np.exp(closed[0]), np.exp(log_softmax(res.x)), atol=1e-6)
    # a swapped sign (maximising P(π_opp ≻ π)) lands elsewhere
    wrong = log_softmax((-(eta / beta) * (g.P[0] @ opp[0]) + eta * g.log_pi_ref[0] + log_k[0]) / (1 + eta))
    assert not np.allclose(np.exp(wrong), np.exp(closed[0]), atol=1e-3)


def test_nash_md_step_solves_its_argmax():
    """π_{t+1} = argmax_π η P(π ≻ π^μ) − KL(π‖π^μ), π^μ ∝ π^{1−ηβ} π_ref^{ηβ}."""
    g = random_game(1, 4, seed=3, reference="random")
    rng = np.random.default_rng(2)
    lp = log_softmax(rng.standard_normal((1, 4)), axis=1)
    beta, eta = 0.2, 1.5
    mix = np.exp(alg.geometric_mixture(lp, g.log_pi_ref, eta * beta))[0]

    def neg(z):
        q = log_softmax(z)
        return -(eta * np.exp(q) @ g.P[0] @ mix - np.sum(np.exp(q) * (q - np.log(mix))))

    res = minimize(neg, np.zeros(4), method="BFGS", options={"gtol": 1e-12})
    assert np.allclose(np.exp(alg.nash_md_step(lp, game=g, beta=beta, eta=eta)[0]), np.exp(log_softmax(res.x)), atol=1e-6)


def test_egpo_is_mirror_prox_with_reparametrised_step():
    """Two independent closed forms agree: EGPO step s ⇔ Nash-MP with η = sβ / (1 − sβ)."""
    g = lowrank_game(6, 9, 3, 2.0, 4, reference="random")
    rng = np.random.default_rng(0)
    lp = log_softmax(rng.standard_normal((6, 9)), axis=1)
    beta, s = 0.1, 3.0
    eta = s * beta / (1 - s * beta)
    assert np.allclose(alg.egpo_step(lp, game=g, beta=beta, step=s), alg.nash_mp_step(lp, game=g, beta=beta, eta=eta),
                       atol=1e-13)
    assert not np.allclose(alg.egpo_step(lp, game=g, beta=beta, step=s), alg.nash_mp_step(lp, game=g, beta=beta, eta=s * beta),
                           atol=1e-6)


def _instances():
    rng = np.random.default_rng(2024)
    for i in range(24):
        beta = float(10 ** rng.uniform(-2, 0))
        if i % 2:
            g = random_game(5, int(rng.integers(2, 12)), seed=i, reference="random", ref_scale=float(rng.uniform(0, 3)))
        else:
            g = lowrank_game(5, int(rng.integers(3, 15)), int(rng.integers(1, 3)), float(rng.uniform(0.5, 10)), i,
                             reference="random" if i % 4 else "uniform")
        yield g, beta, float(rng.choice([2.0, 1.0, 0.3])) * beta, i


@pytest.mark.parametrize("game,beta,eta,seed", list(_instances()))
def test_nash_mp_linear_rate_bound_every_step(game, beta, eta, seed):
    """KL(π*‖π_k) ≤ (1+η)^{−k} KL(π*‖π_0) for η ≤ 2β, per context, at every step."""
    sol = regularized_nash(game, beta)
    rng = np.random.default_rng(seed)
    starts = [game.log_pi_ref, log_softmax(2 * rng.standard_normal(game.pi_ref.shape), axis=1)]
    for lp in starts:
        kl0 = kl_from_logs(sol.log_pi, lp)
        assert np.all(kl0 > 0)
        for k in range(1, 80):
            lp = alg.nash_mp_step(lp, game=game, beta=beta, eta=eta)
            bound = (1 + eta) ** (-k) * kl0
            assert np.all(kl_from_logs(sol.log_pi, lp) <= bound * (1 + 1e-9) + 1e-15), (k, seed)


def test_nash_mp_converges_where_a_too_large_step_need_not():
    """The rate needs η ≤ 2β; the step formula itself is checked for bad arguments."""
    g = rock_paper_scissors()
    with pytest.raises(InputError, match="eta"):
        alg.nash_mp_step(g.log_pi_ref, game=g, beta=0.1, eta=0.0)
    with pytest.raises(InputError, match="step\\*beta"):
        alg.egpo_step(g.log_pi_ref, game=g, beta=0.5, step=2.0)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_rock_paper_scissors_uniform_reference_converges_to_uniform(name):
    g = rock_paper_scissors()
    sol = regularized_nash(g, 0.1)
    assert np.allclose(sol.pi, 1 / 3)
    start = np.log(np.array([[0.7, 0.2, 0.1]]))
    if name in EXACT:
        tr = run_algorithm(name, g, sol, LabConfig(beta=0.1, steps=300), eta=0.2, log_pi0=start)
        assert tr.kl[0] > 0.3 and tr.kl[-1] < 1e-10
    else:
        tr = run_algorithm(name, g, sol, LabConfig(beta=0.1, steps=1500, batch=64, lr=0.3), eta=0.2, log_pi0=start)
        # sampled: SGD noise leaves a floor; the tail average must be far below the start
        assert tr.kl[0] > 0.3 and tr.kl[-300:].mean() < 0.02


def test_practical_nash_mp_gradient_is_unbiased():
    """Mean of the symmetrised estimator = ∇_θ L = S (−P π + β log(π/π_ref) + (β/η) log(π/π_target))."""
    g = random_game(1, 4, seed=11, reference="random")
    rng = np.random.default_rng(5)
    theta = rng.standard_normal((1, 4))
    target = rng.standard_normal((1, 4))
    beta, eta = 0.3, 0.2
    pi = np.exp(log_softmax(theta, axis=1))
    pairs = smp.judge_pairs(g, pi, 400_000, rng)
    est = smp.nash_mp_ema_grad(theta, target, pairs, game=g, beta=beta, eta=eta)[0]
    lp, lt = np.log(pi[0]), log_softmax(target, axis=1)[0]
    c = -g.P[0] @ pi[0] + beta * (lp - g.log_pi_ref[0]) + (beta / eta) * (lp - lt)
    S = np.diag(pi[0]) - np.outer(pi[0], pi[0])
    assert np.allclose(est, S @ c, atol=4e-3)
    assert np.linalg.norm(S @ c) > 0.05  # the check is not vacuous


def test_sampling_matches_policy_and_preferences():
    g = random_game(2, 3, seed=0)
    rng = np.random.default_rng(0)
    pi = np.array([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    pairs = smp.judge_pairs(g, pi, 100_000, rng)
    freq = np.stack([np.bincount(pairs.y[x], minlength=3) for x in range(2)]) / 100_000
    assert np.allclose(freq, pi, atol=0.01)
    m = (pairs.y[0] == 0) & (pairs.y2[0] == 1)
    assert abs(pairs.o[0][m].mean() - g.P[0, 0, 1]) < 0.02


def test_kappa_one_is_self_play_and_schedule():
    assert smp.kappa_schedule(0) == 1.0 and smp.kappa_schedule(90) == pytest.approx(0.1)
    g = random_game(3, 4, seed=1)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((3, 4))
    pairs = smp.judge_pairs(g, np.exp(log_softmax(theta, axis=1)), 8, rng)
    th, tgt = smp.nash_mp_ema_step(theta, rng.standard_normal((3, 4)), pairs, game=g, beta=0.1, eta=0.2, lr=0.5, kappa=1.0)
    assert np.array_equal(th, tgt)
    with pytest.raises(InputError, match="kappa"):
        smp.nash_mp_ema_step(theta, theta, pairs, game=g, beta=0.1, eta=0.2, lr=0.5, kappa=0.0)


def test_sampled_names_and_exact_names_partition():
    assert set(EXACT) | set(SAMPLED) == set(ALGORITHMS) and not set(EXACT) & set(SAMPLED)


def test_regularised_nash_is_a_fixed_point_of_the_unbiased_updates_only():
    """π*_β is left in place by Nash-MP, MD and EGPO; constant-step Nash-MD moves it (its bias)."""
    g = lowrank_game(5, 8, 3, 4.0, 9, reference="random")
    beta, eta = 0.2, 0.3
    sol = regularized_nash(g, beta)
    for out in (alg.nash_mp_step(sol.log_pi, game=g, beta=beta, eta=eta),
                alg.mirror_descent_step(sol.log_pi, game=g, beta=beta, eta=eta),
                alg.egpo_step(sol.log_pi, game=g, beta=beta, step=eta / beta)):
        assert np.max(np.abs(out - sol.log_pi)) < 1e-12
    moved = alg.nash_md_step(sol.log_pi, game=g, beta=beta, eta=eta / beta)
    assert np.max(np.abs(moved - sol.log_pi)) > 1e-4


def test_nash_md_pg_gradient_is_unbiased():
    """E[step]/lr = S (P π^μ − β log(π/π_ref)), y ~ π, y' ~ π^μ."""
    g = random_game(1, 4, seed=12, reference="random", ref_scale=2.0)
    rng = np.random.default_rng(0)
    theta = 2.0 * rng.standard_normal((1, 4))
    beta, w = 0.3, 0.8
    lp = log_softmax(theta, axis=1)
    mix = np.exp(alg.geometric_mixture(lp, g.log_pi_ref, w))
    pairs = smp.judge_pairs(g, np.exp(lp), 400_000, rng, pi_opponent=mix)
    est = (smp.nash_md_pg_step(theta, pairs, game=g, beta=beta, lr=1.0) - theta)[0]
    pi = np.exp(lp[0])
    S = np.diag(pi) - np.outer(pi, pi)
    expected = S @ (g.P[0] @ mix[0] - beta * (lp[0] - g.log_pi_ref[0]))
    assert np.allclose(est, expected, atol=4e-3) and np.linalg.norm(expected) > 0.05
    # the opponent really is the mixture: against π itself the mean differs
    assert np.max(np.abs(expected - S @ (g.P[0] @ pi - beta * (lp[0] - g.log_pi_ref[0])))) > 0.02
