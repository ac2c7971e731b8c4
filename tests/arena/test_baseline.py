"""`arena rate --anchor MODEL=50%`: Arena-Hard's score, the win rate against a baseline (arena.baseline)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from arena.baseline import parse_baseline


@pytest.fixture(scope="module")
def two_csv(tmp_path_factory):
    """A beats B 30 times out of 40 (no prompt ids): the BT maximum likelihood gives P(A ≻ B) = 0.75."""
    rows = [{"model_a": "A", "model_b": "B", "winner": "model_a"}] * 30 + \
           [{"model_a": "B", "model_b": "A", "winner": "model_a"}] * 10
    path = tmp_path_factory.mktemp("base") / "two.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def three_csv(tmp_path_factory):
    """A > B > C with prompt ids, asymmetric counts."""
    rows = []
    for k, (a, b, wins, games) in enumerate((("A", "B", 35, 50), ("B", "C", 28, 40), ("A", "C", 45, 50))):
        for g in range(games):
            rows.append({"model_a": a, "model_b": b, "winner": "model_a" if g < wins else "model_b",
                         "prompt_id": f"p{k}-{g % 10}"})
    path = tmp_path_factory.mktemp("base3") / "three.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_parse_baseline_forms():
    assert parse_baseline("gpt-4-0314=50%") == "gpt-4-0314"
    assert parse_baseline("a=b=50%") == "a=b"
    assert parse_baseline("gpt-4-0314=1114") is None


def test_two_models_score_is_the_win_fraction(run_cli, two_csv):
    rc, out, err = run_cli("rate", two_csv, "--json", "--rounds", "200", "--anchor", "B=50%")
    assert rc == 0, err
    result = json.loads(out)
    part = result["baseline"]
    assert part["model"] == "B" and result["settings"]["anchor"] == {"model": "B", "baseline": 0.5}
    assert part["scores"]["A"]["score"] == pytest.approx(0.75, abs=1e-6)
    assert part["scores"]["B"] == {"score": 0.5, "ci": [0.5, 0.5]}
    # The same resamples as the ratings: with two models θ_A = −θ_B, so the score's interval is
    # σ(2 θ_A) at the ends of A's Elo interval.
    lo, hi = (1 / (1 + math.exp(-2 * (e - 1000) * math.log(10) / 400)) for e in result["ratings"]["A"]["elo_ci"])
    assert part["scores"]["A"]["ci"] == pytest.approx([lo, hi], abs=1e-6)
    assert lo < 0.75 < hi
    # The Elo scale itself is untouched by the baseline form.
    rc, plain, _ = run_cli("rate", two_csv, "--json", "--rounds", "200")
    assert json.loads(plain)["ratings"] == result["ratings"]


def test_three_models_order_and_terminal_table(run_cli, three_csv):
    rc, out, err = run_cli("rate", three_csv, "--json", "--rounds", "100", "--anchor", "B=50%")
    assert rc == 0, err
    result = json.loads(out)
    scores = result["baseline"]["scores"]
    assert scores["A"]["score"] > 0.5 > scores["C"]["score"]
    elo = {m: r["elo"] for m, r in result["ratings"].items()}
    for m in ("A", "C"):  # σ of the Elo difference on the natural-log scale
        expected = 1 / (1 + math.exp(-(elo[m] - elo["B"]) * math.log(10) / 400))
        assert scores[m]["score"] == pytest.approx(expected, abs=1e-6)  # JSON keeps 7 significant digits
        assert scores[m]["ci"][0] < scores[m]["score"] < scores[m]["ci"][1]
    rc, out, err = run_cli("rate", three_csv, "--rounds", "50", "--anchor", "B=50%")
    assert rc == 0 and "win rate against B" in out and "│ B     │ 50.0% │ [50.0%, 50.0%] │" in out


@pytest.mark.parametrize("extra,needle", [
    (["--anchor", "B=40%"], "puts one model at 50%"),
    (["--anchor", "Z=50%"], "no such model"),
    (["--anchor", "B=50%", "--style-control"], "one plain board"),
])
def test_bad_baseline_exits_2(run_cli, three_csv, extra, needle):
    rc, out, err = run_cli("rate", three_csv, "--json", "--rounds", "20", *extra)
    assert rc == 2 and out == "" and needle in err
