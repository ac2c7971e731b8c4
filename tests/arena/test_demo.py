"""The demo's verdict on Nash-MP: every checkpoint against the Nash mixture of the others."""

from dataclasses import replace

import numpy as np
import pytest

from arena.analysis import analyze_matrix
from arena.demo import nash_mp_summary, score_against_nash_of_others

# Rock-paper-scissors between three experts (row beats column with 2/3), plus a fourth
# model that beats rock with 0.8, ties paper and loses to scissors with 0.4.
P = np.array([
    [0.5, 1 / 3, 2 / 3, 0.2],
    [2 / 3, 0.5, 1 / 3, 0.5],
    [1 / 3, 2 / 3, 0.5, 0.6],
    [0.8, 0.5, 0.4, 0.5],
])


def test_scores_against_the_others_equilibrium_closed_form():
    scores, p = score_against_nash_of_others(P, 3)
    np.testing.assert_allclose(p, [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-9)
    # The experts are the others' equilibrium: each scores exactly 0 against it.
    np.testing.assert_allclose(scores[:3], 0.0, atol=1e-9)
    # The fourth: (0.8 + 0.5 + 0.4) / 3 - 1/2 = 1/15 > 0, so it would enter the support.
    assert scores[3] == pytest.approx(1 / 15, abs=1e-9)


def test_summary_names_the_best_and_reads_the_interval():
    models = ["rock", "paper", "scissors", "nash-mp"]
    base = analyze_matrix(models, P)
    result = replace(base, preference=replace(base.preference, lo=(P - 0.1).tolist(), hi=(P + 0.1).tolist()))
    s = nash_mp_summary(result, reference="rock")
    assert s["best_vs_nash_of_others"] is True
    assert s["win_rate_vs_sft"] == pytest.approx(0.8)
    assert s["win_rate_vs_sft_ci"] == pytest.approx([0.7, 0.9])
    assert set(s["nash_of_others"]) == {"rock", "paper", "scissors"}
    # score 1/15 against the uniform experts; cells ± 0.1 move it by ± 0.1: not distinguishable
    assert s["score_ci"] == pytest.approx([1 / 15 - 0.1, 1 / 15 + 0.1])
    assert s["verdict"] == "not distinguishable from the others' Nash mixture"
    tight = replace(result, preference=replace(result.preference, lo=(P - 0.01).tolist(), hi=(P + 0.01).tolist()))
    assert nash_mp_summary(tight, reference="rock")["verdict"].startswith("significantly better")

    worse = P.copy()
    worse[3, :3], worse[:3, 3] = [0.4, 0.5, 0.4], [0.6, 0.5, 0.6]
    result = replace(result, preference=replace(result.preference, P=worse.tolist()))
    s = nash_mp_summary(result, reference="rock")
    assert s["best_vs_nash_of_others"] is False
    assert s["score_ci"][1] == pytest.approx((0.9 + 0.6 + 0.5) / 3 - 0.5) and s["verdict"].startswith("not distinguishable")


def test_summary_is_none_without_the_models():
    assert nash_mp_summary(analyze_matrix(["a", "b"], [[0.5, 0.5], [0.5, 0.5]])) is None
