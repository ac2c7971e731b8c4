"""An adaptive run killed with SIGKILL mid-run and started again makes exactly the choices of an
uninterrupted run with the same seed: the same comparisons in the store, the same trace and
the same final results.json (apart from `run.new`/`run.reused`, which count each invocation's work)."""

import json
import sqlite3
from pathlib import Path

from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py
from resume_helpers import count_rows, kill_midway  # registered by conftest.py

JUDGE = "python:tournament_helpers:slow_judge"


def _comparisons(db: Path) -> list:
    con = sqlite3.connect(db)
    try:
        return sorted(con.execute("select prompt, sample, a, b, p from judgments"))
    finally:
        con.close()


def _stable(out: Path) -> dict:
    r = json.loads((out / "results.json").read_text())
    r["run"].pop("new")
    r["run"].pop("reused")
    return r


def test_kill_minus_nine_during_an_adaptive_run_then_resume(tmp_path):
    ckpts = h.make_ckpts(tmp_path / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3, "delta": 4})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 6)
    # 6 pairs x 6 prompts = 36 comparisons; steps of 3 comparisons; the budget (60 calls = 30
    # comparisons) stops the run past the burn-in (24 comparisons), so the allocation runs too.
    args = ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", JUDGE, "--max-new-tokens", "6",
            "--judge-batch-size", "3", "--rounds", "50", "--seed", "5", "--adaptive", "--budget", "60", "--json"]
    out = tmp_path / "run"
    db = out / "arena.sqlite"
    kill_midway(args, out, ready=lambda: 6 <= count_rows(db) < 27, deadline_s=600)
    partial = count_rows(db)
    assert 0 < partial < 30 and partial % 3 == 0  # whole steps only: one transaction per step
    assert not (out / "results.json").exists()

    config = dict(ckpts_dir=ckpts, prompts=prompts, judge=JUDGE, max_new_tokens=6, judge_batch_size=3, rounds=50,
                  seed=5, adaptive=True, budget=60)
    resumed = run_tournament(TournamentConfig(out=out, **config)).to_json()
    assert resumed["run"]["reused"]["judgments"] == 2 * partial
    reference = run_tournament(TournamentConfig(out=tmp_path / "reference", **config)).to_json()
    assert reference["adaptive"]["calls"] == 60 and reference["adaptive"]["stop"] == "budget"
    # the design allocated past the burn-in, unevenly (else this test could not tell choices apart)
    calls = reference["adaptive"]["calls_per_pair"]["calls"]
    assert len({c for i, row in enumerate(calls) for j, c in enumerate(row) if i != j}) > 1
    assert _comparisons(db) == _comparisons(tmp_path / "reference" / "arena.sqlite")
    assert resumed["adaptive"] == reference["adaptive"]
    assert json.dumps(_stable(out), sort_keys=True) == json.dumps(_stable(tmp_path / "reference"), sort_keys=True)
