"""Kill an `arena` run with SIGKILL part-way through, for the resume tests."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import tournament_helpers as h  # registered by conftest.py

ARENA = Path(sys.executable).with_name("arena")


def count_rows(db: Path, table: str = "judgments") -> int:
    """Rows of `table` in a run's store, read-only; 0 while the store or its tables do not exist yet."""
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


def kill_midway(args: list[str], out: Path, *, ready: Callable[[], bool], deadline_s: float) -> None:
    """Runs `arena *args --out out` in a subprocess, polls `ready()` every 10 ms and kills the run
    with SIGKILL once it is true; fails if the run ended first."""
    # The caller's PYTHONPATH is kept so that the subprocess imports the code under test (a
    # worktree), not whichever checkout the `arena` script was installed from.
    path = os.pathsep.join(p for p in (str(h.HERE), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(ARENA), *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
