"""Uncertainty from the shared resamples: matrix cells, ranks, Nash, top set, cycle survival."""

from __future__ import annotations

import numpy as np
import pytest

from arena.core.bootstrap import bootstrap_bradley_terry
from arena.core.matrix import preference_matrix_from_counts
from arena.core.records import pair_counts
from arena.core.uncertainty import (
    cycle_survival,
    judgments_to_separate,
    matrix_intervals,
    nash_uncertainty,
    rank_intervals,
    significant_top_set,
)
from arena.errors import InputError
from benchmarks.bench_coverage import GAMES, clustered_records, matrix_coverage, nash_coverage


def test_cluster_bootstrap_cells_cover_at_their_level_where_wilson_does_not():
    """32 prompts × 4 judgments per pair with between-prompt spread: the target is the mean
    preference over prompts, E_z σ(Δ + τ z). The benchmark's own experiment, seeded; 3 cells × 150
    data sets = 450 intervals, so the Monte Carlo standard error of a coverage near 0.95 is about 0.01."""
    boot, wilson, total = matrix_coverage(150, 400, 1)
    assert total == 450
    assert boot >= 0.93  # measured 0.949
    assert wilson < 0.93  # measured 0.900: the independence assumption undercovers


def test_matrix_intervals_are_complementary_and_contain_the_estimate():
    rng = np.random.default_rng(0)
    records = clustered_records(rng, np.array([0.0, 1.0, -1.0, 0.5]), prompts=10, per_prompt=2)
    bt = bootstrap_bradley_terry(records, rounds=100, seed=0, keep_pairs=True)
    W, N = pair_counts(records)
    P = preference_matrix_from_counts(W, N).P
    lo, hi = matrix_intervals(bt.pair_samples, bt.cells, P, level=0.9)
    assert np.allclose(lo + hi.T, 1.0) and (lo <= P).all() and (P <= hi).all()
    assert bt.pair_samples.shape == (100, 6)
    # the resampled cells and the resampled ratings come from the same rounds: a round where
    # m1 beats m0 more often also has the larger θ gap, on average
    gap = bt.samples[:, 1] - bt.samples[:, 0]
    col = list(bt.cells).index(0 * 4 + 1)  # P(m0 ≻ m1)
    assert np.corrcoef(gap, bt.pair_samples[:, col])[0, 1] < -0.5


def test_matrix_intervals_bad_input():
    with pytest.raises(InputError, match="pair_samples"):
        matrix_intervals(np.zeros((5, 2)), np.array([1]), np.full((2, 2), 0.5))


def test_rank_intervals_known_answer():
    # model 0 always first; 1 and 2 swap places half the time; 3 always last
    T = np.array([[3.0, 2.0, 1.0, 0.0], [3.0, 1.0, 2.0, 0.0]] * 50)
    R = rank_intervals(T, level=0.9)
    assert R.tolist() == [[1, 1], [2, 3], [2, 3], [4, 4]]
    # ties share the better rank
    assert rank_intervals(np.array([[1.0, 1.0, 0.0]])).tolist() == [[1, 1], [1, 1], [3, 3]]


def test_significant_top_set():
    # a significantly beats b and c; b vs c undecided
    lo = np.array([[0.5, 0.6, 0.7], [0.2, 0.5, 0.45], [0.1, 0.3, 0.5]])
    assert significant_top_set(lo) == [0]
    # a vs b undecided, both beat c: top set {a, b}
    lo = np.array([[0.5, 0.4, 0.7], [0.4, 0.5, 0.6], [0.1, 0.2, 0.5]])
    assert significant_top_set(lo) == [0, 1]
    # a ~ b, b ~ c, a beats c: c is still not separable from the top through b
    lo = np.array([[0.5, 0.4, 0.7], [0.4, 0.5, 0.4], [0.1, 0.4, 0.5]])
    assert significant_top_set(lo) == [0, 1, 2]
    # nothing significant: everyone
    assert significant_top_set(np.full((4, 4), 0.3)) == [0, 1, 2, 3]


def test_cycle_survival_counts_rounds_with_every_edge():
    n = 3
    cells = np.array([0 * n + 1, 0 * n + 2, 1 * n + 2])  # (0,1), (0,2), (1,2)
    # cycle 0 ≻ 1 ≻ 2 ≻ 0 needs P01 > ½, P12 > ½, P02 < ½
    S = np.array([[0.6, 0.4, 0.6], [0.6, 0.6, 0.6], [0.6, 0.4, 0.7], [0.4, 0.4, 0.6]], dtype=np.float32)
    assert cycle_survival(S, cells, n, [(0, 1, 2)]).tolist() == [0.5]
    assert cycle_survival(S, cells, n, [(0, 2, 1)]).tolist() == [0.0]


def test_nash_uncertainty_rock_paper_scissors_and_a_dominated_model():
    # rock, paper, scissors and a fourth model that loses to all: its weight is 0 in every round
    n = 4
    rng = np.random.default_rng(0)
    base = np.array([[0.5, 0.3, 0.7, 0.9], [0.7, 0.5, 0.3, 0.9], [0.3, 0.7, 0.5, 0.9], [0.1, 0.1, 0.1, 0.5]])
    cells = np.array([i * n + j for i in range(n) for j in range(i + 1, n)])
    i, j = np.divmod(cells, n)
    S = np.clip(base[i, j] + rng.normal(0.0, 0.02, (300, cells.size)), 0, 1)
    p_hat = np.array([1 / 3, 1 / 3, 1 / 3, 0.0])
    u = nash_uncertainty(S, cells, p_hat, level=0.9, max_rounds=100)
    assert u.rounds == 100 and u.failed == 0 and u.exploitability.shape == (300,)
    assert u.support_probability.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert (u.lo[:3] < 1 / 3).all() and (u.hi[:3] > 1 / 3).all() and u.hi[3] == 0.0
    assert 0.0 < u.exploitability_median < u.exploitability_upper < 0.05


def test_judgments_to_separate():
    # half-width 0.1 at a gap of 0.05 with 100 games: about 4x as many
    assert judgments_to_separate(0.55, 0.45, 0.65, 100) == pytest.approx(400.0)
    assert judgments_to_separate(0.5, 0.4, 0.6, 100) is None


def _nash_coverage(datasets: int, nash_rounds: int) -> np.ndarray:
    """bench_coverage's Nash coverage on its "interior" game: rock–paper–scissors with unequal
    edges and a dominated fourth model, Nash (0.375, 0.25, 0.375, 0); 400 judgments per pair."""
    truth, covered, _ = nash_coverage(GAMES["interior"], datasets=datasets, rounds=200, nash_rounds=nash_rounds,
                                      per_pair=400, seed=0)
    assert np.allclose(truth, [0.375, 0.25, 0.375, 0.0], atol=1e-9)
    return covered


def test_nash_intervals_cover_the_true_weights_of_a_known_game():
    """Seeded, 10 data sets × 4 weights; benchmarks/bench_coverage.py measures it on 50 data sets
    (and on a game with a model on the edge of the support, where coverage is lower)."""
    cov = _nash_coverage(datasets=10, nash_rounds=50)
    assert cov[3] == 1.0  # the dominated model: weight 0 in the truth and in every resample
    assert cov.mean() >= 0.85


@pytest.mark.slow
def test_nash_intervals_cover_at_least_ninety_percent_on_many_data_sets():
    cov = _nash_coverage(datasets=60, nash_rounds=200)
    assert cov.mean() >= 0.9


def test_resampled_exploitability_matches_the_explicit_matrices():
    from arena.core.uncertainty import resampled_matrix

    rng = np.random.default_rng(0)
    n = 5
    cells = np.array([i * n + j for i in range(n) for j in range(i + 1, n) if (i, j) != (1, 3)])  # one unplayed
    S = rng.uniform(0.3, 0.7, (20, cells.size)).astype(np.float32)
    p = rng.dirichlet(np.ones(n))
    u = nash_uncertainty(S, cells, p, max_rounds=2)
    explicit = [max(0.0, float(((resampled_matrix(S, cells, n, r) - 0.5) @ p).max())) for r in range(20)]
    assert np.allclose(u.exploitability, explicit, atol=1e-12)
    assert u.exploitability_median == pytest.approx(np.median(explicit))
