"""`arena tournament --adaptive`: lazy generation, the budget, the `adaptive` block of
results.json and the report, the dry run's estimate, and bad flags stopped before any work."""

import json
import sqlite3

import pytest

from arena.adaptive import cell_order, dry_run_estimate
from arena.cli import main
from arena.core.design import Target
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

JUDGE = "python:tournament_helpers:judge"
FAST = dict(max_new_tokens=6, rounds=50, batch_size=4)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptive")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(root / "prompts.txt", 8)
    return {"ckpts": ckpts, "prompts": prompts}


def _config(base, out, **kw):
    return TournamentConfig(ckpts_dir=base["ckpts"], prompts=base["prompts"], judge=JUDGE, out=out, **{**FAST, **kw})


def test_budget_stops_the_run_and_generation_is_lazy(base, tmp_path):
    out = tmp_path / "run"
    r = run_tournament(_config(base, out, adaptive=True, budget=12, judge_batch_size=4)).to_json()
    a = r["adaptive"]
    # 12 calls = 6 comparisons: the burn-in's first sweeps, 2 per pair (3 pairs), each pair on the
    # first 2 cells of the shared order, so each model answers 2 (prompt, sample) cells, not 8.
    assert a["calls"] == 12 and a["stop"] == "budget" and a["budget"] == 12 and a["target"] == "nash:0.05"
    assert a["round_robin_calls"] == 48 and a["round_robin_generations"] == 24
    assert a["calls_per_pair"]["calls"] == [[0, 4, 4], [4, 0, 4], [4, 4, 0]]
    assert a["generations"] == 6 and r["run"]["generations"] == 6 and r["run"]["judgments"] == 12
    con = sqlite3.connect(out / "arena.sqlite")
    assert con.execute("select count(*) from generations").fetchone()[0] == 6
    assert con.execute("select count(*) from judgments").fetchone()[0] == 6
    cells = {row for row in con.execute("select distinct prompt, sample from judgments")}
    con.close()
    assert len(cells) == 2
    # the trace: one entry per step (0, 8 calls) and the stopping state (12 calls)
    assert [e["calls"] for e in a["trace"]] == [0, 8, 12]
    assert a["trace"][0]["nash_tv_upper"] is None and 0.0 <= a["trace"][-1]["nash_tv_upper"] <= 1.0
    # the report draws the heatmap and the trace
    page = (out / "report.html").read_text()
    assert "Judge calls per pair" in page and "<polyline" in page
    assert json.loads((out / "results.json").read_text())["adaptive"] == a

    # A larger budget continues from the store: the first 12 calls are reused, the trace goes on.
    r2 = run_tournament(_config(base, out, adaptive=True, budget=20, judge_batch_size=4)).to_json()
    assert r2["adaptive"]["calls"] == 20 and r2["run"]["reused"]["judgments"] == 12
    assert [e["calls"] for e in r2["adaptive"]["trace"]] == [0, 8, 12, 20]


def test_adaptive_run_prints_its_heatmap_and_trace(base, tmp_path, capsys):
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--max-new-tokens", "6", "--rounds", "50", "--adaptive",
               "--budget", "16", "--judge-batch-size", "4"])
    assert rc == 0
    printed = capsys.readouterr().out
    flat = " ".join(printed.split())
    assert "adaptive run, target nash:0.05, budget 16: stopped (budget) after 16 judge calls (33% of the round " \
           "robin's 48)" in flat
    assert "Judge calls per pair" in printed and "U_nash" in printed


def test_dry_run_shows_target_budget_and_expected_saving(base, tmp_path, capsys):
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--adaptive", "--target", "top", "--budget", "30", "--dry-run",
               "--json"])
    assert rc == 0
    plan = json.loads(capsys.readouterr().out)
    a = plan["adaptive"]
    assert a["target"] == "top" and a["budget"] == 30 and a["round_robin_calls"] == 48
    # floor: burn-in 3 pairs x 4 comparisons x 2 calls = 24; ceiling: the budget; 0.24 x 48 = 12 < floor
    assert (a["floor_calls"], a["ceiling_calls"], a["expected_calls"]) == (24, 30, 24)
    assert a["expected_saving"] == 0.5 and "burn-in" in a["how"] and "RESULTS.adaptive.md" in a["how"]
    assert a["generation"].startswith("lazy")
    assert not (tmp_path / "run").exists()
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--adaptive", "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0 and "target nash:0.05" in text and "expected" in text and "how:" in text
    assert "generation: lazy" in text
    # The vllm engine loads each checkpoint once, so it generates a checkpoint's responses all at once
    # (the dry run says so without importing vLLM).
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--adaptive", "--dry-run", "--engine", "vllm"])
    text = capsys.readouterr().out
    assert rc == 0 and "generation: per checkpoint" in text and "vllm engine loads each checkpoint once" in text


def test_dry_run_estimate_bounds():
    big = dry_run_estimate(n=20, prompts=100, samples=4, target=Target("nash", 0.05), step=32)
    assert big["round_robin_calls"] == 152_000 and big["expected_calls"] == round(0.24 * 152_000)
    capped = dry_run_estimate(n=20, prompts=100, samples=4, target=Target("nash", 0.05, budget=10_000), step=32)
    assert capped["expected_calls"] == 10_000 and capped["ceiling_calls"] == 10_000


def test_cell_order_is_sample_major_and_seeded():
    order = cell_order(5, 2, seed=0)
    assert [s for _, s in order] == [0] * 5 + [1] * 5
    assert sorted(p for p, _ in order[:5]) == list(range(5))
    assert [p for p, _ in order[:5]] == [p for p, _ in order[5:]]
    assert cell_order(5, 2, seed=0) == order and cell_order(50, 1, seed=1) != cell_order(50, 1, seed=0)


@pytest.mark.parametrize("args, message", [
    (["--target", "top"], "--target and --budget steer an adaptive run"),
    (["--budget", "10"], "--target and --budget steer an adaptive run"),
    (["--adaptive", "--pairs", "alpha:beta"], "--adaptive chooses the pairs itself"),
    (["--adaptive", "--retry-failures"], "--retry-failures"),
    (["--adaptive", "--target", "nash:2"], "nash:0.05"),
    (["--adaptive", "--budget", "0"], "budget must be >= 1"),
])
def test_bad_adaptive_flags_stop_before_any_work(base, tmp_path, capsys, args, message):
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err
    assert not (tmp_path / "run").exists()


def test_scheduler_capacity_caps_each_pair():
    """A tournament pair has P·S comparisons in all: the design never asks a pair for more."""
    import numpy as np

    from arena.core.design import AdaptiveScheduler, design_state
    from arena.core.records import make_records

    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    a, b, s = [], [], []
    for i, j, p in ((0, 1, 0.9), (0, 2, 0.5), (1, 2, 0.3)):  # asymmetric strengths
        for _ in range(4):
            a.append(names[i])
            b.append(names[j])
            s.append(float(rng.random() < p))
    state = design_state(make_records(a, b, s, models=names), rounds=20, seed=1)
    sched = AdaptiveScheduler(target=Target("nash", 0.05), rounds=20)
    free = sched.next_batch(state, 12)
    capped = sched.next_batch(state, 12, capacity=np.array([0.0, 2.0, 3.0]))
    pairs = [tuple(p) for p in capped.tolist()]
    # fewer than k when the pairs with influence run out (here (0, 2) has none: settled and off the support)
    assert (0, 1) not in pairs and pairs.count((0, 2)) <= 2 and pairs.count((1, 2)) <= 3 and 1 <= len(pairs) <= 5
    assert len(free) == 12 and [tuple(p) for p in free.tolist()].count((1, 2)) > 3
    # in the burn-in the cap holds too ((1, 2) has none left, (0, 1) one)
    empty = design_state(make_records(["a"], ["b"], [1.0], models=names), rounds=0)
    burn = sched.next_batch(empty, 5, capacity=np.array([1.0, 4.0, 0.0]))
    assert sorted(map(tuple, burn.tolist())) == [(0, 1)] + [(0, 2)] * 4
