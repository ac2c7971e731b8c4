"""Loss functions of the LM preference trainers, as pure tensor functions.

Every function takes per-example *sequence* log-probabilities (sums over the response
tokens, shape (B,)) and preferences P(y ≻ y' | x) in [0, 1] (shape (B,)), and returns a
`LossParts` whose `loss` is the scalar to *minimise*; the other fields are detached
diagnostics. The gradient estimators follow the papers:

- Nash-MP, practical version (Tiapkin et al. 2025, "Accelerating Nash learning from human
  feedback via Mirror Prox", arXiv 2505.19731): minimise
  E[-P(y ≻ y') + β log(π_θ(y)/π_ref(y)) + (β/η) log(π_θ(y)/π_target(y))], y, y' ~ π_θ,
  with the symmetrisation trick: one judgment serves both samples, baseline ½ is exact.
- Nash-MD-PG (Munos et al. 2024, "Nash learning from human feedback", arXiv 2312.00886):
  y ~ π_θ, y' ~ geometric mixture; ∇log π_θ(y)·(P(y ≻ y') − ½) − β ∇KL(π_θ‖π_ref).
- Online DPO / IPO (Rafailov et al. 2023, arXiv 2305.18290; Azar et al. 2023,
  arXiv 2310.12036; Guo et al. 2024, arXiv 2402.04792) with soft labels p = P(y ≻ y').
- RLOO (Ahmadian et al. 2024, arXiv 2402.14740): REINFORCE with a leave-one-out baseline
  and the KL to the reference folded into the reward.

A KL term KL(π_θ‖π_0) is estimated on samples y ~ π_θ by the score-function form
∇KL = E[∇log π_θ(y) · (log π_θ(y) − log π_0(y))] (the E[∇log π_θ] term is zero), i.e. the
surrogate `logp * stopgrad(logp - logp_0)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossParts:
    """A scalar loss to minimise plus detached diagnostics (floats)."""

    loss: torch.Tensor
    """Scalar surrogate whose gradient is the estimator; call .backward() on it."""
    pg: float
    """Policy-gradient (preference) part of the surrogate."""
    kl_ref: float
    """Sample estimate of KL(π_θ‖π_ref) (mean log-ratio over the samples)."""
    kl_target: float = 0.0
    """Sample estimate of KL(π_θ‖π_target) (0 when the loss has no target term)."""


def _check(name: str, *tensors: torch.Tensor) -> None:
    shape = tensors[0].shape
    if tensors[0].dim() != 1:
        raise ValueError(f"{name}: expected per-example tensors of shape (B,); got {tuple(shape)}")
    for t in tensors[1:]:
        if t.shape != shape:
            raise ValueError(f"{name}: all inputs must have shape {tuple(shape)}; got {tuple(t.shape)}")


def _check_rate(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0; got {value}")


def nash_mp_loss(logp: torch.Tensor, logp_prime: torch.Tensor, ref_logp: torch.Tensor,
                 ref_logp_prime: torch.Tensor, target_logp: torch.Tensor, target_logp_prime: torch.Tensor,
                 pref: torch.Tensor, *, beta: float, eta: float) -> LossParts:
    """Nash-MP (practical) surrogate with the symmetrisation trick; all inputs (B,).

    y and y' are both sampled from π_θ and judged once, pref = P(y ≻ y'). Each sample is
    the player once, with the other as its opponent, so the surrogate averages
        −(pref − ½)·log π_θ(y) − (½ − pref)·log π_θ(y')
        + Σ_{s ∈ {y, y'}} log π_θ(s) · sg[β (log π_θ(s) − log π_ref(s)) + (β/η)(log π_θ(s) − log π_target(s))]
    over the two samples (factor ½) and the batch. Its gradient is the estimator of
    ∇{−P(π_θ ≻ π_θ^{sg}) + β KL(π_θ‖π_ref) + (β/η) KL(π_θ‖π_target)}.
    """
    _check("nash_mp_loss", logp, logp_prime, ref_logp, ref_logp_prime, target_logp, target_logp_prime, pref)
    _check_rate("beta", beta)
    _check_rate("eta", eta)
    adv = (pref - 0.5).detach()                                              # (B,)
    pg = -(adv * logp) - ((-adv) * logp_prime)                                # (B,)  = (½ − P)(logp − logp')
    ratio_ref = (logp - ref_logp).detach()                                    # (B,)
    ratio_ref_p = (logp_prime - ref_logp_prime).detach()
    ratio_tgt = (logp - target_logp).detach()
    ratio_tgt_p = (logp_prime - target_logp_prime).detach()
    kl = (beta * ratio_ref + beta / eta * ratio_tgt) * logp \
        + (beta * ratio_ref_p + beta / eta * ratio_tgt_p) * logp_prime       # (B,)
    loss = 0.5 * (pg + kl).mean()
    return LossParts(
        loss=loss,
        pg=float(0.5 * pg.detach().mean()),
        kl_ref=float(0.5 * (ratio_ref + ratio_ref_p).mean()),
        kl_target=float(0.5 * (ratio_tgt + ratio_tgt_p).mean()),
    )


def nash_md_loss(logp: torch.Tensor, ref_logp: torch.Tensor, pref: torch.Tensor, *, beta: float) -> LossParts:
    """Nash-MD-PG surrogate; y ~ π_θ, y' ~ mixture, pref = P(y ≻ y'); inputs (B,).

        mean[ −(pref − ½)·log π_θ(y) + β · sg[log π_θ(y) − log π_ref(y)] · log π_θ(y) ]
    """
    _check("nash_md_loss", logp, ref_logp, pref)
    _check_rate("beta", beta)
    adv = (pref - 0.5).detach()
    ratio = (logp - ref_logp).detach()
    pg = -(adv * logp)
    loss = (pg + beta * ratio * logp).mean()
    return LossParts(loss=loss, pg=float(pg.detach().mean()), kl_ref=float(ratio.mean()))


def _margin(logp, logp_prime, ref_logp, ref_logp_prime):
    """h = log(π_θ(y)/π_ref(y)) − log(π_θ(y')/π_ref(y')), shape (B,)."""
    return (logp - ref_logp) - (logp_prime - ref_logp_prime)


def online_dpo_loss(logp: torch.Tensor, logp_prime: torch.Tensor, ref_logp: torch.Tensor,
                    ref_logp_prime: torch.Tensor, pref: torch.Tensor, *, beta: float) -> LossParts:
    """DPO on online pairs with soft label p = P(y ≻ y'); inputs (B,).

        mean[ −p log σ(β h) − (1 − p) log σ(−β h) ],  h = log-ratio margin of y over y'.
    With p ∈ {0, 1} (a sampled or thresholded winner) this is −log σ(β h_{w,l}).
    """
    _check("online_dpo_loss", logp, logp_prime, ref_logp, ref_logp_prime, pref)
    _check_rate("beta", beta)
    h = _margin(logp, logp_prime, ref_logp, ref_logp_prime)
    p = pref.detach()
    loss = -(p * F.logsigmoid(beta * h) + (1 - p) * F.logsigmoid(-beta * h)).mean()
    kl = 0.5 * ((logp - ref_logp) + (logp_prime - ref_logp_prime)).detach().mean()
    return LossParts(loss=loss, pg=float(loss.detach()), kl_ref=float(kl))


def online_ipo_loss(logp: torch.Tensor, logp_prime: torch.Tensor, ref_logp: torch.Tensor,
                    ref_logp_prime: torch.Tensor, pref: torch.Tensor, *, beta: float) -> LossParts:
    """IPO on online pairs with soft label p = P(y ≻ y'); inputs (B,).

        mean[ (h − (p − ½)/β)² ]; for a hard winner (p = 1) this is (h_{w,l} − 1/(2β))².
    """
    _check("online_ipo_loss", logp, logp_prime, ref_logp, ref_logp_prime, pref)
    _check_rate("beta", beta)
    h = _margin(logp, logp_prime, ref_logp, ref_logp_prime)
    loss = ((h - (pref.detach() - 0.5) / beta) ** 2).mean()
    kl = 0.5 * ((logp - ref_logp) + (logp_prime - ref_logp_prime)).detach().mean()
    return LossParts(loss=loss, pg=float(loss.detach()), kl_ref=float(kl))


def rloo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, reward: torch.Tensor, *, beta: float) -> LossParts:
    """REINFORCE leave-one-out with KL-shaped reward; inputs (B, K), K ≥ 2 samples per prompt.

    r̃ = reward − β sg[log π_θ(y) − log π_ref(y)]; advantage a_i = r̃_i − mean_{j≠i} r̃_j;
    loss = mean[ −a · log π_θ(y) ].
    """
    if logp.dim() != 2 or logp.shape[1] < 2:
        raise ValueError(f"rloo_loss: expected (B, K) with K >= 2 samples per prompt; got {tuple(logp.shape)}")
    if ref_logp.shape != logp.shape or reward.shape != logp.shape:
        raise ValueError(f"rloo_loss: logp, ref_logp and reward must share shape {tuple(logp.shape)}")
    _check_rate("beta", beta)
    k = logp.shape[1]
    ratio = (logp - ref_logp).detach()
    shaped = reward.detach() - beta * ratio                                   # (B, K)
    baseline = (shaped.sum(dim=1, keepdim=True) - shaped) / (k - 1)           # (B, K) leave-one-out mean
    adv = shaped - baseline
    loss = -(adv * logp).mean()
    return LossParts(loss=loss, pg=float(loss.detach()), kl_ref=float(ratio.mean()))
