"""`arena rate FILE --suggest K`: the adaptive design's next judgments on an existing file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arena.core.design import AdaptiveScheduler, Target, design_state
from arena.io_pairs import read_pairs


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory):
    """A rock-paper-scissors cycle (a, b, c) plus a dominated model d; 30 judgments per pair."""
    P = {("a", "b"): 0.7, ("b", "c"): 0.7, ("c", "a"): 0.65, ("a", "d"): 0.9, ("b", "d"): 0.9, ("c", "d"): 0.9}
    rng = np.random.default_rng(0)
    lines = ["model_a,model_b,winner"]
    for (x, y), p in P.items():
        for _ in range(30):
            lines.append(f"{x},{y},{'model_a' if rng.random() < p else 'model_b'}")
    path = tmp_path_factory.mktemp("suggest") / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_suggest_json_matches_the_scheduler(run_cli, pairs_csv):
    rc, out, err = run_cli("rate", pairs_csv, "--suggest", "40", "--json", "--rounds", "30", "--seed", "3")
    assert rc == 0, err
    res = json.loads(out)
    assert sum(r["judgments"] for r in res["suggest"]) == 40
    assert res["calls"] == 180 and res["rounds"] == 30 and res["target"] == "nash:0.05"
    assert res["nash_tv_upper"] > 0.0
    # the same choices as the library's scheduler on the same data and seed
    records = read_pairs(pairs_csv)
    state = design_state(records, rounds=30, seed=3)
    batch = AdaptiveScheduler(target=Target("nash", 0.05), rounds=30).next_batch(state, 40)
    names = records.models
    expected = {}
    for i, j in batch.tolist():
        expected[(names[i], names[j])] = expected.get((names[i], names[j]), 0) + 1
    assert {(r["model_a"], r["model_b"]): r["judgments"] for r in res["suggest"]} == expected
    # no judgment goes to the dominated model's pairs once they are settled against the cycle
    cycle = {("a", "b"), ("b", "c"), ("a", "c")}
    on_cycle = sum(r["judgments"] for r in res["suggest"] if (r["model_a"], r["model_b"]) in cycle)
    assert on_cycle >= 30


def test_suggest_terminal_table(run_cli, pairs_csv):
    rc, out, err = run_cli("rate", pairs_csv, "--suggest", "10", "--rounds", "20")
    assert rc == 0, err
    assert "next 10 judgments" in out and "Nash uncertainty U =" in out


def test_suggest_is_deterministic(run_cli, pairs_csv):
    outs = [run_cli("rate", pairs_csv, "--suggest", "25", "--json", "--rounds", "20")[1] for _ in range(2)]
    assert outs[0] == outs[1]


@pytest.mark.parametrize("args,message", [
    (["--suggest", "0"], "--suggest must be >= 1"),
    (["--suggest", "-3"], "--suggest must be >= 1"),
    (["--suggest", "5", "--target", "nash:2"], "TV bound"),
    (["--suggest", "5", "--target", "best"], "unknown target"),
])
def test_suggest_bad_input_exits_2(run_cli, pairs_csv, args, message):
    rc, out, err = run_cli("rate", pairs_csv, *args)
    assert rc == 2
    assert message in err and out == ""


def test_suggest_on_a_matrix_exits_2(run_cli, tmp_path):
    m = tmp_path / "matrix.csv"
    m.write_text(",a,b\na,0.5,0.6\nb,0.4,0.5\n")
    rc, out, err = run_cli("rate", m, "--suggest", "5")
    assert rc == 2 and "pairs file" in err and out == ""
