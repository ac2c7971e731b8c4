"""A run killed with SIGKILL resumes: it finishes, no judgment is lost or duplicated, and the
result equals that of an uninterrupted run with the same seed."""

import json
import sqlite3

import pytest

from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py
from resume_helpers import count_rows, kill_midway  # registered by conftest.py

JUDGE = "python:tournament_helpers:slow_judge"


@pytest.mark.parametrize("phase", ["judgments", pytest.param("generations", marks=pytest.mark.slow)])
def test_kill_minus_nine_then_rerun(tmp_path, phase):
    ckpts = h.make_ckpts(tmp_path / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 8)
    # Long generations one at a time to open a window in the generation phase; small judge
    # batches with a slow judge for the judging phase.
    max_new = 48 if phase == "generations" else 6
    total = {"generations": 24, "judgments": 24}[phase]  # 3 × 8 generations; 3 pairs × 8 comparisons
    args = ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", JUDGE, "--max-new-tokens", str(max_new),
            "--batch-size", "1", "--judge-batch-size", "2", "--rounds", "50", "--seed", "7", "--json"]
    out = tmp_path / "run"
    db = out / "arena.sqlite"
    kill_midway(args, out, ready=lambda: 2 <= count_rows(db, phase) < total - 2, deadline_s=300)
    partial = count_rows(db, phase)
    assert 0 < partial < total
    assert not (out / "results.json").exists()

    config = dict(ckpts_dir=ckpts, prompts=prompts, judge=JUDGE, max_new_tokens=max_new, batch_size=1,
                  judge_batch_size=2, rounds=50, seed=7)
    resumed = run_tournament(TournamentConfig(out=out, **config)).to_json()
    assert resumed["run"]["reused"]["generations" if phase == "generations" else "judgments"] > 0
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from generations").fetchone()[0] == 24
    assert con.execute("select count(*) from judgments").fetchone()[0] == 24
    assert con.execute("select count(*) from judgments where p is null").fetchone()[0] == 0
    con.close()

    reference = run_tournament(TournamentConfig(out=tmp_path / "reference", **config)).to_json()
    for r in (resumed, reference):
        r["run"].pop("new")
        r["run"].pop("reused")
    assert json.dumps(resumed, sort_keys=True) == json.dumps(reference, sort_keys=True)
