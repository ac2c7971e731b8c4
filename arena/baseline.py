"""Scores against a baseline at 50 % (Arena-Hard's anchored form of `arena rate --anchor`).

Arena-Hard-Auto (Li et al. 2024, arXiv 2406.11939) reports each model as its Bradley–Terry
predicted win rate against a fixed baseline model, so the baseline sits at 50 % by
construction:

    score_m = P(m ≻ base) = σ(θ_m − θ_base),

with θ the Bradley–Terry log-strengths (natural-log scale; the Elo scale 400/ln 10 · θ + 1000
gives the same σ((Elo_m − Elo_base) · ln 10 / 400)). Its interval is the percentile interval of
σ(θ_m^(r) − θ_base^(r)) over the bootstrap refits r, the difference taken within each round
(the two ratings are correlated; the ends of their separate intervals would not do). The
refits are those of `arena.analysis.analyze_records`: same records, rounds, seed and prior,
hence the same resamples.

`parse_baseline` reads the command-line form ``MODEL=50%``; `baseline_scores` adds
``Result.extra["baseline"]``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from arena.errors import InputError
from arena.result import Result

__all__ = ["parse_baseline", "baseline_scores"]


def parse_baseline(text: str) -> str | None:
    """``MODEL=50%`` -> MODEL; None when `text` is not the percent form (``MODEL=ELO``)."""
    model, sep, value = str(text).rpartition("=")
    if not sep or not value.strip().endswith("%"):
        return None
    if value.strip() != "50%" or not model.strip():
        raise InputError(f"--anchor {text!r}: the baseline form puts one model at 50%: e.g. --anchor gpt-4-0314=50% "
                         "(or MODEL=ELO for an Elo anchor)")
    return model.strip()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def baseline_scores(result: Result, records, model: str, *, rounds: int, seed: int, level: float,
                    prior: float, ci: str = "bootstrap") -> Result:
    """`result` with ``extra["baseline"]`` = {model, level, scores: {m: {score, ci}}, method}.

    score = P(m ≻ model) under the fitted Bradley–Terry model (``model`` itself: 0.5); ci the
    percentile interval over the bootstrap refits (None with analytic intervals, ``ci !=
    "bootstrap"``). Raises InputError when `model` is not rated.
    """
    from arena.core.bootstrap import bootstrap_bradley_terry

    models = list(records.models)
    if model not in models:
        raise InputError(f"--anchor {model}=50%: no such model (models: {', '.join(models)}); give one of them")
    if any(result.ratings[m].bt is None for m in models):
        raise InputError(f"--anchor {model}=50%: some models have no finite rating; add comparisons or --prior 0.1")
    k = models.index(model)
    theta = np.array([result.ratings[m].bt for m in models], dtype=np.float64)
    score = _sigmoid(theta - theta[k])
    lo = hi = None
    if ci == "bootstrap":
        draws = bootstrap_bradley_terry(records, rounds=int(rounds), seed=seed, level=level, prior=prior).samples
        s = _sigmoid(draws - draws[:, [k]])  # (rounds, n): the difference within each round
        lo, hi = np.quantile(s, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0)
    part = {
        "model": model,
        "level": float(level),
        "scores": {m: {"score": float(score[i]),
                       "ci": None if lo is None else [float(lo[i]), float(hi[i])]} for i, m in enumerate(models)},
        "method": (f"Bradley–Terry predicted win rate against {model} (Arena-Hard's score, {model} = 50%); "
                   + (f"percentile interval over the same {int(rounds)} bootstrap refits as the ratings"
                      if lo is not None else "no interval with analytic rating intervals (use --ci bootstrap)")),
    }
    settings = replace(result.settings, extra={**result.settings.extra, "anchor": {"model": model, "baseline": 0.5}})
    return replace(result, settings=settings, extra={**result.extra, "baseline": part})
