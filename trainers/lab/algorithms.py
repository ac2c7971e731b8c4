"""Exact NLHF dynamics on tabular / contextual games: small pure updates on log-policies.

Every function maps log π_t, an (X, Y) array of row-normalised log-probabilities, to log π_{t+1}
and is vectorised over contexts (one einsum per preference query, no Python loop over x).
Notation: P(· ≻ π) = P[x] @ π[x]; β the KL-regularisation towards π_ref; η the Nash-MP step.

- Nash-MP, Nash Mirror Prox (Tiapkin et al. 2025, arXiv 2505.19731): two proximal steps, both
  anchored at π_k,
      π_{k+½} = argmin_π P(π_k ≻ π) + β KL(π‖π_ref) + (β/η) KL(π‖π_k),
      π_{k+1} = argmin_π P(π_{k+½} ≻ π) + β KL(π‖π_ref) + (β/η) KL(π‖π_k).
  Setting the gradient of the Lagrangian to zero (P(π' ≻ π) = Σ_y π(y) (1 − P(y ≻ π'))):
      −P(y ≻ π_opp) + β (log π − log π_ref) + (β/η)(log π − log π_k) = const,
  i.e. log π = [(η/β) P(· ≻ π_opp) + η log π_ref + log π_k] / (1 + η) + const   (`prox_step`).
  For η ≤ 2β: KL(π*_β‖π_k) ≤ (1 + η)^{−k} KL(π*_β‖π_0). Two preference queries per step.
- Mirror descent (`mirror_descent_step`): the first proximal step alone (π_{k+1} = π_{k+½}),
  i.e. magnetic mirror descent (Sokota et al. 2022, arXiv 2206.05825) with magnet π_ref,
  mirror step η/β on P and magnet strength β: the single-step method that Nash-MP's second
  step (the extrapolation) corrects. One query per step.
- MPO, Magnetic Preference Optimization (Wang et al. 2025, arXiv 2410.16714): the same MMD
  step with the magnet refreshed to the current policy every `refresh` steps; by design it
  targets the Nash of the *unregularised* game, not π*_β (`magnetic_step`).
- Nash-MD (Munos et al. 2024, arXiv 2312.00886): π_{t+1} ∝ π_t^μ exp(η_t P(· ≻ π_t^μ)) with
  the geometric mixture π_t^μ ∝ π_t^{1−η_tβ} π_ref^{η_tβ}; constant η_t (converges to a biased
  point) or η_t = 2/(β(t+2)) (`nash_md_schedule`). One query per step.
- EGPO, extragradient preference optimisation (Zhou et al. 2025, arXiv 2503.08942), in its
  exact tabular softmax form: two explicit natural-gradient (multiplicative-weights) steps on
  the logits, θ ← (1 − sβ) θ_k + sβ log π_ref + s P(· ≻ π_opp), the first against π_k and the
  second against the extrapolated π_{k+½}, both from θ_k. With s = η_E: the same family as
  Nash-MP (explicit instead of implicit step; Nash-MP's η corresponds to sβ/(1 − sβ)). Two queries.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from arena.errors import InputError
from trainers.lab.games import Game, preference_against


def _check_step(beta: float, eta: float) -> None:
    if not (np.isfinite(beta) and beta > 0):
        raise InputError(f"beta must be a finite number > 0; got {beta}")
    if not (np.isfinite(eta) and eta > 0):
        raise InputError(f"eta must be a finite number > 0; got {eta}")


def prox_step(log_anchor: np.ndarray, pi_opp: np.ndarray, *, game: Game, beta: float, eta: float,
              log_magnet: np.ndarray | None = None) -> np.ndarray:
    """argmin_π P(π_opp ≻ π) + β KL(π‖μ) + (β/η) KL(π‖π_anchor) in closed form, μ = π_ref by default.

    log π = log_softmax([(η/β) P(· ≻ π_opp) + η log μ + log π_anchor] / (1 + η)).
    """
    log_mu = game.log_pi_ref if log_magnet is None else log_magnet
    logits = (eta / beta) * preference_against(game.P, pi_opp) + eta * log_mu + log_anchor  # (X, Y)
    return log_softmax(logits / (1.0 + eta), axis=1)


def nash_mp_step(log_pi: np.ndarray, *, game: Game, beta: float, eta: float) -> np.ndarray:
    """One exact Nash Mirror Prox iteration: π_k -> π_{k+½} -> π_{k+1} (both anchored at π_k)."""
    _check_step(beta, eta)
    pi = np.exp(log_pi)
    log_half = prox_step(log_pi, pi, game=game, beta=beta, eta=eta)
    return prox_step(log_pi, np.exp(log_half), game=game, beta=beta, eta=eta)


def mirror_descent_step(log_pi: np.ndarray, *, game: Game, beta: float, eta: float) -> np.ndarray:
    """Single-step (magnetic) mirror descent with Nash-MP's step: π_{k+1} = π_{k+½}."""
    _check_step(beta, eta)
    return prox_step(log_pi, np.exp(log_pi), game=game, beta=beta, eta=eta)


def magnetic_step(log_pi: np.ndarray, log_magnet: np.ndarray, *, game: Game, beta: float, eta: float) -> np.ndarray:
    """Magnetic mirror descent towards an arbitrary magnet μ (MPO refreshes μ to π_t periodically)."""
    _check_step(beta, eta)
    return prox_step(log_pi, np.exp(log_pi), game=game, beta=beta, eta=eta, log_magnet=log_magnet)


def geometric_mixture(log_pi: np.ndarray, log_pi_ref: np.ndarray, weight: float) -> np.ndarray:
    """log π^μ with π^μ ∝ π^{1−w} π_ref^{w}: (X, Y)."""
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"the mixture weight η·β must lie in [0, 1]; got {weight}: lower eta")
    return log_softmax((1.0 - weight) * log_pi + weight * log_pi_ref, axis=1)


def nash_md_step(log_pi: np.ndarray, *, game: Game, beta: float, eta: float) -> np.ndarray:
    """Nash-MD (Munos et al.): π_{t+1} ∝ π_t^μ exp(η P(· ≻ π_t^μ)), π_t^μ ∝ π_t^{1−ηβ} π_ref^{ηβ}.

    Here `eta` is Munos et al.'s step on P (not Nash-MP's η; Nash-MP's η corresponds to η_MD·β).
    """
    _check_step(beta, eta)
    log_mix = geometric_mixture(log_pi, game.log_pi_ref, eta * beta)
    return log_softmax(log_mix + eta * preference_against(game.P, np.exp(log_mix)), axis=1)


def nash_md_schedule(t: int, beta: float) -> float:
    """The decreasing Nash-MD step η_t = 2 / (β (t + 2)) (η_0 β = 1: the first mixture is π_ref)."""
    return 2.0 / (beta * (t + 2))


def egpo_explicit_step(log_pi: np.ndarray, log_opp: np.ndarray, *, game: Game, beta: float,
                       step: float) -> np.ndarray:
    """One explicit natural-gradient step of EGPO from π against the opponent π_opp:
    log π' = log_softmax((1 − sβ) log π + sβ log π_ref + s P(· ≻ π_opp)); needs sβ < 1."""
    _check_step(beta, step)
    if step * beta >= 1.0:
        raise InputError(f"EGPO needs step*beta < 1; got {step * beta:.3g}: lower the step")
    w = step * beta
    return log_softmax((1.0 - w) * log_pi + w * game.log_pi_ref
                       + step * preference_against(game.P, np.exp(log_opp)), axis=1)


def egpo_step(log_pi: np.ndarray, *, game: Game, beta: float, step: float) -> np.ndarray:
    """Exact tabular extragradient (EGPO): explicit natural-gradient steps on the logits.

    θ_{k+½} = (1 − sβ) θ_k + sβ log π_ref + s P(· ≻ π_k),   θ_{k+1} = same with π_{k+½}; needs sβ < 1.
    """
    log_half = egpo_explicit_step(log_pi, log_pi, game=game, beta=beta, step=step)
    return egpo_explicit_step(log_pi, log_half, game=game, beta=beta, step=step)
