"""`arena` command line: parse, build a config, call one library function, render.

Library errors (`arena.errors.ArenaError`) become a one-line message and a non-zero exit
code here, in one place.
"""

from __future__ import annotations

import os
import sys

# transformers' own progress bars and advisory warnings would drown the arena's output;
# a user who wants them back sets these variables.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from arena.errors import ArenaError
from arena.cli._app import app, err

# Importing the command modules registers their commands on `app`.
from arena.cli import rate, judge, tournament, report, lab, train, world, world_lowrank, demo  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except ArenaError as error:
        err.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        return error.exit_code
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def _entry() -> None:  # pragma: no cover
    sys.exit(main())
