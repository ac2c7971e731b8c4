"""Style control: LMArena's counts and normalisation, the contextual Bradley–Terry fit (checked
against lmarena's arena-rank where installed), and the style-controlled preference matrix on a
world where a verbose checkpoint wins only through length."""

import numpy as np
import pytest

from arena.core.records import make_records
from arena.core.style import (
    LMARENA,
    fit_contextual_bradley_terry,
    normalize_features,
    style_controlled_preferences,
    style_counts,
    style_differences,
)
from arena.errors import InputError


def test_style_counts_follow_fastchat_markdown_rules():
    text = ("# Title\n## Sub\nSome **bold** and __also bold__ text.\n"
            "- one\n* two\n1. three\n```\n# not a header\n- not a list\n```\n#no space")
    c = style_counts(text)
    assert (c["header_count"], c["list_count"], c["bold_count"]) == (2, 3, 2)
    assert style_counts("Hello, world!")["sum_assistant_tokens"] == 4  # Hello , world !
    assert style_counts("a b c", count_tokens=lambda s: 42)["sum_assistant_tokens"] == 42


def test_relative_differences_and_normalisation():
    f = np.array([[[300, 2], [100, 0]], [[0, 0], [0, 0]], [[50, 1], [150, 3]]], dtype=float)
    d = style_differences(f)
    assert d.tolist() == [[0.5, 1.0], [0.0, 0.0], [-0.5, -0.5]]
    x, mean, scale = normalize_features(d)
    assert np.allclose(x.mean(axis=0), 0) and np.allclose(x.std(axis=0), 1)
    x0, mean0, _ = normalize_features(d, center=False)
    assert np.all(mean0 == 0) and np.allclose(x0 * scale, d)
    with pytest.raises(InputError, match="counts"):
        style_differences(-f)


def _verbose_world(m=6000, seed=0):
    """Four models; V is the weakest in substance but always far longer, and judges love length."""
    rng = np.random.default_rng(seed)
    models = np.array(["A", "B", "C", "V"])
    theta = np.array([0.6, 0.2, 0.0, -0.3])
    length = np.array([200.0, 220.0, 180.0, 900.0])
    gamma = 3.0  # log-odds per unit of relative length difference
    a = rng.integers(0, 4, m)
    b = (a + rng.integers(1, 4, m)) % 4
    la = length[a] * rng.lognormal(0, 0.4, m)
    lb = length[b] * rng.lognormal(0, 0.4, m)
    d = (la - lb) / (la + lb)
    p = 1 / (1 + np.exp(-(theta[a] - theta[b] + gamma * d)))
    y = (rng.random(m) < p).astype(float)
    features = np.stack([np.stack([la, np.zeros(m)], 1), np.stack([lb, np.zeros(m)], 1)], axis=1)
    prompt = rng.integers(0, m // 4, m)
    return make_records(models[a], models[b], y, cluster=prompt, features=features,
                        feature_names=("sum_assistant_tokens", "bold_count")), theta


def test_contextual_bt_removes_the_length_advantage():
    from arena.core.bradley_terry import fit_bradley_terry
    from arena.core.records import pair_counts

    rec, theta_true = _verbose_world()
    W, _ = pair_counts(rec)
    raw = fit_bradley_terry(W).theta
    assert np.argmax(raw) == 3  # raw BT crowns the verbose model
    fit = fit_contextual_bradley_terry(rec)
    assert fit.grad_norm < 1e-8
    assert np.argmax(fit.theta) == 0 and np.argmin(fit.theta) == 3  # controlled: A first, V last
    assert np.allclose(fit.theta, theta_true - theta_true.mean(), atol=0.12)
    assert fit.coef[0] > 0 and abs(fit.coef[1]) < 1e-9  # the all-zero feature gets no weight
    shrunk = fit_contextual_bradley_terry(rec, **LMARENA)
    assert 0 < shrunk.coef[0] < fit.coef[0]  # arena-rank's reg = 1 shrinks γ


def test_controlled_preferences_and_nash_drop_the_verbose_model():
    from arena.core.nash import nash_from_preferences
    from arena.core.records import pair_counts

    rec, theta_true = _verbose_world()
    W, N = pair_counts(rec)
    P_raw = np.where(N > 0, W / np.maximum(N, 1), 0.5)
    ctl = style_controlled_preferences(rec, rounds=40, seed=1)
    assert np.allclose(ctl.P + ctl.P.T, 1.0) and np.allclose(np.diag(ctl.P), 0.5)
    assert P_raw[3, 0] > 0.5 and ctl.P[3, 0] < 0.5  # V beats A raw, loses at equal length
    true = 1 / (1 + np.exp(-(theta_true[:, None] - theta_true[None, :])))
    assert np.abs(ctl.P - true).max() < 0.06
    assert np.all(ctl.lo <= ctl.P + 1e-12) and np.all(ctl.P <= ctl.hi + 1e-12)
    assert ctl.hi[3, 0] < 0.5 and ctl.resample == "cluster"
    assert np.allclose(ctl.lo, 1 - ctl.hi.T)
    raw_nash = nash_from_preferences(P_raw).p
    ctl_nash = nash_from_preferences(ctl.P).p
    assert raw_nash[3] > 0.5 and ctl_nash[3] < 1e-6


def test_records_without_features_say_how_to_add_them():
    rec = make_records(["a", "b"], ["b", "a"], [1.0, 0.0])
    with pytest.raises(InputError, match="feature_<name>_a"):
        fit_contextual_bradley_terry(rec)
    with pytest.raises(InputError, match="feature_<name>_a"):
        style_controlled_preferences(rec)


def _arena_rank_world(seed=5, m=4000, n=6, k=4):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    a[: m // 3] = 0  # unbalanced pair counts, so the reweighting matters
    b[: m // 3] = 1
    f = rng.poisson(lam=rng.uniform(2, 40, (1, 2, k)), size=(m, 2, k)).astype(float)
    theta = rng.normal(0, 0.7, n)
    d = style_differences(f)
    z = theta[a] - theta[b] + d @ np.array([0.8, -0.4, 0.3, 0.0])
    u = rng.random(m)
    p = 1 / (1 + np.exp(-z))
    y = np.where(u < 0.1, 0.5, (u < p).astype(float))  # 10% ties
    names = np.array([f"m{i}" for i in range(n)])
    return make_records(names[a], names[b], y, features=f, feature_names=("t", "h", "l", "bo")), d


@pytest.mark.parametrize("settings", [LMARENA, pytest.param({"reg": 0.0, "reweight": False}, marks=pytest.mark.slow)])
def test_agrees_with_arena_rank_contextual_bradley_terry(settings):
    pytest.importorskip("arena_rank", reason="pip install nash-arena[arenarank] to compare with lmarena's arena-rank")
    import pandas as pd
    from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry
    from arena_rank.utils.data_utils import ContextualPairDataset

    rec, d = _arena_rank_world()
    labels = np.where(rec.score == 1, "model_a", np.where(rec.score == 0, "model_b", "tie"))
    df = pd.DataFrame({"model_a": np.array(rec.models)[rec.a], "model_b": np.array(rec.models)[rec.b],
                       "winner": labels, **{f"f{j}": d[:, j] for j in range(4)}})
    ds = ContextualPairDataset.from_pandas(df, feature_cols=[f"f{j}" for j in range(4)],
                                           reweighted=settings["reweight"], min_pair_count=50)
    model = ContextualBradleyTerry(n_competitors=len(ds.competitors), n_features=4, reg=settings["reg"])
    model.fit(ds)
    assert list(ds.competitors) == list(rec.models)
    ours = fit_contextual_bradley_terry(rec, **settings)
    theirs_coef = np.asarray(model.params["coeffs"])
    theirs_theta = np.asarray(model.params["ratings"])
    assert np.abs(ours.coef - theirs_coef).max() < 1e-3
    assert np.abs(ours.theta - (theirs_theta - theirs_theta.mean())).max() < 1e-3
