"""Reading pairs and matrix files: formats, Chatbot Arena labels, and one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from arena.core.records import pair_counts
from arena.errors import InputError
from arena.io_pairs import detect_format, read_matrix, read_pairs

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

ROWS = [
    {"model_a": "gpt", "model_b": "llama", "winner": "model_a", "prompt_id": "p1"},
    {"model_a": "llama", "model_b": "gpt", "winner": "model_a", "prompt_id": "p1"},
    {"model_a": "gpt", "model_b": "mistral", "winner": "tie", "prompt_id": "p2"},
    {"model_a": "mistral", "model_b": "llama", "winner": "tie (bothbad)", "prompt_id": "p3"},
    {"model_a": "mistral", "model_b": "gpt", "winner": "model_b", "prompt_id": "p3"},
]
# W[gpt, llama] = 1, W[llama, gpt] = 1, gpt-mistral tie, mistral-llama tie, gpt beats mistral.
EXPECTED_W = {("gpt", "llama"): 1, ("llama", "gpt"): 1, ("gpt", "mistral"): 1.5, ("mistral", "gpt"): 0.5,
              ("mistral", "llama"): 0.5, ("llama", "mistral"): 0.5}


def _write_csv(path, rows, columns=None):
    import pandas as pd

    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def _check(rec):
    assert rec.models == ("gpt", "llama", "mistral")
    W, N = pair_counts(rec)
    for (x, y), v in EXPECTED_W.items():
        assert W[rec.models.index(x), rec.models.index(y)] == pytest.approx(v), (x, y)
    assert rec.cluster is not None and len(set(rec.cluster.tolist())) == 3


def test_csv_jsonl_parquet_agree(tmp_path):
    import pandas as pd

    _check(read_pairs(_write_csv(tmp_path / "p.csv", ROWS)))
    jl = tmp_path / "p.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    _check(read_pairs(jl))
    pytest.importorskip("pyarrow")
    pq = tmp_path / "p.parquet"
    pd.DataFrame(ROWS).to_parquet(pq)
    _check(read_pairs(pq))
    assert detect_format(pq) == "pairs" and detect_format(jl) == "pairs"
    assert detect_format(tmp_path / "p.csv") == "pairs"


def test_score_column_and_no_prompt_ids(tmp_path):
    rows = [{"model_a": "a", "model_b": "b", "score": 0.8}, {"model_a": "b", "model_b": "c", "score": 0.25}]
    rec = read_pairs(_write_csv(tmp_path / "s.csv", rows))
    assert rec.cluster is None
    W, _ = pair_counts(rec)
    assert W[0, 1] == pytest.approx(0.8) and W[1, 0] == pytest.approx(0.2)
    assert W[2, 1] == pytest.approx(0.75)


def test_explicit_format_overrides_extension(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("\n".join(json.dumps(r) for r in ROWS))
    with pytest.raises(InputError, match="extension"):
        read_pairs(path)
    _check(read_pairs(path, format="jsonl"))


@pytest.mark.parametrize(
    "rows, columns, needle",
    [
        ([{"a": "x", "model_b": "y", "winner": "tie"}], None, "missing column(s) model_a (found: a, model_b, winner)"),
        ([{"model_a": "x", "model_b": "y"}], None, "no winner or score column"),
        ([{"model_a": "x", "model_b": "y", "winner": "A"}, {"model_a": "x", "model_b": "y", "winner": "tie"}],
         None, "unknown winner labels 'A' in rows 1; allowed: model_a, model_b, tie, tie (bothbad)"),
        ([{"model_a": "x", "model_b": "x", "winner": "tie"}], None, "self-matches"),
        ([{"model_a": "x", "model_b": "y", "score": 0.2}, {"model_a": "x", "model_b": "y", "score": 1.7}],
         None, "outside [0, 1] in rows 2"),
        ([{"model_a": "x", "model_b": "y", "score": 0.2}, {"model_a": "x", "model_b": "y", "score": None}],
         None, "NaN or infinite in rows 2"),
        ([{"model_a": "x", "model_b": "y", "score": "high"}], None, "not a number in rows 1"),
        ([{"model_a": "x", "model_b": "y", "score": 1, "winner": "tie"}], None, "both winner and score"),
        ([], ["model_a", "model_b", "winner"], "no rows"),
        ([{"model_a": "x", "model_b": "y", "score": 1, "prompt_id": None},
          {"model_a": "x", "model_b": "y", "score": 1, "prompt_id": "q"}], None, "prompt_id is empty in rows 1"),
    ],
)
def test_bad_pairs_files(tmp_path, rows, columns, needle):
    path = _write_csv(tmp_path / "bad.csv", rows, columns)
    with pytest.raises(InputError) as info:
        read_pairs(path)
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_pairs(empty)
    with pytest.raises(InputError, match="no such file"):
        read_pairs(tmp_path / "nope.csv")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"model_a": "x", "model_b": "y", "winner": "tie"}\n{oops\n')
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_pairs(bad)


MATRIX = "label,b,a,c\nb,,0.7,0.4\na,0.3,0.5,0.9\nc,0.6,0.1,0.5\n"


def test_read_matrix_reorders_columns_and_fills_diagonal(tmp_path):
    path = tmp_path / "m.csv"
    # Columns in a different order (a, b, c) from the rows (b, a, c).
    path.write_text("x,a,b,c\nb,0.7,,0.4\na,0.5,0.3,0.9\nc,0.1,0.6,0.5\n")
    names, P = read_matrix(path)
    assert names == ["b", "a", "c"]
    np.testing.assert_allclose(P, [[0.5, 0.7, 0.4], [0.3, 0.5, 0.9], [0.6, 0.1, 0.5]])
    assert detect_format(path) == "matrix"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("x,a,b\na,0.5,0.6\nb,0.4,0.5\nc,0.5,0.5\n", "not square: 3 rows but 2 columns"),
        ("x,a,b\na,0.5,0.6\nc,0.4,0.5\n", "only in rows: c; only in columns: b"),
        ("x,a,b\na,0.5,1.6\nb,-0.6,0.5\n", "outside [0, 1]"),
        ("x,a,b\na,0.5,0.6\nb,0.6,0.5\n", "P + Pᵀ ≠ 1: P[a, b] + P[b, a] = 1.2"),
        ("x,a,b\na,0.4,0.6\nb,0.4,0.5\n", "diagonal entry P[a, a]"),
        ("x,a,b\na,0.5,high\nb,0.4,0.5\n", "is not a number"),
        ("x,a,b\na,0.5,\nb,0.4,0.5\n", "missing entry P[a, b]"),
        ("x,a,a\na,0.5,0.5\na,0.5,0.5\n", "duplicate"),
    ],
)
def test_bad_matrices(tmp_path, text, needle):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_matrix(path)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_detect_format_rejects_unknown_csv(tmp_path):
    path = _write_csv(tmp_path / "u.csv", [{"foo": 1, "bar": 2}])
    with pytest.raises(InputError, match="found columns: foo, bar"):
        detect_format(path)


def test_citations_matrix_is_a_matrix_header_but_not_probabilities():
    """The Stigler citation counts have the matrix layout; the reader refuses counts."""
    path = DATA / "bradleyterry2" / "citations_matrix.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path.parent}")
    assert detect_format(path) == "matrix"
    with pytest.raises(InputError, match="outside \\[0, 1\\]"):
        read_matrix(path)


def test_prd_vicuna80_labels_are_not_scores():
    """PRD's score column is a label (1, 2, 3), not a probability: say so instead of guessing."""
    path = DATA / "prd_vicuna80" / "all_reviews_compact.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path.parent}")
    with pytest.raises(InputError, match="outside \\[0, 1\\]"):
        read_pairs(path)
