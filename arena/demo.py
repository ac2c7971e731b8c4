"""The embedded default: raters world -> tournament -> train Nash-MP and baselines -> tournament.

Everything runs on a laptop CPU in a few minutes and needs no download. Every stage reuses
what an earlier run left in the demo directory (the world, the tournament store, trained
checkpoints), so a second `arena demo` only re-analyses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arena.core.nash import max_entropy_nash

#: Algorithms the demo trains from the world's SFT checkpoint.
DEMO_ALGORITHMS = ("nash-mp", "nash-md", "online-dpo")
#: Prompts in the demo world: enough for the style cycle to be significant at the 95% level.
DEMO_PROMPTS = 100


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    out: Path = Path("demo-run")
    """Demo directory: world/ (prompts, checkpoints, judge) and run/ (store and reports)."""
    steps: int = 60
    """Training steps per algorithm."""
    seed: int = 0
    """Seed of the world, sampling, training and bootstrap."""
    rounds: int = 1000
    """Bootstrap rounds for the rating intervals."""
    train: bool = True
    """Train the algorithms and rerun the tournament (False: first tournament only)."""


def score_against_others(P: np.ndarray) -> np.ndarray:
    """For every model i: P(i ≻ p*_{-i}) − ½, where p*_{-i} is the max-entropy Nash of the others.

    A model that is at least as good as every other against the others' equilibrium has the
    largest value; a model that the others' equilibrium beats scores below zero.
    """
    P = np.asarray(P, dtype=float)
    n = P.shape[0]
    out = np.empty(n)
    for i in range(n):
        rest = np.delete(np.arange(n), i)
        p = max_entropy_nash(P[np.ix_(rest, rest)] - 0.5).p
        out[i] = P[i, rest] @ p - 0.5
    return out


def nash_mp_summary(result: dict, *, name: str = "nash-mp", reference: str = "sft") -> dict | None:
    """The trained Nash-MP checkpoint against the Nash mixture of the others and against SFT."""
    models = result["preference"]["models"]
    if name not in models or reference not in models:
        return None
    P = np.asarray(result["preference"]["P"], dtype=float)
    scores = score_against_others(P)
    i, j = models.index(name), models.index(reference)
    lo, hi = result["preference"].get("lo"), result["preference"].get("hi")
    return {
        "model": name,
        "score_vs_nash_of_others": {m: float(s) for m, s in zip(models, scores)},
        "best_vs_nash_of_others": bool(scores[i] >= scores.max() - 1e-9),
        "nash_averaged_score": result["nash"]["scores"][name],
        "win_rate_vs_sft": float(P[i, j]),
        "win_rate_vs_sft_ci": [float(lo[i][j]), float(hi[i][j])] if lo and hi else None,
    }
