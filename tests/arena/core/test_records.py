"""Records -> counts -> win rates; the AlpacaEval leaderboard win rates as a real-data check."""

from pathlib import Path

import numpy as np
import pytest

from arena.core.records import Records, make_records, pair_counts, win_rates
from arena.errors import InputError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def test_make_records_codes_and_scores():
    r = make_records(["b", "a", "c", "a"], ["a", "c", "b", "b"], [1.0, 0.5, 0.0, 0.25])
    assert isinstance(r, Records)
    assert r.models == ("a", "b", "c")
    np.testing.assert_array_equal(r.a, [1, 0, 2, 0])
    np.testing.assert_array_equal(r.b, [0, 2, 1, 1])
    assert r.a.dtype == np.int64 and r.score.dtype == np.float64
    assert r.cluster is None and len(r) == 4


def test_make_records_with_given_model_order_and_clusters():
    r = make_records(["x", "y"], ["y", "z"], [1, 0], models=["z", "y", "x", "w"], cluster=["p2", "p1"])
    assert r.models == ("z", "y", "x", "w")
    np.testing.assert_array_equal(r.a, [2, 1])
    np.testing.assert_array_equal(r.b, [1, 0])
    np.testing.assert_array_equal(r.cluster, [1, 0])


def test_pair_counts_asymmetric():
    # a beats b twice, b beats a once, one a-c tie, one soft 0.8 for c over b.
    r = make_records(["a", "a", "b", "a", "c"], ["b", "b", "a", "c", "b"], [1, 1, 1, 0.5, 0.8])
    W, N = pair_counts(r)
    expected_W = np.array([[0, 2, 0.5], [1, 0, 0.2], [0.5, 0.8, 0]])
    np.testing.assert_allclose(W, expected_W)
    np.testing.assert_allclose(N, expected_W + expected_W.T)
    np.testing.assert_allclose(N[0, 1], 3)
    np.testing.assert_allclose(win_rates(W, N), [2.5 / 4, 1.2 / 4, 1.3 / 2])


@pytest.mark.parametrize(
    "a, b, s, needle",
    [
        ([], [], [], "no comparisons"),
        (["a", "b"], ["a", "c"], [1, 0], "self-matches"),
        (["a", "b"], ["c", "c"], [1, float("nan")], "rows 2"),
        (["a", "b"], ["c", "c"], [1.5, 0], "outside [0, 1] in rows 1"),
        (["a", "b"], ["c", "c"], [-0.1, 0], "outside [0, 1]"),
        (["a", "b"], ["c"], [1, 0], "equal length"),
    ],
)
def test_make_records_rejects_bad_input(a, b, s, needle):
    with pytest.raises(InputError, match=None) as info:
        make_records(a, b, s)
    assert needle in str(info.value)


def test_make_records_unknown_model_in_order():
    with pytest.raises(InputError, match="'q'.*add it to models"):
        make_records(["a", "q"], ["b", "a"], [1, 0], models=["a", "b"])


def test_win_rates_no_games_names_model():
    r = make_records(["a"], ["b"], [1.0], models=["a", "b", "lonely"])
    W, N = pair_counts(r)
    with pytest.raises(InputError, match="lonely"):
        win_rates(W, N, models=r.models)


def test_alpacaeval_leaderboard_win_rates():
    """AlpacaEval 2.0 (tatsu-lab/alpaca_eval, Apache-2.0): win_rate = 100 (mean(preference) − 1)."""
    pd = pytest.importorskip("pandas")
    folder = DATA / "alpaca_eval"
    prefs = folder / "alpaca_eval2_weighted_gpt4turbo_preferences.csv"
    board = folder / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
    if not prefs.exists() or not board.exists():
        pytest.skip(f"AlpacaEval data not found at {folder} (shared data is not part of a clone)")
    d = pd.read_csv(prefs)
    lb = pd.read_csv(board, index_col=0)
    # preference in [1, 2], 2 = the model (generator_2) beats the baseline (generator_1).
    baseline = "gpt4_1106_preview"
    assert set(d["generator_1"]) == {baseline}
    # The baseline's own rows compare it with itself: not a match (a self-match is rejected);
    # its leaderboard win rate is the trivial 50.
    own = d["model"] == baseline
    with pytest.raises(InputError, match="self-matches"):
        make_records(d["model"].to_numpy(), d["generator_1"].to_numpy(), d["preference"].to_numpy() - 1)
    assert lb.loc[baseline, "win_rate"] == pytest.approx(50.0)
    d = d[~own]
    r = make_records(d["model"].to_numpy(), d["generator_1"].to_numpy(), d["preference"].to_numpy() - 1.0)
    W, N = pair_counts(r)
    rates = win_rates(W, N, models=r.models)
    models = sorted(set(d["model"]))
    assert len(models) == 57
    # One model of the preferences file (text_davinci_003) has no leaderboard row.
    on_board = [name for name in models if name in lb.index]
    assert len(on_board) >= 56
    for name in on_board:
        ours = 100 * rates[r.models.index(name)]
        assert ours == pytest.approx(lb.loc[name, "win_rate"], abs=1e-6), name


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 4), st.sampled_from([0.0, 0.5, 1.0, 0.3, 0.9])),
        min_size=1, max_size=40,
    )
)
def test_counts_invariants(rows):
    names = ["m0", "m1", "m2", "m3", "m4"]
    a = [names[i] for i, _, _ in rows]
    b = [names[(i + d) % 5] for i, d, _ in rows]
    s = [x for _, _, x in rows]
    r = make_records(a, b, s, models=names)
    W, N = pair_counts(r)
    np.testing.assert_allclose(W + W.T, N)
    assert np.trace(N) == 0 and N.sum() == pytest.approx(2 * len(rows))
    # Swapping the sides of every record (with score 1 − s) states the same comparisons;
    # flipping the scores alone transposes W.
    swapped = make_records(b, a, [1 - x for x in s], models=names)
    np.testing.assert_allclose(pair_counts(swapped)[0], W)
    flipped = make_records(a, b, [1 - x for x in s], models=names)
    np.testing.assert_allclose(pair_counts(flipped)[0], W.T)
    played = N.sum(axis=1) > 0
    rates = W.sum(axis=1)[played] / N.sum(axis=1)[played]
    assert ((rates >= 0) & (rates <= 1)).all()
