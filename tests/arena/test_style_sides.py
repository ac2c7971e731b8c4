"""Style control on files whose side a is not random (arena.core.style.both_orientations,
arena.boards.style_control).

The world: A, B, C, V with known strengths at equal style (A best, V worst); V writes ~4.5x
longer answers and the judge rewards length (log-odds 3 per unit of relative difference). In
the fixed layout the lower-index model is always side a, as in a tournament or a file that
`arena export` writes from one. Fitted as read, the centring of the style differences moves
the length effect into θ and V comes out first; in both orientations the fit recovers the truth.
"""

import json

import numpy as np
import pandas as pd
import pytest

from arena.analysis import analyze_records
from arena.boards import style_control
from arena.cli import main
from arena.core.records import Records, make_records
from arena.core.style import both_orientations, side_test
from arena.errors import InputError

NAMES = np.array(["A", "B", "C", "V"])
THETA = np.array([0.6, 0.2, 0.0, -0.3])  # strengths at equal style
TRUE = THETA - THETA.mean()
TOL = 0.12  # θ recovered within this (6,000 comparisons; the as-read fit misses by > 0.5)


def _world(*, fixed: bool, m=6000, seed=0, prompts=True):
    rng = np.random.default_rng(seed)
    length = np.array([200.0, 220.0, 180.0, 900.0])
    i = rng.integers(0, 4, m)
    j = (i + rng.integers(1, 4, m)) % 4
    a, b = (np.minimum(i, j), np.maximum(i, j)) if fixed else (i, j)
    la, lb = length[a] * rng.lognormal(0, 0.4, m), length[b] * rng.lognormal(0, 0.4, m)
    p = 1 / (1 + np.exp(-(THETA[a] - THETA[b] + 3.0 * (la - lb) / (la + lb))))
    y = (rng.random(m) < p).astype(float)
    return pd.DataFrame({"model_a": NAMES[a], "model_b": NAMES[b], "score": y,
                         **({"prompt_id": rng.integers(0, m // 4, m)} if prompts else {}),
                         "feature_sum_assistant_tokens_a": la.round(), "feature_sum_assistant_tokens_b": lb.round()})


def _records(frame):
    f = frame[["feature_sum_assistant_tokens_a", "feature_sum_assistant_tokens_b"]].to_numpy(float)[:, :, None]
    return make_records(frame.model_a, frame.model_b, frame.score, models=list(NAMES),
                        cluster=frame.prompt_id if "prompt_id" in frame else None,
                        features=f, feature_names=("sum_assistant_tokens",))


def _swap(frame, rows):
    out = frame.copy()
    for x, y in (("model_a", "model_b"), ("feature_sum_assistant_tokens_a", "feature_sum_assistant_tokens_b")):
        out.loc[rows, [x, y]] = frame.loc[rows, [y, x]].to_numpy()
    out.loc[rows, "score"] = 1.0 - frame.loc[rows, "score"]
    return out


def _controlled(frame, *, orientations="auto", rounds=0):
    rec = _records(frame)
    raw = analyze_records(rec, rounds=10, seed=0)
    return style_control(raw, rec, rounds=rounds, seed=0, level=0.95, orientations=orientations).extra["style_control"]


def _theta(sc):
    return np.array([sc["ratings"][m]["bt"] for m in NAMES])


@pytest.fixture(scope="module")
def fixed_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sides") / "fixed.csv"
    _world(fixed=True).to_csv(path, index=False)
    return path


def test_arena_rate_recovers_the_truth_on_a_fixed_side_file(capsys, fixed_csv):
    rc = main(["rate", str(fixed_csv), "--style-control", "--json", "--rounds", "20"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    sc = json.loads(captured.out)["style_control"]
    assert sc["orientations"] == "both" and sc["random_sides_p"] < 1e-100
    assert "both orientations" in sc["method"]
    assert np.abs(_theta(sc) - TRUE).max() < TOL
    assert sc["ratings"]["A"]["elo"] > sc["ratings"]["B"]["elo"] > sc["ratings"]["V"]["elo"]
    assert sc["nash"]["weights"]["A"] > 0.99
    assert main(["rate", str(fixed_csv), "--style-control", "--rounds", "10"]) == 0
    assert "each comparison fitted in both orientations" in capsys.readouterr().out
    # the same records fitted as read (the behaviour before): the length effect leaks into θ,
    # and the longest writer V comes out first
    before = _controlled(pd.read_csv(fixed_csv), orientations="as read")
    assert before["orientations"] == "as read"
    assert np.abs(_theta(before) - TRUE).max() > 0.5 and np.argmax(_theta(before)) == 3


@pytest.mark.parametrize("orientations", ["auto", "both"])
def test_swapping_every_row_changes_nothing(orientations):
    frame = _world(fixed=True, m=3000, seed=1)
    sc, swapped = (_controlled(f, orientations=orientations, rounds=20) for f in (frame, _swap(frame, frame.index)))
    assert swapped["orientations"] == sc["orientations"] == "both"
    assert np.abs(_theta(sc) - _theta(swapped)).max() < 1e-9
    assert np.allclose(sc["preference"]["P"], swapped["preference"]["P"], atol=1e-9)
    for m in NAMES:
        assert sc["nash"]["weights"][m] == pytest.approx(swapped["nash"]["weights"][m], abs=1e-9)
        assert np.allclose(sc["ratings"][m]["elo_ci"], swapped["ratings"][m]["elo_ci"], atol=1e-6)
    k = "sum_assistant_tokens"
    assert sc["coefficients"][k]["ratings"] == pytest.approx(swapped["coefficients"][k]["ratings"], abs=1e-9)


def test_in_both_orientations_no_row_orientation_matters():
    """Swap a random half of the rows: with both orientations the fit is the same; as read it
    is not (the centred differences depend on how the file happens to orient its rows)."""
    frame = _world(fixed=True, m=3000, seed=2)
    half = _swap(frame, frame.index[np.random.default_rng(0).random(len(frame)) < 0.5])
    assert np.abs(_theta(_controlled(frame, orientations="both"))
                  - _theta(_controlled(half, orientations="both"))).max() < 1e-9
    assert np.abs(_theta(_controlled(frame, orientations="as read"))
                  - _theta(_controlled(half, orientations="as read"))).max() > 0.3


def test_random_sides_are_fitted_as_read():
    """A random-sided file keeps arena-rank's fit (the default of `arena rate` before)."""
    frame = _world(fixed=False, m=3000, seed=3)
    assert side_test(_records(frame)).random
    auto, as_read = _controlled(frame), _controlled(frame, orientations="as read")
    assert auto["orientations"] == "as read" and np.array_equal(_theta(auto), _theta(as_read))
    assert np.abs(_theta(auto) - TRUE).max() < 0.15
    both = _controlled(frame, orientations="both")  # within noise of the as-read fit
    assert np.abs(_theta(both) - _theta(auto)).max() < 0.02


def test_side_test_separates_fixed_from_random_layouts():
    fixed = side_test(_records(_world(fixed=True, m=6000, seed=4)))
    assert fixed.fixed and fixed.p < 1e-100 and not fixed.random
    few = side_test(_records(_world(fixed=True, m=12, seed=4, prompts=False)))
    assert few.fixed and few.p > 1e-3 and not few.random  # too few for the χ² test, still a fixed layout
    rnd = side_test(_records(_world(fixed=False, m=6000, seed=4)))
    assert rnd.random and not rnd.fixed and rnd.p > 0.01
    # one model always on side a, the rest random: not fixed, but not random either
    frame = _world(fixed=False, m=600, seed=5, prompts=False)
    rows = (frame.model_b == "A").to_numpy()
    partly = side_test(_records(_swap(frame, frame.index[rows])))
    assert not partly.fixed and partly.p < 1e-3 and not partly.random


def test_both_orientations_share_a_bootstrap_unit():
    rec = _records(_world(fixed=True, m=50, seed=6, prompts=False))
    both = both_orientations(rec)
    assert len(both) == 100 and both.cluster.tolist() == list(range(50)) * 2
    assert np.array_equal(both.a[50:], rec.b) and np.array_equal(both.score[50:], 1 - rec.score)
    assert np.array_equal(both.features[50:, 0], rec.features[:, 1])
    with_prompts = both_orientations(_records(_world(fixed=True, m=50, seed=6)))
    assert np.array_equal(with_prompts.cluster[:50], with_prompts.cluster[50:])


def test_intervals_without_prompts_are_those_of_the_comparisons():
    """No prompt ids: the two orientations of a comparison are resampled together. Resampled
    as 2m independent rows, the controlled Elo intervals would be about √2 too narrow."""
    frame = _world(fixed=True, m=1500, seed=7, prompts=False)
    rec = _records(frame)
    raw = analyze_records(rec, rounds=10, seed=0)

    def widths(records, orientations):
        sc = style_control(raw, records, rounds=60, seed=0, level=0.9, orientations=orientations).extra["style_control"]
        return np.array([np.diff(sc["ratings"][m]["elo_ci"])[0] for m in NAMES]), sc

    shared, sc = widths(rec, "both")
    assert "comparison bootstrap" in sc["method"]
    doubled = both_orientations(rec)
    independent = Records(models=rec.models, a=doubled.a, b=doubled.b, score=doubled.score, cluster=None,
                          features=doubled.features, feature_names=doubled.feature_names)
    naive, _ = widths(independent, "as read")  # already both orientations; rows resampled one by one
    assert np.median(shared / naive) > 1.25


def test_unknown_orientations_is_an_input_error():
    rec = _records(_world(fixed=True, m=200, seed=8))
    with pytest.raises(InputError, match="orientations must be one of auto, both, as read"):
        style_control(analyze_records(rec, rounds=5, seed=0), rec, rounds=0, seed=0, level=0.95,
                      orientations="swap")
