"""Bradley–Terry maximum likelihood on a table of (soft) wins, with an optional Gaussian prior.

Model (Zermelo 1929; Bradley & Terry 1952, Biometrika 39:324): model i beats model j with
probability σ(θ_i − θ_j), σ the logistic function. Given soft win counts W[i, j] (ties count
as half a win for each side, see ``arena.core.records``), the log-likelihood is

    ℓ(θ) = Σ_{i ≠ j} W[i, j] · log σ(θ_i − θ_j),

invariant to adding a constant to θ; we report the mean-zero representative (Σ θ_i = 0).
The gradient and Hessian are

    ∂ℓ/∂θ_i = Σ_j W[i, j] − Σ_j N[i, j] p_ij,      p_ij = σ(θ_i − θ_j), N = W + Wᵀ,
    −∇²ℓ   = L(N ∘ p ∘ (1 − p))                     (a weighted graph Laplacian).

Existence (Zermelo 1929; Ford 1957; Hunter 2004, "MM algorithms for generalized
Bradley–Terry models", Ann. Statist. 32:384, Assumption 1): the maximum exists and is unique
(up to the constant) iff the directed graph with an edge i → j whenever W[i, j] > 0 is
strongly connected. Otherwise some group of models never loses (or never wins) against the
rest and its ratings run off to ±∞; `fit_bradley_terry` then raises `InputError` naming them.

Prior: ``prior = λ > 0`` adds an independent Gaussian prior θ_i ~ N(0, 1/λ) (a ridge penalty),
so the estimate is the MAP of  ℓ(θ) − (λ/2)‖θ‖².  The objective is then strictly concave on
any graph (an unplayed or unbeaten model is pulled to 0), and its maximiser has mean zero
automatically. λ is in units of "games": λ = 0.1 weighs like a tenth of a game per model.

Algorithm: Newton's method on the mean-zero subspace (the Laplacian's null direction 1 is
removed by solving with H + 11ᵀ/n), with an Armijo backtracking line search, to a gradient
norm below ``tol`` per game. Newton converges quadratically here, so the answer is the exact
MLE to floating-point precision (the published BradleyTerry2 numbers are reproduced to 4
decimals in the tests). `fit_bradley_terry_mm` is Hunter's (2004) MM algorithm, an
independent second algorithm used to cross-check the Newton fit.
Elo scale: elo = 400/ln(10) · θ + 1000 (Chatbot Arena's convention, arXiv 2403.04132).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from arena.errors import InputError, SolverError

__all__ = [
    "BTFit",
    "fit_bradley_terry",
    "fit_bradley_terry_batch",
    "fit_bradley_terry_mm",
    "check_strongly_connected",
    "bt_log_likelihood",
    "elo",
]

# Default stopping rule: gradient 2-norm of the log-posterior per game (‖∇ℓ‖ / total games).
DEFAULT_TOL = 1e-10
# Armijo sufficient-decrease constant and relative slack for round-off near the optimum.
_ARMIJO = 1e-4
_ROUNDOFF = 1e-13
_MAX_HALVINGS = 40
# How many names an error message lists per group before it says "and k more".
_SHOW = 8


@dataclass(frozen=True)
class BTFit:
    """Bradley–Terry fit.

    Attributes:
      theta: (n,) log-strengths, mean zero.
      grad_norm: certificate: ‖∇(ℓ − λ/2 ‖θ‖²)‖₂ at theta divided by max(1, total games).
      iterations: Newton (or MM) iterations used.
      prior: the Gaussian prior precision λ used (0 = plain MLE).
      log_likelihood: ℓ(theta) (without the prior term).
    """

    theta: np.ndarray
    grad_norm: float
    iterations: int
    prior: float
    log_likelihood: float


def elo(theta: np.ndarray) -> np.ndarray:
    """Elo scale of Bradley–Terry log-strengths: 400/ln(10) · θ + 1000."""
    return 400.0 / np.log(10.0) * np.asarray(theta, dtype=np.float64) + 1000.0


def _check_wins(W: np.ndarray) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise InputError(f"wins must be a square (n, n) matrix; got shape {W.shape}")
    if W.shape[0] < 2:
        raise InputError(f"Bradley–Terry needs at least 2 models; got {W.shape[0]}")
    if not np.isfinite(W).all():
        raise InputError("wins contains NaN or infinite entries: give finite win counts")
    if (W < 0).any():
        raise InputError("wins contains negative entries: W[i, j] counts (soft) wins of i over j")
    W = W.copy()
    np.fill_diagonal(W, 0.0)
    return W


def _names(models: Sequence[str] | None, n: int) -> list[str]:
    return list(models) if models is not None else [f"#{i}" for i in range(n)]


def _fmt(names: list[str]) -> str:
    more = f" and {len(names) - _SHOW} more" if len(names) > _SHOW else ""
    return ", ".join(names[:_SHOW]) + more


def check_strongly_connected(W: np.ndarray, *, models: Sequence[str] | None = None) -> None:
    """Raise InputError naming the cut-off models if the win graph is not strongly connected.

    Edge i → j when W[i, j] > 0 (i won at least part of a game against j). Without strong
    connectivity the Bradley–Terry MLE does not exist (Hunter 2004, Assumption 1).
    """
    W = _check_wins(W)
    n = W.shape[0]
    k, label = connected_components(csr_matrix(W > 0), directed=True, connection="strong")
    if k == 1:
        return
    names = _names(models, n)
    comps = [np.flatnonzero(label == c) for c in range(k)]
    # Condensation: M[c, d] > 0 when some model of component c beat some model of d.
    Z = np.eye(k)[label]  # (n, k) one-hot membership
    M = Z.T @ (W > 0).astype(np.float64) @ Z
    np.fill_diagonal(M, 0.0)
    problems = []
    for c, members in enumerate(comps):
        who = _fmt([names[i] for i in members])
        wins_out, losses_out = M[c].sum() > 0, M[:, c].sum() > 0
        plural = len(members) > 1
        if not wins_out and not losses_out:
            problems.append(f"{who} {'have' if plural else 'has'} no games against the rest")
        elif not losses_out:
            problems.append(f"{who} never {'lose' if plural else 'loses'} against the rest")
        elif not wins_out:
            problems.append(f"{who} never {'win' if plural else 'wins'} against the rest")
    groups = " ".join("[" + _fmt([names[i] for i in members]) + "]" for members in comps[:_SHOW])
    if k > _SHOW:
        groups += f" and {k - _SHOW} more"
    raise InputError(
        "the comparison graph is not strongly connected, so the Bradley–Terry MLE does not "
        f"exist (ratings run off to infinity): {'; '.join(problems)}; components: {groups}; "
        "fix: add a prior (--prior 0.1, or prior=0.1) or add comparisons linking them"
    )


def bt_log_likelihood(W: np.ndarray, theta: np.ndarray) -> float:
    """ℓ(θ) = Σ_{i≠j} W[i, j] log σ(θ_i − θ_j)."""
    W = np.asarray(W, dtype=np.float64)
    D = theta[:, None] - theta[None, :]
    return float(-(W * np.logaddexp(0.0, -D)).sum())


def _objective(W: np.ndarray, theta: np.ndarray, prior: float) -> np.ndarray:
    """Negative log-posterior, batched: W (R, n, n), theta (R, n) -> (R,)."""
    D = theta[:, :, None] - theta[:, None, :]  # (R, n, n)
    f = (W * np.logaddexp(0.0, -D)).sum(axis=(1, 2))
    if prior > 0:
        f = f + 0.5 * prior * (theta * theta).sum(axis=1)
    return f


def fit_bradley_terry_batch(
    W: np.ndarray,
    *,
    prior: float = 0.0,
    init: np.ndarray | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Newton fits of R independent win tables at once (no connectivity check).

    Args:
      W: (R, n, n) soft wins (diagonal zero). Every table must have a strongly connected
        graph when prior == 0 (check with `check_strongly_connected`), else θ diverges and a
        SolverError is raised after ``max_iter``.
      prior: Gaussian prior precision λ >= 0.
      init: (R, n) or (n,) warm start (e.g. the full-data fit for bootstrap rounds); default 0.
      tol: stop when ‖∇‖₂ / max(1, games) <= tol for every table.

    Returns (theta (R, n) mean zero, grad_norm (R,), iterations).
    """
    W = np.asarray(W, dtype=np.float64)
    R, n, _ = W.shape
    N = W + np.swapaxes(W, 1, 2)  # (R, n, n)
    wins = W.sum(axis=2)  # (R, n)
    scale = np.maximum(1.0, N.sum(axis=(1, 2)) / 2.0)  # (R,) games per table
    theta = np.zeros((R, n)) if init is None else np.broadcast_to(init, (R, n)).astype(np.float64)
    theta = theta - theta.mean(axis=1, keepdims=True)
    J = np.full((n, n), 1.0 / n)
    f = _objective(W, theta, prior)
    active = np.ones(R, dtype=bool)
    gnorm = np.full(R, np.inf)
    for it in range(max_iter + 1):
        idx = np.flatnonzero(active)
        th = theta[idx]
        D = th[:, :, None] - th[:, None, :]
        P = 0.5 * (1.0 + np.tanh(0.5 * D))  # σ(D), stable  (r, n, n)
        Nr = N[idx]
        g = (Nr * P).sum(axis=2) - wins[idx] + prior * th  # ∇ of the objective  (r, n)
        gnorm[idx] = np.linalg.norm(g, axis=1) / scale[idx]
        done = gnorm[idx] <= tol
        active[idx[done]] = False
        if not active.any() or it == max_iter:
            break
        keep = ~done
        idx, th, P, Nr, g = idx[keep], th[keep], P[keep], Nr[keep], g[keep]
        C = Nr * P * (1.0 - P)  # (r, n, n) Laplacian weights
        H = -C
        H[:, np.arange(n), np.arange(n)] = C.sum(axis=2) + prior
        # The objective is flat along 1 (prior 0); adding 11ᵀ/n makes H invertible and, as g ⟂ 1,
        # gives the Newton step within the mean-zero subspace.
        step = -np.linalg.solve(H + J, g[:, :, None])[:, :, 0]
        step -= step.mean(axis=1, keepdims=True)
        slope = (g * step).sum(axis=1)  # < 0
        t = np.ones(idx.size)
        f0 = f[idx]
        pending = np.arange(idx.size)
        new_theta = th.copy()
        new_f = f0.copy()
        for _ in range(_MAX_HALVINGS):
            cand = th[pending] + t[pending, None] * step[pending]
            fc = _objective(W[idx[pending]], cand, prior)
            ok = fc <= f0[pending] + _ARMIJO * t[pending] * slope[pending] + _ROUNDOFF * np.abs(f0[pending])
            new_theta[pending[ok]] = cand[ok]
            new_f[pending[ok]] = fc[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            t[pending] *= 0.5
        if pending.size:
            # No decrease even with a tiny step: at the optimum to round-off. Freeze those.
            active[idx[pending]] = False
        theta[idx] = new_theta - new_theta.mean(axis=1, keepdims=True)
        f[idx] = new_f
    if np.any(gnorm > tol):
        # Out of iterations, or a line search that found no decrease away from the optimum:
        # never return an uncertified fit.
        worst = float(gnorm.max())
        raise SolverError(
            f"Bradley–Terry Newton stopped after {it} iterations with gradient {worst:.2e} per game "
            f"> tol {tol:.0e}: the win graph is probably not strongly connected; add a prior"
        )
    return theta, gnorm, it


def fit_bradley_terry(
    W: np.ndarray,
    *,
    prior: float = 0.0,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100,
    init: np.ndarray | None = None,
    models: Sequence[str] | None = None,
) -> BTFit:
    """Bradley–Terry MLE (prior == 0) or MAP with a N(0, 1/prior) prior on each θ_i.

    maximise  ℓ(θ) − (prior/2)‖θ‖²,  ℓ(θ) = Σ W[i, j] log σ(θ_i − θ_j),  subject to Σθ = 0.

    Args:
      W: (n, n) soft wins, W[i, j] = wins of i over j with ties counted half.
      prior: Gaussian prior precision λ >= 0 (ridge); λ > 0 makes the fit exist on any graph.
      tol: gradient-norm tolerance per game (see `BTFit.grad_norm`).
      init: optional (n,) warm start.
      models: optional names, used in error messages.

    Raises:
      InputError: bad W, negative prior, or (prior == 0) a win graph that is not strongly
        connected; the message names the cut-off models and suggests the prior.
      SolverError: Newton failed to certify the gradient tolerance.
    """
    W = _check_wins(W)
    prior = float(prior)
    if not np.isfinite(prior) or prior < 0:
        raise InputError(f"prior must be a finite precision >= 0; got {prior}")
    if prior == 0.0:
        check_strongly_connected(W, models=models)
    theta, gnorm, it = fit_bradley_terry_batch(
        W[None], prior=prior, init=None if init is None else np.asarray(init, float)[None],
        tol=tol, max_iter=max_iter,
    )
    th = theta[0]
    return BTFit(
        theta=th, grad_norm=float(gnorm[0]), iterations=int(it), prior=prior,
        log_likelihood=bt_log_likelihood(W, th),
    )


def fit_bradley_terry_mm(
    W: np.ndarray, *, tol: float = 1e-12, max_iter: int = 100_000
) -> BTFit:
    """Hunter's (2004) MM algorithm for the unpenalised MLE: an independent cross-check.

    γ_i ← Σ_j W[i, j] / Σ_j N[i, j] / (γ_i + γ_j),  then θ = log γ − mean(log γ).
    Converges linearly (slowly on sparse graphs); stops when the largest change in θ is below
    ``tol``. Requires a strongly connected win graph (checked).
    """
    W = _check_wins(W)
    check_strongly_connected(W)
    N = W + W.T
    wins = W.sum(axis=1)
    theta = np.zeros(W.shape[0])
    for it in range(1, max_iter + 1):
        g = np.exp(theta)
        denom = (N / (g[:, None] + g[None, :])).sum(axis=1)
        new = np.log(wins / denom)
        new -= new.mean()
        delta = np.max(np.abs(new - theta))
        theta = new
        if delta < tol:
            break
    else:
        raise SolverError(f"MM did not converge in {max_iter} iterations (last change {delta:.1e})")
    D = theta[:, None] - theta[None, :]
    P = 1.0 / (1.0 + np.exp(-D))
    grad = wins - (N * P).sum(axis=1)
    scale = max(1.0, N.sum() / 2.0)
    return BTFit(
        theta=theta, grad_norm=float(np.linalg.norm(grad) / scale), iterations=it, prior=0.0,
        log_likelihood=bt_log_likelihood(W, theta),
    )
