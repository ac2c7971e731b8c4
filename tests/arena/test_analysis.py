"""The analysis result object: schema, strict JSON, and numbers checked independently.

Every number is re-derived here from the data or from the result's own matrix (counts by
pandas, the 3-cycle Nash in closed form, the Bradley–Terry stationarity condition), so a
swapped index or sign in `arena.analysis` changes the answer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from arena.analysis import analyze_matrix, analyze_records
from arena.core.records import make_records
from arena.errors import InputError
from arena.examples import MODELS, cyclic_example_pairs

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SOCCER = DATA / "openspiel" / "response_graph_ucb_soccer.txt"
SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}


def _records(frame):
    score = frame["winner"].map(SCORE).to_numpy()
    return make_records(frame["model_a"], frame["model_b"], score, cluster=frame["prompt_id"])


@pytest.fixture(scope="module")
def frame():
    return cyclic_example_pairs(n_prompts=400, seed=0)


@pytest.fixture(scope="module")
def cyclic(frame):
    return analyze_records(_records(frame), rounds=200, seed=0).to_json()


def _P(result) -> np.ndarray:
    return np.array(result["preference"]["P"], dtype=float)


def _check_schema(result):
    models = result["models"]
    assert json.loads(json.dumps(result, allow_nan=False)) == result  # strict JSON, lossless
    assert result["preference"]["models"] == models
    assert set(result["ratings"]) == set(models) == set(result["nash"]["weights"])
    for r in result["ratings"].values():
        assert set(r) >= {"bt", "elo", "bt_ci", "win_rate"}
    assert set(result["cycles"]) >= {"triangles", "condorcet_winner", "cyclic_share", "components"}
    assert set(result["nash"]) >= {"weights", "scores", "exploitability"}
    P = _P(result)
    n = len(models)
    assert P.shape == (n, n)
    assert np.array_equal(P + P.T, np.ones((n, n)))  # complementary as stored, exactly
    lo, hi = np.array(result["preference"]["lo"]), np.array(result["preference"]["hi"])
    assert np.array_equal(lo + hi.T, np.ones((n, n)))
    assert (lo <= P + 1e-12).all() and (P <= hi + 1e-12).all()
    assert sorted(m for comp in result["cycles"]["components"] for m in comp) == sorted(models)


def _nash_certificate(result) -> float:
    """max_i (A p)_i with A = P - ½, from the stored matrix and weights."""
    P = _P(result)
    p = np.array([result["nash"]["weights"][m] for m in result["models"]])
    return float(((P - 0.5) @ p).max())


# --------------------------------------------------------------------------- cyclic example


def test_schema_and_strict_json(cyclic):
    _check_schema(cyclic)
    assert cyclic["models"] == sorted(MODELS)
    s = cyclic["settings"]
    assert s["input"] == "pairs" and s["rounds"] == 200 and s["seed"] == 0 and s["level"] == 0.95
    assert s["ci"] == "bootstrap (cluster)" and s["clusters"] == 400 and s["records"] == 2400


def test_counts_win_rates_and_matrix_match_the_data(cyclic, frame):
    idx = {m: i for i, m in enumerate(cyclic["models"])}
    n = len(idx)
    W = np.zeros((n, n))
    N = np.zeros((n, n))
    for a, b, w in zip(frame["model_a"], frame["model_b"], frame["winner"]):
        i, j, s = idx[a], idx[b], SCORE[w]
        W[i, j] += s
        W[j, i] += 1 - s
        N[i, j] += 1
        N[j, i] += 1
    assert np.array_equal(np.array(cyclic["preference"]["n"]), N)
    off = ~np.eye(n, dtype=bool)
    assert np.allclose(_P(cyclic)[off], (W / np.where(N > 0, N, 1))[off], atol=1e-8)
    for m, i in idx.items():
        assert cyclic["ratings"][m]["win_rate"] == pytest.approx(W[i].sum() / N[i].sum(), abs=1e-8)


def test_cycle_is_found(cyclic):
    P = _P(cyclic)
    idx = {m: i for i, m in enumerate(cyclic["models"])}
    cyc = cyclic["cycles"]
    assert cyc["condorcet_winner"] is None
    assert len(cyc["triangles"]) == 1 and cyc["n_triangles"] == 1
    a, b, c = cyc["triangles"][0]
    assert {a, b, c} == {"alpha", "beta", "gamma"}
    # the names mean a ≻ b ≻ c ≻ a in the stored matrix ...
    assert P[idx[a], idx[b]] > 0.5 and P[idx[b], idx[c]] > 0.5 and P[idx[c], idx[a]] > 0.5
    # ... and the population's cycle runs alpha ≻ beta ≻ gamma ≻ alpha (not the reverse).
    assert (a, b, c) in {("alpha", "beta", "gamma"), ("beta", "gamma", "alpha"), ("gamma", "alpha", "beta")}
    assert set(cyc["components"][0]) == {"alpha", "beta", "gamma"}
    assert cyc["components"][-1] == ["delta"]
    assert 0.0 < cyc["cyclic_share"] < 1.0


def test_nash_spreads_over_the_cycle_and_drops_the_weak_model(cyclic):
    w = cyclic["nash"]["weights"]
    assert w["delta"] < 1e-6
    assert min(w["alpha"], w["beta"], w["gamma"]) > 0.1
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-8)
    # Closed form for a 3-cycle with a dominated fourth model: p ∝ (x_bc, x_ca, x_ab), x = P - ½.
    P = _P(cyclic)
    i = {m: k for k, m in enumerate(cyclic["models"])}
    x_ab = P[i["alpha"], i["beta"]] - 0.5
    x_bc = P[i["beta"], i["gamma"]] - 0.5
    x_ca = P[i["gamma"], i["alpha"]] - 0.5
    expected = np.array([x_bc, x_ca, x_ab]) / (x_ab + x_bc + x_ca)
    got = np.array([w["alpha"], w["beta"], w["gamma"]])
    assert np.allclose(got, expected, atol=1e-6)
    assert _nash_certificate(cyclic) <= 1e-6
    assert cyclic["nash"]["exploitability"] <= 1e-6
    scores = (P - 0.5) @ np.array([w[m] for m in cyclic["models"]])
    for m, k in i.items():
        assert cyclic["nash"]["scores"][m] == pytest.approx(scores[k], abs=1e-6)


def test_bradley_terry_still_gives_a_total_order(cyclic):
    r = cyclic["ratings"]
    theta = sorted((v["bt"] for v in r.values()), reverse=True)
    assert min(a - b for a, b in zip(theta, theta[1:])) > 1e-3
    assert min(r, key=lambda m: r[m]["bt"]) == "delta"
    assert sum(v["bt"] for v in r.values()) == pytest.approx(0.0, abs=1e-6)
    top = max(r, key=lambda m: r[m]["bt"])
    P = _P(cyclic)
    i = cyclic["models"].index(top)
    assert (P[:, i] > 0.5).any()  # yet somebody beats the BT leader head to head
    for v in r.values():
        assert v["elo"] == pytest.approx(400 / math.log(10) * v["bt"] + 1000, abs=1e-4)
        lo, hi = v["bt_ci"]
        assert lo < v["bt"] < hi
        assert v["elo_ci"][0] == pytest.approx(400 / math.log(10) * lo + 1000, abs=1e-4)


def test_seeded_and_analytic_intervals(frame, cyclic):
    records = _records(frame)
    again = analyze_records(records, rounds=200, seed=0).to_json()
    assert again == cyclic
    other = analyze_records(records, rounds=200, seed=1).to_json()
    assert other["ratings"]["alpha"]["bt_ci"] != cyclic["ratings"]["alpha"]["bt_ci"]
    assert other["ratings"]["alpha"]["bt"] == cyclic["ratings"]["alpha"]["bt"]
    analytic = analyze_records(records, ci="analytic", level=0.9).to_json()
    _check_schema(analytic)
    assert analytic["settings"]["ci"].startswith("analytic") and analytic["settings"]["rounds"] is None
    for m, v in analytic["ratings"].items():
        assert v["bt"] == cyclic["ratings"][m]["bt"]
        assert v["bt_ci"][0] < v["bt"] < v["bt_ci"][1]


def test_significant_flag_drops_edges_whose_interval_contains_half():
    # alpha ≻ beta ≻ gamma ≻ alpha, but the gamma-alpha edge is a coin flip on few games.
    rows = [("alpha", "beta", 1.0)] * 80 + [("alpha", "beta", 0.0)] * 20
    rows += [("beta", "gamma", 1.0)] * 80 + [("beta", "gamma", 0.0)] * 20
    rows += [("gamma", "alpha", 1.0)] * 6 + [("gamma", "alpha", 0.0)] * 5
    a, b, s = zip(*rows)
    records = make_records(a, b, s)
    loose = analyze_records(records, ci="analytic").to_json()
    strict = analyze_records(records, ci="analytic", significant=True).to_json()
    assert len(loose["cycles"]["triangles"]) == 1
    assert strict["cycles"]["triangles"] == [] and strict["settings"]["significant"] is True


def test_disconnected_graph_needs_a_prior():
    records = make_records(["a", "b", "a"], ["b", "c", "c"], [1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="prior"):
        analyze_records(records, ci="analytic")
    result = analyze_records(records, ci="analytic", prior=0.5).to_json()
    r = result["ratings"]
    assert r["a"]["bt"] > r["b"]["bt"] > r["c"]["bt"]
    # a beats both on the point estimates, but one game per pair is no evidence
    assert result["cycles"]["majority_winner"] == "a"
    assert result["cycles"]["condorcet_winner"] is None
    assert result["cycles"]["top_set"] == ["a", "b", "c"] and result["cycles"]["distinguishable"] is False


@pytest.mark.parametrize(
    "kwargs, match",
    [({"ci": "jackknife"}, "bootstrap"), ({"level": 1.5}, "level"), ({"rounds": 0}, "rounds"), ({"prior": -1.0}, "prior")],
)
def test_bad_options(frame, kwargs, match):
    with pytest.raises(InputError, match=match):
        analyze_records(_records(frame.head(60)), **kwargs)


# --------------------------------------------------------------------------- matrix input


def test_matrix_rock_paper_scissors_golden():
    P = [[0.5, 0.2, 0.8], [0.8, 0.5, 0.2], [0.2, 0.8, 0.5]]  # paper beats rock, ...
    r = analyze_matrix(["rock", "paper", "scissors"], P).to_json()
    _check_schema(r)
    assert all(w == pytest.approx(1 / 3, abs=1e-7) for w in r["nash"]["weights"].values())
    assert r["cycles"]["condorcet_winner"] is None
    assert r["cycles"]["triangles"] in (
        [["rock", "scissors", "paper"]], [["scissors", "paper", "rock"]], [["paper", "rock", "scissors"]]
    )
    assert r["cycles"]["cyclic_share"] == pytest.approx(1.0, abs=1e-6)
    assert all(abs(v["bt"]) < 1e-6 for v in r["ratings"].values())


def test_matrix_from_a_bradley_terry_model_is_recovered_exactly():
    theta = np.array([1.2, -0.3, 0.4, -1.3])  # mean zero, uneven gaps
    P = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    names = ["w", "x", "y", "z"]
    r = analyze_matrix(names, P).to_json()
    _check_schema(r)
    got = np.array([r["ratings"][m]["bt"] for m in names])
    assert np.allclose(got, theta, atol=1e-6)
    assert r["cycles"]["condorcet_winner"] == "w" and r["cycles"]["triangles"] == []
    assert r["cycles"]["cyclic_share"] == pytest.approx(0.0, abs=1e-6)
    assert r["nash"]["weights"]["w"] == pytest.approx(1.0, abs=1e-7)
    assert r["preference"]["n"] is None
    assert all(v["bt_ci"] is None for v in r["ratings"].values())
    assert r["ratings"]["y"]["win_rate"] == pytest.approx((P[2].sum() - 0.5) / 3, abs=1e-8)


@pytest.mark.skipif(not SOCCER.exists(), reason=f"shared data not found at {SOCCER} (only in the project workspace)")
def test_matrix_openspiel_soccer():
    # Rowland et al. 2019 MuJoCo soccer agents, via google-deepmind/open_spiel (Apache-2.0).
    P = np.loadtxt(SOCCER)
    names = [f"agent{i}" for i in range(P.shape[0])]
    r = analyze_matrix(names, P).to_json()
    _check_schema(r)
    assert r["settings"]["input"] == "matrix" and r["preference"]["n"] is None
    Ps = _P(r)
    assert np.allclose(Ps, (P + 1 - P.T) / 2, atol=1e-8)
    # Bradley–Terry with unit weight per pair: Σ_j P_ij = Σ_j σ(θ_i − θ_j) at the MLE.
    theta = np.array([r["ratings"][m]["bt"] for m in names])
    sig = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    np.fill_diagonal(sig, 0.5)
    assert np.allclose(Ps.sum(axis=1), sig.sum(axis=1), atol=1e-6)
    for k, m in enumerate(names):
        assert r["ratings"][m]["win_rate"] == pytest.approx((Ps[k].sum() - 0.5) / 9, abs=1e-8)
    assert _nash_certificate(r) <= 1e-6
    support = [m for m, w in r["nash"]["weights"].items() if w > 1e-6]
    assert 1 <= len(support) < len(names)
    # The Nash support lies in the top strongly connected component.
    assert set(support) <= set(r["cycles"]["components"][0])


def test_matrix_bad_input():
    with pytest.raises(InputError):
        analyze_matrix(["a", "b"], [[0.5, 0.7, 0.1], [0.3, 0.5, 0.2]])
    with pytest.raises(InputError):
        analyze_matrix(["a", "b", "c"], [[0.5, 0.7], [0.3, 0.5]])
    with pytest.raises(InputError):
        analyze_matrix(["a", "a"], [[0.5, 0.7], [0.3, 0.5]])
    with pytest.raises(InputError, match="significant"):
        analyze_matrix(["a", "b"], [[0.5, 0.7], [0.3, 0.5]], significant=True)


# --------------------------------------------------------------------------- the example data


def test_cyclic_example_data_shape_and_determinism(tmp_path):
    from arena.examples import write_cyclic_example

    a = cyclic_example_pairs(n_prompts=50, seed=3)
    assert list(a.columns) == ["model_a", "model_b", "winner", "prompt_id"]
    assert len(a) == 50 * 6 and a.groupby("prompt_id").size().eq(6).all()
    assert set(a["winner"]) <= {"model_a", "model_b", "tie"}
    assert (a["model_a"] != a["model_b"]).all()
    assert a.equals(cyclic_example_pairs(n_prompts=50, seed=3))
    assert not a.equals(cyclic_example_pairs(n_prompts=50, seed=4))
    path = write_cyclic_example(tmp_path / "ex.jsonl", n_prompts=50, seed=3)
    import pandas as pd

    back = pd.read_json(path, lines=True, dtype={"prompt_id": str})
    assert back[["model_a", "model_b", "winner"]].equals(a[["model_a", "model_b", "winner"]])
    with pytest.raises(ValueError, match="tie_rate"):
        cyclic_example_pairs(tie_rate=1.5)


def test_cyclic_example_without_noise_follows_the_rater_orders():
    # q = weak_q = 1, no ties: every battle goes to the rater type's preferred model, so the
    # share of prompts on which alpha beats beta is exactly the share of types 1 and 3.
    f = cyclic_example_pairs(n_prompts=300, seed=1, q=1.0, weak_q=1.0, tie_rate=0.0)
    r = analyze_records(_records(f), ci="analytic", prior=0.1).to_json()  # delta never wins: needs the prior
    i = {m: k for k, m in enumerate(r["models"])}
    P = _P(r)
    assert (P[i["delta"], [i["alpha"], i["beta"], i["gamma"]]] == 0.0).all()
    pair = f[((f.model_a == "alpha") & (f.model_b == "beta")) | ((f.model_a == "beta") & (f.model_b == "alpha"))]
    alpha_wins = ((pair.model_a == "alpha") == (pair.winner == "model_a")).mean()
    assert P[i["alpha"], i["beta"]] == pytest.approx(alpha_wins, abs=1e-9)
    assert 0.55 < alpha_wins < 0.75  # types 1 + 3 hold 65% of the prompts in expectation


def test_bradley_terry_is_fitted_once_per_analysis(frame, cyclic, monkeypatch):
    # analyze_records hands its fit to the bootstrap instead of fitting the same table twice;
    # the result is unchanged (same seed, same numbers as the module fixture).
    import arena.core.bootstrap as bootstrap
    import arena.core.bradley_terry as bradley_terry

    calls = []
    real = bradley_terry.fit_bradley_terry

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bradley_terry, "fit_bradley_terry", counting)
    monkeypatch.setattr(bootstrap, "fit_bradley_terry", counting)
    assert analyze_records(_records(frame), rounds=200, seed=0).to_json() == cyclic
    assert len(calls) == 1


def test_unanimous_transitive_records_are_not_reported_as_cyclic():
    # Every pair decided 10-0 along a > b > c > d: the HodgeRank share must be 0, not the
    # 17% that clipping every log-odds at the same level gives.
    names = ["a", "b", "c", "d"]
    rows = [(x, y, 1.0) for k, x in enumerate(names) for y in names[k + 1:] for _ in range(10)]
    records = make_records(*zip(*rows))
    r = analyze_records(records, ci="analytic", prior=0.1).to_json()  # nobody beats a: needs the prior
    _check_schema(r)
    assert r["cycles"]["cyclic_share"] == pytest.approx(0.0, abs=1e-9)
    assert r["cycles"]["condorcet_winner"] == "a" and r["cycles"]["triangles"] == []
    assert r["nash"]["weights"]["a"] == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------------------- honest verdicts


def _transitive_world(n=40, m=100_000, seed=0):
    """Bradley–Terry world, θ sorted so that m00 is the true best; uniformly random pairs."""
    rng = np.random.default_rng(seed)
    theta = np.sort(rng.normal(0.0, 1.0, n))[::-1]
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    s = (rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))).astype(float)
    names = np.array([f"m{k:02d}" for k in range(n)])
    return make_records(names[a], names[b], s, models=list(names))


def test_transitive_world_no_false_winner_and_no_false_certain_mixture():
    """40 models, 100k battles: the point matrix has m01 beating everyone (P = 0.53 over m00,
    not significant) and its Nash puts 100% on m01. The result must not claim either."""
    from arena.report import plain_reading

    r = analyze_records(_transitive_world(), rounds=200, seed=0).to_json()
    cycles, nash = r["cycles"], r["nash"]
    assert cycles["majority_winner"] == "m01"  # the trap: a point-estimate "Condorcet winner"
    assert cycles["condorcet_winner"] is None and "m00" in cycles["top_set"] and cycles["distinguishable"]
    assert r["ratings"]["m00"]["rank_interval"] == [1, 1]  # BT pools all pairs: the true best is first
    assert nash["weights"]["m01"] == 1.0
    lo, hi = nash["intervals"]["m01"]
    assert lo == 0.0 and hi == 1.0 and nash["support_probability"]["m01"] < 0.9
    assert nash["support_probability"]["m00"] > 0.1
    reading = plain_reading(r)
    assert "a Condorcet winner" not in reading and "no Condorcet winner is claimed" in reading
    assert "m01 (100%; 95% interval [0%, 100%], in support" in reading and "do not pin the mixture down" in reading
    assert "Separating m00 vs m01" in reading and "judgments of that pair" in reading
    assert r["settings"]["matrix_ci"].startswith("Wilson") and "resamples" in r["settings"]["nash_ci"]


def test_identical_checkpoints_are_not_distinguishable():
    """Two copies of one model (fp32, bf16): P = 0.52 over 32 prompts × 4 samples. No winner,
    no certain Nash, "not distinguishable", and a rough count of judgments to separate them."""
    from arena.report import plain_reading

    rng = np.random.default_rng(3)
    prompts, samples = 32, 4
    score = np.zeros(prompts * samples)
    score[rng.permutation(score.size)[: round(0.52 * score.size)]] = 1.0  # exactly 52% wins
    cluster = np.repeat(np.arange(prompts), samples)
    records = make_records(["fp32"] * score.size, ["bf16"] * score.size, score, cluster=cluster)
    r = analyze_records(records, rounds=300, seed=0).to_json()
    assert r["preference"]["P"][records.models.index("fp32")][records.models.index("bf16")] == pytest.approx(0.52, abs=0.005)
    assert r["cycles"]["condorcet_winner"] is None and r["cycles"]["majority_winner"] == "fp32"
    assert r["cycles"]["top_set"] == ["bf16", "fp32"] and r["cycles"]["distinguishable"] is False
    assert r["nash"]["intervals"]["fp32"] == [0.0, 1.0]
    assert 0.2 < r["nash"]["support_probability"]["bf16"] < 0.8
    assert r["ratings"]["fp32"]["rank_interval"] == [1, 2] == r["ratings"]["bf16"]["rank_interval"]
    assert r["settings"]["matrix_ci"].startswith("prompt-cluster bootstrap")
    reading = plain_reading(r)
    assert "not distinguishable at the 95% level" in reading and "a Condorcet winner" not in reading
    assert "do not pin the mixture down" in reading and "judgments of that pair" in reading


def test_significant_winner_is_still_claimed():
    """The other side: a model that beats everyone clearly is a Condorcet winner, with rank [1, 1]."""
    from arena.report import plain_reading

    rng = np.random.default_rng(0)
    names = ["top", "mid", "low"]
    theta = {"top": 1.5, "mid": 0.5, "low": 0.0}
    a, b, s, c = [], [], [], []
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            p = 1.0 / (1.0 + np.exp(-(theta[x] - theta[y])))
            a += [x] * 400
            b += [y] * 400
            s += (rng.random(400) < p).astype(float).tolist()
            c += list(range(400))
    r = analyze_records(make_records(a, b, s, cluster=c), rounds=200, seed=0).to_json()
    assert r["cycles"]["condorcet_winner"] == "top" and r["cycles"]["top_set"] == ["top"]
    assert r["ratings"]["top"]["rank_interval"] == [1, 1]
    assert r["nash"]["intervals"]["top"] == [1.0, 1.0] and r["nash"]["support_probability"]["top"] == 1.0
    assert "top beats every other model head to head, each one significantly at the 95% level" in plain_reading(r)
