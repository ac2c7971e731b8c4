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



# Columns `arena judge --out` carries over from the input, so that `arena rate` reads the file
# as it is (model names, and the prompt id as the bootstrap cluster).
KEPT = ("model_a", "model_b", "prompt_id", "question_id")


def pair_keys(path: str | Path) -> list[dict]:
    """Per input row, its model_a, model_b (required) and prompt id (optional), as text.

    Raises InputError when the file has no model_a/model_b: `arena rate` could not use the output.
    """
    path = Path(path)
    rows = read_rows(path, what="comparison")
    keys = []
    for i, row in enumerate(rows, start=1):
        missing = [c for c in ("model_a", "model_b") if not str(row.get(c) or "").strip()]
        if missing:
            raise InputError(f"{path} row {i} lacks {', '.join(missing)}; --out writes battles for `arena rate`, "
                             "so give each row the two models' names (or leave out --out)")
        keys.append({c: str(row[c]).strip() for c in KEPT if c in row and str(row[c]).strip()})
    return keys


def check_out_path(path: str | Path) -> Path:
    """The --out path if it can be written (.jsonl or .csv, in an existing folder), else InputError."""
    path = Path(path)
    if path.suffix.lower() not in (".jsonl", ".csv"):
        raise InputError(f"--out {path}: name the file .jsonl or .csv")
    if not path.parent.is_dir():
        raise InputError(f"--out {path}: folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise InputError(f"--out {path} is a directory; give a file name ending in .jsonl or .csv")
    return path


def write_judged_pairs(path: str | Path, keys: list[dict], verdicts) -> int:
    """Write one battle per judged row (model_a, model_b, [prompt id], score = p, p_ab, p_ba).

    A row whose judgment failed (p is None) is left out: a failure is never a tie. The file is
    written next to its final name and renamed, so a crash never leaves half a file. Returns the
    number of rows written.
    """
    import csv
    import json
    import os

    path = Path(path)
    rows = [{**k, "score": v.p, "p_ab": v.p_ab, "p_ba": v.p_ba} for k, v in zip(keys, verdicts) if v.p is not None]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        if path.suffix.lower() == ".csv":
            fields = [c for c in KEPT if any(c in r for r in rows)] + ["score", "p_ab", "p_ba"]
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        else:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, path)
    return len(rows)
