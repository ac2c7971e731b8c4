"""Bradley–Terry: published numbers (BradleyTerry2 vignette), a second algorithm, priors, errors."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from arena.core.bradley_terry import (
    bt_log_likelihood,
    elo,
    fit_bradley_terry,
    fit_bradley_terry_batch,
    fit_bradley_terry_mm,
)
from arena.errors import InputError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "bradleyterry2"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} not found in {path.parent} (shared data is not part of a clone)")
    return path


def _random_wins(n, seed, games=30, p_tie=0.1):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    P = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    W = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            ties = rng.binomial(games, p_tie)
            wi = rng.binomial(games - ties, P[i, j])
            W[i, j] = wi + ties / 2
            W[j, i] = games - ties - wi + ties / 2
    return W, theta


def test_baseball_published_numbers():
    """1987 AL East, no home advantage, Baltimore = 0 (Agresti 2002; BradleyTerry2 vignette)."""
    import pandas as pd

    df = pd.read_csv(_need(DATA / "baseball.csv"))
    teams = sorted(set(df["home.team"]) | set(df["away.team"]))
    idx = {t: i for i, t in enumerate(teams)}
    W = np.zeros((len(teams), len(teams)))
    for h, a, hw, aw in df[["home.team", "away.team", "home.wins", "away.wins"]].itertuples(index=False):
        W[idx[h], idx[a]] += hw
        W[idx[a], idx[h]] += aw
    fit = fit_bradley_terry(W, models=teams)
    theta = fit.theta - fit.theta[idx["Baltimore"]]
    published = {"Boston": 1.1077, "Cleveland": 0.6839, "Detroit": 1.4364, "Milwaukee": 1.5814,
                 "New York": 1.2476, "Toronto": 1.2945}
    for team, value in published.items():
        assert theta[idx[team]] == pytest.approx(value, abs=5e-4), team
    assert abs(fit.theta.sum()) < 1e-12
    assert fit.grad_norm < 1e-10


def test_citations_published_numbers():
    """Stigler (1994) cross-citations, Biometrika = 0; j citing i counts as i beating j."""
    import pandas as pd

    M = pd.read_csv(_need(DATA / "citations_matrix.csv"), index_col=0)  # row cited, column citing
    journals = list(M.index)
    assert list(M.columns) == journals
    W = M.to_numpy(dtype=float)
    np.fill_diagonal(W, 0.0)  # self-citations ignored
    fit = fit_bradley_terry(W)
    theta = fit.theta - fit.theta[journals.index("Biometrika")]
    published = {"Comm Statist": -2.9491, "JASA": -0.4796, "JRSS-B": 0.2690}
    for name, value in published.items():
        assert theta[journals.index(name)] == pytest.approx(value, abs=5e-4), name


def test_mm_agrees_with_newton_and_recovers_truth():
    W, truth = _random_wins(8, seed=3, games=400, p_tie=0.0)
    newton = fit_bradley_terry(W)
    mm = fit_bradley_terry_mm(W)
    np.testing.assert_allclose(mm.theta, newton.theta, atol=1e-8)
    assert newton.log_likelihood >= mm.log_likelihood - 1e-9
    # With 400 games per pair the MLE is close to the generating θ (centred).
    np.testing.assert_allclose(newton.theta, truth - truth.mean(), atol=0.2)


def test_newton_is_a_maximum():
    W, _ = _random_wins(6, seed=1)
    fit = fit_bradley_terry(W)
    base = bt_log_likelihood(W, fit.theta)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.normal(size=6) * 1e-3
        assert bt_log_likelihood(W, fit.theta + d) <= base + 1e-12


def test_prior_is_a_ridge_map_and_matches_lbfgs():
    W, _ = _random_wins(5, seed=7, games=6)
    lam = 0.7

    def negpost(t):
        return -bt_log_likelihood(W, t) + 0.5 * lam * t @ t

    ref = minimize(negpost, np.zeros(5), method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15})
    fit = fit_bradley_terry(W, prior=lam)
    np.testing.assert_allclose(fit.theta, ref.x, atol=1e-5)
    # The prior shrinks: the spread is smaller than the MLE's.
    assert np.ptp(fit.theta) < np.ptp(fit_bradley_terry(W).theta)
    assert fit.prior == lam


def test_disconnected_graph_names_cut_off_models():
    # "top" beats everyone and never loses; "bottom" never wins; the middle three cycle.
    names = ["mid1", "top", "mid2", "bottom", "mid3"]
    W = np.zeros((5, 5))
    i = {n: k for k, n in enumerate(names)}
    for a, b in [("mid1", "mid2"), ("mid2", "mid3"), ("mid3", "mid1"), ("mid2", "mid1")]:
        W[i[a], i[b]] += 2
    for m in ["mid1", "mid2", "mid3", "bottom"]:
        W[i["top"], i[m]] += 3
    for m in ["mid1", "mid3"]:
        W[i[m], i["bottom"]] += 1
    with pytest.raises(InputError) as info:
        fit_bradley_terry(W, models=names)
    msg = str(info.value)
    assert "top never loses" in msg
    assert "bottom never wins" in msg
    assert "prior" in msg and "\n" not in msg
    assert "[mid1, mid2, mid3]" in msg
    # The prior makes the fit exist, with the expected order.
    fit = fit_bradley_terry(W, prior=0.1, models=names)
    assert fit.grad_norm < 1e-10
    assert fit.theta[i["top"]] == fit.theta.max()
    assert fit.theta[i["bottom"]] == fit.theta.min()


def test_no_games_for_a_model():
    W = np.array([[0, 2, 0], [1, 0, 0], [0, 0, 0.0]])
    with pytest.raises(InputError, match="c has no games against the rest"):
        fit_bradley_terry(W, models=["a", "b", "c"])
    fit = fit_bradley_terry(W, prior=0.1)
    # No data for c: the prior puts it at the mean, i.e. at 0.
    assert abs(fit.theta[2]) < 1e-9


@pytest.mark.parametrize("bad, needle", [
    (np.ones((2, 3)), "square"),
    (np.array([[0, -1], [1, 0.0]]), "negative"),
    (np.array([[0, np.nan], [1, 0.0]]), "NaN"),
    (np.zeros((1, 1)), "at least 2"),
])
def test_bad_wins(bad, needle):
    with pytest.raises(InputError, match=needle):
        fit_bradley_terry(bad)


def test_negative_prior_rejected():
    W, _ = _random_wins(3, seed=0)
    with pytest.raises(InputError, match="prior"):
        fit_bradley_terry(W, prior=-1)


def test_elo_scale():
    np.testing.assert_allclose(elo(np.array([0.0, np.log(10)])), [1000.0, 1400.0])
    # Asymmetric check of the direction: higher theta, higher Elo.
    assert elo(np.array([0.3]))[0] > 1000


def test_batch_equals_single_and_warm_start():
    tables = [_random_wins(6, seed=s)[0] for s in range(4)]
    theta, gnorm, _ = fit_bradley_terry_batch(np.stack(tables), init=np.full(6, 0.3))
    for k, W in enumerate(tables):
        np.testing.assert_allclose(theta[k], fit_bradley_terry(W).theta, atol=1e-9)
    assert (gnorm < 1e-10).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 7))
def test_relabelling_permutes_the_fit(seed, n):
    W, _ = _random_wins(n, seed=seed, games=5)
    W += 0.01  # strongly connected
    perm = np.random.default_rng(seed).permutation(n)
    a = fit_bradley_terry(W).theta
    b = fit_bradley_terry(W[np.ix_(perm, perm)]).theta
    np.testing.assert_allclose(b, a[perm], atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 6))
def test_transposed_wins_negate_the_fit(seed, n):
    W, _ = _random_wins(n, seed=seed, games=4)
    W += 0.05
    np.testing.assert_allclose(fit_bradley_terry(W.T).theta, -fit_bradley_terry(W).theta, atol=1e-8)


def test_batch_refuses_an_uncertified_fit():
    from arena.errors import SolverError

    W = np.array([[0, 3, 2], [0, 0, 1], [0, 1, 0.0]])  # model 0 never loses: no MLE
    with pytest.raises(SolverError, match="not strongly connected"):
        fit_bradley_terry_batch(W[None], max_iter=20)
