"""Training on a vector judge: the weighted and the max–min wrappers (trainers.lm.criteria), cross-checked
against the exact tabular formulas of trainers.lab.multicriteria on one-token responses."""

import json

import numpy as np
import pytest

from arena.errors import ConfigError
from judges import Comparison, Failure
from trainers.lab.multicriteria import adversary_step, bank_preferences, multi_random_game, weighted_game
from trainers.lm.criteria import (MaxMinCriteriaJudge, WeightedCriteriaJudge, criteria_judge,
                                  parse_criteria_weights)

GAME = multi_random_game(("helpful", "honest", "harmless"), n_contexts=2, n_actions=4, seed=3)


class TableJudge:
    """A vector judge over one-token responses: prompt 'x<i>', responses 't<y>', P_c from GAME."""

    criteria = GAME.criteria
    fingerprint = "table"

    def __init__(self, fail=None):
        self.fail = fail  # (criterion, response) whose verdicts fail
        self.calls = 0

    def judge_vector(self, comparisons):
        self.calls += len(comparisons)
        out = []
        for c in comparisons:
            x, y, y2 = int(c.prompt[1:]), int(c.response_a[1:]), int(c.response_b[1:])
            v = {name: float(GAME.P[k, x, y, y2]) for k, name in enumerate(GAME.criteria)}
            if self.fail and self.fail[1] in (c.response_a, c.response_b):
                v[self.fail[0]] = Failure("judge could not parse")
            out.append(v)
        return out


def _batch(rng, n=12):
    xs = rng.integers(0, 2, n)
    ys, y2s = rng.integers(0, 4, n), rng.integers(0, 4, n)
    return [Comparison(f"x{x}", f"t{y}", f"t{y2}") for x, y, y2 in zip(xs, ys, y2s)], xs, ys, y2s


def test_parse_and_refuse():
    assert parse_criteria_weights("helpful=0.5, honest=0.5") == {"helpful": 0.5, "honest": 0.5}
    assert parse_criteria_weights("maxmin") == "maxmin"
    for bad in ("helpful", "helpful=x", ""):
        with pytest.raises(ConfigError, match="criteria-weights"):
            parse_criteria_weights(bad)
    with pytest.raises(ConfigError, match="vector judge"):
        criteria_judge(object(), "maxmin")
    with pytest.raises(ConfigError, match="sum"):
        criteria_judge(TableJudge(), "helpful=0.5,honest=0.2,harmless=0.2")
    with pytest.raises(ConfigError, match="brief"):
        criteria_judge(TableJudge(), "brief=1")
    judge = TableJudge()
    assert criteria_judge(judge, None) is judge


def test_weighted_judge_is_the_weighted_game():
    w = {"helpful": 0.6, "honest": 0.3, "harmless": 0.1}
    judge = criteria_judge(TableJudge(), "helpful=0.6,honest=0.3,harmless=0.1")
    assert isinstance(judge, WeightedCriteriaJudge)
    comps, xs, ys, y2s = _batch(np.random.default_rng(0))
    want = weighted_game(GAME, w).P[xs, ys, y2s]
    np.testing.assert_allclose(judge.judge(comps), want, atol=1e-12)
    # a failed criterion fails the pair when it has weight, and is ignored when its weight is 0
    failing = WeightedCriteriaJudge(TableJudge(fail=("honest", "t1")), w)
    out = failing.judge([Comparison("x0", "t1", "t2"), Comparison("x0", "t0", "t2")])
    assert isinstance(out[0], Failure) and "honest" in out[0].reason and out[1] == pytest.approx(weighted_game(GAME, w).P[0, 0, 2])
    zero = WeightedCriteriaJudge(TableJudge(fail=("honest", "t1")), {"helpful": 0.5, "harmless": 0.5})
    assert zero.judge([Comparison("x0", "t1", "t2")])[0] == pytest.approx(0.5 * GAME.P[0, 0, 1, 2] + 0.5 * GAME.P[2, 0, 1, 2])


def test_maxmin_judge_matches_the_exact_bank_game_and_adversary_step():
    """One-token responses, the bank = every action: the wrapper's preferences are bank_preferences,
    and its update is adversary_step with π and ρ the batch's response shares."""
    rng = np.random.default_rng(1)
    judge = MaxMinCriteriaJudge(TableJudge(), eta_lam=0.7, eta_q=1.3)
    C, X, Y = GAME.P.shape[:3]
    lam = rng.dirichlet(np.ones(C))
    opp = rng.dirichlet(np.ones(Y), size=(C, X))                       # (C, X, Y), asymmetric
    judge.log_lam = np.log(lam)
    for x in range(X):
        judge.banks[f"x{x}"] = [f"t{y}" for y in range(Y)]
        judge.log_q[f"x{x}"] = np.log(opp[:, x])
    comps, xs, ys, y2s = _batch(rng, n=16)
    got = judge.judge(comps)
    np.testing.assert_allclose(got, bank_preferences(GAME, lam, opp).P[xs, ys, y2s], atol=1e-12)
    counts = np.zeros((X, Y))
    np.add.at(counts, (xs, ys), 1)
    np.add.at(counts, (xs, y2s), 1)
    rho = counts.sum(1) / counts.sum()
    pi = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    lam2, opp2 = adversary_step(GAME, pi, rho, lam, opp, eta_lam=0.7, eta_q=1.3)
    np.testing.assert_allclose(judge.lam, lam2, atol=1e-12)
    for x in range(X):
        np.testing.assert_allclose(np.exp(judge.log_q[f"x{x}"]), opp2[:, x], atol=1e-12)
    assert len(judge.history) == 1


def test_maxmin_bank_grows_and_failures_fail_only_their_pairs():
    judge = MaxMinCriteriaJudge(TableJudge(fail=("harmless", "t3")), bank=3)
    out = judge.judge([Comparison("x0", "t0", "t1"), Comparison("x0", "t2", "t3"), Comparison("x1", "t0", "t2")])
    # t3 joined x0's bank and fails on harmless, so every x0 response fails its score (never a tie);
    # x1's bank has no t3: its pair is judged
    assert isinstance(out[0], Failure) and isinstance(out[1], Failure) and "harmless" in out[1].reason
    assert not isinstance(out[2], Failure)
    assert judge.banks["x0"] == ["t1", "t2", "t3"] and judge.banks["x1"] == ["t0", "t2"]  # oldest dropped at 3
    np.testing.assert_allclose(np.exp(judge.log_q["x0"]).sum(1), 1.0)
    assert np.isfinite(judge.log_lam).all() and judge.lam.sum() == pytest.approx(1.0)


def test_lab_max_min_adversary_reaches_the_robust_lp():
    """In expectation the LM max–min (Nash-MP against the adversary) approaches the LP's robust value,
    and guarantees more on the worst criterion than Nash-MP on either criterion alone."""
    from arena.core.robust import robust_mixture
    from trainers.lab.multicriteria import robust_guarantee, run_bank_max_min, run_weighted

    for seed in (0, 1):
        g = multi_random_game(("a", "b"), 1, 5, seed=seed)
        lp = robust_mixture(g.P[:, 0], criteria=g.criteria)
        run = run_bank_max_min(g, beta=0.02, steps=1500)
        worst = robust_guarantee(g, run.pi).min()
        assert lp.value - 0.015 <= worst <= lp.value + 1e-9
        for c in g.criteria:
            single = run_weighted(g, {d: float(d == c) for d in g.criteria}, beta=0.02, steps=300)
            assert robust_guarantee(g, np.exp(single.log_pi)).min() < worst - 0.05


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from arena.worlds.lowrank import LowrankWorld, build_lowrank_world

    return build_lowrank_world(tmp_path_factory.mktemp("w") / "lowrank", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))


@pytest.mark.parametrize("weights", ["a=0.25,b=0.75", "maxmin"])
def test_cli_trains_on_a_vector_judge(world, tmp_path, capsys, weights):
    from arena.cli import main

    out = tmp_path / "ckpt"
    judge = "panel:a=python:arena.worlds.lowrank:judge|b=python:arena.worlds.lowrank:judge"
    rc = main(["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", judge, "--prompts",
               str(world / "prompts.jsonl"), "--out", str(out), "--steps", "2", "--batch-size", "4",
               "--max-new-tokens", "4", "--eval-every", "0", "--save-every", "0", "--criteria-weights", weights])
    assert rc == 0, capsys.readouterr().err
    card = json.loads((out / "arena_card.json").read_text())
    assert json.dumps(card).count(weights) >= 1


def test_cli_refuses_criteria_weights_on_a_scalar_judge(world, tmp_path, capsys):
    from arena.cli import main

    out = tmp_path / "ckpt"
    rc = main(["train", "nash-mp", "--policy", str(world / "ckpts" / "sft"), "--judge", "python:arena.worlds.lowrank:judge",
               "--prompts", str(world / "prompts.jsonl"), "--out", str(out), "--steps", "1", "--criteria-weights", "maxmin"])
    err = capsys.readouterr().err
    assert rc == 2 and "vector judge" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_maxmin_adversary_resumes_where_it_stopped(world, tmp_path):
    """The adversary's λ, banks and q travel in the resume state: a resumed max–min run equals the uninterrupted one."""
    from safetensors.torch import load_file

    from trainers.lm import TrainConfig, train

    judge = "panel:a=python:arena.worlds.lowrank:judge|b=python:tests.trainers.lm.test_criteria_training:flipped"
    cfg = lambda out: TrainConfig(policy=str(world / "ckpts" / "sft"), judge=judge,  # noqa: E731
                                  prompts=str(world / "prompts.jsonl"), out=str(out), steps=4, batch_size=4,
                                  max_new_tokens=4, eval_every=0, save_every=2, criteria_weights="maxmin")
    full = train("nash-mp", cfg(tmp_path / "full"))

    class Stop(Exception):
        pass

    def stop_at_3(step, row):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train("nash-mp", cfg(tmp_path / "cut"), progress=stop_at_3)
    resumed = train("nash-mp", cfg(tmp_path / "cut"), resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-6) for k in a)


def flipped(prompt: str, response_a: str, response_b: str) -> float:
    """The lowrank judge with the two responses' roles swapped: a criterion that disagrees with the first."""
    from arena.worlds.lowrank import judge

    return judge(prompt, response_b, response_a)


def test_maxmin_state_round_trips_and_refuses_other_criteria():
    rng = np.random.default_rng(0)
    adv = MaxMinCriteriaJudge(TableJudge(), bank=3)
    for _ in range(3):
        adv.judge(_batch(rng)[0])
    other = MaxMinCriteriaJudge(TableJudge(), bank=3)
    other.load_state_json(adv.state_json())
    batch = _batch(rng)[0]
    assert other.judge(batch) == adv.judge(batch)
    assert np.allclose(other.lam, adv.lam) and other.banks == adv.banks

    class TwoCriteria(TableJudge):
        criteria = GAME.criteria[:2]

    with pytest.raises(ConfigError, match="same judge"):
        MaxMinCriteriaJudge(TwoCriteria()).load_state_json(adv.state_json())
