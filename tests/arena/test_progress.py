"""Progress: plain timestamped lines with an ETA when the console is not a terminal, rich bars
on a terminal, one line every --log-every steps from the trainer."""

import io
import re

import pytest
from rich.console import Console

from arena.progress import PlainProgress, eta_seconds, format_duration, open_progress, progress_line

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _plain(**kw):
    buf = io.StringIO()
    clock = Clock()
    bar = PlainProgress(Console(file=buf, width=200), clock=clock, stamp=lambda: "T", **kw)
    return bar, clock, buf


def test_eta_and_duration_known_values():
    assert eta_seconds(25, 100, 10.0) == pytest.approx(30.0)   # 10 s per 25: 75 left -> 30 s
    assert eta_seconds(0, 100, 10.0) is None and eta_seconds(5, None, 1.0) is None
    assert format_duration(3725) == "1:02:05" and format_duration(None) == "?"
    assert progress_line("judging", 30, 120, 6.0, info="x=1") == "judging: 30/120 (25%), elapsed 0:00:06, ETA 0:00:18 x=1"


def test_plain_lines_are_throttled_and_carry_the_eta():
    bar, clock, buf = _plain(interval=10.0)
    with bar:
        task = bar.add_task("generating a", total=100)
        clock.t += 4
        bar.advance(task, 20)            # 4 s after the last line: nothing
        clock.t += 6
        bar.advance(task, 20)            # 10 s: a line, 40 done in 10 s -> ETA 15 s
        bar.update(task, description="generating b")   # a new model: a line at once
        clock.t += 10
        bar.advance(task, 60)            # done: a line, and only one
        bar.advance(task, 0)
    lines = buf.getvalue().splitlines()
    assert lines == ["T generating a: 0/100 (0%), elapsed 0:00:00, ETA ?",
                     "T generating a: 40/100 (40%), elapsed 0:00:10, ETA 0:00:15",
                     "T generating b: 40/100 (40%), elapsed 0:00:10, ETA 0:00:15",
                     "T generating b: 100/100 (100%), elapsed 0:00:20, ETA 0:00:00"]


def test_every_n_steps_and_unfinished_task_at_stop():
    bar, clock, buf = _plain(interval=None, every=5)
    with bar:
        task = bar.add_task("nash-mp", total=12)
        for step in range(1, 12):        # stops at 11 of 12 (interrupted)
            clock.t += 1
            bar.update(task, completed=step, info=f"loss={step}")
    counts = [re.search(r": (\d+)/12", line).group(1) for line in buf.getvalue().splitlines()]
    assert counts == ["0", "5", "10", "11"]          # start, every 5, where it stopped
    assert "loss=10" in buf.getvalue().splitlines()[2]


def test_open_progress_picks_by_terminal():
    plain = open_progress(Console(file=io.StringIO(), force_terminal=False))
    assert isinstance(plain, PlainProgress)
    buf = io.StringIO()
    with open_progress(Console(file=buf, force_terminal=True, width=120), every=2) as bar:
        task = bar.add_task("train", total=4)
        for step in range(1, 5):
            bar.update(task, completed=step)
    assert not isinstance(bar, PlainProgress)
    assert buf.getvalue().count("train: 2/4") == 1 and buf.getvalue().count("train: 4/4") == 1
    silent = io.StringIO()
    with open_progress(Console(file=silent, force_terminal=False), disable=True) as bar:
        bar.advance(bar.add_task("x", total=3), 3)
    assert silent.getvalue() == ""


def test_trainer_logs_one_line_per_log_every(tmp_path, capsys):
    from arena.cli import main
    from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world

    world = build_lowrank_world(tmp_path / "w", LowrankWorld(n_contexts=2, n_actions=2, sft_steps=5))
    code = main(["train", "online-dpo", "--policy", str(world / "ckpts" / "sft"), "--judge", JUDGE_SPEC,
                 "--prompts", str(world / "prompts.jsonl"), "--out", str(tmp_path / "dpo"), "--steps", "5",
                 "--batch-size", "2", "--max-new-tokens", "2", "--eval-every", "0", "--log-every", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    steps = [re.search(r"online-dpo: (\d+)/5", line).group(1) for line in err.splitlines()
             if STAMP.match(line) and "online-dpo:" in line]
    assert steps == ["0", "2", "4", "5"]     # the start, every 2 steps, then the last
    assert all("loss=" in line for line in err.splitlines() if "online-dpo: 4/5" in line)
