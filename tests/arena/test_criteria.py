"""Multi-criteria pairs files: reading both layouts, `arena.criteria.analyze_criteria`, `arena rate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arena.core.nash import nash_from_preferences
from arena.core.robust import robust_mixture, weighted_nash
from arena.criteria import analyze_criteria
from arena.errors import InputError
from arena.examples import cyclic_example_pairs
from arena.io_pairs import read_pairs, read_pairs_or_criteria

DATA = Path(__file__).resolve().parents[1] / "data" / "criteria"


def _records_tuple(r):
    return r.models, r.a.tolist(), r.b.tolist(), r.score.tolist()


# --- reading ------------------------------------------------------------------------------


def test_long_and_wide_forms_read_per_criterion_over_one_model_list():
    long = read_pairs_or_criteria(DATA / "long.csv")
    wide = read_pairs_or_criteria(DATA / "wide.csv")
    assert list(long) == ["helpful", "safe"] and list(wide) == ["helpful", "safe"]
    # helpful is the same three comparisons in both files
    assert _records_tuple(long["helpful"]) == (("a", "b", "c"), [0, 1, 0], [1, 2, 2], [1.0, 1.0, 0.5])
    assert _records_tuple(wide["helpful"]) == _records_tuple(long["helpful"])
    # safe: the long file has c-a with c winning; the wide file leaves b-c blank (not judged)
    assert _records_tuple(long["safe"]) == (("a", "b", "c"), [0, 1, 2], [1, 2, 0], [0.0, 0.0, 1.0])
    assert _records_tuple(wide["safe"]) == (("a", "b", "c"), [0, 0], [1, 2], [0.0, 0.0])
    assert wide["safe"].cluster.tolist() == [0, 1]


def test_a_model_missing_from_one_criterion_is_still_in_its_model_list(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"model_a": "x", "model_b": "y", "criterion": "helpful", "score": 0.8},
            {"model_a": "y", "model_b": "z", "criterion": "honest", "score": 0.3}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = read_pairs_or_criteria(path)
    assert [r.models for r in data.values()] == [("x", "y", "z")] * 2
    assert data["honest"].a.tolist() == [1] and data["honest"].b.tolist() == [2]


def test_a_single_criterion_file_reads_as_plain_records():
    path = DATA.parent / "formats" / "one_hot.csv"
    plain = read_pairs_or_criteria(path)
    assert not isinstance(plain, dict)
    assert _records_tuple(plain) == _records_tuple(read_pairs(path))


def test_read_pairs_refuses_to_pool_criteria():
    for name in ("long.csv", "wide.csv"):
        with pytest.raises(InputError, match="multi-criteria file"):
            read_pairs(DATA / name)


@pytest.mark.parametrize("content, needle", [
    ("model_a,model_b,criterion,score_helpful,score\na,b,helpful,1,1\n", "one layout"),
    ("model_a,model_b,score_helpful,score\na,b,1,1\n", "keep one"),
    ("model_a,model_b,score_helpful,score_safe\na,b,1,\n", "score_safe is empty"),
    ("model_a,model_b,criterion,winner\na,b,,model_a\n", "criterion"),
    ("model_a,model_b,score_helpful\na,b,1.5\n", "criterion helpful"),
])
def test_bad_multi_criteria_files(tmp_path, content, needle):
    path = tmp_path / "p.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=needle):
        read_pairs_or_criteria(path)


# --- analysis -----------------------------------------------------------------------------


def _cyclic_long(criteria, *, flip=()):
    """The cyclic example's battles once per criterion; criteria in `flip` get every outcome reversed."""
    frame = cyclic_example_pairs(seed=0, n_prompts=120)
    parts = []
    for c in criteria:
        part = frame.copy()
        part["criterion"] = c
        if c in flip:
            part["winner"] = part["winner"].map({"model_a": "model_b", "model_b": "model_a", "tie": "tie"})
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_identical_criteria_give_the_ordinary_nash(tmp_path):
    path = tmp_path / "same.csv"
    _cyclic_long(["helpful", "honest"]).to_csv(path, index=False)
    data = read_pairs_or_criteria(path)
    result = analyze_criteria(data, rounds=20)
    single = nash_from_preferences(result["criteria"]["helpful"]["preference"]["P"]).p
    robust = np.array([result["robust"]["weights"][m] for m in result["models"]])
    assert single.max() < 0.9 and (single > 1e-3).sum() >= 3  # a genuine mixture (the example has a cycle)
    np.testing.assert_allclose(robust, single, atol=1e-6)
    assert result["robust"]["value"] == pytest.approx(0.5, abs=1e-7)
    assert result["robust"]["conflict"] is False
    assert result["robust"]["binding"] == ["helpful", "honest"]
    assert "agree" in result["reading"]


def test_conflicting_criteria_value_below_half_and_weighted(tmp_path):
    path = tmp_path / "conflict.csv"
    _cyclic_long(["helpful", "harmless"], flip={"harmless"}).to_csv(path, index=False)
    data = read_pairs_or_criteria(path)
    result = analyze_criteria(data, weights={"helpful": 0.25, "harmless": 0.75}, rounds=20)
    P = np.stack([np.array(result["criteria"][c]["preference"]["P"]) for c in ("helpful", "harmless")])
    independent = robust_mixture(P, criteria=("helpful", "harmless"))
    assert result["robust"]["value"] < 0.5 - 0.05
    assert result["robust"]["value"] == pytest.approx(independent.value, abs=1e-6)
    assert result["robust"]["conflict"] is True and "conflict" in result["reading"]
    w = weighted_nash(P, [0.25, 0.75]).p
    got = np.array([result["weighted"]["nash"]["weights"][m] for m in result["models"]])
    np.testing.assert_allclose(got, w, atol=1e-6)
    # the weighted mixture is not the robust one here (harmless dominates the weights)
    assert np.abs(got - np.array(list(result["robust"]["weights"].values()))).max() > 0.05


def test_analyze_criteria_checks_its_inputs():
    data = read_pairs_or_criteria(DATA / "long.csv")
    with pytest.raises(InputError, match="sum to 1"):
        analyze_criteria(data, weights={"helpful": 0.5, "safe": 0.6}, rounds=5, prior=0.1)
    with pytest.raises(InputError, match="unknown criteria"):
        analyze_criteria(data, weights={"honest": 1.0}, rounds=5, prior=0.1)
    with pytest.raises(InputError, match="at least two criteria"):
        analyze_criteria({"helpful": data["helpful"]}, weights={"helpful": 1.0}, rounds=5, prior=0.1)
    from arena.core.records import make_records

    with pytest.raises(InputError, match="one model list"):
        analyze_criteria({"helpful": data["safe"], "x": make_records(["a", "d"], ["d", "a"], [1.0, 0.0])}, rounds=5)


# --- arena rate ---------------------------------------------------------------------------


def test_rate_json_layout(run_cli, tmp_path):
    rc, out, err = run_cli("rate", DATA / "long.csv", "--json", "--rounds", "20", "--prior", "0.1",
                        "--weights", "helpful=0.5,safe=0.5", "--out", tmp_path / "out")
    assert rc == 0, err
    assert out.strip().count("\n") == 0
    result = json.loads(out)
    assert result["kind"] == "criteria" and result["models"] == ["a", "b", "c"]
    assert list(result["criteria"]) == ["helpful", "safe"]
    for single in result["criteria"].values():
        assert {"ratings", "preference", "cycles", "nash", "settings", "reading"} <= set(single)
    assert {"weights", "value", "binding", "exploitability"} <= set(result["robust"])
    # helpful: a > b > c with a ~ c tied; safe: c > b > a: they conflict, the robust value is 1/3
    assert result["robust"]["value"] == pytest.approx(1 / 3, abs=1e-6)
    assert result["robust"]["binding"] == ["helpful", "safe"]
    assert result["weighted"]["weights"] == {"helpful": 0.5, "safe": 0.5}
    assert set(result["weighted"]["nash"]["weights"]) == {"a", "b", "c"}
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == result


def test_rate_terminal_shows_the_mixtures_side_by_side(run_cli):
    rc, out, err = run_cli("rate", DATA / "long.csv", "--rounds", "20", "--prior", "0.1",
                        "--weights", "helpful=0.5,safe=0.5")
    assert rc == 0, err
    for label in ("nash[helpful]", "nash[safe]", "weighted", "robust", "on safe", "binding"):
        assert label in out, label


@pytest.mark.parametrize("args, needle", [
    (["--weights", "honest=1"], "unknown criteria"),
    (["--weights", "helpful=0.5,safe=0.6"], "sum to 1"),
    (["--weights", "helpful"], "NAME=NUMBER"),
])
def test_rate_bad_weights_exit_2_nothing_written(run_cli, tmp_path, args, needle):
    out_dir = tmp_path / "out"
    rc, out, err = run_cli("rate", DATA / "long.csv", "--rounds", "5", "--prior", "0.1", "--out", out_dir, *args)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert not out_dir.exists()


def test_rate_weights_need_several_criteria(run_cli, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("model_a,model_b,criterion,winner\na,b,helpful,model_a\nb,a,helpful,tie\n")
    rc, out, err = run_cli("rate", one, "--rounds", "5", "--weights", "helpful=1")
    assert rc == 2 and "at least two criteria" in err
    plain = tmp_path / "plain.csv"
    plain.write_text("model_a,model_b,winner\na,b,model_a\nb,a,tie\n")
    rc, out, err = run_cli("rate", plain, "--rounds", "5", "--weights", "helpful=1")
    assert rc == 2 and "multi-criteria" in err


def test_multicriteria_world_sampled_file(run_cli, tmp_path):
    """The world's exact P_c, sampled into a long-form file: rate finds the robust mixture of the sampled
    matrices (checked by an independent count and LP) and a conflict close to the exact value 1/6."""
    from arena.worlds.multicriteria import CRITERIA, MODELS, exact_preferences

    P = exact_preferences()  # (3, 5, 5)
    rng = np.random.default_rng(0)
    games = 200
    rows = []
    for k, c in enumerate(CRITERIA):
        for i in range(len(MODELS)):
            for j in range(i + 1, len(MODELS)):
                wins = rng.random(games) < P[k, i, j]
                rows += [(MODELS[i], MODELS[j], c, "model_a" if w else "model_b") for w in wins]
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "criterion", "winner"])
    path = tmp_path / "world.csv"
    frame.to_csv(path, index=False)

    rc, out, err = run_cli("rate", path, "--json", "--rounds", "10", "--prior", "0.1",
                        "--weights", "helpful=0.2,brief=0.3,safe=0.5")
    assert rc == 0, err
    result = json.loads(out)
    models = result["models"]  # sorted
    # independent: P_c from the raw rows with pandas, then the LP
    Ps = np.full((3, 5, 5), 0.5)
    for k, c in enumerate(CRITERIA):
        sub = frame[frame.criterion == c]
        for (a, b), g in sub.groupby(["model_a", "model_b"]):
            p = float((g.winner == "model_a").mean())
            i, j = models.index(a), models.index(b)
            Ps[k, i, j], Ps[k, j, i] = p, 1 - p
    independent = robust_mixture(Ps, criteria=CRITERIA)
    got = np.array([result["robust"]["weights"][m] for m in models])
    assert result["robust"]["value"] == pytest.approx(independent.value, abs=1e-6)
    np.testing.assert_allclose(got, independent.weights, atol=1e-5)
    assert result["robust"]["value"] == pytest.approx(1 / 6, abs=0.04)  # exact world: 1/6
    assert result["robust"]["weights"]["sft"] < 0.05
    for c in CRITERIA:  # each single-criterion Nash is (close to) one checkpoint; the robust one spreads
        assert max(result["criteria"][c]["nash"]["weights"].values()) > 0.9
    # The robust mixture guarantees every criterion about 1/6; each single-criterion Nash leaves another
    # criterion near 0. (The weights themselves are not stable under sampling: the exact maximin set is
    # a polytope, the sampled LP picks a point of a nearby one.)
    g = result["guarantees"]
    assert min(g["robust"].values()) > 0.12
    for c in CRITERIA:
        assert min(g[f"nash[{c}]"].values()) < 0.05
    np.testing.assert_allclose([result["weighted"]["nash"]["weights"][m] for m in models],
                               weighted_nash(Ps, [0.2, 0.3, 0.5]).p, atol=1e-5)
