"""Cheap checks of command-line options, run before any long work.

Each raises `arena.errors.InputError` naming the option and a valid value, so that
`arena.cli.main` prints one line and exits with code 2. The library checks its own inputs
too; these cover what it checks only late (after generating or training) or not at all.
"""

from __future__ import annotations

import math
from pathlib import Path

from arena.errors import InputError


def at_least(option: str, value: int, low: int, *, example: int | None = None) -> None:
    """`value` must be an integer >= `low`."""
    if value < low:
        hint = f": e.g. {option} {example}" if example is not None else ""
        raise InputError(f"{option} must be >= {low}; got {value}{hint}")


def finite_positive(option: str, value: float, *, example: float, allow_zero: bool = False) -> None:
    """`value` must be finite and > 0 (>= 0 with `allow_zero`); NaN never passes."""
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{option} must be a finite number {bound}; got {value}: e.g. {option} {example}")


def not_a_file(option: str, path: Path | None) -> None:
    """An output directory option must not name an existing file, nor lie below one."""
    if path is None:
        return
    for p in (path, *path.parents):  # the nearest existing one decides
        if p.exists():
            if p.is_dir():
                return
            where = "" if p == path else f": its parent {p}"
            raise InputError(f"{option} {path}{where} is a file: give a directory path (new or existing)")
