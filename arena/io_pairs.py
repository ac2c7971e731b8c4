"""Read pairwise judgments and preference matrices from files (shell code: this module does I/O).

Pairs files, one comparison per row: CSV/TSV, JSONL or a .json array, Parquet, or a directory
(a Hugging Face ``datasets`` directory written by ``save_to_disk``, a folder of Parquet files
such as a dataset snapshot, or a folder of Arena-Hard judgment ``.jsonl`` files). Columns:

* ``model_a``, ``model_b``: the two models (names);
* the outcome, one of
  - ``winner`` with Chatbot Arena's labels (Chiang et al. 2024, arXiv 2403.04132):
    ``model_a`` | ``model_b`` | ``tie`` | ``tie (bothbad)`` | ``both_bad`` (lmarena's
    arena-rank spelling); ties of either kind count ½;
  - one-hot ``winner_model_a``, ``winner_model_b``, ``winner_tie`` (0/1, exactly one 1 per
    row: the LMSYS Kaggle battles);
  - ``score``: the probability in [0, 1] that model_a is preferred;
* optional ``prompt_id`` (or ``question_id``): comparisons of the same prompt form one cluster
  for the bootstrap;
* optional per-side style features ``feature_<name>_a`` and ``feature_<name>_b`` (numbers, e.g.
  ``feature_tokens_a``): kept as ``Records.features`` for style control (`arena.core.style`).

Two judge formats are read as they are written:

* AlpacaEval annotations (``generator_1``, ``generator_2``, ``preference`` in [1, 2], where
  1 = output_1 preferred, 2 = output_2, 1.5 = tie, in between = a soft preference): model_a =
  generator_1, model_b = generator_2, score = 2 − preference; the cluster is ``instruction`` (or
  ``instruction_idx``). Rows of the baseline against itself (AlpacaEval's 50% entry) are left
  out: they compare nothing.
* Arena-Hard judgments (one object per question with ``model``, ``question_id`` or ``uid``,
  optional ``baseline`` (default gpt-4-0314, Arena-Hard v0.1's) and ``games``, two games with
  ``score`` "A>>B" | "A>B" | "A=B" | "B>A" | "B>>A"): game 1 has the baseline as A, game 2 the
  model as A; each game is a battle baseline vs model, a strong verdict (">>") counts 3 times and
  a game whose score is null (the judge's verdict could not be parsed) is skipped, all as
  Arena-Hard's ``show_result.py`` does.

CSV and Parquet are read column by column with pyarrow (model names and labels as dictionaries),
so the records are built without a Python loop over rows.

Matrix files (CSV): a header row of model names (the first header cell is a free label), the
same names down the first column, entry = P(row model beats column model); P + Pᵀ = 1 within
``MATRIX_TOL`` and a diagonal of ½ (or empty). Columns in a different order than the rows are
reordered to the row order.

A ``category`` column (or any other, e.g. ``language``) splits a pairs file into one board per
value: `read_pairs_by` reads the overall records and one `Records` per value.

Multi-criteria pairs files (one preference per criterion: helpful, honest, harmless, ...) have
a ``criterion`` column (long form) or one ``score_<c>`` column per criterion (wide form);
`read_pairs_or_criteria` reads them into one `Records` per criterion over the same models
(`read_pairs` refuses them rather than pool the criteria).

Every problem raises `arena.errors.InputError` with a one-line cause and fix.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from arena.core.records import Records, make_records_indexed
from arena.errors import InputError, require
from arena.records_io import read_json_values

__all__ = ["read_pairs", "read_pairs_table", "read_pairs_or_criteria", "read_pairs_by", "CATEGORY_COLUMN", "CRITERION_COLUMN", "read_matrix", "detect_format", "WINNER_SCORES",
           "ARENA_HARD_SCORES", "ARENA_HARD_BASELINE", "MATRIX_TOL"]

# Chatbot Arena winner labels -> P(model_a preferred). "both_bad" is lmarena's arena-rank
# spelling of "tie (bothbad)" (arena_rank.utils.data_utils.default_outcome_map).
WINNER_SCORES = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5, "both_bad": 0.5}
ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")
# Arena-Hard verdict -> (P(A preferred), copies): a strong verdict counts 3 times
# (arena-hard-auto show_result.py, WEIGHT = 3).
ARENA_HARD_SCORES = {"A>>B": (1.0, 3), "A>B": (1.0, 1), "A=B": (0.5, 1), "B>A": (0.0, 1), "B>>A": (0.0, 3)}
ARENA_HARD_BASELINE = "gpt-4-0314"
CLUSTER_COLUMNS = ("prompt_id", "question_id", "instruction", "instruction_idx")
# Tolerance on P[i, j] + P[j, i] = 1 and on the diagonal ½ for matrix files (allows rounding
# to 4 decimals).
MATRIX_TOL = 1e-4
_SHOW = 5
_PAIR_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_FEATURE = re.compile(r"^feature_(.+)_([ab])$")
# `arena rate --by`: the default column that splits a pairs file into boards (`read_pairs_by`).
CATEGORY_COLUMN = "category"
# Multi-criteria pairs files: a `criterion` column (long form) or one `score_<c>` column per
# criterion (wide form); see `read_pairs_or_criteria`.
CRITERION_COLUMN = "criterion"
_SCORE_CRITERION = re.compile(r"^score_(.+)$")
# Text columns read as dictionaries (names, labels and prompt ids repeat): one dictionary of
# distinct values and an integer per row; the cluster columns too (CLUSTER_COLUMNS).
_DICT_COLUMNS = ("model_a", "model_b", "winner", "generator_1", "generator_2")


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


# --- loading a table --------------------------------------------------------------------


def _wanted(names, keep=()) -> list[str]:
    """The columns a pairs reader uses, plus `keep` (others, e.g. conversation text, are never loaded)."""
    used = {*keep, "model_a", "model_b", "score", "preference", CRITERION_COLUMN, *_DICT_COLUMNS, *ONE_HOT, *CLUSTER_COLUMNS}
    return [c for c in names if c in used or _FEATURE.match(c) or _SCORE_CRITERION.match(c)]


def _noting(table, names):
    """The table with the file's full column list in its metadata (for "found: ..." messages)."""
    return table.replace_schema_metadata({"arena_columns": json.dumps(list(names))})


def _csv_header(path: Path, delimiter: str) -> list[str]:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        return next(csv.reader(fh, delimiter=delimiter), [])


def _arrow_csv(path: Path, keep=()):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = [h.strip() for h in _csv_header(path, delimiter)]
    if not header:
        raise InputError(f"{path}: empty file; give a header row and at least one row")
    text = pa.dictionary(pa.int32(), pa.string())
    types = {c: text for c in (*_DICT_COLUMNS, *CLUSTER_COLUMNS)}
    try:
        return _noting(pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=_wanted(header, keep)),
        ), header)
    except pa.ArrowInvalid as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "UTF8" in first:
            raise InputError(f"{path}: not UTF-8 text ({first}); re-save the file as UTF-8") from None
        raise InputError(f"{path}: not a readable CSV ({first}); fix the file's quoting/columns") from None


def _arrow_parquet(path: Path, keep=()):
    require("pyarrow", "parquet")
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        columns = _wanted(schema.names, keep)
        table = pq.read_table(path, columns=columns,
                              read_dictionary=[c for c in (*_DICT_COLUMNS, *CLUSTER_COLUMNS) if c in columns])
        return _noting(table, schema.names)
    except Exception as err:  # pyarrow raises many types for a corrupt file
        raise InputError(f"{path}: not a readable Parquet file ({type(err).__name__}); rewrite it") from None


def _table_from_rows(rows: list[dict], keep=()):
    """A pyarrow table from JSON objects; a column of mixed types becomes text (checked later)."""
    import pyarrow as pa

    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in _wanted(names, keep):
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values])
    table = pa.table(columns) if columns else pa.table({"_": pa.array([None] * len(rows))}).drop_columns(["_"])
    return _noting(table, names)


def _arena_hard_rows(values, path: Path) -> list[dict]:
    """Arena-Hard judgments -> battles (model_a = baseline), as Arena-Hard's show_result.py builds them."""
    rows = []
    for v in values:
        row = v.value
        where = f"{path}: {v.unit} {v.number}"
        if not isinstance(row, dict):
            raise InputError(f"{where} is not a JSON object; give one judgment object per line")
        games, model = row.get("games"), row.get("model")
        if not isinstance(model, str) or not isinstance(games, list) or len(games) != 2:
            raise InputError(f"{where}: an Arena-Hard judgment needs a model name and games: [game 1, game 2]")
        baseline = row.get("baseline") or ARENA_HARD_BASELINE
        qid = row.get("question_id", row.get("uid"))
        for g, game in enumerate(games):
            verdict = game.get("score") if isinstance(game, dict) else None
            if verdict is None:  # the judge's verdict could not be parsed: Arena-Hard skips the game
                continue
            if verdict not in ARENA_HARD_SCORES:
                raise InputError(
                    f"{where}: game {g + 1} score {verdict!r} is not one of {', '.join(ARENA_HARD_SCORES)}; "
                    "fix it or set it to null to skip the game"
                )
            p_first, copies = ARENA_HARD_SCORES[verdict]
            # Game 1: A = baseline; game 2: A = the model. Either way model_a is the baseline.
            score = p_first if g == 0 else 1.0 - p_first
            rows.extend([{"model_a": baseline, "model_b": model, "score": score, "question_id": qid}] * copies)
    if not rows:
        raise InputError(f"{path}: no Arena-Hard game has a score; judge again or give another file")
    return rows


def _json_table(path: Path, keep=()):
    values = read_json_values(path)
    if values and isinstance(values[0].value, dict) and "games" in values[0].value:
        return _table_from_rows(_arena_hard_rows(values, path))
    for v in values:
        if not isinstance(v.value, dict):
            raise InputError(f"{path}: {v.unit} {v.number} is not a JSON object; give one object per comparison")
    return _table_from_rows([v.value for v in values], keep)


def _directory_table(path: Path, keep=()):
    """A Hugging Face datasets directory, a folder of Parquet files, or of Arena-Hard .jsonl files."""
    import pyarrow as pa

    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        if "train" not in splits and len(splits) != 1:
            raise InputError(f"{path}: a dataset with splits {', '.join(splits)}; give one split's directory")
        return _directory_table(path / ("train" if "train" in splits else splits[0]), keep)
    if (path / "state.json").is_file():  # datasets' save_to_disk: Arrow IPC stream files
        state = json.loads((path / "state.json").read_text())
        files = [path / f["filename"] for f in state.get("_data_files", [])]
        tables = []
        for file in files:
            try:
                with pa.memory_map(str(file)) as source:
                    table = pa.ipc.open_stream(source).read_all()
            except (pa.ArrowInvalid, OSError) as err:
                raise InputError(f"{file}: not a readable Arrow file ({err}); save the dataset again") from None
            tables.append(table.select(_wanted(table.schema.names, keep)))
        if not tables:
            raise InputError(f"{path}: a dataset directory without data files; save the dataset again")
        return pa.concat_tables(tables)
    parquet = sorted(path.rglob("*.parquet"))
    if parquet:
        return pa.concat_tables([_arrow_parquet(f, keep) for f in parquet])
    jsonl = sorted(path.glob("*.jsonl"))
    if jsonl:
        return pa.concat_tables([_json_table(f, keep) for f in jsonl], promote_options="default")
    raise InputError(
        f"{path}: a directory without battles; give a pairs file, a Hugging Face datasets directory "
        "(save_to_disk), or a folder of .parquet or Arena-Hard .jsonl files"
    )


def _load_table(path: Path, format: str | None, keep=()):
    if path.is_dir():
        return _directory_table(path, keep)
    path = _existing(path)
    fmt = _file_format(path, format)
    if fmt == "csv":
        return _arrow_csv(path, keep)
    if fmt == "parquet":
        return _arrow_parquet(path, keep)
    return _json_table(path, keep)


# --- columns -> records -----------------------------------------------------------------


def _encode(column):
    """(labels, codes) of a column: labels (k,) object array of text, codes (m,) int64, -1 = null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    column = pa.table({"c": column}).unify_dictionaries().column("c")
    if column.num_chunks == 0:
        return np.array([], dtype=object), np.zeros(0, dtype=np.int64)
    dictionary = column.chunk(0).dictionary
    if not pa.types.is_string(dictionary.type) and not pa.types.is_large_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    labels = np.array(dictionary.to_pylist(), dtype=object)
    # fill_null only where a chunk has nulls: it costs far more than the zero-copy view.
    codes = np.concatenate([(pc.fill_null(ch.indices, -1) if ch.null_count else ch.indices)
                            .to_numpy(zero_copy_only=False).astype(np.int64, copy=False) for ch in column.chunks])
    return labels, codes


def _numbers(column, name: str, where: str) -> np.ndarray:
    """A numeric column as float64 (null -> NaN); text that is not a number is an error."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        return pc.fill_null(column.cast(pa.float64()), float("nan")).to_numpy()
    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan)
    raw = pd.Series(column.to_pylist(), dtype=object)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    wrong = np.isnan(values) & raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
    if wrong.any():
        example = str(raw[wrong].iloc[0])
        raise InputError(f"{where}: {name} is not a number in rows {_rows(np.flatnonzero(wrong))} (e.g. {example!r}); "
                         "give numbers")
    return values


def _text_codes(column, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(names, codes) of a text column, whitespace stripped: codes (m,) index names (k,); empty is an error."""
    labels, codes = _encode(column)
    stripped = np.array([str(x).strip() for x in labels], dtype=object)
    empty = codes < 0
    if stripped.size:
        empty |= (stripped == "")[np.maximum(codes, 0)]
    if empty.any():
        fix = "fill or drop those rows" if name.startswith("model") or name.startswith("generator") else \
            "give every row a prompt id or drop the column"
        raise InputError(f"{where}: {name} is empty in rows {_rows(np.flatnonzero(empty))}; {fix}")
    return stripped, codes


def _cluster_codes(column, name: str, where: str) -> np.ndarray:
    labels, codes = _text_codes(column, name, where)
    # Codes in sorted order of the ids (as make_records numbers them), counting only ids in use.
    _, rank = np.unique(labels.astype(str), return_inverse=True)
    codes = rank.reshape(-1)[codes]
    return _compact(codes)


def _compact(codes: np.ndarray) -> np.ndarray:
    """Integer codes renumbered 0..C-1 over the values in use, order kept (O(m), no sort)."""
    used = np.zeros(int(codes.max()) + 1, dtype=bool)
    used[codes] = True
    return (np.cumsum(used) - 1)[codes]


def read_pairs_table(table, *, where: str) -> Records:
    """Validated `Records` from a pyarrow table with the pairs columns (see the module docstring).

    The columnar core of `read_pairs`: per-row work is numpy on integer codes; Python loops run
    over the distinct model names and labels only.
    """
    import pandas as pd

    cols = set(table.column_names)
    meta = (table.schema.metadata or {}).get(b"arena_columns")
    found = ", ".join(json.loads(meta) if meta else table.column_names) or "none"
    alpaca = {"generator_1", "generator_2", "preference"} <= cols and "model_a" not in cols
    side = ("generator_1", "generator_2") if alpaca else ("model_a", "model_b")
    missing = [c for c in side if c not in cols]
    if missing:
        raise InputError(
            f"{where}: missing column(s) {', '.join(missing)} (found: {found}); a pairs file needs "
            "model_a, model_b and winner or score (a matrix file has model names as header and first column)"
        )
    if table.num_rows == 0:
        raise InputError(f"{where}: no rows; give at least one comparison (model_a, model_b, winner|score)")
    several = [c for c in table.column_names if c == CRITERION_COLUMN or _SCORE_CRITERION.match(c)]
    if several:
        raise InputError(f"{where}: a multi-criteria file ({', '.join(several[:_SHOW])}); read it with "
                         "read_pairs_or_criteria (`arena rate` does), or drop those columns for one criterion")

    outcomes = [k for k, present in (("winner", "winner" in cols), ("score", "score" in cols),
                                     ("one-hot", any(c in cols for c in ONE_HOT)),
                                     ("preference", alpaca)) if present]
    if not outcomes:
        raise InputError(
            f"{where}: no winner or score column (found: {found}); add winner "
            "(model_a|model_b|tie|tie (bothbad)|both_bad), one-hot winner_model_a/winner_model_b/winner_tie, "
            "or score = P(model_a preferred) in [0, 1]"
        )
    if len(outcomes) > 1:
        if set(outcomes) == {"winner", "score"}:
            raise InputError(f"{where}: both winner and score columns; keep one of them")
        raise InputError(f"{where}: several outcome columns ({', '.join(outcomes)}); keep one of them")
    outcome = outcomes[0]

    names_a, codes_a = _text_codes(table.column(side[0]), side[0], where)
    names_b, codes_b = _text_codes(table.column(side[1]), side[1], where)
    models, inverse = np.unique(np.concatenate([names_a, names_b]).astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    a = inverse[: names_a.size][codes_a]
    b = inverse[names_a.size:][codes_b]

    if outcome == "winner":
        labels, codes = _encode(table.column("winner"))
        per_label = np.array([WINNER_SCORES.get(str(x).strip().lower(), np.nan) for x in labels], dtype=np.float64)
        score = np.where(codes >= 0, per_label[np.maximum(codes, 0)] if labels.size else np.nan, np.nan)
        bad = np.isnan(score)
        if bad.any():
            shown = pd.unique(pd.Series([labels[c] if c >= 0 else "nan" for c in codes[bad][:1000]], dtype=object))
            examples = ", ".join(repr(str(x)) for x in shown[:3])
            raise InputError(
                f"{where}: unknown winner labels {examples} in rows {_rows(np.flatnonzero(bad))}; "
                f"allowed: {', '.join(WINNER_SCORES)} (or give a score column in [0, 1])"
            )
    elif outcome == "one-hot":
        absent = [c for c in ONE_HOT if c not in cols]
        if absent:
            raise InputError(f"{where}: one-hot winner columns need all of {', '.join(ONE_HOT)}; add {', '.join(absent)}")
        hot = np.stack([_numbers(table.column(c), c, where) for c in ONE_HOT], axis=1)  # (m, 3)
        bad = ~np.isin(hot, (0.0, 1.0)).all(axis=1) | (hot.sum(axis=1) != 1.0)
        if bad.any():
            raise InputError(
                f"{where}: one-hot winner columns need exactly one 1 (and two 0) per row; rows "
                f"{_rows(np.flatnonzero(bad))} do not; fix or drop them"
            )
        score = hot[:, 0] + 0.5 * hot[:, 2]
    elif outcome == "preference":
        pref = _numbers(table.column("preference"), "preference", where)
        bad = ~((pref >= 1.0) & (pref <= 2.0))
        if bad.any():
            raise InputError(
                f"{where}: AlpacaEval preference missing or outside [1, 2] in rows {_rows(np.flatnonzero(bad))} "
                f"(e.g. {pref[bad][0]!r}); 1 = output_1 preferred, 2 = output_2: drop failed annotations"
            )
        score = 2.0 - pref
    else:
        score = _numbers(table.column("score"), "score", where)

    cluster = None
    order = CLUSTER_COLUMNS if alpaca else CLUSTER_COLUMNS[:2]
    name = next((c for c in order if c in cols), None)
    if name is not None:
        cluster = _cluster_codes(table.column(name), name, where)

    features, feature_names = None, ()
    found_features = {}
    for c in table.column_names:
        match = _FEATURE.match(c)
        if match:
            found_features.setdefault(match.group(1), set()).add(match.group(2))
    if found_features:
        lonely = [f"feature_{n}_{'b' if s == {'a'} else 'a'}" for n, s in found_features.items() if len(s) == 1]
        if lonely:
            raise InputError(f"{where}: style features come in pairs; add {', '.join(lonely)} (or drop the other side)")
        feature_names = tuple(found_features)
        features = np.stack([
            np.stack([_numbers(table.column(f"feature_{n}_{s}"), f"feature_{n}_{s}", where) for n in feature_names], axis=1)
            for s in "ab"], axis=1)  # (m, 2, k)
    if alpaca:
        # AlpacaEval scores its baseline against itself (50%) so that it sits on the leaderboard;
        # such a row compares nothing: leave it out (the only rows this reader drops).
        keep = a != b
        if not keep.all():
            a, b, score = a[keep], b[keep], score[keep]
            cluster = None if cluster is None else _compact(cluster[keep])
            features = None if features is None else features[keep]
    try:
        return make_records_indexed(tuple(models), a, b, score, cluster=cluster, features=features,
                                    feature_names=feature_names)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def read_pairs(path: str | Path, *, format: str | None = None) -> Records:
    """Read pairwise comparisons into validated `Records`.

    Args:
      path: a CSV/TSV, JSONL/.json, Parquet file or a directory (see the module docstring).
      format: "csv" | "jsonl" | "parquet"; default from the file extension.

    Raises InputError: missing file or columns, empty file, unknown winner labels, missing
    model names, self-matches, NaN or out-of-range scores (with row numbers).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    return read_pairs_table(_load_table(path, format), where=str(path))


# --- several criteria ------------------------------------------------------------------


def _same_models(by_criterion: dict[str, Records]) -> dict[str, Records]:
    """The criteria's records re-indexed over the union of their models (sorted, as read_pairs orders them)."""
    models = np.unique(np.concatenate([np.array(r.models, dtype=str) for r in by_criterion.values()]))
    out = {}
    for c, r in by_criterion.items():
        idx = np.searchsorted(models, np.array(r.models, dtype=str))
        out[c] = make_records_indexed(tuple(models), idx[r.a], idx[r.b], r.score, cluster=r.cluster,
                                      features=r.features, feature_names=r.feature_names)
    return out


def read_pairs_or_criteria(path: str | Path, *, format: str | None = None) -> Records | dict[str, Records]:
    """Read a pairs file that may hold several criteria (helpful, honest, harmless, ...).

    Returns `Records` for an ordinary (single-criterion) pairs file, exactly as `read_pairs`;
    for a multi-criteria file a dict criterion name -> `Records`, all over the same ordered
    model list (the union of the models seen in any criterion). Two layouts:

    * long: a ``criterion`` column naming each row's criterion; every other column as in a
      pairs file (``winner`` or ``score`` etc.), so a pair judged on three criteria is three rows;
    * wide: one ``score_<c>`` column per criterion, P_c(model_a preferred) in [0, 1], instead of
      ``score``/``winner``; an empty cell means the row was not judged on that criterion.

    A criterion may leave a pair unplayed (the analysis then has no games for it there).
    Criteria keep the order of their first appearance (long) or of the columns (wide).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    table = _load_table(path, format)
    where = str(path)
    cols = table.column_names
    wide = [c for c in cols if _SCORE_CRITERION.match(c)]
    long = CRITERION_COLUMN in cols
    if not wide and not long:
        return read_pairs_table(table, where=where)
    if wide and long:
        raise InputError(f"{where}: both a {CRITERION_COLUMN} column and score_<c> columns ({', '.join(wide)}); "
                         "use one layout: a criterion column with winner|score, or one score_<c> column per criterion")
    by_criterion: dict[str, Records] = {}
    if long:
        try:
            labels, codes = _text_codes(table.column(CRITERION_COLUMN), CRITERION_COLUMN, where)
        except InputError as error:  # its fix speaks of prompt ids
            raise InputError(f"{str(error).partition(';')[0]}; name each row's criterion or drop those rows") from None
        # Criteria in order of first appearance; one sub-table per criterion.
        first = {}
        for code in np.unique(codes):
            first.setdefault(str(labels[code]), int(np.flatnonzero(codes == code)[0]))
        names = sorted(first, key=first.get)
        rest = table.drop_columns([CRITERION_COLUMN])
        for c in names:
            mask = np.array([str(x) == c for x in labels], dtype=bool)[codes]
            by_criterion[c] = read_pairs_table(rest.filter(pa.array(mask)), where=f"{where} [criterion {c}]")
    else:
        outcome = [c for c in ("score", "winner", "preference", *ONE_HOT) if c in cols]
        if outcome:
            raise InputError(f"{where}: score_<c> columns ({', '.join(wide)}) and {', '.join(outcome)}; "
                             "keep one: score_<c> per criterion, or one outcome column for a single criterion")
        base = table.drop_columns(wide)
        for col in wide:
            c = _SCORE_CRITERION.match(col).group(1)
            mask = pc.invert(pc.is_null(table.column(col), nan_is_null=True)) if not pa.types.is_string(
                table.column(col).type) else pc.and_(pc.invert(pc.is_null(table.column(col))),
                                                     pc.not_equal(pc.utf8_trim_whitespace(table.column(col)), ""))
            if not pc.any(mask).as_py():
                raise InputError(f"{where}: column {col} is empty; fill it with P(model_a preferred) or drop it")
            sub = base.append_column("score", table.column(col)).filter(mask)
            by_criterion[c] = read_pairs_table(sub, where=f"{where} [criterion {c}]")
    return _same_models(by_criterion)


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

    Directories, JSONL and Parquet files are pairs. A CSV is pairs when its header has model_a and model_b,
    and a matrix when the header's names (after the first cell) are the first column's values.
    """
    if Path(path).is_dir():
        return "pairs"
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


# --- boards by a column (category, language, ...) ---------------------------------------


def read_pairs_by(path: str | Path, column: str = CATEGORY_COLUMN, *,
                  format: str | None = None) -> tuple[Records, dict[str, Records]]:
    """Read a pairs file and split it by the values of `column` (``category``, ``language``, ...).

    Returns (overall records, {value: records of the rows with that value}), values ordered by
    their number of rows (most first, ties by name); each value's records list only the models
    it has. Raises InputError: no such column (naming the columns present), an empty value
    (every row needs one), or anything `read_pairs` refuses.
    """
    import pyarrow as pa

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    table = _load_table(path, format, keep=(column,))
    where = str(path)
    meta = (table.schema.metadata or {}).get(b"arena_columns")
    present = json.loads(meta) if meta else table.column_names
    if column not in table.column_names:
        raise InputError(f"{where}: no column {column!r} to split by (columns: {', '.join(map(str, present))}); "
                         f"give one of them to --by, or add a {column} column")
    if column in (CRITERION_COLUMN, *CLUSTER_COLUMNS) or _SCORE_CRITERION.match(column):
        raise InputError(f"{where}: --by {column}: that column already has a meaning (criterion, prompt id or "
                         "score); split by a column such as category or language")
    several = [c for c in table.column_names if c == CRITERION_COLUMN or _SCORE_CRITERION.match(c)]
    if several:
        raise InputError(f"{where}: a multi-criteria file ({', '.join(several[:_SHOW])}): boards by {column} need "
                         "one criterion; drop the other criteria's rows/columns first")
    labels, codes = _encode(table.column(column))
    names = np.array([str(x).strip() for x in labels], dtype=object)
    empty = codes < 0
    if names.size:
        empty |= (names == "")[np.maximum(codes, 0)]
    if empty.any():
        raise InputError(f"{where}: {column} is empty in rows {_rows(np.flatnonzero(empty))}; "
                         f"give every row a {column} (e.g. 'other') or drop those rows")
    # Labels may repeat after stripping: group by the stripped text.
    values, group = np.unique(names.astype(str), return_inverse=True)
    row_group = group.reshape(-1)[codes]
    sizes = np.bincount(row_group, minlength=values.size)
    order = sorted(range(values.size), key=lambda g: (-int(sizes[g]), str(values[g])))
    rest = table.drop_columns([column]) if column not in ("model_a", "model_b") else table
    overall = read_pairs_table(rest, where=where)
    by = {}
    for g in order:
        if sizes[g] == 0:
            continue
        by[str(values[g])] = read_pairs_table(rest.filter(pa.array(row_group == g)),
                                              where=f"{where} [{column} {values[g]}]")
    return overall, by
