"""One base class for every error the library raises on purpose.

The command line turns an `ArenaError` into a one-line message (cause and fix) and exit
code 2, in one place (`arena.cli.main`). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ArenaError(Exception):
    """Base class: a problem the user can fix; `str(err)` names the cause and the fix."""

    exit_code: int = 2


class InputError(ArenaError, ValueError):
    """Bad input data or arguments (missing columns, NaN scores, empty files, ...)."""


class ConfigError(ArenaError):
    """A spec or option that cannot be honoured (unknown judge backend, bad label, ...)."""


class CheckpointError(ArenaError):
    """A checkpoint directory that cannot be loaded as asked (no weights, pickle refused, ...)."""


class SolverError(ArenaError):
    """A numerical solver failed or its certificate did not verify."""

    exit_code = 3


class MissingDependencyError(ArenaError, ImportError):
    """An optional extra is not installed; the message names the install command."""


def require(module: str, extra: str):
    """Import an optional dependency or raise an error naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'nash-arena[{extra}]'"
        ) from err
