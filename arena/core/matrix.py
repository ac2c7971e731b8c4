"""The preference matrix P[i, j] = P(model i ≻ model j), with per-cell intervals.

P + Pᵀ = 1 and diag(P) = ½ hold by construction. From counts, each cell is a binomial
proportion of (soft) wins over games, with a Wilson score interval (Wilson 1927, "Probable
inference, the law of succession, and statistical inference", JASA 22:209) or the Jeffreys
interval (Beta(w + ½, n - w + ½) quantiles; Brown, Cai, DasGupta 2001, "Interval estimation
for a binomial proportion", Statistical Science 16:101). Soft scores (ties count half)
enter as fractional wins, which keeps the point estimate exact and the interval approximate.
Pairs that never met get P = ½ with the uninformative interval [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as beta_dist
from scipy.stats import norm

from arena.errors import InputError

__all__ = [
    "PreferenceMatrix",
    "preference_matrix_from_counts",
    "preference_matrix_from_probabilities",
    "PROBABILITY_TOL",
    "COUNT_TOL",
]

#: how far P + Pᵀ may be from 1 (and diag(P) from ½) in a matrix given as probabilities
PROBABILITY_TOL = 1e-6
#: slack allowed in count identities (W + Wᵀ = N, W <= N) from floating-point soft scores
COUNT_TOL = 1e-6


@dataclass(frozen=True)
class PreferenceMatrix:
    """P (n, n): P[i, j] = P(i ≻ j), P + Pᵀ = 1, diagonal ½.

    lo, hi (n, n): per-cell interval (lo[j, i] = 1 - hi[i, j]); N (n, n) game counts or None
    when the matrix was given as probabilities (then lo = hi = P).
    """

    P: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    N: np.ndarray | None


def _as_square(M, name: str) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty square (n, n) matrix; got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        i, j = np.argwhere(~np.isfinite(M))[0]
        raise InputError(f"{name}[{i}, {j}] is not finite; remove NaN/inf entries (use 0.5 for an unknown preference)")
    return M


def _wilson(phat: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    denom = 1.0 + z * z / n
    center = (phat + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)


def _jeffreys(w: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    a, b = w + 0.5, n - w + 0.5
    alpha = 1.0 - level
    lo = np.where(w <= 0, 0.0, beta_dist.ppf(alpha / 2, a, b))
    hi = np.where(w >= n, 1.0, beta_dist.ppf(1 - alpha / 2, a, b))
    return lo, hi


def preference_matrix_from_counts(W, N, *, level: float = 0.95, method: str = "wilson") -> PreferenceMatrix:
    """P[i, j] = W[i, j] / N[i, j] from (soft) wins W and games N, with intervals.

    W[i, j]: wins of i over j (ties half, soft scores allowed); N[i, j] = N[j, i]: games
    between i and j; W + Wᵀ = N off the diagonal (within COUNT_TOL). The point estimate is
    symmetrised as P = (W/N + 1 - Wᵀ/N)/2 and the lower triangle set to 1 - upper, so that
    P + Pᵀ = 1 holds exactly in floating point. method: "wilson"
    (score interval) or "jeffreys" (Beta(w + ½, n - w + ½) quantiles) at `level`.
    Cells with N = 0 get P = ½ and [0, 1].
    """
    W = _as_square(W, "W")
    N = _as_square(N, "N")
    if W.shape != N.shape:
        raise InputError(f"W and N must have the same shape; got {W.shape} and {N.shape}")
    if not (0.0 < level < 1.0):
        raise InputError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    if method not in ("wilson", "jeffreys"):
        raise InputError(f"method must be 'wilson' or 'jeffreys'; got {method!r}")
    if W.min() < 0 or N.min() < 0:
        raise InputError("W and N must be non-negative counts")
    n = W.shape[0]
    off = ~np.eye(n, dtype=bool)
    tol = COUNT_TOL * max(1.0, float(N.max()))
    if np.abs(N - N.T).max() > tol:
        i, j = np.unravel_index(np.argmax(np.abs(N - N.T)), N.shape)
        raise InputError(f"N must be symmetric (games between i and j); N[{i},{j}]={N[i, j]} but N[{j},{i}]={N[j, i]}")
    gap = np.abs(W + W.T - N)[off]
    if gap.size and gap.max() > tol:
        i, j = np.argwhere(off & (np.abs(W + W.T - N) > tol))[0]
        raise InputError(
            f"W[{i},{j}] + W[{j},{i}] must equal N[{i},{j}] (ties count half to each side); "
            f"got {W[i, j]} + {W[j, i]} != {N[i, j]}"
        )
    N = (N + N.T) / 2.0
    played = off & (N > 0)
    Nsafe = np.where(played, N, 1.0)
    P = np.where(played, (W / Nsafe + 1.0 - W.T / Nsafe) / 2.0, 0.5)
    P = np.clip(P, 0.0, 1.0)
    iu = np.triu_indices(n, 1)
    P[iu[1], iu[0]] = 1.0 - P[iu]  # the symmetrised halves differ by rounding; mirror them
    np.fill_diagonal(P, 0.5)
    wins = P * Nsafe  # symmetrised soft wins
    if method == "wilson":
        lo, hi = _wilson(P, Nsafe, float(norm.ppf(0.5 + level / 2)))
    else:
        lo, hi = _jeffreys(wins, Nsafe, level)
    lo = np.where(played, lo, 0.0)
    hi = np.where(played, hi, 1.0)
    # mirror the upper triangle so that lo[j, i] = 1 - hi[i, j] exactly
    lo_t, hi_t = lo[iu], hi[iu]
    lo[iu[1], iu[0]] = 1.0 - hi_t
    hi[iu[1], iu[0]] = 1.0 - lo_t
    np.fill_diagonal(lo, 0.5)
    np.fill_diagonal(hi, 0.5)
    Nout = N.copy()
    np.fill_diagonal(Nout, 0.0)
    return PreferenceMatrix(P=P, lo=lo, hi=hi, N=Nout)


def preference_matrix_from_probabilities(P, *, tol: float = PROBABILITY_TOL) -> PreferenceMatrix:
    """Validate a matrix of probabilities and symmetrise it as (P + 1 - Pᵀ)/2.

    Requires: square, finite, entries in [0, 1], |P + Pᵀ - 1| <= tol off the diagonal and
    |diag(P) - ½| <= tol. lo = hi = P, N = None.
    """
    P = _as_square(P, "P")
    if P.min() < 0.0 or P.max() > 1.0:
        i, j = np.unravel_index(np.argmax(np.maximum(-P, P - 1.0)), P.shape)
        raise InputError(f"P[{i},{j}] = {P[i, j]} is not a probability; entries must lie in [0, 1]")
    n = P.shape[0]
    off = ~np.eye(n, dtype=bool)
    dev = np.abs(P + P.T - 1.0) * off
    if dev.max() > tol:
        i, j = np.unravel_index(np.argmax(dev), P.shape)
        raise InputError(
            f"P[{i},{j}] + P[{j},{i}] = {P[i, j] + P[j, i]:.6g} must be 1 (P = probability row beats column); "
            "fix the matrix or pass both directions consistently"
        )
    ddev = np.abs(np.diag(P) - 0.5)
    if ddev.max() > tol:
        i = int(np.argmax(ddev))
        raise InputError(f"diagonal P[{i},{i}] = {P[i, i]} must be 0.5 (a model ties with itself)")
    S = (P + 1.0 - P.T) / 2.0
    np.fill_diagonal(S, 0.5)
    return PreferenceMatrix(P=S, lo=S.copy(), hi=S.copy(), N=None)
