"""Bootstrap and analytic intervals for Bradley–Terry."""

import numpy as np
import pytest

from arena.core.bootstrap import (
    _chord_fits,
    _inverse_information,
    _multinomial_sampler,
    analytic_bradley_terry_intervals,
    bootstrap_bradley_terry,
)
from arena.core.bradley_terry import fit_bradley_terry, fit_bradley_terry_batch
from arena.core.records import Records, make_records, pair_counts
from arena.errors import InputError


def _synthetic(n, m, seed, p_tie=0.0, theta=None, copies=1):
    """m comparisons on random pairs; each prompt's outcome repeated `copies` times."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n) if theta is None else np.asarray(theta, float)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    s = np.where(rng.random(m) < p_tie, 0.5, (rng.random(m) < p).astype(float))
    cluster = np.repeat(np.arange(m), copies)
    rec = Records(
        models=tuple(f"m{i}" for i in range(n)), a=np.repeat(a, copies), b=np.repeat(b, copies),
        score=np.repeat(s, copies), cluster=cluster if copies > 1 else None,
    )
    return rec, theta


def test_seeded_and_deterministic():
    rec, _ = _synthetic(6, 600, seed=1, p_tie=0.1)
    x = bootstrap_bradley_terry(rec, rounds=50, seed=3)
    y = bootstrap_bradley_terry(rec, rounds=50, seed=3)
    z = bootstrap_bradley_terry(rec, rounds=50, seed=4)
    np.testing.assert_array_equal(x.samples, y.samples)
    assert not np.allclose(x.samples, z.samples)
    assert x.method == "multinomial" and x.rounds == 50 and x.degenerate == 0


def test_interval_contains_estimate_and_is_ordered():
    rec, _ = _synthetic(8, 2000, seed=2, p_tie=0.1)
    ci = bootstrap_bradley_terry(rec, rounds=200, seed=0)
    W, _ = pair_counts(rec)
    np.testing.assert_allclose(ci.theta, fit_bradley_terry(W).theta, atol=1e-12)
    assert (ci.lo < ci.theta).all() and (ci.theta < ci.hi).all()
    np.testing.assert_allclose(ci.samples.mean(axis=1), 0.0, atol=1e-9)  # every round mean zero
    # Asymmetric: the strongest model's interval sits above the weakest's.
    top, bottom = np.argmax(ci.theta), np.argmin(ci.theta)
    assert ci.lo[top] > ci.hi[bottom]


def test_coverage_on_known_theta():
    """Loose sanity check: 95% intervals cover the true (centred) θ about 95% of the time."""
    truth = np.array([0.8, -0.4, 0.1, -0.9, 0.4])
    hits = []
    for rep in range(30):
        rec, _ = _synthetic(5, 800, seed=100 + rep, theta=truth)
        ci = bootstrap_bradley_terry(rec, rounds=200, seed=rep)
        t = truth - truth.mean()
        hits.append((ci.lo <= t) & (t <= ci.hi))
    coverage = np.mean(hits)
    assert 0.85 <= coverage <= 1.0, coverage
    # A 50% interval must cover far less often: the level is honoured.
    rec, _ = _synthetic(5, 800, seed=7, theta=truth)
    narrow = bootstrap_bradley_terry(rec, rounds=200, seed=0, level=0.5)
    wide = bootstrap_bradley_terry(rec, rounds=200, seed=0, level=0.95)
    assert ((narrow.hi - narrow.lo) < 0.6 * (wide.hi - wide.lo)).all()


def test_cluster_bootstrap_resamples_prompts():
    # Each prompt's judgment repeated 9 times: the prompt is the unit; resampling judgments
    # would understate the spread by about 3 (= √9).
    rec, _ = _synthetic(5, 400, seed=5, copies=9)
    clustered = bootstrap_bradley_terry(rec, rounds=300, seed=0)
    assert clustered.method == "cluster"
    flat = Records(models=rec.models, a=rec.a, b=rec.b, score=rec.score, cluster=None)
    naive = bootstrap_bradley_terry(flat, rounds=300, seed=0)
    assert naive.method == "multinomial"
    ratio = np.median(clustered.se / naive.se)
    assert 2.2 < ratio < 3.8, ratio
    # The cluster-robust sandwich sees the same dependence; the plain Fisher interval does not.
    W, N = pair_counts(rec)
    fit = fit_bradley_terry(W)
    sand = analytic_bradley_terry_intervals(W, N, fit, records=rec)
    fisher = analytic_bradley_terry_intervals(W, N, fit)
    assert sand.method == "cluster-sandwich" and fisher.method == "fisher"
    assert 2.2 < np.median(sand.se / fisher.se) < 3.8
    assert 0.75 < np.median(sand.se / clustered.se) < 1.3


def test_make_records_prompt_ids_give_cluster_bootstrap():
    a = ["x", "y", "z", "x"] * 10
    b = ["y", "z", "x", "z"] * 10
    s = [1, 1, 1, 0] * 10
    rec = make_records(a, b, s, cluster=[f"p{k // 2}" for k in range(40)])
    assert bootstrap_bradley_terry(rec, rounds=20, seed=0).method == "cluster"


def test_analytic_matches_bootstrap_without_ties():
    rec, _ = _synthetic(6, 6000, seed=11)
    W, N = pair_counts(rec)
    fit = fit_bradley_terry(W)
    boot = bootstrap_bradley_terry(rec, rounds=400, seed=0)
    fisher = analytic_bradley_terry_intervals(W, N, fit)
    sand = analytic_bradley_terry_intervals(W, N, fit, records=rec)
    assert sand.method == "sandwich" and fisher.rounds == 0
    np.testing.assert_allclose(fisher.se, boot.se, rtol=0.2)
    # Hard 0/1 outcomes: E[(s − p)²] = p(1 − p), so the sandwich is close to Fisher.
    np.testing.assert_allclose(sand.se, fisher.se, rtol=0.1)
    np.testing.assert_allclose(fisher.hi - fisher.theta, fisher.theta - fisher.lo)
    assert (fisher.lo < fit.theta).all()


def test_sandwich_is_narrower_for_soft_scores():
    rng = np.random.default_rng(0)
    n, m = 5, 3000
    theta = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    # Soft judgments near the true probability: far less noise than a 0/1 outcome.
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    s = np.clip(p + rng.normal(0, 0.05, m), 0, 1)
    rec = Records(models=tuple("abcde"), a=a, b=b, score=s)
    W, N = pair_counts(rec)
    fit = fit_bradley_terry(W)
    sand = analytic_bradley_terry_intervals(W, N, fit, records=rec)
    fisher = analytic_bradley_terry_intervals(W, N, fit)
    assert (sand.se < 0.4 * fisher.se).all()
    boot = bootstrap_bradley_terry(rec, rounds=300, seed=1)
    np.testing.assert_allclose(sand.se, boot.se, rtol=0.25)


def test_degenerate_rounds_use_fallback_prior():
    # A model with one loss and one win: many resamples leave it unbeaten or winless.
    rec = make_records(["a", "b", "c", "a", "b", "c", "d", "a"], ["b", "c", "a", "c", "a", "b", "a", "d"],
                       [1, 1, 1, 1, 0, 1, 1, 1])
    ci = bootstrap_bradley_terry(rec, rounds=100, seed=0)
    assert ci.degenerate > 0
    assert np.isfinite(ci.samples).all()
    with_prior = bootstrap_bradley_terry(rec, rounds=100, seed=0, prior=0.5)
    assert with_prior.degenerate == 0


def test_disconnected_records_error_and_prior():
    rec = make_records(["a", "a", "b"], ["b", "c", "c"], [1, 1, 0.5])
    with pytest.raises(InputError, match="a never loses"):
        bootstrap_bradley_terry(rec, rounds=10)
    ci = bootstrap_bradley_terry(rec, rounds=10, prior=0.1)
    assert ci.theta[0] == ci.theta.max()


@pytest.mark.parametrize("kwargs, needle", [({"level": 1.0}, "level"), ({"rounds": 0}, "rounds")])
def test_bad_arguments(kwargs, needle):
    rec, _ = _synthetic(3, 100, seed=0)
    with pytest.raises(InputError, match=needle):
        bootstrap_bradley_terry(rec, **kwargs)


def test_chord_iteration_reaches_the_exact_fit():
    rec, _ = _synthetic(7, 3000, seed=4, p_tie=0.1)
    W, N = pair_counts(rec)
    full = fit_bradley_terry(W)
    rng = np.random.default_rng(0)
    i, j = np.triu_indices(7, 1)
    games = np.stack([rng.poisson(N[i, j]) for _ in range(3)]).astype(float)  # (3, pairs)
    frac = W[i, j] / N[i, j]
    wins_low = rng.binomial(games.astype(int), frac).astype(float)
    E = np.zeros((7, i.size))
    E[i, np.arange(i.size)] = 1
    E[j, np.arange(i.size)] = -1
    from scipy import sparse

    Hinv = _inverse_information(N, full.theta, 0.0)
    theta, conv = _chord_fits(wins_low.T, games.T, sparse.csr_matrix(E), i, j, full.theta, Hinv, 0.0, 1e-10, 60)
    assert conv.all()
    Wr = np.zeros((3, 7, 7))
    Wr[:, i, j] = wins_low
    Wr[:, j, i] = games - wins_low
    exact, _, _ = fit_bradley_terry_batch(Wr)
    np.testing.assert_allclose(theta.T, exact, atol=1e-8)


def test_multinomial_sampler_is_exact_in_moments():
    rng = np.random.default_rng(0)
    p = np.array([0.55, 0.25, 0.15, 0.05])
    for total in (3, 400, 10_000):
        x = _multinomial_sampler(total, total * p)(rng, 40_000).T  # (rounds, K)
        assert (x.sum(axis=1) == total).all()
        np.testing.assert_allclose(x.mean(axis=0), total * p, rtol=0.03)
        np.testing.assert_allclose(x.var(axis=0), total * p * (1 - p), rtol=0.06)
        cov01 = np.cov(x[:, 0], x[:, 1])[0, 1]
        assert cov01 == pytest.approx(-total * p[0] * p[1], rel=0.08)


def test_round_connectivity_check_matches_a_direct_check():
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    from arena.core.bootstrap import _connected_rounds, _edge_structure, _unit_tables, _wins_from_pairs

    # Sparse data: many resampled rounds lose strong connectivity, many keep it.
    rng = np.random.default_rng(0)
    n, m = 12, 70
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    rec = Records(models=tuple(map(str, range(n))), a=a, b=b, score=(rng.random(m) < 0.5).astype(float))
    W, N = pair_counts(rec)
    U, size, cells, _ = _unit_tables(rec)
    i, j = np.divmod(cells, n)
    p = cells.size
    weights = _multinomial_sampler(int(size.sum()), size)(rng, 300).astype(float)
    sums = U.T.tocsr() @ weights  # (2·pairs, rounds)
    ok = _connected_rounds(sums[:p], sums[p:], _edge_structure(W[i, j], N[i, j], i, j, n), n)
    tables = _wins_from_pairs(sums[:p], sums[p:], cells, n)
    direct = np.array([
        connected_components(sparse.csr_matrix(t > 0), directed=True, connection="strong")[0] == 1 for t in tables
    ])
    assert 30 < direct.sum() < 290  # both kinds occur
    np.testing.assert_array_equal(ok, direct)


def test_unused_cluster_ids_are_not_resampled_as_empty_prompts():
    rec, _ = _synthetic(4, 300, seed=9, copies=3)
    spread = Records(models=rec.models, a=rec.a, b=rec.b, score=rec.score, cluster=rec.cluster * 7 + 1000)
    x = bootstrap_bradley_terry(rec, rounds=40, seed=2)
    y = bootstrap_bradley_terry(spread, rounds=40, seed=2)
    np.testing.assert_allclose(x.samples, y.samples)


def test_analytic_with_prior_on_a_disconnected_graph():
    W = np.array([[0, 3, 2], [0, 0, 1], [0, 1, 0.0]])  # model 0 never loses
    fit = fit_bradley_terry(W, prior=0.5)
    ci = analytic_bradley_terry_intervals(W, W + W.T, fit)
    assert np.isfinite(ci.se).all() and (ci.se > 0).all()
    # The prior's precision bounds the variance: se <= 1/sqrt(prior).
    assert (ci.se <= 1 / np.sqrt(0.5) + 1e-12).all()
    with pytest.raises(InputError, match="level"):
        analytic_bradley_terry_intervals(W, W + W.T, fit, level=0)


def test_progress_callback_reports_every_chunk():
    rec, _ = _synthetic(4, 200, seed=3)
    seen = []
    bootstrap_bradley_terry(rec, rounds=25, seed=0, chunk=10, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(10, 25), (20, 25), (25, 25)]


def test_given_full_fit_is_reused_with_identical_results(monkeypatch):
    rec, _ = _synthetic(5, 500, seed=6, p_tie=0.2)
    W, _ = pair_counts(rec)
    fit = fit_bradley_terry(W, prior=0.3)
    fresh = bootstrap_bradley_terry(rec, rounds=30, seed=2, prior=0.3)
    import arena.core.bootstrap as bootstrap

    def no_refit(*args, **kwargs):
        raise AssertionError("the full-data fit was passed in: it must not be fitted again")

    monkeypatch.setattr(bootstrap, "fit_bradley_terry", no_refit)
    reused = bootstrap_bradley_terry(rec, rounds=30, seed=2, prior=0.3, fit=fit)
    np.testing.assert_array_equal(reused.samples, fresh.samples)
    np.testing.assert_array_equal(reused.theta, fresh.theta)
    with pytest.raises(InputError, match="prior"):
        bootstrap_bradley_terry(rec, rounds=3, prior=0.0, fit=fit)  # fit made with another prior
    with pytest.raises(InputError, match="fit does not match"):
        bootstrap_bradley_terry(rec, rounds=3, prior=0.3, fit=fit_bradley_terry(W[:4, :4], prior=0.3))
