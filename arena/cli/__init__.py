"""`arena` command line: parse, build a config, call one library function, render.

Library errors (`arena.errors.ArenaError`) become a one-line message and a non-zero exit
code here, in one place.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys

# transformers' own progress bars and advisory warnings would drown the arena's output;
# a user who wants them back sets these variables.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer

from arena.errors import ArenaError
from arena.cli._app import app, err

# Importing the command modules registers their commands on `app`.
from arena.cli import rate, judge, tournament, report, lab, train, world, world_lowrank, demo, export, convert  # noqa: E402,F401


#: Loggers of libraries imported on the way (DeepSpeed comes in through transformers and
#: accelerate when it is installed) that write to stdout, where `--json` prints its one object.
STDOUT_LOGGERS = ("DeepSpeed",)


class _ToStderr:
    """A logger filter that writes the record to stderr and stops it there, whatever handlers
    the library attaches later (DeepSpeed binds a stdout handler when it is imported)."""

    def filter(self, record) -> bool:
        print(f"[{record.name}] {record.levelname}: {record.getMessage()}", file=sys.stderr)
        return False


def library_logs_to_stderr() -> None:
    """Keep `STDOUT_LOGGERS` off stdout for the rest of the process (idempotent)."""
    import logging

    for name in STDOUT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ToStderr) for f in logger.filters):
            logger.addFilter(_ToStderr())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: every error the user can fix is one line and exit code 2."""
    from arena.redact import RedactingStream

    library_logs_to_stderr()

    # One redaction step for the terminal: everything the command prints (tables, --json,
    # notes, errors) passes arena.redact on its way out.
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(lambda: stdout), RedactingStream(lambda: stderr)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: list[str] | None) -> int:
    from rich.markup import escape
    from typer._click.exceptions import UsageError  # typer ships its own copy of click

    try:
        code = app(args=argv, standalone_mode=False)
    except ArenaError as error:
        _error(escape(str(error)))
        return error.exit_code
    except UsageError as error:  # unknown option, bad choice, missing argument
        where = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
        _error(escape(error.format_message()) + where)
        return 2
    except OSError as error:  # read-only, full or forbidden output: nothing half-written (atomic writers)
        _error(escape(os_error_message(error)))
        return 2
    except sqlite3.OperationalError as error:  # the run store could not be written
        _error(escape(f"cannot write the run store ({error}); free disk space, fix the permissions "
                      "or pass another --out"))
        return 2
    except typer.Abort:
        _error("aborted")
        return 1
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


_FIX = {
    errno.EACCES: "fix the permissions or choose another --out",
    errno.EPERM: "fix the permissions or choose another --out",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.ENOSPC: "the disk is full; free space or choose another --out",
    errno.EDQUOT: "the disk quota is exhausted; free space or choose another --out",
}


def os_error_message(error: OSError) -> str:
    """One line for an OS error: what failed on which path, and the fix."""
    what = error.strerror or str(error)
    where = f" {error.filename}" if error.filename else ""
    fix = _FIX.get(error.errno, "check the path and its permissions")
    return f"cannot write or read{where}: {what}; {fix}"


def _error(message: str) -> None:
    # Messages are escaped: an error naming `P[a, b]` or `nash-arena[vllm]` must keep its brackets.
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)


def _entry() -> None:  # pragma: no cover
    sys.exit(main())
