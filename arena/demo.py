"""The embedded default: raters world -> tournament -> train Nash-MP and baselines -> tournament.

Everything runs on a laptop CPU in a few minutes and needs no download. Every stage reuses
what an earlier run left in the demo directory (the world, the tournament store, trained
checkpoints), so a second `arena demo` only re-analyses.
"""

from __future__ import annotations

import numpy as np

from arena.core.nash import max_entropy_nash
from arena.result import Result

#: Algorithms the demo trains from the world's SFT checkpoint.
DEMO_ALGORITHMS = ("nash-mp", "nash-md", "online-dpo")
#: Training budget shared by every demo algorithm (same steps, batch and judge queries):
#: about half a minute each on 2 CPU cores. From the world's SFT checkpoint (about 75%
#: correct answers) this brings Nash-MP to about 99% correct.
DEMO_TRAIN = dict(steps=300, batch_size=16, beta=0.05, lr=2e-3, max_new_tokens=24)
#: Prompts in the demo world: enough for the style cycle to be significant at the 95% level.
DEMO_PROMPTS = 100
#: Responses per (checkpoint, prompt): the trained policies differ by a few points of
#: correctness, which one sample per prompt cannot resolve.
DEMO_SAMPLES = 8
#: Scores within this of each other count as equal (they come from rounded probabilities).
SCORE_TOL = 1e-6


def score_against_nash_of_others(P: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Every model against one fixed opponent: the max-entropy Nash mixture of all models but i.

    Returns (scores, p) with scores[c] = P(c ≻ p*₋ᵢ) − ½ and p*₋ᵢ over the models other than i
    (zero weight at i). The others' own scores are ≤ 0 (= 0 on the support), because p*₋ᵢ is
    their equilibrium; model i is "at least as good as every other checkpoint against the
    Nash mixture of the others" when its score is ≥ 0, i.e. it would enter the support.
    """
    P = np.asarray(P, dtype=float)
    rest = np.delete(np.arange(P.shape[0]), i)
    p = np.zeros(P.shape[0])
    p[rest] = max_entropy_nash(P[np.ix_(rest, rest)] - 0.5).p
    return P @ p - 0.5, p


def nash_mp_summary(result: Result, *, name: str = "nash-mp", reference: str = "sft") -> dict | None:
    """The trained Nash-MP checkpoint against the Nash mixture of the others and against SFT
    (`result`: an `arena.result.Result`)."""
    models = result.preference.models
    if name not in models or reference not in models:
        return None
    P = np.asarray(result.preference.P, dtype=float)
    i, j = models.index(name), models.index(reference)
    scores, p = score_against_nash_of_others(P, i)
    lo, hi = result.preference.lo, result.preference.hi
    others = np.delete(scores, i)
    # A conservative interval for the score against the fixed mixture p: every cell at the
    # end of its own interval at once (p held fixed), so it covers at least at the cells' level.
    score_ci = None
    if lo and hi:
        score_ci = [float(np.asarray(lo[i], dtype=float) @ p - 0.5), float(np.asarray(hi[i], dtype=float) @ p - 0.5)]
    best = bool(scores[i] >= others.max() - SCORE_TOL)
    if score_ci is None:
        verdict = "point estimate only (no intervals)"
    elif score_ci[0] > SCORE_TOL:
        verdict = "significantly better than the others' Nash mixture (it would enter the equilibrium)"
    elif score_ci[1] < -SCORE_TOL:
        verdict = "significantly worse than the others' Nash mixture"
    else:
        verdict = "not distinguishable from the others' Nash mixture"
    return {
        "model": name,
        "nash_of_others": {m: float(w) for m, w in zip(models, p) if m != name},
        "score_vs_nash_of_others": {m: float(s) for m, s in zip(models, scores)},
        "score_ci": score_ci,
        "verdict": verdict,
        "best_vs_nash_of_others": best,
        "nash_averaged_score": result.nash.scores[name],
        "win_rate_vs_sft": float(P[i, j]),
        "win_rate_vs_sft_ci": [float(lo[i][j]), float(hi[i][j])] if lo and hi else None,
    }
