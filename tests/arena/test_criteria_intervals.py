"""Intervals of the robust (max–min) mixture: joint resamples of the criteria, re-solved per round."""

from __future__ import annotations

import numpy as np
import pytest

from arena.core.records import make_records
from arena.core.robust import robust_mixture, robust_uncertainty
from arena.criteria import _resampled_games, analyze_criteria
from arena.errors import InputError


def _records(P, *, prompts=30, per_prompt=1, seed=0, models=("a", "b", "c", "d")):
    """Records over every pair with Bernoulli(P[i, j]) outcomes, one cluster id per prompt."""
    rng = np.random.default_rng(seed)
    n = len(models)
    a, b, s, cl = [], [], [], []
    for p in range(prompts):
        for i in range(n):
            for j in range(i + 1, n):
                for _ in range(per_prompt):
                    a.append(models[i]), b.append(models[j]), cl.append(p)
                    s.append(float(rng.random() < P[i, j]))
    return make_records(a, b, s, cluster=cl, models=list(models))


# rock-paper-scissors plus a dominated d, and its mirror: the criteria conflict
RPS = np.array([[0.5, 0.8, 0.2, 0.9], [0.2, 0.5, 0.8, 0.9], [0.8, 0.2, 0.5, 0.9], [0.1, 0.1, 0.1, 0.5]])
MIRROR = np.array([[0.5, 0.2, 0.8, 0.9], [0.8, 0.5, 0.2, 0.9], [0.2, 0.8, 0.5, 0.9], [0.1, 0.1, 0.1, 0.5]])
SKEW = np.array([[0.5, 0.9, 0.6, 0.9], [0.1, 0.5, 0.3, 0.6], [0.4, 0.7, 0.5, 0.8], [0.1, 0.4, 0.2, 0.5]])


def test_criteria_share_the_prompt_draws():
    """Identical records under two criteria resample identically: the draw of prompts is shared."""
    r = _records(RPS)
    S, method = _resampled_games({"x": r, "y": r}, ("x", "y"), 4, rounds=25, seed=3)
    assert S.shape == (25, 2, 4, 4) and "shared" in method
    np.testing.assert_array_equal(S[:, 0], S[:, 1])
    np.testing.assert_allclose(S + np.swapaxes(S, 2, 3), 1.0)
    assert S[:, 0, 0, 1].std() > 0  # the rounds do differ


def test_identical_criteria_have_value_exactly_half_in_every_round():
    r = _records(RPS, prompts=40)
    out = analyze_criteria({"helpful": r, "honest": r}, rounds=60)["robust"]
    assert out["value_interval"] == [0.5, 0.5] and out["binding_stability"] == 1.0
    assert out["rounds"] == 60 and out["guarantee_lower"] <= 0.5


def test_conflict_intervals_contain_the_estimate_and_sit_below_half():
    hel, har = _records(RPS, prompts=60, seed=1), _records(MIRROR, prompts=60, seed=2)
    out = analyze_criteria({"helpful": hel, "harmless": har}, rounds=80, seed=5)["robust"]
    lo, hi = out["value_interval"]
    assert lo <= out["value"] <= hi < 0.5
    for m, (wl, wh) in out["weights_interval"].items():
        assert wl <= out["weights"][m] <= wh
    assert out["weights_interval"]["d"][1] < 0.05  # the dominated model stays out in (almost) every round
    assert set(out["binding_share"]) == {"helpful", "harmless"} and 0 <= out["binding_stability"] <= 1
    assert "shared by the criteria" in out["ci"]
    # seeded: the same call gives the same intervals
    again = analyze_criteria({"helpful": hel, "harmless": har}, rounds=80, seed=5)["robust"]
    assert again == out


def test_robust_uncertainty_on_fixed_games_is_the_estimate():
    P = np.stack([SKEW, RPS])
    est = robust_mixture(P, criteria=("x", "y"))
    u = robust_uncertainty(np.stack([P] * 5), est)
    np.testing.assert_allclose(u.weights_lo, est.weights, atol=1e-7)
    np.testing.assert_allclose(u.weights_hi, est.weights, atol=1e-7)
    assert u.value_lo == pytest.approx(est.value) and u.value_hi == pytest.approx(est.value)
    assert u.binding_same == 1.0 and u.guarantee_lower == pytest.approx(est.value)
    # binding is counted per round: x, y conflict and bind; an indifferent z never binds
    P3 = np.stack([SKEW, RPS, np.full((4, 4), 0.5)])
    est3 = robust_mixture(P3, criteria=("x", "y", "z"))
    assert est3.binding == ("x", "y")
    u3 = robust_uncertainty(np.stack([P3] * 5 + [P3[[2, 0, 1]]] * 5), est3)  # then y, z hold the conflict
    assert u3.binding_share.tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert u3.binding_same == pytest.approx(0.5)
    with pytest.raises(InputError, match="rounds"):
        robust_uncertainty(P, est)


def test_no_prompt_ids_resample_each_criterion_alone():
    r = _records(SKEW, prompts=20)
    plain = make_records([r.models[i] for i in r.a], [r.models[i] for i in r.b], r.score, models=list(r.models))
    S, method = _resampled_games({"x": plain, "y": plain}, ("x", "y"), 4, rounds=20, seed=0)
    assert "multinomial" in method and not np.array_equal(S[:, 0], S[:, 1])


def test_weighted_mixture_intervals_contain_the_estimate_and_shrink_with_data():
    """The weighted Nash is re-solved on the robust mixture's joint resamples: its intervals hold the
    estimate, are seeded, and narrow with four times the prompts."""
    def weighted(prompts, seed):
        hel, har = _records(RPS, prompts=prompts, seed=seed), _records(SKEW, prompts=prompts, seed=seed + 1)
        return analyze_criteria({"helpful": hel, "harmless": har}, weights={"helpful": 0.7, "harmless": 0.3},
                                rounds=80, seed=5)["weighted"]

    out = weighted(40, 1)
    assert out["rounds"] == 80 and "joint resamples" in out["ci"]
    for m, (lo, hi) in out["weights_interval"].items():
        assert lo <= out["nash"]["weights"][m] <= hi
    for c, (lo, hi) in out["criterion_values_interval"].items():
        assert lo <= out["criterion_values"][c] <= hi
    assert out["weights_interval"]["d"][1] < 0.05        # dominated on both criteria
    width = lambda o: max(hi - lo for lo, hi in o["weights_interval"].values())  # noqa: E731
    assert width(weighted(160, 1)) < width(out) and width(out) > 0.05
    assert weighted(40, 1) == out
    # without the bootstrap: the point estimate, with its interval fields empty
    hel = _records(RPS, prompts=20)
    none = analyze_criteria({"helpful": hel, "harmless": hel}, weights={"helpful": 0.5, "harmless": 0.5},
                            ci="analytic")["weighted"]
    assert none["weights_interval"] is None and none["rounds"] == 0 and none["nash"]["weights"]
