"""`arena` command line: parse, build a config, call one library function, render.

Library errors (`arena.errors.ArenaError`) become a one-line message and a non-zero exit
code here, in one place.
"""

from __future__ import annotations

import sys

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
