"""Read records (one per row) from JSON Lines, a .json array, CSV or TSV files (shell code: this module does I/O).

One reader for pairs files (`arena.io_pairs`), prompt sets (`arena.prompts`) and comparisons
(`judges.io`), so that every command reads these files the same way:

* text is UTF-8; a byte-order mark (as spreadsheets write) is skipped (``utf-8-sig``);
* JSON Lines (``.jsonl``, ``.ndjson``, and a ``.json`` file that is not an array) hold one
  value per line; lines are split on newlines only, because a JSON string may hold U+2028
  and other characters that `str.splitlines` would split on; blank lines are skipped;
* a ``.json`` file whose text starts with ``[`` is one array of values;
* CSV/TSV files have a header row; every value is a string (an empty or missing cell is ``""``).

Every problem raises `arena.errors.InputError` with a one-line message naming the file, the
line or item, and the fix.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from arena.errors import InputError

__all__ = ["JsonLineError", "JsonValue", "read_json_values", "read_rows"]

_FORMATS = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv"}


class JsonLineError(InputError):
    """A line of a JSON Lines file that is not valid JSON: `line` (1-based) and the parser's `reason`."""

    def __init__(self, path: Path, line: int, reason: str):
        super().__init__(f"{path}: line {line} is not valid JSON ({reason}); give one JSON object per line")
        self.line, self.reason = line, reason


@dataclass(frozen=True)
class JsonValue:
    """One value of a JSON Lines file or a .json array, with where it is."""

    unit: str
    """Where the number counts: "line" (JSON Lines) or "item" (a .json array)."""
    number: int
    """1-based line number in the file, or position in the array."""
    value: object
    """The parsed JSON value."""


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # -sig: a byte-order mark is not part of the first record
    except UnicodeDecodeError as err:
        line = err.object[: err.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line} is not UTF-8 text ({err.reason}); re-save the file as UTF-8") from None


def read_json_values(path: str | Path) -> list[JsonValue]:
    """The values of a JSON Lines file (one per non-blank line) or of a .json array, in file order."""
    path = Path(path)
    # Universal newlines, as text-mode `open` reads them: \r\n and a lone \r end a line too.
    text = _text(path).replace("\r\n", "\n").replace("\r", "\n")
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); fix the array") from None
        return [JsonValue("item", n, item) for n, item in enumerate(items, start=1)]
    values = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and other line separators
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            values.append(JsonValue("line", n, json.loads(line)))
        except json.JSONDecodeError as err:
            raise JsonLineError(path, n, err.msg) from None
    return values


def _read_csv(path: Path, *, delimiter: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(_text(path), newline=""), delimiter=delimiter)
    try:
        # A short row's missing cells (None) read as "", never NaN; cells beyond the header
        # (key None) are dropped.
        return [{k: ("" if v is None else v) for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as err:
        # reader.reader: DictReader.line_num only counts rows read without error
        line = reader.reader.line_num
        raise InputError(f"{path}: line {line} is not readable CSV ({err}); fix the file's quoting") from None


def read_rows(path: str | Path, *, what: str, format: str | None = None) -> list[dict]:
    """The rows of a records file as dicts, in file order (an empty file gives no rows).

    Args:
      path: a .jsonl/.ndjson/.json (objects) or .csv/.tsv (header row; string values) file.
      what: what one row is ("comparison", "prompt"), for the messages.
      format: "json" | "csv" | "tsv"; default from the file extension.
    """
    path = Path(path)
    fmt = format or _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown extension {path.suffix!r}; use .csv, .tsv, .jsonl or .json")
    if fmt in ("csv", "tsv"):
        return _read_csv(path, delimiter="\t" if fmt == "tsv" else ",")
    rows = []
    for v in read_json_values(path):
        if not isinstance(v.value, dict):
            raise InputError(f"{path}: {v.unit} {v.number} is not a JSON object; give one object per {what}")
        rows.append(v.value)
    return rows
