"""A run killed with SIGKILL resumes: it finishes, no judgment is lost or duplicated, and the
result equals that of an uninterrupted run with the same seed."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.tournament import TournamentConfig, run_tournament


import tournament_helpers as h  # registered by conftest.py
ARENA = Path(sys.executable).with_name("arena")
JUDGE = "python:tournament_helpers:slow_judge"


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(f"select count(*) from {table}").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # tables not created yet
        return 0


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
    # The caller's PYTHONPATH is kept so that the subprocess imports the code under test (a
    # worktree), not whichever checkout the `arena` script was installed from.
    path = os.pathsep.join(p for p in (str(h.HERE), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(ARENA), *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "arena.sqlite"
    done = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        done = _count(db, phase)
        if 2 <= done < total - 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    partial = _count(db, phase)
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
