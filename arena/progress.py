"""Progress for long work: a rich bar on a terminal, plain timestamped lines anywhere else.

A log file or a CI console cannot show a bar: rich draws nothing when stderr is not a
terminal, so a 15-minute run left only its plan line in the log. `open_progress` returns
one object with the subset of `rich.progress.Progress` the commands use (`add_task`,
`update`, `advance`, `log`, context manager); on a non-terminal console it writes lines

    2026-11-30 03:31:02 generating sft: 120/800 (15%), elapsed 0:00:12, ETA 0:01:08

when a task starts, at most every `interval` seconds, every `every` steps when given, when
its description changes, and once when it completes. The ETA is the mean pace so far times
the work left: elapsed · (total − done) / done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: Seconds between two plain progress lines of one task (when no `every` is given).
DEFAULT_INTERVAL = 10.0


def eta_seconds(done: float, total: float | None, elapsed: float) -> float | None:
    """Remaining seconds at the mean pace so far; None while unknown (nothing done, no total)."""
    if total is None or done <= 0 or elapsed < 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def format_duration(seconds: float | None) -> str:
    """H:MM:SS, or '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def progress_line(description: str, done: float, total: float | None, elapsed: float, *, info: str = "",
                  stamp: str = "") -> str:
    """One plain progress line (see the module docstring)."""
    count = f"{done:g}/{total:g} ({100 * done / total:.0f}%)" if total else f"{done:g}"
    text = f"{description}: {count}, elapsed {format_duration(elapsed)}"
    if total:
        text += f", ETA {format_duration(eta_seconds(done, total, elapsed))}"
    if info:
        text += f" {info}"
    return f"{stamp} {text}" if stamp else text


class _Task:
    def __init__(self, description: str, total: float | None, info: str, now: float):
        self.description, self.total, self.info = description, total, info
        self.completed = 0.0
        self.started = now
        self.printed_at: float | None = None
        self.printed_done: float | None = None
        self.finished = False


class PlainProgress:
    """Timestamped lines on a console that is not a terminal (see the module docstring)."""

    def __init__(self, console, *, interval: float | None = DEFAULT_INTERVAL, every: int | None = None,
                 clock: Callable[[], float] = time.monotonic, stamp: Callable[[], str] | None = None):
        self.console = console
        self.interval, self.every = interval, every
        self.clock = clock
        self.stamp = stamp or (lambda: time.strftime("%Y-%m-%d %H:%M:%S"))
        self.tasks: list[_Task] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        pass

    def stop(self):
        for i, task in enumerate(self.tasks):  # a task left unfinished still shows where it stopped
            if not task.finished and task.printed_done != task.completed:
                self._emit(i)

    def add_task(self, description: str, total: float | None = None, info: str = "", **_) -> int:
        self.tasks.append(_Task(description, total, info, self.clock()))
        if total == 0:  # nothing to do (e.g. every generation reused): say nothing
            self.tasks[-1].finished = True
        else:
            self._emit(len(self.tasks) - 1)
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               advance: float | None = None, description: str | None = None, info: str | None = None, **_) -> None:
        task = self.tasks[task_id]
        renamed = description is not None and description != task.description
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance:
            task.completed += advance
        if description is not None:
            task.description = description
        if info is not None:
            task.info = info
        if task.finished:
            return
        now = self.clock()
        done = task.total is not None and task.completed >= task.total
        due_time = self.interval is not None and task.printed_at is not None and now - task.printed_at >= self.interval
        due_step = (self.every and task.completed != task.printed_done
                    and int(task.completed) // self.every > int(task.printed_done or 0) // self.every)
        if done or renamed or due_time or due_step:
            self._emit(task_id)
            task.finished = done

    def log(self, text: str) -> None:
        self.console.print(f"{self.stamp()} {text}", markup=False, highlight=False, soft_wrap=True)

    def _emit(self, task_id: int) -> None:
        task = self.tasks[task_id]
        now = self.clock()
        self.console.print(progress_line(task.description, task.completed, task.total, now - task.started,
                                         info=task.info, stamp=self.stamp()),
                           markup=False, highlight=False, soft_wrap=True)
        task.printed_at, task.printed_done = now, task.completed


class _RichProgress:
    """rich's bar; with `every`, also a line above the bar every `every` steps."""

    def __init__(self, bar, every: int | None):
        self.bar, self.every = bar, every
        self.logged: dict[int, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def start(self):
        self.bar.start()

    def stop(self):
        self.bar.stop()

    def add_task(self, description: str, total: float | None = None, info: str = "", **fields) -> int:
        return self.bar.add_task(description, total=total, info=info, **fields)

    def advance(self, task_id, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id, **kw) -> None:
        self.bar.update(task_id, **kw)
        if self.every:
            task = next(t for t in self.bar.tasks if t.id == task_id)
            step = int(task.completed) // self.every
            if step > self.logged.get(task_id, 0):
                self.logged[task_id] = step
                self.log(progress_line(task.description, task.completed, task.total, task.elapsed or 0.0,
                                       info=task.fields.get("info", "")))

    def log(self, text: str) -> None:
        self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)


def open_progress(console, *, interval: float | None = DEFAULT_INTERVAL, every: int | None = None,
                  transient: bool = False, disable: bool = False):
    """Progress on `console` (rich, usually stderr): a bar on a terminal, plain lines otherwise.

    `console=None` or `disable` shows nothing. `every`: also a line every `every` completed
    steps (the trainer's `--log-every`). Tasks take an `info` text shown after the counts.
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    if console is not None and not disable and not console.is_terminal:
        return PlainProgress(console, interval=interval, every=every)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console,
                   transient=transient, disable=console is None or disable)
    return _RichProgress(bar, every)
