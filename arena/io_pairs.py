"""Read pairwise judgments and preference matrices from files (shell code: this module does I/O).

Pairs files (CSV, JSONL, a .json array of objects, or Parquet), one comparison per row, with columns

* ``model_a``, ``model_b``: the two models (names);
* ``winner`` with Chatbot Arena's labels (Chiang et al. 2024, arXiv 2403.04132):
  ``model_a`` | ``model_b`` | ``tie`` | ``tie (bothbad)`` (both ties count ½), **or**
  ``score``: the probability in [0, 1] that model_a is preferred;
* optional ``prompt_id``: comparisons of the same prompt form one cluster for the bootstrap.

Matrix files (CSV): a header row of model names (the first header cell is a free label), the
same names down the first column, entry = P(row model beats column model); P + Pᵀ = 1 within
``MATRIX_TOL`` and a diagonal of ½ (or empty). Columns in a different order than the rows are
reordered to the row order.

Every problem raises `arena.errors.InputError` with a one-line cause and fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arena.core.records import Records, make_records
from arena.errors import InputError, require
from arena.records_io import read_rows

__all__ = ["read_pairs", "read_matrix", "detect_format", "WINNER_SCORES", "MATRIX_TOL"]

# Chatbot Arena winner labels -> P(model_a preferred).
WINNER_SCORES = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
# Tolerance on P[i, j] + P[j, i] = 1 and on the diagonal ½ for matrix files (allows rounding
# to 4 decimals).
MATRIX_TOL = 1e-4
_SHOW = 5
_PAIR_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def _rows(idx: np.ndarray) -> str:
    shown = ", ".join(str(int(i) + 1) for i in idx[:_SHOW])
    more = f" and {idx.size - _SHOW} more" if idx.size > _SHOW else ""
    return shown + more


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file; give a file with a header row and at least one comparison")
    return path


def _file_format(path: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt in ("json", "ndjson"):
            fmt = "jsonl"
        if fmt not in ("csv", "jsonl", "parquet"):
            raise InputError(f"unknown pairs file format {format!r}: use csv, jsonl or parquet")
        return fmt
    fmt = _PAIR_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}: name it .csv, "
            ".jsonl or .parquet, or pass the format"
        )
    return fmt


def _read_csv(path: Path, **kwargs):
    import pandas as pd

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return pd.read_csv(path, sep=sep, **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file; give a header row and at least one row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a readable CSV ({first}); fix the file's quoting/columns") from None


def _read_table(path: Path, fmt: str):
    import pandas as pd

    if fmt == "csv":
        return _read_csv(path, keep_default_na=True)
    if fmt == "jsonl":
        return pd.DataFrame(read_rows(path, what="comparison", format="json"))
    require("pyarrow", "parquet")
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for a corrupt file
        raise InputError(f"{path}: not a readable Parquet file ({type(err).__name__}); rewrite it") from None


def read_pairs(path: str | Path, *, format: str | None = None) -> Records:
    """Read pairwise comparisons into validated `Records`.

    Args:
      path: a CSV, JSONL or Parquet file (see the module docstring for the columns).
      format: "csv" | "jsonl" | "parquet"; default from the file extension.

    Raises InputError: missing file or columns, empty file, unknown winner labels, missing
    model names, self-matches, NaN or out-of-range scores (with row numbers).
    """
    import pandas as pd

    path = _existing(path)
    fmt = _file_format(path, format)
    df = _read_table(path, fmt)
    where = f"{path}"
    if len(df) == 0:
        raise InputError(f"{where}: no rows; give at least one comparison (model_a, model_b, winner|score)")
    found = ", ".join(map(str, df.columns)) or "none"
    missing = [c for c in ("model_a", "model_b") if c not in df.columns]
    if missing:
        raise InputError(
            f"{where}: missing column(s) {', '.join(missing)} (found: {found}); a pairs file needs "
            "model_a, model_b and winner or score (a matrix file has model names as header and first column)"
        )
    has_winner, has_score = "winner" in df.columns, "score" in df.columns
    if not has_winner and not has_score:
        raise InputError(
            f"{where}: no winner or score column (found: {found}); add winner "
            "(model_a|model_b|tie|tie (bothbad)) or score = P(model_a preferred) in [0, 1]"
        )
    if has_winner and has_score:
        raise InputError(f"{where}: both winner and score columns; keep one of them")

    for col in ("model_a", "model_b"):
        empty = df[col].isna().to_numpy()
        if empty.any():
            raise InputError(f"{where}: {col} is empty in rows {_rows(np.flatnonzero(empty))}; fill or drop those rows")
    model_a = df["model_a"].astype(str).str.strip().to_numpy(dtype=object)
    model_b = df["model_b"].astype(str).str.strip().to_numpy(dtype=object)

    if has_winner:
        labels = df["winner"].astype(str).str.strip().str.lower()
        score = labels.map(WINNER_SCORES).to_numpy(dtype=np.float64)
        bad = np.isnan(score) | df["winner"].isna().to_numpy()
        if bad.any():
            examples = ", ".join(repr(x) for x in pd.unique(df["winner"][bad].astype(str))[:3])
            raise InputError(
                f"{where}: unknown winner labels {examples} in rows {_rows(np.flatnonzero(bad))}; "
                f"allowed: {', '.join(WINNER_SCORES)} (or give a score column in [0, 1])"
            )
    else:
        raw = df["score"]
        score = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        not_number = np.isnan(score) & raw.notna().to_numpy()
        if not_number.any():
            raise InputError(
                f"{where}: score is not a number in rows {_rows(np.flatnonzero(not_number))} "
                f"(e.g. {str(raw[not_number].iloc[0])!r}); give P(model_a preferred) in [0, 1]"
            )

    cluster = None
    if "prompt_id" in df.columns:
        pid = df["prompt_id"]
        empty = pid.isna().to_numpy()
        if empty.any():
            raise InputError(
                f"{where}: prompt_id is empty in rows {_rows(np.flatnonzero(empty))}; give every row "
                "a prompt id or drop the column"
            )
        cluster = pid.astype(str).to_numpy(dtype=object)
    try:
        return make_records(model_a, model_b, score, cluster=cluster)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def read_matrix(path: str | Path, *, tol: float = MATRIX_TOL) -> tuple[list[str], np.ndarray]:
    """Read a preference matrix CSV: returns (names, P) with P[i, j] = P(names[i] beats names[j]).

    Raises InputError: non-square, row and column names that differ, duplicate names,
    non-numeric or missing entries, values outside [0, 1], P + Pᵀ ≠ 1 or a diagonal ≠ ½
    beyond ``tol`` (an empty diagonal reads as ½).
    """
    import pandas as pd

    path = _existing(path)
    df = _read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    rows = [str(x).strip() for x in df.index]
    cols = [str(x).strip() for x in df.columns]
    where = str(path)
    if not rows:
        raise InputError(f"{where}: no rows; give a header of model names and one row per model")
    if len(rows) != len(cols):
        raise InputError(
            f"{where}: not square: {len(rows)} rows but {len(cols)} columns; give one column per model, "
            "with the model names as header and as first column"
        )
    for kind, names in (("row", rows), ("column", cols)):
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise InputError(f"{where}: duplicate {kind} names {', '.join(dup[:_SHOW])}; list each model once")
    if set(rows) != set(cols):
        only_r = sorted(set(rows) - set(cols))
        only_c = sorted(set(cols) - set(rows))
        raise InputError(
            f"{where}: row and column names differ (only in rows: {', '.join(only_r[:_SHOW]) or '-'}; "
            f"only in columns: {', '.join(only_c[:_SHOW]) or '-'}); use the same model names in both"
        )
    df.index, df.columns = rows, cols
    df = df[rows]  # columns in row order
    cells = df.apply(lambda c: c.str.strip())
    values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    n = len(rows)
    blank = (cells == "").to_numpy()
    diag = np.eye(n, dtype=bool)
    if (blank & ~diag).any():
        i, j = np.argwhere(blank & ~diag)[0]
        raise InputError(f"{where}: missing entry P[{rows[i]}, {rows[j]}]; fill in every off-diagonal cell")
    bad = np.isnan(values) & ~blank
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(
            f"{where}: entry P[{rows[i]}, {rows[j]}] = {cells.iat[i, j]!r} is not a number; give probabilities in [0, 1]"
        )
    values[blank & diag] = 0.5
    out = (values < 0) | (values > 1)
    if out.any():
        i, j = np.argwhere(out)[0]
        raise InputError(
            f"{where}: entry P[{rows[i]}, {rows[j]}] = {values[i, j]} is outside [0, 1]; entries are "
            "probabilities that the row model beats the column model"
        )
    err = np.abs(values + values.T - 1.0)
    if (err > tol).any():
        i, j = np.unravel_index(np.argmax(err), err.shape)
        if i == j:
            raise InputError(
                f"{where}: diagonal entry P[{rows[i]}, {rows[i]}] = {values[i, i]} must be 0.5 (or empty)"
            )
        raise InputError(
            f"{where}: P + Pᵀ ≠ 1: P[{rows[i]}, {rows[j]}] + P[{rows[j]}, {rows[i]}] = "
            f"{values[i, j] + values[j, i]:.6g} (tolerance {tol:g}); make P[j, i] = 1 − P[i, j]"
        )
    return rows, values


def detect_format(path: str | Path) -> str:
    """Return "pairs" or "matrix" for a file, from its extension and header.

    JSONL and Parquet files are pairs. A CSV is pairs when its header has model_a and model_b,
    and a matrix when the header's names (after the first cell) are the first column's values.
    """
    path = _existing(path)
    fmt = _PAIR_FORMATS.get(path.suffix.lower())
    if fmt in ("jsonl", "parquet"):
        return "pairs"
    if fmt is None:
        raise InputError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}: name it .csv, .jsonl "
            "or .parquet, or give the kind (--format pairs|matrix)"
        )
    header = [str(c).strip() for c in _read_csv(path, nrows=0).columns]  # header only: cheap
    if "model_a" in header and "model_b" in header:
        return "pairs"
    df = _read_csv(path, dtype=str, keep_default_na=False)
    first = [str(x).strip() for x in df.iloc[:, 0]] if len(header) > 0 and len(df) > 0 else []
    if first and set(header[1:]) == set(first):
        return "matrix"
    raise InputError(
        f"{path}: neither a pairs file (needs columns model_a, model_b, winner|score) nor a matrix "
        f"(header of model names equal to the first column); found columns: {', '.join(header[:8])}"
    )
