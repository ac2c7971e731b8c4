"""Multi-criteria lab: weighted Nash-MP reaches π*_β of P_w; the max–min dynamics' averages reach
the robust LP (arena.core.robust on one context, an independent cvxpy LP on several)."""

import numpy as np
import pytest

from arena.core.robust import robust_mixture
from arena.errors import InputError
from trainers.lab.games import random_game
from trainers.lab.multicriteria import (
    MultiGame, initial_state, max_min_step, multi_game, multi_lowrank_game, multi_matrix_game,
    multi_random_game, robust_guarantee, run_max_min, run_weighted, weighted_game,
)
from trainers.lab.nash import regularized_nash


def two_models():
    return {"a": np.array([[0.5, 0.9], [0.1, 0.5]]), "b": np.array([[0.5, 0.3], [0.7, 0.5]])}


def test_weighted_game_is_the_convex_combination():
    g = multi_random_game(("a", "b"), 2, 4, seed=1)
    w = weighted_game(g, {"a": 0.2, "b": 0.8})
    np.testing.assert_allclose(w.P, 0.2 * g.P[0] + 0.8 * g.P[1], atol=1e-15)
    np.testing.assert_allclose(weighted_game(g, [1.0, 0.0]).P, g.game("a").P)


def test_weighted_nash_mp_converges_to_the_weighted_regularised_nash():
    g = multi_lowrank_game(("helpful", "harmless"), n_contexts=3, n_actions=5, scale=2.0, seed=2)
    run = run_weighted(g, {"helpful": 0.3, "harmless": 0.7}, beta=0.2, steps=150)
    assert run.kl[-1] < 1e-10 < run.kl[0]
    np.testing.assert_allclose(run.nash.pi, regularized_nash(weighted_game(g, [0.3, 0.7]), 0.2).pi, atol=1e-12)
    # the weights matter: the other weighting has another equilibrium
    other = regularized_nash(weighted_game(g, [0.7, 0.3]), 0.2)
    assert np.abs(other.pi - np.exp(run.log_pi)).max() > 1e-2


def test_max_min_matches_the_closed_form():
    # robust mixture (2/3, 1/3), value 11/30, adversary weights (1/3, 2/3) (see test_robust)
    run = run_max_min(multi_matrix_game(two_models()), steps=2000)
    np.testing.assert_allclose(run.pi[0], [2 / 3, 1 / 3], atol=2e-3)
    assert run.value == pytest.approx(11 / 30, abs=1e-3)
    np.testing.assert_allclose(run.criterion_weights, [1 / 3, 2 / 3], atol=1e-2)
    assert run.value <= 11 / 30 + 1e-12 <= run.upper_bound + 2e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_min_average_converges_to_the_lp(seed):
    g = multi_random_game(("a", "b", "c"), 1, 5, seed=seed)
    lp = robust_mixture(g.P[:, 0], criteria=g.criteria)
    run = run_max_min(g, steps=1000)
    # weak duality sandwiches the LP value between the averages' guarantee and bound
    assert run.value - 1e-12 <= lp.value <= run.upper_bound + 1e-12
    assert run.gap < 1e-3
    assert run.gaps[-1] < run.gaps[99] / 5  # the gap keeps shrinking (≈ 1/T)
    assert run.value == pytest.approx(lp.value, abs=1e-3)
    np.testing.assert_allclose(run.pi[0], lp.weights, atol=5e-3)
    np.testing.assert_allclose(run.criterion_weights, lp.criterion_weights, atol=3e-2)
    # the criteria that carry adversary weight are the binding ones
    assert {c for c, l in zip(g.criteria, run.criterion_weights) if l > 0.05} <= set(lp.binding)


def cvxpy_contextual_robust(g: MultiGame):
    cp = pytest.importorskip("cvxpy")
    C, X, Y, _ = g.P.shape
    pi, v, u = cp.Variable((X, Y)), cp.Variable(), cp.Variable((C, X))
    cons = [pi >= 0, cp.sum(pi, axis=1) == 1]
    for c in range(C):
        for x in range(X):
            cons.append(g.P[c, x].T @ pi[x] >= u[c, x])
        cons.append(g.weights @ u[c] >= v)
    cp.Problem(cp.Maximize(v), cons).solve(solver="CLARABEL")
    return float(v.value)


def test_max_min_on_a_contextual_game_matches_an_independent_lp():
    g = multi_lowrank_game(("a", "b"), n_contexts=3, n_actions=4, scale=2.0, seed=4)
    v = cvxpy_contextual_robust(g)
    run = run_max_min(g, steps=1000)
    assert run.value - 1e-7 <= v <= run.upper_bound + 1e-7
    assert run.value == pytest.approx(v, abs=1e-3)
    np.testing.assert_allclose(run.criterion_values, robust_guarantee(g, run.pi))


def test_max_min_step_moves_each_player_the_right_way():
    g = multi_matrix_game(two_models())
    nxt, half = max_min_step(initial_state(g), game=g, eta=0.5)
    # against uniform opponents model 0 wins more on average ((0.7 + 0.4)/2 > (0.3 + 0.6)/2)
    assert np.exp(half.log_pi[0, 0]) > 0.5 and np.exp(nxt.log_pi[0, 0]) > 0.5
    # each opponent moves to the model that beats π on its own criterion: model 0 on a, model 1 on b
    assert np.exp(nxt.log_opp[0, 0, 0]) > 0.5 and np.exp(nxt.log_opp[1, 0, 1]) > 0.5
    # λ moves towards the criterion on which π (at the half step) wins less against its opponent
    pi, opp = np.exp(half.log_pi[0]), np.exp(half.log_opp[:, 0])
    win = [pi @ g.P[c, 0] @ opp[c] for c in range(2)]
    assert abs(win[0] - win[1]) > 1e-3
    assert np.argmax(np.exp(nxt.log_lam)) == np.argmin(win)


def test_bad_input_refused():
    with pytest.raises(InputError, match="share the contexts"):
        multi_game({"a": random_game(1, 4, seed=0), "b": random_game(1, 5, seed=1)})
    with pytest.raises(InputError, match="sum to 1"):
        weighted_game(multi_random_game(), [0.5, 0.6])
    with pytest.raises(InputError, match="not complementary"):
        multi_matrix_game({"a": np.array([[0.5, 0.9], [0.9, 0.5]])})
    with pytest.raises(InputError, match="eta"):
        run_max_min(multi_random_game(), eta=-1.0)
    with pytest.raises(InputError, match="unknown criterion"):
        multi_random_game().game("z")


def test_cli_lab_criteria_json(capsys):
    import json

    from arena.cli import main

    rc = main(["lab", "criteria", "--criteria", "helpful,harmless", "--actions", "4", "--steps", "400",
               "--weights", "helpful=0.25,harmless=0.75", "--json"])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["weighted"]["weights"] == {"helpful": 0.25, "harmless": 0.75} and obj["weighted"]["final_kl"] < 1e-10
    robust, mm = obj["robust"], obj["max_min"]
    assert mm["value"] - 1e-12 <= robust["value"] <= mm["upper_bound"] + 1e-12
    assert set(robust) >= {"weights", "value", "binding", "exploitability"}
    assert robust["value"] == pytest.approx(min(0.5 - e for e in robust["exploitability"].values()))


@pytest.mark.parametrize("args, match", [
    (["--weights", "a=0.5,b=0.6"], "sum to 1"),
    (["--weights", "a0.5"], "NAME=NUMBER"),
    (["--weights", "a=0.5,z=0.5"], "unknown criteria"),
    (["--criteria", ","], "at least one name"),
    (["--eta", "nan"], "--eta"),
])
def test_cli_lab_criteria_bad_input(args, match, capsys):
    from arena.cli import main

    assert main(["lab", "criteria", "--criteria", "a,b", "--steps", "5", *args]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and match in cap.err
