"""Read comparisons (prompt, response_a, response_b) from CSV or JSONL for `arena judge`."""

from __future__ import annotations

from pathlib import Path

from arena.errors import InputError
from arena.records_io import read_rows
from judges.base import Comparison

COLUMNS = ("prompt", "response_a", "response_b")


def read_comparisons(path: str | Path) -> list[Comparison]:
    """Rows in file order; CSV (header row), JSONL (one object per line) or a .json array, by extension.

    Missing columns, non-string cells, empty files, non-UTF-8 text and unreadable CSV/JSON are
    InputErrors naming the row and fix.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} not found; give a CSV or JSONL file with columns {', '.join(COLUMNS)}")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a CSV or JSONL file with columns {', '.join(COLUMNS)}")
    rows = read_rows(path, what="comparison")
    if not rows:
        raise InputError(f"{path} has no rows; add rows with columns {', '.join(COLUMNS)}")
    out = []
    for i, row in enumerate(rows, start=1):
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise InputError(f"{path} row {i} lacks column(s) {', '.join(missing)}; every row needs {', '.join(COLUMNS)}")
        bad = [c for c in COLUMNS if not isinstance(row[c], str)]
        if bad:
            raise InputError(f"{path} row {i}: {', '.join(bad)} must be text (got {[row[c] for c in bad]!r}); quote them")
        out.append(Comparison(row["prompt"], row["response_a"], row["response_b"]))
    return out

