"""Sampled NLHF updates on tabular softmax logits, from Bernoulli-labelled pairs.

Each step draws, for every context x, a batch of B pairs y, y' ~ π_θ(·|x) and one Bernoulli
label o ~ Bernoulli(P(y ≻ y' | x)) per pair (a judge's verdict: one preference query), then
takes one SGD step on the logits θ (X, Y). Everything is vectorised over contexts and pairs
(`np.bincount` scatters the per-pair gradients; no Python loop over x).

- Online IPO (Calandriello et al. 2024, arXiv 2403.08635): loss (h − 1/(2β))² with
  h = log(π(y_w)/π_ref(y_w)) − log(π(y_l)/π_ref(y_l)); its stationary point is π*_β.
- Online DPO (Guo et al. 2024, arXiv 2402.04792): loss −log σ(β h); its stationary point is
  not π*_β in general (a logistic, Bradley–Terry-like fit).
- Nash-MD-PG (Munos et al. 2024, arXiv 2312.00886): y ~ π_θ, y' ~ π^μ ∝ π_θ^{1−w} π_ref^{w},
  REINFORCE on P(y ≻ y') − ½ and on the sampled KL to π_ref.
- Practical Nash-MP / Nash Prox (Tiapkin et al. 2025, arXiv 2505.19731) with an EMA target:
      L(θ) = E_{y,y'~π_θ}[ −P(y ≻ y') + β log(π_θ(y)/π_ref(y)) + (β/η) log(π_θ(y)/π_target(y)) ],
  gradient estimated with the symmetrisation trick (one judgment serves both samples, baseline ½):
      ½ (½ − o)(∇log π(y) − ∇log π(y')) + ½ [c(y) ∇log π(y) + c(y') ∇log π(y')],
      c(y) = β log(π(y)/π_ref(y)) + (β/η) log(π(y)/π_target(y))   (detached),
  (the ½ makes it unbiased for ∇L: each of the two samples estimates the same expectation),
  then θ_target ← κ θ + (1 − κ) θ_target with κ constant or κ_k = 10/(k + 10).
  κ = 1 keeps the target equal to θ, so the proximal term vanishes: regularised self-play.

Learning-rate scale: with ∇_θ log π(y) = e_y − π, the IPO loss is multiplied by β/4 and the DPO
loss by 1/(2β), so that near the solution their expected gradients have the same size as the
self-play gradient and one learning rate `lr` serves every method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_softmax

from arena.errors import InputError
from trainers.lab.games import Game


@dataclass(frozen=True)
class Pairs:
    """A batch of judged pairs per context: y, y', o all (X, B); o = 1 when y ≻ y' (int)."""

    y: np.ndarray
    y2: np.ndarray
    o: np.ndarray


def sample_actions(pi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n i.i.d. actions per context from the rows of pi (X, Y) -> (X, n), by inverse CDF."""
    cdf = np.cumsum(pi, axis=1)  # (X, Y)
    u = rng.random((pi.shape[0], n)) * cdf[:, -1:]
    idx = (u[:, :, None] >= cdf[:, None, :]).sum(axis=2)  # (X, n)
    return np.minimum(idx, pi.shape[1] - 1)


def judge_pairs(game: Game, pi: np.ndarray, batch: int, rng: np.random.Generator, *,
                pi_opponent: np.ndarray | None = None) -> Pairs:
    """Draw y ~ π, y' ~ π_opponent (default π) per context, and a Bernoulli(P(y ≻ y'|x)) label each."""
    if batch < 1:
        raise InputError(f"batch (pairs per context per step) must be >= 1; got {batch}")
    y = sample_actions(pi, batch, rng)
    y2 = sample_actions(pi if pi_opponent is None else pi_opponent, batch, rng)
    xs = np.arange(pi.shape[0])[:, None]
    p = game.P[xs, y, y2]  # (X, B)
    o = (rng.random(p.shape) < p).astype(np.int64)
    return Pairs(y=y, y2=y2, o=o)


def _scatter(X: int, Y: int, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Sum vals (X, B) into an (X, Y) array at column idx (X, B), vectorised over contexts."""
    flat = (np.arange(X)[:, None] * Y + idx).ravel()
    return np.bincount(flat, weights=vals.ravel(), minlength=X * Y).reshape(X, Y)


def _score_grad(X: int, Y: int, idx: np.ndarray, coef: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Σ_b coef_b ∇_θ log π(idx_b) = Σ_b coef_b (e_{idx_b} − π): (X, Y)."""
    return _scatter(X, Y, idx, coef) - coef.sum(axis=1, keepdims=True) * pi


def _pair_grad(X: int, Y: int, pairs: Pairs, coef: np.ndarray) -> np.ndarray:
    """Σ_b coef_b (e_{y_w} − e_{y_l}) with the winner/loser read from the labels."""
    w = np.where(pairs.o == 1, pairs.y, pairs.y2)
    lo = np.where(pairs.o == 1, pairs.y2, pairs.y)
    return _scatter(X, Y, w, coef) - _scatter(X, Y, lo, coef)


def _winner_margin(theta: np.ndarray, log_pi_ref: np.ndarray, pairs: Pairs) -> np.ndarray:
    """h = log-ratio(winner) − log-ratio(loser); the log-normaliser of θ cancels."""
    d = theta - log_pi_ref
    xs = np.arange(theta.shape[0])[:, None]
    h = d[xs, pairs.y] - d[xs, pairs.y2]
    return np.where(pairs.o == 1, h, -h)


def online_ipo_step(theta: np.ndarray, pairs: Pairs, *, game: Game, beta: float, lr: float) -> np.ndarray:
    """One SGD step on the (β/4-scaled) Online IPO loss (h − 1/(2β))² averaged over the batch."""
    X, Y = theta.shape
    B = pairs.y.shape[1]
    h = _winner_margin(theta, game.log_pi_ref, pairs)
    coef = (beta / 4.0) * 2.0 * (h - 1.0 / (2.0 * beta)) / B
    return theta - lr * _pair_grad(X, Y, pairs, coef)


def online_dpo_step(theta: np.ndarray, pairs: Pairs, *, game: Game, beta: float, lr: float) -> np.ndarray:
    """One SGD step on the (1/(2β)-scaled) Online DPO loss −log σ(β h) averaged over the batch."""
    X, Y = theta.shape
    B = pairs.y.shape[1]
    h = _winner_margin(theta, game.log_pi_ref, pairs)
    coef = (1.0 / (2.0 * beta)) * (-beta * expit(-beta * h)) / B
    return theta - lr * _pair_grad(X, Y, pairs, coef)


def nash_mp_ema_grad(theta: np.ndarray, theta_target: np.ndarray, pairs: Pairs, *, game: Game,
                     beta: float, eta: float) -> np.ndarray:
    """The symmetrised stochastic gradient of the practical Nash-MP loss L(θ) on the logits: (X, Y)."""
    X, Y = theta.shape
    B = pairs.y.shape[1]
    log_pi = log_softmax(theta, axis=1)
    pi = np.exp(log_pi)
    c = beta * (log_pi - game.log_pi_ref) + (beta / eta) * (log_pi - log_softmax(theta_target, axis=1))  # (X, Y)
    xs = np.arange(X)[:, None]
    pg = 0.5 * (0.5 - pairs.o) / B  # (X, B)
    g = _score_grad(X, Y, pairs.y, pg, pi) - _score_grad(X, Y, pairs.y2, pg, pi)
    g += _score_grad(X, Y, pairs.y, 0.5 * c[xs, pairs.y] / B, pi)
    g += _score_grad(X, Y, pairs.y2, 0.5 * c[xs, pairs.y2] / B, pi)
    return g


def nash_mp_ema_step(theta: np.ndarray, theta_target: np.ndarray, pairs: Pairs, *, game: Game, beta: float,
                     eta: float, lr: float, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """One practical Nash-MP step: SGD on L(θ), then θ_target ← κ θ + (1 − κ) θ_target."""
    if not 0.0 < kappa <= 1.0:
        raise InputError(f"kappa (EMA weight of the online policy) must lie in (0, 1]; got {kappa}")
    theta = theta - lr * nash_mp_ema_grad(theta, theta_target, pairs, game=game, beta=beta, eta=eta)
    return theta, kappa * theta + (1.0 - kappa) * theta_target


def nash_md_pg_step(theta: np.ndarray, pairs: Pairs, *, game: Game, beta: float, lr: float) -> np.ndarray:
    """One Nash-MD-PG ascent step (Munos et al. 2024): y ~ π_θ, y' ~ π^μ (the geometric mixture),

        θ ← θ + lr · mean_b [ (o_b − ½) ∇log π_θ(y_b) − β log(π_θ(y_b)/π_ref(y_b)) ∇log π_θ(y_b) ],

    an unbiased estimate of ∇_θ [P(π_θ ≻ π^μ) − β KL(π_θ‖π_ref)] (baseline ½; the caller draws
    y' from the mixture with `judge_pairs(..., pi_opponent=π^μ)`).
    """
    X, Y = theta.shape
    B = pairs.y.shape[1]
    log_pi = log_softmax(theta, axis=1)
    xs = np.arange(X)[:, None]
    coef = ((pairs.o - 0.5) - beta * (log_pi - game.log_pi_ref)[xs, pairs.y]) / B  # (X, B)
    return theta + lr * _score_grad(X, Y, pairs.y, coef, np.exp(log_pi))


def kappa_schedule(k: int) -> float:
    """κ_k = 10 / (k + 10), the decreasing EMA weight of the practical Nash-MP (k = 0, 1, ...)."""
    return 10.0 / (k + 10.0)
