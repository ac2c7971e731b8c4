"""`arena rate --by COLUMN`, `--anchor MODEL=ELO` and `--style-control` end to end (arena.boards)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from arena.io_pairs import read_pairs_by


@pytest.fixture(scope="module")
def category_csv(tmp_path_factory):
    """Three models; on "code" A beats B 80% of the time, on "writing" B beats A 80%; C loses
    to both 70% everywhere. 'code' has more rows than 'writing'."""
    rng = np.random.default_rng(1)
    rows = []
    for cat, n, p_ab in (("code", 300, 0.8), ("writing", 240, 0.2)):
        for k in range(n):
            pair = k % 3
            a, b, p = (("A", "B", p_ab), ("A", "C", 0.7), ("B", "C", 0.7))[pair]
            win = rng.random() < p
            rows.append({"model_a": a, "model_b": b, "winner": "model_a" if win else "model_b",
                         "prompt_id": f"{cat}-{k // 3}", "category": cat, "language": "en" if k % 2 else "de"})
    path = tmp_path_factory.mktemp("by") / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_reader_splits_by_category_most_rows_first(category_csv):
    overall, by = read_pairs_by(category_csv, "category")
    assert list(by) == ["code", "writing"]
    assert len(overall) == 540 and len(by["code"]) == 300 and len(by["writing"]) == 240
    assert by["code"].models == ("A", "B", "C")


def test_by_category_gives_one_board_per_value_and_the_overall_one(run_cli, category_csv):
    rc, out, err = run_cli("rate", category_csv, "--by", "category", "--json", "--rounds", "50")
    assert rc == 0, err
    result = json.loads(out)
    assert result["settings"]["by"] == "category" and result["settings"]["records"] == 540
    assert set(result["by"]) == {"code", "writing"}
    code, writing = result["by"]["code"], result["by"]["writing"]
    assert code["settings"]["records"] == 300 and writing["settings"]["records"] == 240
    # The boards disagree on A vs B, as the data were drawn.
    assert code["ratings"]["A"]["elo"] > code["ratings"]["B"]["elo"] + 50
    assert writing["ratings"]["B"]["elo"] > writing["ratings"]["A"]["elo"] + 50
    assert code["preference"]["P"][0][1] > 0.7 and writing["preference"]["P"][0][1] < 0.3
    # Each board has the single-board layout with intervals.
    assert code["ratings"]["A"]["elo_ci"][0] < code["ratings"]["A"]["elo"] < code["ratings"]["A"]["elo_ci"][1]
    assert code["nash"]["intervals"] is not None


def test_by_any_column_and_terminal_tables(run_cli, category_csv):
    rc, out, err = run_cli("rate", category_csv, "--by", "language", "--rounds", "30")
    assert rc == 0, err
    assert "language = de" in out and "language = en" in out


def test_by_unknown_column_names_the_columns_present(run_cli, category_csv):
    rc, out, err = run_cli("rate", category_csv, "--by", "topic", "--json", "--rounds", "30")
    assert rc == 2 and out == ""
    assert "no column 'topic'" in err and "category" in err and "language" in err


def test_anchor_shifts_elo_and_intervals_together(run_cli, category_csv):
    rc, out, _ = run_cli("rate", category_csv, "--json", "--rounds", "50")
    plain = json.loads(out)
    rc, out, err = run_cli("rate", category_csv, "--json", "--rounds", "50", "--anchor", "C=1114")
    assert rc == 0, err
    anchored = json.loads(out)
    assert anchored["ratings"]["C"]["elo"] == pytest.approx(1114.0)
    shift = 1114.0 - plain["ratings"]["C"]["elo"]
    assert abs(shift) > 10  # C is the weakest: not at the default origin
    assert anchored["settings"]["anchor"] == {"model": "C", "elo": 1114.0, "shift": pytest.approx(shift)}
    for m in ("A", "B", "C"):
        assert anchored["ratings"][m]["elo"] == pytest.approx(plain["ratings"][m]["elo"] + shift)
        assert anchored["ratings"][m]["elo_ci"] == pytest.approx([x + shift for x in plain["ratings"][m]["elo_ci"]])
        assert anchored["ratings"][m]["bt"] == pytest.approx(plain["ratings"][m]["bt"])


def test_anchor_applies_to_every_board(run_cli, category_csv):
    rc, out, err = run_cli("rate", category_csv, "--by", "category", "--json", "--rounds", "30",
                        "--anchor", "A=1000")
    assert rc == 0, err
    result = json.loads(out)
    for board in (result, *result["by"].values()):
        assert board["ratings"]["A"]["elo"] == pytest.approx(1000.0)


@pytest.mark.parametrize("value,needle", [("Z=1114", "no such model"), ("C", "MODEL=ELO"), ("C=high", "MODEL=ELO")])
def test_bad_anchor_exits_2(run_cli, category_csv, value, needle):
    rc, out, err = run_cli("rate", category_csv, "--json", "--rounds", "30", "--anchor", value)
    assert rc == 2 and out == "" and needle in err


@pytest.fixture(scope="module")
def verbose_csv(tmp_path_factory):
    """A, B, C by substance (A best); V is the weakest at equal length but writes ~4.5x longer
    answers, and the judge rewards length strongly (the docs' world)."""
    rng = np.random.default_rng(0)
    m, names = 6000, np.array(["A", "B", "C", "V"])
    theta, length = np.array([0.6, 0.2, 0.0, -0.3]), np.array([200.0, 220.0, 180.0, 900.0])
    a = rng.integers(0, 4, m)
    b = (a + rng.integers(1, 4, m)) % 4
    la, lb = length[a] * rng.lognormal(0, 0.4, m), length[b] * rng.lognormal(0, 0.4, m)
    p = 1 / (1 + np.exp(-(theta[a] - theta[b] + 3.0 * (la - lb) / (la + lb))))
    win = rng.random(m) < p
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                          "winner": np.where(win, "model_a", "model_b"),
                          "prompt_id": rng.integers(0, 1500, m),
                          "feature_sum_assistant_tokens_a": la.round(), "feature_sum_assistant_tokens_b": lb.round()})
    path = tmp_path_factory.mktemp("style") / "verbose.csv"
    frame.to_csv(path, index=False)
    return path


def test_style_control_drops_the_verbose_model_from_the_nash_support(run_cli, verbose_csv):
    rc, out, err = run_cli("rate", verbose_csv, "--style-control", "--json", "--rounds", "20")
    assert rc == 0, err
    result = json.loads(out)
    sc = result["style_control"]
    assert set(sc) >= {"coefficients", "ratings", "preference", "nash"}
    assert result["nash"]["weights"]["V"] > 0.5  # raw: V buys its way in through length
    assert sc["nash"]["weights"]["V"] < 1e-6 and sc["nash"]["weights"]["A"] > 0.5
    assert sc["coefficients"]["sum_assistant_tokens"]["ratings"] > 0.5
    assert sc["ratings"]["A"]["elo"] > sc["ratings"]["V"]["elo"]
    lo, hi = sc["ratings"]["V"]["elo_ci"]
    assert lo < sc["ratings"]["V"]["elo"] < hi and hi < sc["ratings"]["A"]["elo_ci"][0]  # V last at equal style
    assert result["ratings"]["V"]["elo"] > result["ratings"]["A"]["elo"]
    P = np.array(sc["preference"]["P"])
    assert P[3, 0] < 0.4 and np.allclose(P + P.T, 1.0)
    assert "only through style" in result["reading"] and "V" in sc["reading"]


def test_style_control_terminal_and_anchor(run_cli, verbose_csv):
    rc, out, err = run_cli("rate", verbose_csv, "--style-control", "--rounds", "10", "--anchor", "A=1114")
    assert rc == 0, err
    rc2, js, err = run_cli("rate", verbose_csv, "--style-control", "--rounds", "10", "--anchor", "A=1114",
                        "--json")
    sc = json.loads(js)["style_control"]["ratings"]
    assert sc["A"]["elo"] == pytest.approx(1114.0)
    assert sc["A"]["elo_ci"][0] < 1114.0 < sc["A"]["elo_ci"][1]
    assert "style control" in out and "only through style" in out


def test_style_control_without_features_exits_2(run_cli, category_csv):
    rc, out, err = run_cli("rate", category_csv, "--style-control", "--json", "--rounds", "10")
    assert rc == 2 and out == "" and "feature_<name>_a" in err


def test_a_board_that_cannot_be_fitted_is_named_not_fatal(run_cli, tmp_path):
    rows = [{"model_a": "A", "model_b": "B", "winner": "model_a" if k % 3 else "model_b", "category": "chat"}
            for k in range(60)]
    rows += [{"model_a": "A", "model_b": "B", "winner": "model_a", "category": "math"} for _ in range(5)]
    path = tmp_path / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    rc, out, err = run_cli("rate", path, "--by", "category", "--json", "--rounds", "20")
    assert rc == 0, err
    result = json.loads(out)
    assert list(result["by"]) == ["chat"]
    assert "math" in result["settings"]["by_skipped"]
    rc, out, err = run_cli("rate", path, "--by", "category", "--rounds", "20")
    assert rc == 0 and "category = math: no board" in out
