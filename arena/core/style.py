"""Style control: Bradley–Terry and pairwise preferences with style covariates (pure math, no I/O).

LMArena's style control (Li, Chiang et al. 2024, "Does style matter? Disentangling style and
substance in Chatbot Arena", https://lmsys.org/blog/2024-08-28-style-control/; lmarena's
``arena-rank`` ``ContextualBradleyTerry``) adds style covariates to the Bradley–Terry logit:

    logit P(a ≻ b) = θ_a − θ_b + xᵀγ,

where x (k,) describes how the two responses differ in style. LMArena's four features are the
response length in tokens, markdown headers, list items and bold spans (`STYLE_FEATURES`);
each enters as the relative difference d = (f_a − f_b) / (f_a + f_b) (0 when both are 0),
z-scored over the records (mean and population standard deviation), as arena-rank's
``ContextualPairDataset`` does.

Two estimators share that logit:

* `fit_contextual_bradley_terry`: θ and γ by maximum likelihood (Newton), minimising
  −(1/m) Σ_r w_r [y_r z_r − log(1 + e^{z_r})] + ½·reg·‖γ‖², the objective of arena-rank
  (weights w_r = 1 / max(games of the pair, min_pair_count), normalised to mean 1, when
  ``reweight``). ``LMARENA`` holds arena-rank's defaults (reg = 1, reweighting); the default
  here is the plain maximum-likelihood fit (reg = 0, no weights), because reg = 1 on a mean
  loss shrinks γ several-fold and leaves part of the style effect in θ.
* `style_controlled_preferences`: the non-transitive version for the preference matrix and
  its Nash equilibrium. Each observed pair {i, j} gets its own log-odds β_ij, the style
  coefficients γ are shared:  logit P(i ≻ j | d) = β_ij + (d / s)ᵀγ,  and the controlled
  preference is the model at equal style, P̃[i, j] = σ(β_ij) (d = 0). Intervals resample
  prompts (clusters) or records.

Records carry per-side features as ``Records.features`` (m, 2, k) with ``feature_names``;
`style_counts` computes LMArena's counts from a response text.

Sides. The z-scoring centres d at its mean, as arena-rank does; that is harmless when sides
are random (E[d] = 0) but not when one model is always on side a (a tournament's layout, or a
file written from one): the mean then carries part of the style effect, and since the model
has no intercept, θ absorbs it. `both_orientations` enters each comparison twice, as (a, b, y,
f_a, f_b) and (b, a, 1 − y, f_b, f_a): the mean loss and its maximiser are those of the
uncentred model, and the mean difference is exactly 0. `side_test` tests whether a file's
sides look like fair coin flips (`arena.boards.style_control` uses both orientations when not).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from arena.core.records import Records
from arena.errors import InputError

__all__ = [
    "STYLE_FEATURES",
    "LMARENA",
    "style_counts",
    "style_differences",
    "normalize_features",
    "ContextualBTFit",
    "fit_contextual_bradley_terry",
    "ControlledPreferences",
    "style_controlled_preferences",
    "both_orientations",
    "SideTest",
    "side_test",
    "RANDOM_SIDES_P",
]

#: LMArena's style features, in the order of their blog post and arena-rank's example.
STYLE_FEATURES = ("sum_assistant_tokens", "header_count", "list_count", "bold_count")
#: arena-rank ContextualBradleyTerry / ContextualPairDataset defaults.
LMARENA = {"reg": 1.0, "reweight": True, "min_pair_count": 50}
#: below this p-value `side_test` calls a side layout not random (e.g. a tournament's,
#: where the lower-index checkpoint is always side a)
RANDOM_SIDES_P = 1e-3
#: Newton stops when the largest gradient entry is below this.
GRAD_TOL = 1e-10
_MAX_ITER = 100

# FastChat's markdown counters (fastchat/serve/monitor/elo_analysis.py, count_markdown_elements),
# applied after removing fenced code blocks as FastChat does.
_CODE = re.compile(r"```[^`]*```")
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def style_counts(text: str, *, count_tokens: Callable[[str], int] | None = None) -> dict[str, int]:
    """LMArena's style counts of one response: tokens, markdown headers, list items, bold spans.

    ``count_tokens`` is the tokenizer's length function (LMArena counts tokenizer tokens); the
    default counts words and punctuation marks (``\\w+|[^\\w\\s]``), a tokenizer-free proxy.
    """
    if not isinstance(text, str):
        raise InputError(f"style_counts needs the response text (str); got {type(text).__name__}")
    prose = _CODE.sub("", text)
    tokens = count_tokens(text) if count_tokens is not None else len(_TOKEN.findall(text))
    return {"sum_assistant_tokens": int(tokens), "header_count": len(_HEADER.findall(prose)),
            "list_count": len(_LIST.findall(prose)), "bold_count": len(_BOLD.findall(prose))}


def style_differences(features: np.ndarray) -> np.ndarray:
    """Relative differences d = (f_a − f_b) / (f_a + f_b), 0 where f_a + f_b = 0: (m, 2, k) -> (m, k)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 3 or f.shape[1] != 2:
        raise InputError(f"features must be (m, 2, k) per-side values; got shape {f.shape}")
    if (f < 0).any():
        raise InputError("style features are counts (>= 0); a negative value cannot be a relative difference")
    total = f[:, 0] + f[:, 1]
    return (f[:, 0] - f[:, 1]) / np.where(total == 0, 1.0, total)


def normalize_features(d: np.ndarray, *, center: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, scale): x = (d − mean) / scale per column, scale = population std (1 where 0).

    With ``center=False`` the mean is 0, so that x = 0 still means "no style difference".
    """
    d = np.asarray(d, dtype=np.float64)
    mean = d.mean(axis=0) if center else np.zeros(d.shape[1])
    scale = d.std(axis=0)
    scale = np.where(scale == 0, 1.0, scale)
    return (d - mean) / scale, mean, scale


def _log1pexp(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _pair_weights(a: np.ndarray, b: np.ndarray, n: int, min_pair_count: float) -> np.ndarray:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * n + hi
    games = np.bincount(key, minlength=n * n)[key].astype(np.float64)
    w = 1.0 / np.maximum(games, min_pair_count)
    return w / w.mean()


def _features_of(records: Records) -> np.ndarray:
    if records.features is None or records.features.shape[2] == 0:
        raise InputError(
            "these records have no style features: give per-side columns feature_<name>_a and "
            "feature_<name>_b (or compute them with arena.core.style.style_counts)"
        )
    return style_differences(records.features)


@dataclass(frozen=True)
class ContextualBTFit:
    """A contextual Bradley–Terry fit (style-controlled ratings)."""

    models: tuple[str, ...]
    theta: np.ndarray
    """(n,) log-strengths at equal style, mean zero (Elo scale: 400/ln 10 · θ + 1000)."""
    coef: np.ndarray
    """(k,) γ: log-odds per standard deviation of each normalised feature."""
    feature_names: tuple[str, ...]
    mean: np.ndarray
    """(k,) mean of the relative differences (subtracted before scaling)."""
    scale: np.ndarray
    """(k,) population standard deviation of the relative differences."""
    grad_norm: float
    """Largest |gradient| entry at the answer: the certificate that the fit converged."""
    iterations: int


def fit_contextual_bradley_terry(
    records: Records,
    *,
    reg: float = 0.0,
    reweight: bool = False,
    min_pair_count: float = 50.0,
    tol: float = GRAD_TOL,
    max_iter: int = _MAX_ITER,
) -> ContextualBTFit:
    """Maximum-likelihood θ, γ of logit P(a ≻ b) = θ_a − θ_b + xᵀγ (see the module docstring).

    Minimises −(1/m) Σ w_r [y_r z_r − log(1 + e^{z_r})] + ½·reg·‖γ‖² by Newton's method with
    backtracking, in the gauge Σθ = 0. ``LMARENA`` gives arena-rank's settings.

    Raises InputError: no features, negative reg, or no convergence (ratings that run off to
    infinity: a model that never loses or never wins; add comparisons or drop it).
    """
    if reg < 0:
        raise InputError(f"reg must be >= 0; got {reg}")
    d = _features_of(records)
    x, mean, scale = normalize_features(d, center=True)
    n, k, m = records.n_models, x.shape[1], len(records)
    a, b, y = records.a, records.b, records.score
    w = _pair_weights(a, b, n, min_pair_count) if reweight else np.ones(m)
    params = np.zeros(n + k)
    ones = np.ones(n) / np.sqrt(n)

    def loss(p):
        z = p[a] - p[b] + x @ p[n:]
        return float(-(w * (y * z - _log1pexp(z))).mean() + 0.5 * reg * p[n:] @ p[n:])

    current = loss(params)
    grad_norm = np.inf
    for it in range(1, max_iter + 1):
        theta, gamma = params[:n], params[n:]
        z = theta[a] - theta[b] + x @ gamma
        prob = _sigmoid(z)
        r = w * (prob - y) / m  # d loss / d z_r
        h = w * prob * (1.0 - prob) / m  # d² loss / d z_r²
        g = np.concatenate([np.bincount(a, r, n) - np.bincount(b, r, n), x.T @ r + reg * gamma])
        grad_norm = float(np.abs(g).max())
        if grad_norm < tol:
            break
        H = np.zeros((n + k, n + k))
        Htt = (np.bincount(a * n + b, h, n * n) + np.bincount(b * n + a, h, n * n)).reshape(n, n)
        H[:n, :n] = np.diag(Htt.sum(axis=1)) - Htt
        hx = h[:, None] * x  # (m, k)
        cross = np.stack([np.bincount(a, hx[:, j], n) - np.bincount(b, hx[:, j], n) for j in range(k)], axis=1)
        H[:n, n:], H[n:, :n] = cross, cross.T
        H[n:, n:] = x.T @ hx + reg * np.eye(k)
        # θ is defined up to a shift: pin the direction 1/√n (g ⊥ 1, so the step keeps Σθ = 0).
        H[:n, :n] += np.outer(ones, ones) * max(float(np.trace(H[:n, :n])) / n, 1e-12)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(H, g, rcond=None)[0]
        t = 1.0
        while t > 1e-8:
            trial = params + t * step
            value = loss(trial)
            if value <= current + 1e-4 * t * float(g @ step):
                break
            t *= 0.5
        params, current = trial, value
    theta = params[:n] - params[:n].mean()
    if not (np.isfinite(params).all() and grad_norm < max(tol, 1e-6)):
        raise InputError(
            f"the contextual Bradley–Terry fit did not converge (largest gradient {grad_norm:.2g}): a model "
            "that never loses or never wins has no finite rating; add comparisons, drop it, or raise reg"
        )
    return ContextualBTFit(models=records.models, theta=theta, coef=params[n:].copy(),
                           feature_names=records.feature_names, mean=mean, scale=scale,
                           grad_norm=grad_norm, iterations=it)


@dataclass(frozen=True)
class ControlledPreferences:
    """Style-controlled preference matrix: P[i, j] = P(i ≻ j) at equal style (d = 0)."""

    models: tuple[str, ...]
    P: np.ndarray
    """(n, n) σ(β_ij); P + Pᵀ = 1, diagonal ½, ½ for pairs that never met. Feed it to
    `arena.core.nash.nash_from_preferences` for the Nash mixture of the controlled game."""
    lo: np.ndarray
    """(n, n) lower ends of the bootstrap percentile intervals ([0, 1] for pairs never met)."""
    hi: np.ndarray
    """(n, n) upper ends; lo[j, i] = 1 − hi[i, j]."""
    N: np.ndarray
    """(n, n) games per pair."""
    coef: np.ndarray
    """(k,) shared γ, log-odds per standard deviation of each relative difference."""
    coef_lo: np.ndarray
    coef_hi: np.ndarray
    feature_names: tuple[str, ...]
    scale: np.ndarray
    """(k,) population std of the relative differences (x = d / scale; uncentred)."""
    level: float
    rounds: int
    resample: str
    """"cluster" (whole prompts) or "record"."""
    grad_norm: float
    """Largest |gradient| entry of the full-data fit."""


def _pairwise_fit(pair, sign_y, x, w, n_pairs, prior, tol, max_iter, start=None):
    """Newton on β (one per pair) and γ: minimise −Σ w ℓ + ½ prior Σβ² (β block diagonal: Schur on γ)."""
    k = x.shape[1]
    beta = np.zeros(n_pairs) if start is None else start[0].copy()
    gamma = np.zeros(k) if start is None else start[1].copy()

    def loss(bt, gm):
        z = bt[pair] + x @ gm
        return float(-(w * (sign_y * z - _log1pexp(z))).sum() + 0.5 * prior * bt @ bt)

    current, grad_norm = loss(beta, gamma), np.inf
    for _ in range(max_iter):
        z = beta[pair] + x @ gamma
        prob = _sigmoid(z)
        r = w * (prob - sign_y)
        h = w * prob * (1.0 - prob)
        gb = np.bincount(pair, r, n_pairs) + prior * beta
        gg = x.T @ r
        grad_norm = float(max(np.abs(gb).max(), np.abs(gg).max() if k else 0.0))
        if grad_norm < tol:
            break
        D = np.bincount(pair, h, n_pairs) + prior  # (P,) diagonal β block
        C = np.stack([np.bincount(pair, h * x[:, j], n_pairs) for j in range(k)], axis=1)  # (P, k)
        G = x.T @ (h[:, None] * x)
        S = G - C.T @ (C / D[:, None])
        dg = np.linalg.solve(S + 1e-12 * np.eye(k), -gg + C.T @ (gb / D)) if k else np.zeros(0)
        db = (-gb - C @ dg) / D
        t, slope = 1.0, float(gb @ db + gg @ dg)
        while t > 1e-8:
            nb, ng = beta + t * db, gamma + t * dg
            value = loss(nb, ng)
            if value <= current + 1e-4 * t * slope:
                break
            t *= 0.5
        beta, gamma, current = nb, ng, value
    return beta, gamma, grad_norm


def style_controlled_preferences(
    records: Records,
    *,
    prior: float = 0.1,
    level: float = 0.95,
    rounds: int = 200,
    seed: int = 0,
    resample: str = "cluster",
    tol: float = 1e-8,
    max_iter: int = _MAX_ITER,
) -> ControlledPreferences:
    """The preference matrix at equal style, with bootstrap percentile intervals.

    Fits logit P(i ≻ j | d) = β_ij + (d / s)ᵀγ over the records, oriented i < j (β_ji = −β_ij,
    d the relative style differences, s their population std), minimising the negative
    log-likelihood plus ½·prior·Σβ² (a weak prior that keeps 10–0 pairs finite), and returns
    P[i, j] = σ(β_ij). Intervals: ``rounds`` refits on resampled prompts (``resample="cluster"``,
    when the records have clusters) or records, percentile ``level``.

    Raises InputError: no features, bad level/rounds/prior, unknown resample.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1); got {level}")
    if rounds < 0:
        raise InputError(f"rounds must be >= 0 (0: no intervals); got {rounds}")
    if prior <= 0:
        raise InputError(f"prior must be > 0 (it keeps one-sided pairs finite); got {prior}; try 0.1")
    if resample not in ("cluster", "record"):
        raise InputError(f"resample must be 'cluster' or 'record'; got {resample!r}")
    d = _features_of(records)
    x, _, scale = normalize_features(d, center=False)
    n, k = records.n_models, x.shape[1]
    a, b, y = records.a, records.b, records.score
    flip = a > b
    lo_m, hi_m = np.where(flip, b, a), np.where(flip, a, b)
    y = np.where(flip, 1.0 - y, y)  # P(lower index preferred)
    x = np.where(flip[:, None], -x, x)
    cells, pair = np.unique(lo_m * n + hi_m, return_inverse=True)
    pair = pair.reshape(-1)
    n_pairs = cells.size
    w = np.ones(len(records))
    beta, gamma, grad_norm = _pairwise_fit(pair, y, x, w, n_pairs, prior, tol, max_iter)
    ii, jj = cells // n, cells % n

    def matrix(bt):
        P = np.full((n, n), 0.5)
        p = _sigmoid(bt)
        P[ii, jj], P[jj, ii] = p, 1.0 - p
        return P

    P = matrix(beta)
    N = np.zeros((n, n))
    games = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    N[ii, jj] = N[jj, ii] = games
    lo, hi = np.where(N > 0, P, 0.0), np.where(N > 0, P, 1.0)
    np.fill_diagonal(lo, 0.5)
    np.fill_diagonal(hi, 0.5)
    coef_lo = coef_hi = gamma.copy()
    use_clusters = resample == "cluster" and records.cluster is not None
    if rounds > 0:
        rng = np.random.default_rng(seed)
        units = records.cluster if use_clusters else np.arange(len(records))
        n_units = int(units.max()) + 1
        draws_b, draws_g = np.empty((rounds, n_pairs)), np.empty((rounds, k))
        for t in range(rounds):
            counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
            bt, gm, _ = _pairwise_fit(pair, y, x, counts[units].astype(np.float64), n_pairs, prior, tol,
                                      max_iter, start=(beta, gamma))
            draws_b[t], draws_g[t] = bt, gm
        q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
        pb = np.quantile(_sigmoid(draws_b), q, axis=0)  # (2, P)
        lo[ii, jj], hi[ii, jj] = pb[0], pb[1]
        lo[jj, ii], hi[jj, ii] = 1.0 - pb[1], 1.0 - pb[0]
        coef_lo, coef_hi = np.quantile(draws_g, q, axis=0)
    return ControlledPreferences(
        models=records.models, P=P, lo=lo, hi=hi, N=N, coef=gamma, coef_lo=coef_lo, coef_hi=coef_hi,
        feature_names=records.feature_names, scale=scale, level=level, rounds=rounds,
        resample="cluster" if use_clusters else "record", grad_norm=grad_norm)


def both_orientations(records: Records) -> Records:
    """The 2m records (a, b, y, f_a, f_b) followed by (b, a, 1 − y, f_b, f_a), same order.

    The two orientations of a comparison share a cluster: its prompt's, or, when the records
    have no clusters, the comparison's own (ids 0..m−1), so that a bootstrap draws them
    together and its intervals are those of the m comparisons, not of 2m independent ones.
    """
    m = len(records)
    cluster = records.cluster if records.cluster is not None else np.arange(m, dtype=np.int64)
    return Records(models=records.models, a=np.concatenate([records.a, records.b]),
                   b=np.concatenate([records.b, records.a]),
                   score=np.concatenate([records.score, 1.0 - records.score]),
                   cluster=np.concatenate([cluster, cluster]),
                   features=None if records.features is None else np.concatenate(
                       [records.features, records.features[:, ::-1]]),
                   feature_names=records.feature_names)


@dataclass(frozen=True)
class SideTest:
    """Do a file's sides look like fair coin flips? (`side_test`)"""

    p: float
    """p-value of X² = Σ_pairs (k_ij − n_ij/2)² / (n_ij/4) under random sides (χ², one degree
    of freedom per pair; k_ij of the n_ij comparisons of i < j have i on side a)."""
    fixed: bool
    """Every pair that met more than once always had the same model on side a (a tournament's
    layout, recognised however few comparisons there are)."""

    @property
    def random(self) -> bool:
        """Neither fixed nor rejected at `RANDOM_SIDES_P`: fit as read (arena-rank's fit)."""
        return not self.fixed and self.p >= RANDOM_SIDES_P


def side_test(records: Records) -> SideTest:
    """Test "each comparison's sides were a fair coin flip", given who met whom.

    Under random sides k_ij ~ Binomial(n_ij, ½) for each pair; a tournament (i always on side
    a) has k_ij = n_ij and X² = m.
    """
    from scipy.stats import chi2

    n = records.n_models
    lo, hi = np.minimum(records.a, records.b), np.maximum(records.a, records.b)
    key = lo * n + hi
    games = np.bincount(key, minlength=n * n)  # integer counts: the == below is exact
    on_a = np.bincount(key[records.a < records.b], minlength=n * n)
    met = games > 0
    x2 = float((((on_a[met] - games[met] / 2.0) ** 2) / (games[met] / 4.0)).sum())
    again = games > 1
    fixed = bool(again.any() and np.all((on_a[again] == 0) | (on_a[again] == games[again])))
    return SideTest(p=float(chi2.sf(x2, int(met.sum()))), fixed=fixed)
