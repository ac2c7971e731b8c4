"""The one atomic writer (arena.outputs), OS errors on outputs, kill-and-resume per writer, the
run-directory lock.

The kills are real: a child process runs a writer with one of its steps replaced by
SIGKILL to itself, so the temporary directory is left exactly as a killed command leaves
it; the next run of the same writer must finish and leave no temporary directory.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arena.cli import main
from arena.examples import write_cyclic_example
from arena.outputs import atomic_output, replace_dir, sweep

ROOT = Path(__file__).resolve().parents[2]


def _temps(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _killed(script: str, cwd: Path) -> None:
    """Run `script` in a child that SIGKILLs itself where the script says; check it was killed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    prelude = "import os, signal\ndef die(*a, **k):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


# ---- the writer on its own --------------------------------------------------------------

def test_modes_and_failure_leave_the_target_unchanged(tmp_path):
    target = tmp_path / "out"
    with atomic_output(target, mode="merge") as tmp:
        (tmp / "a.txt").write_text("1")
    (target / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with atomic_output(target, mode="merge") as tmp:
            (tmp / "a.txt").write_text("2")
            raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "1" and (target / "keep.txt").read_text() == "mine"
    with atomic_output(target, mode="replace") as tmp:
        (tmp / "b.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    from arena.errors import InputError
    with pytest.raises(InputError, match="not empty"):
        with atomic_output(target, mode="new"):
            pass
    assert _temps(tmp_path) == []


def test_sweep_removes_dead_writers_only_and_restores_an_old_output(tmp_path):
    target = tmp_path / "out"
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / f".out.{dead}-abc123.tmp").mkdir()
    (tmp_path / f".out.{live}-def456.tmp").mkdir()
    (tmp_path / ".out.legacy9.tmp").mkdir()  # written by an older version (no pid)
    (tmp_path / ".other.1-x.tmp").mkdir()    # another target's: not ours to touch
    aside = tmp_path / f".out.{dead}-old.tmp"
    aside.mkdir()
    (aside / "model.txt").write_text("old model")
    sweep(target)
    assert _temps(tmp_path) == sorted([f".out.{live}-def456.tmp", ".other.1-x.tmp"])
    assert (target / "model.txt").read_text() == "old model"  # killed between the renames: restored


def test_replace_keeps_the_old_output_until_the_new_one_is_in_place(tmp_path, monkeypatch):
    target, built = tmp_path / "out", tmp_path / "built"
    target.mkdir()
    (target / "v").write_text("old")
    built.mkdir()
    (built / "v").write_text("new")
    real = os.replace
    seen = []

    def spy(src, dst):
        seen.append((Path(src).name, Path(dst).name, (target / "v").exists()))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    replace_dir(built, target)
    assert (target / "v").read_text() == "new" and _temps(tmp_path) == []
    assert seen[0][2] is True  # the old output was still there when the first rename began


# ---- OS errors on outputs: one line, exit 2, in every command -----------------------------

def _refuse_writes_under(monkeypatch, root: Path, code: int):
    """Simulate a read-only (EROFS) or full (ENOSPC) output location under `root`."""
    real_mkdir, real_open = os.mkdir, os.open

    def mkdir(path, *a, **k):
        if str(path).startswith(str(root)):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *a, **k)

    def open_(path, flags, *a, **k):
        if str(path).startswith(str(root)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory):
    return write_cyclic_example(tmp_path_factory.mktemp("pairs") / "pairs.csv", n_prompts=30, seed=0)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_rate_and_lab_out_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, pairs_csv, code):
    blocked = tmp_path / "blocked"
    _refuse_writes_under(monkeypatch, blocked, code)
    for args in (["rate", str(pairs_csv), "--rounds", "10", "--out", str(blocked / "r")],
                 ["lab", "game", "--game", "random", "--contexts", "2", "--actions", "3", "--steps", "3",
                  "--out", str(blocked / "l")],
                 ["world", "lowrank", "--out", str(blocked / "w"), "--contexts", "2", "--actions", "2",
                  "--sft-steps", "1"]):
        assert main(args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        err = lines[-1]  # after progress notes, if any: the one error line
        assert err.startswith("error: cannot write") and os.strerror(code) in err and "--out" in err
        assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in "".join(lines)
    assert not blocked.exists()


def test_store_write_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    import sqlite3

    from arena.store import Store

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "put_generations", full)
    ckpts = _two_ckpts(tmp_path)
    rc = main(["tournament", str(ckpts), "--prompts", str(_prompts(tmp_path)), "--judge", JUDGE,
               "--out", str(tmp_path / "run"), "--max-new-tokens", "2", "--rounds", "10"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines()[-1].startswith("error: cannot write the run store (database or disk is full)")


# ---- kill and resume, per writer ---------------------------------------------------------

JUDGE_SOURCE = "def judge(prompt, a, b):\n    return 0.9 if len(a) > len(b) else 0.2\n"
JUDGE = "python:outjudge:judge"


@pytest.fixture(autouse=True)
def _judge_module(tmp_path, monkeypatch):
    (tmp_path / "outjudge.py").write_text(JUDGE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)


def _two_ckpts(tmp_path: Path) -> Path:
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    tok = build_tokenizer(["a few words to build a tokenizer"] * 4, vocab_size=270)
    for name, seed in (("m1", 1), ("m2", 2)):
        save_checkpoint(build_model(tok, n_embd=16, n_layer=1, n_head=2, n_positions=64, seed=seed), tok,
                        tmp_path / "ckpts" / name)
    return tmp_path / "ckpts"


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("one\ntwo\nthree\n")
    return path


def test_report_killed_while_writing_then_rerun(tmp_path, capsys, pairs_csv):
    out = tmp_path / "rated"
    assert main(["rate", str(pairs_csv), "--rounds", "10", "--out", str(out)]) == 0
    _killed(f"""
        import arena.report
        arena.report._nash_png = die
        from arena.cli import main
        main(["report", {str(out)!r}, "--html"])
    """, tmp_path)
    assert len(_temps(tmp_path)) == 1  # what a SIGKILL leaves
    assert main(["report", str(out), "--html"]) == 0
    assert _temps(tmp_path) == [] and (out / "report.html").exists()


def test_tournament_killed_while_writing_reports_then_rerun(tmp_path, capsys):
    ckpts, prompts, run = _two_ckpts(tmp_path), _prompts(tmp_path), tmp_path / "run"
    args = ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", JUDGE, "--out", str(run),
            "--max-new-tokens", "2", "--rounds", "10"]
    _killed(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import arena.report
        arena.report._ratings_png = die
        from arena.cli import main
        main({args!r})
    """, tmp_path)
    assert len(_temps(tmp_path)) == 1
    assert main(args) == 0
    assert _temps(tmp_path) == [] and (run / "results.json").exists()


@pytest.mark.slow  # trains a tiny SFT model twice in child processes
def test_world_killed_while_building_then_rerun(tmp_path, capsys):
    out = tmp_path / "world"
    args = ["world", "lowrank", "--out", str(out), "--contexts", "2", "--actions", "2", "--sft-steps", "2"]
    _killed(f"""
        import trainers.tiny
        trainers.tiny.save_checkpoint = die
        from arena.cli import main
        main({args!r})
    """, tmp_path)
    assert len(_temps(tmp_path)) == 1 and not out.exists()
    assert main(args) == 0
    assert _temps(tmp_path) == [] and (out / "nash.json").exists()


@pytest.mark.slow  # builds a world and trains three times
def test_train_overwrite_killed_between_renames_keeps_the_old_output(tmp_path, capsys):
    world = tmp_path / "world"
    assert main(["world", "lowrank", "--out", str(world), "--contexts", "2", "--actions", "2", "--sft-steps", "2"]) == 0
    out = tmp_path / "trained"
    args = ["train", "online-dpo", "--policy", str(world / "ckpts" / "sft"), "--judge",
            (world / "judge.txt").read_text().strip(), "--prompts", str(world / "prompts.jsonl"), "--out", str(out),
            "--steps", "1", "--batch-size", "2", "--max-new-tokens", "2"]
    assert main(args) == 0
    old_card = (out / "arena_card.json").read_text()
    # Killed after the old output was renamed aside, before the new one was renamed in.
    _killed(f"""
        import os
        real, calls = os.replace, []
        def replace(src, dst):
            calls.append(dst)
            real(src, dst)
            if str(dst).endswith("-old.tmp"):
                die()
        os.replace = replace
        from arena.cli import main
        main({args + ["--overwrite"]!r})
    """, tmp_path)
    assert not out.exists() and len(_temps(tmp_path)) == 1
    # the next run puts the old output back first, then replaces it atomically
    from arena.outputs import sweep as sweep_
    sweep_(out)
    assert (out / "arena_card.json").read_text() == old_card and _temps(tmp_path) == []
    assert main(args + ["--overwrite"]) == 0
    assert _temps(tmp_path) == [] and (out / "arena_card.json").read_text() != old_card


# ---- one writer per run directory --------------------------------------------------------

def test_second_tournament_on_a_locked_run_dir_names_the_holder(tmp_path, capsys):
    ckpts, prompts, run = _two_ckpts(tmp_path), _prompts(tmp_path), tmp_path / "run"
    args = ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", JUDGE, "--out", str(run),
            "--max-new-tokens", "2", "--rounds", "10"]
    assert main(args) == 0
    capsys.readouterr()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from arena.store import run_lock
        with run_lock({str(run)!r}):
            print("locked", flush=True)
            sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "in use" in err and "another --out" in err
        assert main(["report", str(run), "--json"]) == 0  # readers keep working
        assert json.loads(capsys.readouterr().out)["models"]
    finally:
        holder.stdin.close()
        holder.wait()
    assert main(args) == 0  # released when the holder ends
