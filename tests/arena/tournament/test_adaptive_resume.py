"""An adaptive run killed with SIGKILL mid-run and started again makes exactly the choices of an
uninterrupted run with the same seed: the same comparisons in the store, the same trace and
the same final results.json (apart from `run.new`/`run.reused`, which count each invocation's work)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

ARENA = Path(sys.executable).with_name("arena")
JUDGE = "python:tournament_helpers:slow_judge"


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("select count(*) from judgments").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # tables not created yet
        return 0


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
    path = os.pathsep.join(p for p in (str(h.HERE), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(ARENA), *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "arena.sqlite"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if 6 <= _count(db) < 27:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    partial = _count(db)
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
