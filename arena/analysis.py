"""From judgments (or a preference matrix) to the one result object every output renders.

The pipeline, each step in `arena.core`:

1. counts W, N from the records (ties half a win each);
2. Bradley–Terry maximum likelihood, Elo = 400/ln 10 · θ + 1000, with bootstrap (over
   prompts when they exist) or analytic intervals;
3. the preference matrix P with per-cell intervals, P + Pᵀ = 1;
4. cycles: majority graph, strongly connected components, Condorcet winner, cyclic
   triangles, HodgeRank cyclic share (Jiang, Lim, Yao, Ye 2011, arXiv 0811.1067);
5. the maximum-entropy Nash mixture of A = P − ½ with its exploitability certificate
   (Balduzzi et al. 2018, "Re-evaluating evaluation", arXiv 1806.02643).

The result is an `arena.result.Result` (typed, frozen); its `to_json()` is exactly what
`arena rate --json` prints and what `results.json` holds, so every number in it must survive
a strict `json.dumps(..., allow_nan=False)`. Floats are rounded to `SIG_DIGITS` significant digits;
probabilities to `P_DECIMALS` decimals with the lower triangle written as 1 − upper so the
stored matrix stays complementary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from arena.errors import InputError
from arena.result import (SCHEMA_VERSION,  # one schema number, with its history in arena.result
                          CyclesResult, FitResult, NashResult, Preference, Rating, Result, Settings)

__all__ = ["analyze_records", "analyze_matrix", "judge_warnings", "SCHEMA_VERSION"]

SIG_DIGITS = 8  # significant digits kept for ratings, scores, shares
P_DECIMALS = 9  # decimals kept for probabilities (P, lo, hi, weights)
COUNT_INTEGER_TOL = 1e-9  # game counts this close to integers are written as integers
CI_METHODS = ("bootstrap", "analytic")
MAX_SURVIVAL = 100  # cyclic triangles whose survival under resampling is computed (strongest listed first)
NASH_ESTIMATOR = ("maximum-entropy Nash of the point-estimate matrix (Balduzzi et al. 2018); "
                  "its uncertainty from the Nash mixtures of the resampled matrices")


# --------------------------------------------------------------------------- rounding


def _num(x, sig: int = SIG_DIGITS) -> float | None:
    """A finite float rounded to `sig` significant digits, or None (NaN/inf are not JSON)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{sig}g}")


def _prob(x) -> float | None:
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(min(max(x, 0.0), 1.0), P_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _complementary(P: np.ndarray) -> list[list[float]]:
    """Round P and rebuild it as upper triangle + (1 − upper)ᵀ + ½ diagonal."""
    n = P.shape[0]
    out = [[0.5] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            u = _prob(P[i, j])
            out[i][j] = u
            out[j][i] = round(1.0 - u, P_DECIMALS) + 0.0
    return out


def _interval_matrix(lo: np.ndarray, hi: np.ndarray) -> tuple[list[list[float]], list[list[float]]]:
    """Rounded interval bounds with lo[j, i] = 1 − hi[i, j] exactly (diagonal ½)."""
    n = lo.shape[0]
    lo_out = [[0.5] * n for _ in range(n)]
    hi_out = [[0.5] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            lo_ij, hi_ij = _prob(lo[i, j]), _prob(hi[i, j])
            lo_out[i][j], hi_out[i][j] = lo_ij, hi_ij
            lo_out[j][i] = round(1.0 - hi_ij, P_DECIMALS) + 0.0
            hi_out[j][i] = round(1.0 - lo_ij, P_DECIMALS) + 0.0
    return lo_out, hi_out


# --------------------------------------------------------------------------- shared parts


def _cycles_part(models: Sequence[str], cycles, P_lo, survival, intervals: bool) -> CyclesResult:
    """Cycles of the point matrix; the winner and the top set only as far as intervals allow."""
    from arena.core.uncertainty import significant_top_set

    names = list(models)
    majority = cycles.condorcet_winner
    top = significant_top_set(P_lo) if intervals else None
    if intervals:
        winner = names[top[0]] if len(top) == 1 else None
    else:  # a matrix without counts: the point estimate is all there is (settings say so)
        winner = None if majority is None else names[int(majority)]
    return CyclesResult(
        triangles=[[names[i] for i in tri] for tri in cycles.triangles],
        # The core lists at most a capped number of triangles; this is the full count.
        n_triangles=int(cycles.n_triangles),
        # Significant Condorcet winner: every one of its head-to-heads excludes ½ (with intervals).
        condorcet_winner=winner,
        # Beats every other model on the point estimates alone (may be noise; see top_set).
        majority_winner=None if majority is None else names[int(majority)],
        top_set=None if top is None else [names[i] for i in top],
        distinguishable=None if top is None else len(top) < len(names),
        triangle_survival=None if survival is None else [_prob(x) for x in survival],
        cyclic_share=_num(cycles.cyclic_share),
        components=[[names[i] for i in comp] for comp in cycles.components],
    )


def _nash_part(models: Sequence[str], nash, spread) -> NashResult:
    p = np.asarray(nash.p, dtype=np.float64)
    scores = np.asarray(nash.scores, dtype=np.float64)
    out = {
        "weights": {m: _prob(w) for m, w in zip(models, p)},
        "scores": {m: _num(s) for m, s in zip(models, scores)},
        "exploitability": _num(nash.exploitability),
        "entropy": _num(nash.entropy),
        "estimator": NASH_ESTIMATOR,
        "intervals": None,
        "support_probability": None,
        "resampled_exploitability": None,
        "method": None,
    }
    if spread is not None:
        out["intervals"] = {m: [_prob(a), _prob(b)] for m, a, b in zip(models, spread.lo, spread.hi)}
        out["support_probability"] = {m: _prob(x) for m, x in zip(models, spread.support_probability)}
        out["resampled_exploitability"] = {
            "median": _num(spread.exploitability_median),
            "upper": _num(spread.exploitability_upper),
            "quantile": float(spread.level),
            "rounds": int(spread.exploitability.shape[0]),
        }
        out["method"] = (f"percentile over the Nash mixtures of {spread.rounds} shared bootstrap resamples"
                         + (f" ({spread.failed} unsolved, left out)" if spread.failed else ""))
    return NashResult(**out)


def _ratings_part(models, theta, lo, hi, win_rate, ranks) -> dict[str, Rating]:
    from arena.core.bradley_terry import elo

    theta = np.asarray(theta, dtype=np.float64)
    elo_scale = np.asarray(elo(theta))
    out = {}
    for i, m in enumerate(models):
        ci = elo_ci = None
        if lo is not None and hi is not None:
            ci = [_num(lo[i]), _num(hi[i])]
            elo_ci = [_num(x) for x in np.asarray(elo(np.array([lo[i], hi[i]])))]
            if None in ci or None in elo_ci:
                ci = elo_ci = None
        out[m] = Rating(
            bt=_num(theta[i]),
            elo=_num(elo_scale[i]),
            bt_ci=ci,
            elo_ci=elo_ci,
            rank_interval=None if ranks is None else [int(ranks[i, 0]), int(ranks[i, 1])],
            win_rate=None if win_rate is None else _prob(win_rate[i]),
        )
    return out


def _analyze(models, pm, fit, intervals, win_rate, *, significant: bool, level: float) -> Result:
    """Cycles and Nash on the preference matrix, their uncertainty from the shared resamples
    (when `intervals` carries them); assemble the result (settings are the caller's)."""
    from arena.core.cycles import analyze_cycles
    from arena.core.nash import nash_from_preferences
    from arena.core.uncertainty import cycle_survival, nash_uncertainty, rank_intervals

    P = np.asarray(pm.P, dtype=np.float64)
    # HodgeRank weighs each pair's log-odds by its number of games when there are counts.
    cycles = analyze_cycles(P, lo=pm.lo, hi=pm.hi, significant=significant, N=pm.N)
    nash = nash_from_preferences(P)
    lo = hi = ranks = survival = spread = None
    if intervals is not None:
        lo, hi = np.asarray(intervals.lo), np.asarray(intervals.hi)
    if intervals is not None and intervals.pair_samples is not None:
        n = P.shape[0]
        ranks = rank_intervals(intervals.samples, level=level)
        survival = cycle_survival(intervals.pair_samples, intervals.cells, n, cycles.triangles[:MAX_SURVIVAL])
        spread = nash_uncertainty(intervals.pair_samples, intervals.cells, nash.p, level=level)
    P_lo, P_hi = _interval_matrix(np.asarray(pm.lo), np.asarray(pm.hi))
    counts = None
    if pm.N is not None:
        N = np.asarray(pm.N, dtype=np.float64)
        whole = np.all(np.abs(N - np.round(N)) <= COUNT_INTEGER_TOL)
        counts = [[int(round(x)) if whole else _num(x) for x in row] for row in N]
    return Result(
        schema=SCHEMA_VERSION,
        models=list(models),
        ratings=_ratings_part(models, fit.theta, lo, hi, win_rate, ranks),
        preference=Preference(models=list(models), P=_complementary(P), n=counts, lo=P_lo, hi=P_hi),
        cycles=_cycles_part(models, cycles, np.asarray(P_lo), survival, intervals=pm.N is not None),
        nash=_nash_part(models, nash, spread),
        fit=FitResult(grad_norm=_num(fit.grad_norm), iterations=int(fit.iterations)),
    )


def _check_options(rounds: int, level: float, prior: float, ci: str) -> None:
    if ci not in CI_METHODS:
        raise InputError(f"unknown interval method {ci!r}: use one of {', '.join(CI_METHODS)}")
    if ci == "bootstrap" and (int(rounds) != rounds or rounds < 1):
        raise InputError(f"rounds must be a positive integer; got {rounds}: e.g. --rounds 1000")
    if not (0.0 < level < 1.0):
        raise InputError(f"level must lie strictly between 0 and 1; got {level}: e.g. --level 0.95")
    if not (math.isfinite(prior) and prior >= 0.0):
        raise InputError(f"prior must be a finite number >= 0; got {prior}: e.g. --prior 0.1")


# --------------------------------------------------------------------------- judge health

#: a judge that keeps its preferred response when the order is swapped less often than this
#: is answering mostly by position (an unbiased, attentive judge is near 1; chance is ~½)
JUDGE_MIN_CONSISTENCY = 0.5
#: the first-shown response preferred more (or less) often than this, over both orders
JUDGE_FIRST_POSITION_BAND = (0.2, 0.8)
#: mean probability mass a log-prob judge puts on its two label tokens; below this it is
#: mostly answering something else than the question
JUDGE_MIN_LABEL_MASS = 0.5
#: share of comparisons that failed (either order) above which the verdicts are suspect
JUDGE_MAX_FAILURE_SHARE = 0.1


def judge_warnings(judge, *, comparisons=None) -> list[str]:
    """Plain reasons why a judge looks broken, from its stored health figures (documented
    thresholds JUDGE_*); [] when it looks fine or nothing is known. `judge`: a
    `arena.result.JudgeInfo` or its JSON form."""
    if hasattr(judge, "to_json"):
        judge = judge.to_json()
    if not isinstance(judge, dict):
        return []

    def num(key):
        x = judge.get(key)
        return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None

    out = []
    consistency = num("position_consistency")
    if consistency is not None and consistency < JUDGE_MIN_CONSISTENCY:
        out.append(f"position consistency {consistency:.0%} < {JUDGE_MIN_CONSISTENCY:.0%}: "
                   f"it mostly answers by position")
    first = num("first_position_rate")
    lo, hi = JUDGE_FIRST_POSITION_BAND
    if first is not None and not lo <= first <= hi:
        out.append(f"first-position rate {first:.0%}, outside [{lo:.0%}, {hi:.0%}]")
    mass = num("label_mass_mean")
    if mass is not None and mass < JUDGE_MIN_LABEL_MASS:
        out.append(f"mean label mass {mass:.2f} < {JUDGE_MIN_LABEL_MASS}: it is mostly not answering with a label")
    failures = num("failures")
    total = comparisons if isinstance(comparisons, int) and comparisons > 0 else None
    if failures is not None and total is not None and failures / total > JUDGE_MAX_FAILURE_SHARE:
        out.append(f"{failures / total:.0%} of the comparisons failed (> {JUDGE_MAX_FAILURE_SHARE:.0%})")
    return out


# --------------------------------------------------------------------------- public API


def analyze_records(
    records,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    prior: float = 0.0,
    ci: str = "bootstrap",
    significant: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Analyse comparison records (`arena.core.records.Records`) into a `Result`.

    Estimators: Bradley–Terry maximum likelihood on the soft-win table W (MAP with a
    N(0, 1/prior) prior when prior > 0), fitted once; `level` intervals for θ by percentile
    bootstrap (`rounds` rounds from `seed`, whole prompts resampled when `records.cluster`
    exists) or analytic (sandwich, cluster-robust with prompt ids); the preference matrix
    P = W / N with Wilson score intervals at `level`; cycles of P (only majority edges whose
    interval excludes ½ when `significant`), HodgeRank weighted by N; the maximum-entropy
    Nash mixture of A = P − ½ with its exploitability. `progress(done, total)` is called
    after each chunk of bootstrap rounds.
    """
    from arena.core.bootstrap import analytic_bradley_terry_intervals, bootstrap_bradley_terry
    from arena.core.bradley_terry import fit_bradley_terry
    from arena.core.matrix import PreferenceMatrix, preference_matrix_from_counts
    from arena.core.records import pair_counts
    from arena.core.uncertainty import matrix_intervals

    _check_options(rounds, level, prior, ci)
    W, N = pair_counts(records)
    fit = fit_bradley_terry(W, prior=prior, models=records.models)
    if ci == "bootstrap":
        intervals = bootstrap_bradley_terry(
            records, rounds=int(rounds), seed=seed, level=level, prior=prior, progress=progress, fit=fit,
            keep_pairs=True,
        )
        method = f"bootstrap ({intervals.method})"
    else:
        # With the records the core gives the sandwich interval (cluster-robust with prompt
        # ids), which stays honest for ties and soft scores.
        intervals = analytic_bradley_terry_intervals(W, N, fit, level=level, records=records)
        method = f"analytic ({intervals.method})"
    pm = preference_matrix_from_counts(W, N, level=level)
    if ci == "bootstrap" and records.cluster is not None:
        # Judgments of one prompt are dependent: the cells get the same prompt-cluster
        # resamples as the ratings, not per-cell Wilson intervals (which assume independence).
        lo, hi = matrix_intervals(intervals.pair_samples, intervals.cells, pm.P, level=level)
        pm = PreferenceMatrix(P=pm.P, lo=lo, hi=hi, N=pm.N)
        matrix_ci = f"prompt-cluster bootstrap (percentile, {int(rounds)} rounds, shared with the ratings)"
    elif records.cluster is not None:
        matrix_ci = "Wilson score per cell (ignores prompt clustering; --ci bootstrap accounts for it)"
    else:
        matrix_ci = "Wilson score per cell (no prompt ids: judgments treated as independent)"
    games = N.sum(axis=1)
    # Mean score over the model's own games (ties half); undefined (null) without games.
    win_rate = np.where(games > 0, W.sum(axis=1) / np.where(games > 0, games, 1.0), np.nan)
    result = _analyze(records.models, pm, fit, intervals, win_rate, significant=significant, level=level)
    return replace(result, settings=Settings(
        input="pairs",
        records=len(records),
        clusters=None if records.cluster is None else int(np.unique(records.cluster).size),
        rounds=int(rounds) if ci == "bootstrap" else None,
        seed=int(seed),
        level=float(level),
        prior=float(prior),
        ci=method,
        matrix_ci=matrix_ci,
        nash_ci=result.nash.method,
        rank_ci=f"bootstrap rank quantiles ({int(rounds)} rounds)" if ci == "bootstrap" else None,
        degenerate_rounds=int(intervals.degenerate) if ci == "bootstrap" else None,
        significant=bool(significant),
    ))


def analyze_matrix(models: Sequence[str], P, *, prior: float = 0.0, significant: bool = False) -> Result:
    """Analyse a preference matrix P[i, j] = P(models[i] ≻ models[j]) into a `Result`.

    The matrix carries no counts, so: Bradley–Terry is fitted to P as soft counts with
    unit weight per pair (W = P off the diagonal, N = 1), `bt_ci` is null (an interval from
    one pseudo-game per pair would be meaningless), `n` is null, the matrix intervals are
    the point values, and win_rate is the row mean over the other models.
    """
    from arena.core.bradley_terry import fit_bradley_terry
    from arena.core.matrix import preference_matrix_from_probabilities

    models = [str(m) for m in models]
    if len(set(models)) != len(models):
        raise InputError("model names in the matrix repeat: give each model once")
    if not (math.isfinite(prior) and prior >= 0.0):
        raise InputError(f"prior must be a finite number >= 0; got {prior}: e.g. --prior 0.1")
    if significant:
        raise InputError(
            "--significant needs per-cell intervals, which a preference matrix does not carry: "
            "drop --significant or rate the pairwise judgments instead"
        )
    pm = preference_matrix_from_probabilities(np.asarray(P, dtype=np.float64))
    Pm = np.asarray(pm.P, dtype=np.float64)
    n = Pm.shape[0]
    if n != len(models):
        raise InputError(f"{len(models)} model names for a {n}x{n} matrix: give one name per row")
    if n < 2:
        raise InputError("a preference matrix needs at least two models")
    off = ~np.eye(n, dtype=bool)
    W = np.where(off, Pm, 0.0)
    fit = fit_bradley_terry(W, prior=prior, models=models)
    win_rate = (Pm.sum(axis=1) - 0.5) / (n - 1)
    result = _analyze(models, pm, fit, None, win_rate, significant=significant, level=0.95)
    return replace(result, settings=Settings(
        input="matrix",
        records=None,
        clusters=None,
        rounds=None,
        seed=None,
        level=None,
        prior=float(prior),
        ci="none (a matrix has no counts; Bradley–Terry fitted to P with unit weight per pair)",
        matrix_ci="none (a matrix has no counts)",
        nash_ci=None,
        rank_ci=None,
        degenerate_rounds=None,
        significant=bool(significant),
    ))
