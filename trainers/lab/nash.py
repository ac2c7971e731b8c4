"""The β-regularised Nash equilibrium of a preference game, to machine precision, certified.

Munos et al. 2024, "Nash learning from human feedback" (arXiv 2312.00886), define the
regularised preference game (per context x, weighted by ρ)

    J_β(π, π') = P(π ≻ π') − β KL(π‖π_ref) + β KL(π'‖π_ref),

whose unique symmetric Nash equilibrium π*_β is the fixed point

    π*_β(y|x) ∝ π_ref(y|x) exp(P(y ≻ π*_β | x) / β).

We solve it in log space by damped Newton on R(z) = z − log π_ref − P softmax(z)/β
(R constant along each row at the solution). The Jacobian is J = I − P S/β with
S = diag(π) − ππᵀ; since P = ½ 11ᵀ + A with A antisymmetric and 1ᵀS = 0, J = I − A S/β has
eigenvalues 1 − iλ/β (λ real) and is always invertible. Newton starts from π_ref; when that
does not reach the round-off zone within DIRECT_NEWTON iterations (small β), a continuation in
β (from β ≥ 1 down, halving) gives every Newton stage a warm start inside its quadratic region.

Certificate: the duality gap of the symmetric profile (π, π),

    gap(π) = max_π' J_β(π', π) − min_π' J_β(π, π') = 2β KL(π ‖ T(π)),
    T(π) ∝ π_ref exp(P(· ≻ π)/β)  (the regularised best response),

which uses πᵀPπ = ½ (from P + Pᵀ = 1); it is zero exactly at π*_β.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax, logsumexp

from arena.errors import InputError, SolverError
from trainers.lab.games import Game, preference_against

# Newton stops when the fixed-point residual (max abs, log space) is below tol, or, once below
# ROUNDOFF_ZONE, when it has stopped improving for 3 iterations (the round-off floor, about
# eps · max|P π/β|). The answer is rejected above REJECT_RESIDUAL.
REJECT_RESIDUAL = 1e-8
MAX_NEWTON = 100
MAX_HALVINGS = 40
DIRECT_NEWTON = 25
CONTINUATION = 2.0
STAGE_TOL = 1e-6
ROUNDOFF_ZONE = 1e-9  # below this residual, three iterations without 10% progress = round-off floor


@dataclass(frozen=True)
class RegularizedNash:
    """π*_β of a game with its certificates.

    log_pi: (X, Y) log π*_β (each row log-normalised).
    pi: (X, Y) π*_β.
    gap: ρ-weighted mean duality gap of (π, π) in the regularised game (0 at the equilibrium).
    residual: max over (x, y) of |log π − log T(π)|, the fixed-point equation's error.
    beta: the regularisation.
    iterations: Newton iterations in total (all continuation stages).
    """

    log_pi: np.ndarray
    pi: np.ndarray
    gap: float
    residual: float
    beta: float
    iterations: int


def kl_from_logs(log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """Rowwise KL(p‖q) from log-probabilities (rows normalised): (..., Y) -> (...).

    Written as Σ_{p>0} p (δ + e^{−δ} − 1) + Σ_{p=0} q, δ = log p − log q: equal to Σ p δ when
    both rows are normalised (Σ_{p>0} p e^{−δ} = Σ_{p>0} q), but every term is non-negative,
    so tiny divergences (1e-14) keep their digits.
    """
    p = np.exp(log_p)
    q = np.exp(log_q)
    on = p > 0
    with np.errstate(invalid="ignore"):
        delta = np.where(on, log_p - log_q, 0.0)
    terms = np.where(on, p * (delta + np.expm1(-delta)), q)
    return terms.sum(axis=-1)


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rowwise KL(p‖q) of probability arrays (..., Y) -> (...); 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise InputError(f"kl needs arrays of the same shape; got {p.shape} and {q.shape}")
    with np.errstate(divide="ignore"):
        log_p, log_q = np.log(p), np.log(q)
    log_p = log_p - logsumexp(log_p, axis=-1, keepdims=True)
    log_q = log_q - logsumexp(log_q, axis=-1, keepdims=True)
    if np.any((p > 0) & (q <= 0)):
        return np.where(np.any((p > 0) & (q <= 0), axis=-1), np.inf, kl_from_logs(log_p, np.where(q > 0, log_q, 0.0)))
    return kl_from_logs(log_p, log_q)


def best_response_logits(game: Game, pi: np.ndarray, beta: float) -> np.ndarray:
    """log π_ref + P(· ≻ π)/β, the unnormalised log of the regularised best response T(π): (X, Y)."""
    return game.log_pi_ref + preference_against(game.P, pi) / beta


def duality_gap(game: Game, log_pi: np.ndarray, beta: float) -> np.ndarray:
    """Per-context duality gap 2β KL(π ‖ T(π)) of the profile (π, π): (X,)."""
    pi = np.exp(log_pi)
    log_T = log_softmax(best_response_logits(game, pi, beta), axis=1)
    return 2.0 * beta * kl_from_logs(log_pi, log_T)


def fixed_point_residual(game: Game, log_pi: np.ndarray, beta: float) -> float:
    """max |log π − log T(π)| over contexts and actions."""
    log_T = log_softmax(best_response_logits(game, np.exp(log_pi), beta), axis=1)
    return float(np.max(np.abs(log_pi - log_T)))


def _centred_residual(P: np.ndarray, log_ref: np.ndarray, z: np.ndarray, beta: float) -> np.ndarray:
    R = z - log_ref - preference_against(P, np.exp(z)) / beta
    return R - R.mean(axis=1, keepdims=True)


def _newton(game: Game, z: np.ndarray, beta: float, tol: float, *, max_iter: int = MAX_NEWTON) -> tuple[np.ndarray, int]:
    """Damped Newton on the centred residual, vectorised over contexts (batched solves)."""
    X, Y = z.shape
    eye = np.eye(Y)
    P, log_ref = game.P, game.log_pi_ref
    R = _centred_residual(P, log_ref, z, beta)
    merit = np.einsum("xy,xy->x", R, R)
    best = np.inf
    stalled = 0
    for it in range(1, max_iter + 1):
        pi = np.exp(z)
        Ppi = preference_against(P, pi)
        PS = P * pi[:, None, :] - Ppi[:, :, None] * pi[:, None, :]  # P (diag π − ππᵀ): (X, Y, Y)
        J = eye[None] - PS / beta
        delta = np.linalg.solve(J, -R[..., None])[..., 0]  # (X, Y)
        t = np.ones(X)
        todo = np.ones(X, dtype=bool)
        z_new = z.copy()
        for _ in range(MAX_HALVINGS):
            cand = log_softmax(z[todo] + t[todo, None] * delta[todo], axis=1)
            Rc = _centred_residual(P[todo], log_ref[todo], cand, beta)
            m = np.einsum("xy,xy->x", Rc, Rc)
            ok = (m < merit[todo] * (1.0 - 1e-4 * t[todo])) | (m <= 0)
            idx = np.flatnonzero(todo)
            z_new[idx[ok]] = cand[ok]
            todo[idx[ok]] = False
            t[todo] *= 0.5
            if not todo.any():
                break
        # Contexts whose line search found no decrease sit at the round-off floor: keep them.
        z = z_new
        R = _centred_residual(P, log_ref, z, beta)
        merit = np.einsum("xy,xy->x", R, R)
        res = fixed_point_residual(game, z, beta)
        if res <= tol:
            return z, it
        if res < best * 0.9 or res > ROUNDOFF_ZONE:
            best, stalled = min(res, best), 0
        else:
            stalled += 1
            if stalled >= 3:
                return z, it
    return z, max_iter


def regularized_nash(game: Game, beta: float, *, tol: float = 1e-13) -> RegularizedNash:
    """Solve π*_β(y|x) ∝ π_ref(y|x) exp(P(y ≻ π*_β|x)/β) for every context, to machine precision.

    Raises SolverError when the fixed-point residual cannot be brought below REJECT_RESIDUAL.
    """
    if not (np.isfinite(beta) and beta > 0):
        raise InputError(f"beta must be a finite number > 0; got {beta}")
    # Continuation β_0 ≥ 1 > ... > β (factor CONTINUATION per stage): each stage starts close
    # to its solution; intermediate stages only need a warm start, not full precision.
    betas = [beta]
    while betas[-1] < 1.0:
        betas.append(betas[-1] * CONTINUATION)
    betas = betas[::-1]
    z0 = game.log_pi_ref - logsumexp(game.log_pi_ref, axis=1, keepdims=True)
    # First try Newton straight from π_ref (enough for moderate β); continue in β only if needed.
    z, iterations = _newton(game, z0, beta, tol, max_iter=DIRECT_NEWTON)
    residual = fixed_point_residual(game, z, beta)
    if not residual <= ROUNDOFF_ZONE:
        z = z0
        for b in betas[:-1]:
            z, it = _newton(game, z, b, STAGE_TOL)
            iterations += it
        z, it = _newton(game, z, beta, tol)
        iterations += it
        residual = fixed_point_residual(game, z, beta)
    if not residual <= REJECT_RESIDUAL:
        raise SolverError(
            f"regularised Nash did not converge (fixed-point residual {residual:.3g} at beta={beta}); "
            "try a larger beta or check P for extreme entries"
        )
    gap = float(np.dot(game.weights, duality_gap(game, z, beta)))
    return RegularizedNash(log_pi=z, pi=np.exp(z), gap=gap, residual=residual, beta=float(beta), iterations=iterations)


def unregularized_nash(game: Game, *, tol: float = 1e-9) -> np.ndarray:
    """Maximum-entropy Nash equilibrium of each context's game A = P[x] − ½: (X, Y).

    Delegates to `arena.core.nash.max_entropy_nash` (the analytics core's certified solver);
    this is the β → 0 limit of π*_β when π_ref is uniform.
    """
    from arena.core.nash import max_entropy_nash

    return np.stack([max_entropy_nash(game.P[x] - 0.5, tol=tol).p for x in range(game.n_contexts)])
