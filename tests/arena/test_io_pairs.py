"""Reading pairs and matrix files: formats, Chatbot Arena labels, and one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from arena.core.records import pair_counts
from arena.errors import InputError
from arena.io_pairs import WINNER_SCORES, detect_format, read_matrix, read_pairs

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


# --- formats researchers already have (tests/data/formats) ------------------------------

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


def _W(rec):
    W, N = pair_counts(rec)
    ix = {m: i for i, m in enumerate(rec.models)}
    return (lambda x, y: W[ix[x], ix[y]]), (lambda x, y: N[ix[x], ix[y]])


def test_both_bad_winner_and_question_id_cluster():
    """lmarena's arena-rank labels: both_bad is a tie; question_id is the bootstrap cluster."""
    rec = read_pairs(FORMATS / "both_bad.csv")
    W, N = _W(rec)
    assert rec.models == ("alpha", "beta", "gamma")
    assert (W("alpha", "beta"), W("beta", "alpha")) == (1.5, 1.5)
    assert (W("beta", "gamma"), W("gamma", "beta")) == (0.5, 0.5)
    assert (W("alpha", "gamma"), W("gamma", "alpha")) == (1.0, 0.0)
    assert rec.cluster.tolist() == [0, 0, 1, 1, 2]


def test_one_hot_winner_columns():
    rec = read_pairs(FORMATS / "one_hot.csv")
    W, N = _W(rec)
    assert rec.cluster is None  # `id` is a row id, not a prompt
    assert (W("m1", "m2"), W("m2", "m1")) == (1.0, 0.0)
    assert (W("m2", "m3"), W("m3", "m2")) == (1.0, 0.0)
    assert (W("m1", "m3"), W("m3", "m1")) == (1.5, 0.5)


def test_one_hot_rows_with_two_winners_are_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("model_a,model_b,winner_model_a,winner_model_b,winner_tie\nx,y,1,0,0\nx,y,1,1,0\n")
    with pytest.raises(InputError, match="exactly one 1 .* rows 2 do not"):
        read_pairs(path)
    path.write_text("model_a,model_b,winner_model_a,winner_model_b\nx,y,1,0\n")
    with pytest.raises(InputError, match="add winner_tie"):
        read_pairs(path)


def test_alpaca_eval_annotations():
    """AlpacaEval: preference 1 = output_1 (generator_1) preferred, 2 = output_2; soft in between."""
    rec = read_pairs(FORMATS / "alpaca_eval_annotations.json")
    W, N = _W(rec)
    assert rec.models == ("gpt4_1106_preview", "small", "tiny")
    assert W("gpt4_1106_preview", "tiny") == pytest.approx(0.75 + 0.0 + 0.5)
    assert W("tiny", "gpt4_1106_preview") == pytest.approx(1.75)
    assert (W("gpt4_1106_preview", "small"), W("small", "gpt4_1106_preview")) == (1.0, 0.0)
    # AlpacaEval's win rate of tiny: 100 * (mean(preference) - 1) = 58.33
    assert 100 * W("tiny", "gpt4_1106_preview") / N("tiny", "gpt4_1106_preview") == pytest.approx(175 / 3)
    assert len(set(rec.cluster.tolist())) == 3  # clusters are the instructions


def test_alpaca_eval_failed_annotation_is_refused(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"generator_1": "x", "generator_2": "y", "preference": 1.2}\n'
                    '{"generator_1": "x", "generator_2": "y", "preference": null}\n')
    with pytest.raises(InputError, match="preference missing or outside \\[1, 2\\] in rows 2"):
        read_pairs(path)


def test_alpaca_eval_real_preferences_reproduce_the_leaderboard():
    """The shared AlpacaEval 2.0 preferences give every model's published win_rate."""
    import pandas as pd

    folder = DATA / "alpaca_eval"
    if not folder.exists():
        pytest.skip(f"shared data not found at {folder}")
    rec = read_pairs(folder / "alpaca_eval2_weighted_gpt4turbo_preferences.csv")
    board = pd.read_csv(folder / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)
    W, N = _W(rec)
    base = "gpt4_1106_preview"
    checked = 0
    for model in rec.models:
        if model == base or model not in board.index:
            continue
        assert 100 * W(model, base) / N(model, base) == pytest.approx(board.loc[model, "win_rate"], abs=1e-6), model
        checked += 1
    assert checked >= 50
    assert rec.cluster is not None and rec.cluster.max() + 1 == 805  # instruction_idx


def test_arena_hard_judgment_directory():
    """Arena-Hard: game 1 has the baseline as A, game 2 the model; ">>" counts 3; null games skipped."""
    rec = read_pairs(FORMATS / "arena_hard")
    W, N = _W(rec)
    base = "gpt-4-0314"
    assert rec.models == (base, "modelx", "modely")
    # modelx: q1 game 1 B>A (model wins, 1 copy), game 2 A>>B (model wins, 3 copies); q2 A=B tie.
    assert (W(base, "modelx"), N(base, "modelx")) == (0.5, 5)
    # modely: q1 game 1 A>B (baseline wins), game 2 B>>A (baseline wins, 3 copies).
    assert (W(base, "modely"), N(base, "modely")) == (4.0, 4)
    assert np.all(rec.a == 0)  # model_a is the baseline, as in Arena-Hard's battles
    assert len(set(rec.cluster.tolist())) == 2
    single = read_pairs(FORMATS / "arena_hard" / "modely.jsonl")
    assert len(single) == 4


def test_arena_hard_unknown_verdict_is_refused(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"question_id": "q", "model": "m", "games": [{"score": "A>B"}, {"score": "A>>>B"}]}\n')
    with pytest.raises(InputError, match="game 2 score 'A>>>B' is not one of"):
        read_pairs(path)


def test_style_feature_columns():
    rec = read_pairs(FORMATS / "style_features.csv")
    assert rec.feature_names == ("tokens", "bold")
    assert rec.features.shape == (3, 2, 2)
    # row 2: short (a) 95 tokens vs long (b) 380
    assert rec.features[1].tolist() == [[95.0, 0.0], [380.0, 2.0]]


def test_feature_columns_come_in_pairs(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("model_a,model_b,score,feature_len_a\nx,y,1,3\n")
    with pytest.raises(InputError, match="add feature_len_b"):
        read_pairs(path)


def test_huggingface_datasets_directories(tmp_path):
    datasets = pytest.importorskip("datasets")
    import pandas as pd

    rows = pd.read_csv(FORMATS / "both_bad.csv").to_dict("list")
    ds = datasets.Dataset.from_dict({**rows, "conversation_a": ["long text"] * 5})
    ds.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dict"))
    expected = read_pairs(FORMATS / "both_bad.csv")
    for folder in ("single", "dict"):
        rec = read_pairs(tmp_path / folder)
        assert rec.models == expected.models and np.array_equal(rec.score, expected.score)
        assert np.array_equal(rec.cluster, expected.cluster)
    assert detect_format(tmp_path / "dict") == "pairs"
    # A snapshot layout: data/train-*.parquet
    (tmp_path / "snap" / "data").mkdir(parents=True)
    pd.DataFrame(rows).iloc[:3].to_parquet(tmp_path / "snap" / "data" / "train-00000-of-00002.parquet")
    pd.DataFrame(rows).iloc[3:].to_parquet(tmp_path / "snap" / "data" / "train-00001-of-00002.parquet")
    rec = read_pairs(tmp_path / "snap")
    assert np.array_equal(rec.score, expected.score) and np.array_equal(rec.a, expected.a)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="a directory without battles"):
        read_pairs(tmp_path / "empty")


def test_columnar_reader_agrees_with_make_records(tmp_path):
    """The columnar path gives the records make_records builds from the same rows (names padded)."""
    from arena.core.records import make_records

    rng = np.random.default_rng(3)
    names = np.array(["m0", "m1", " m2", "m3 ", "10"])
    m = 500
    ia = rng.integers(0, 5, m)
    ib = (ia + rng.integers(1, 5, m)) % 5
    labels = rng.choice(list(WINNER_SCORES), m)
    pid = rng.integers(0, 40, m)
    import pandas as pd

    pd.DataFrame({"model_a": names[ia], "model_b": names[ib], "winner": labels, "prompt_id": pid}).to_csv(
        tmp_path / "r.csv", index=False)
    got = read_pairs(tmp_path / "r.csv")
    want = make_records([n.strip() for n in names[ia]], [n.strip() for n in names[ib]],
                        [WINNER_SCORES[x] for x in labels], cluster=pid.astype(str))
    assert got.models == want.models
    for field in ("a", "b", "score", "cluster"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field
