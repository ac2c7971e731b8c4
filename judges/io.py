"""Read comparisons (prompt, response_a, response_b) from CSV or JSONL for `arena judge`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from arena.errors import InputError
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
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv"):
        raise InputError(f"{path}: unknown extension {suffix!r}; use .csv or .jsonl")
    try:
        if suffix in (".csv", ".tsv"):
            rows = _read_csv(path, delimiter="\t" if suffix == ".tsv" else ",")
        else:
            rows = _read_jsonl(path)
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not UTF-8 text ({error.reason}); re-save it as UTF-8") from None
    except csv.Error as error:
        raise InputError(f"{path}: not a readable CSV ({error}); fix the file's quoting") from None
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


def _read_jsonl(path: Path) -> list[dict]:
    if path.suffix.lower() == ".json":
        text = path.read_text(encoding="utf-8-sig")
        if text.lstrip().startswith("["):  # one JSON array of objects
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as error:
                raise InputError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}); fix the array") from None
            bad = next((i for i, r in enumerate(rows, start=1) if not isinstance(r, dict)), None)
            if bad is not None:
                raise InputError(f"{path} item {bad} is not a JSON object; write {{\"prompt\": ..., \"response_a\": ..., \"response_b\": ...}}")
            return rows
    rows = []
    with path.open(encoding="utf-8-sig") as fh:  # -sig: a byte-order mark is not JSON
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path} line {i} is not JSON ({error.msg}); write one object per line") from error
            if not isinstance(obj, dict):
                raise InputError(f"{path} line {i} is not a JSON object; write {{\"prompt\": ..., \"response_a\": ..., \"response_b\": ...}}")
            rows.append(obj)
    return rows


def _read_csv(path: Path, delimiter: str) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets write a byte-order mark
        reader = csv.DictReader(fh, delimiter=delimiter)
        if reader.fieldnames is None:
            return []
        missing = [c for c in COLUMNS if c not in reader.fieldnames]
        if missing:
            raise InputError(f"{path} lacks column(s) {', '.join(missing)}; the header must name {', '.join(COLUMNS)}")
        # Empty cells are empty strings (a legitimate, if poor, response), never NaN.
        return [{k: ("" if v is None else v) for k, v in row.items() if k is not None} for row in reader]
