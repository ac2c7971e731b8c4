"""Loss functions of the LM preference trainers, as pure tensor functions.

Every function takes per-example *sequence* log-probabilities (sums over the response
tokens, shape (B,)) and preferences P(y ≻ y' | x) in [0, 1] (shape (B,)), and returns a
`LossParts` whose `loss` is the scalar to *minimise*; the other fields are detached
diagnostics. The gradient estimators follow the papers:

- Nash-MP, practical version (Tiapkin et al. 2025, "Accelerating Nash learning from human
  feedback via Mirror Prox", arXiv 2505.19731): minimise
  E[-P(y ≻ y') + β log(π_θ(y)/π_ref(y)) + (β/η) log(π_θ(y)/π_target(y))], y, y' ~ π_θ,
  with the symmetrisation trick: one judgment serves both samples, baseline ½ is exact.
- MPO, Magnetic Preference Optimization (Wang et al. 2025, arXiv 2410.16714): the same
  symmetrised self-play gradient with β KL(π_θ‖μ) to a magnet μ that the trainer refreshes
  to the current policy every few steps (`mpo_loss`).
- Nash-MD-PG (Munos et al. 2024, "Nash learning from human feedback", arXiv 2312.00886):
  y ~ π_θ, y' ~ geometric mixture; ∇log π_θ(y)·(P(y ≻ y') − ½) − β ∇KL(π_θ‖π_ref).
- Online DPO / IPO (Rafailov et al. 2023, arXiv 2305.18290; Azar et al. 2023,
  arXiv 2310.12036; Guo et al. 2024, arXiv 2402.04792) with soft labels p = P(y ≻ y').
- RLOO (Ahmadian et al. 2024, arXiv 2402.14740): REINFORCE with a leave-one-out baseline
  and the KL to the reference folded into the reward.

A KL term KL(π_θ‖π_0) enters a loss as a `KLTerm`: a per-sample surrogate whose expected
gradient is ∇KL, plus the detached value of the estimate. Two estimators:

- `sequence_kl`: the score-function form ∇KL = E[∇log π_θ(y) · (log π_θ(y) − log π_0(y))]
  (the E[∇log π_θ] term is zero): surrogate `logp * sg(logp − logp_0)`. One number per
  sequence, high variance.
- `token_kl`: the exact per-token KL over the whole vocabulary along the sampled prefix,
  KL_t = Σ_v π_θ(v|y_<t) log(π_θ(v|y_<t)/π_0(v|y_<t)), so KL(π_θ‖π_0) = E_y Σ_t KL_t; its
  gradient is Σ_t ∇KL_t (analytic) + Σ_s ∇log π_θ(y_s) · Σ_{t>s} KL_t (the prefix's
  score-function part, with the KL still to come as the return). Unbiased and much lower
  variance; the default of the trainers.
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


@dataclass(frozen=True)
class KLTerm:
    """A per-sample KL estimate: `surrogate` carries the gradient, `value` the number."""

    surrogate: torch.Tensor
    """(B,) with grad; E[∇surrogate] = ∇KL(π_θ‖π_0)."""
    value: torch.Tensor
    """(B,) detached estimate of KL(π_θ‖π_0) for each sample's sequence."""


def sequence_kl(logp: torch.Tensor, logp0: torch.Tensor) -> KLTerm:
    """Score-function KL term from sequence log-probs (B,): surrogate logp · sg(logp − logp0)."""
    ratio = (logp - logp0).detach()
    return KLTerm(surrogate=logp * ratio, value=ratio)


def token_kl(logprobs: torch.Tensor, logprobs0: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> KLTerm:
    """Per-token analytic KL term along sampled sequences.

    logprobs: (B, T, V) log π_θ(· | y_<t) with grad; logprobs0: (B, T, V) log π_0(· | y_<t);
    tokens: (B, T) the sampled y_t; mask: (B, T) 1 on response tokens.
    surrogate = Σ_t KL_t + Σ_s log π_θ(y_s) · sg(Σ_{t>s} KL_t); value = Σ_t KL_t.
    """
    if logprobs.shape != logprobs0.shape or logprobs.dim() != 3:
        raise ValueError(f"token_kl: logprobs and logprobs0 must both be (B, T, V); got "
                         f"{tuple(logprobs.shape)} and {tuple(logprobs0.shape)}")
    if tokens.shape != logprobs.shape[:2] or mask.shape != tokens.shape:
        raise ValueError(f"token_kl: tokens and mask must be (B, T) = {tuple(logprobs.shape[:2])}")
    m = mask.to(logprobs.dtype)
    p = logprobs.exp()
    # 0·(−inf − −inf) would be NaN on banned tokens: only count entries with p > 0
    diff = torch.where(p > 0, logprobs - logprobs0.detach(), torch.zeros_like(logprobs))
    kl_t = (p * diff).sum(-1) * m                                               # (B, T)
    after = kl_t.detach().flip(-1).cumsum(-1).flip(-1) - kl_t.detach()         # (B, T) Σ_{t>s} KL_t
    tok_logp = logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)            # (B, T)
    tok_logp = torch.where(mask.bool(), tok_logp, torch.zeros_like(tok_logp))
    surrogate = kl_t.sum(-1) + (tok_logp * after * m).sum(-1)
    return KLTerm(surrogate=surrogate, value=kl_t.detach().sum(-1))


def _check(name: str, *tensors: torch.Tensor) -> None:
    shape = tensors[0].shape
    if tensors[0].dim() != 1:
        raise ValueError(f"{name}: expected per-example tensors of shape (B,); got {tuple(shape)}")
    for t in tensors[1:]:
        if t.shape != shape:
            raise ValueError(f"{name}: all inputs must have shape {tuple(shape)}; got {tuple(t.shape)}")


def _check_pair(name: str, logp: torch.Tensor, *terms: KLTerm) -> None:
    for term in terms:
        if term.surrogate.shape != (2 * logp.shape[0],):
            raise ValueError(f"{name}: KL terms cover the 2B samples [y; y'], shape ({2 * logp.shape[0]},); "
                             f"got {tuple(term.surrogate.shape)}")


def _check_rate(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0; got {value}")


def nash_mp_loss(logp: torch.Tensor, logp_prime: torch.Tensor, pref: torch.Tensor, kl_ref: KLTerm,
                 kl_target: KLTerm, *, beta: float, eta: float) -> LossParts:
    """Nash-MP (practical) surrogate with the symmetrisation trick.

    logp, logp_prime, pref: (B,) — y and y' both sampled from π_θ and judged once,
    pref = P(y ≻ y'). kl_ref, kl_target: KL terms of the 2B samples [y; y'] to π_ref and to
    π_target. Each sample is the player once, with the other as its opponent:
        L = ½ mean_B[ (½ − pref)·(log π_θ(y) − log π_θ(y')) ]
            + β mean_2B[KL_ref surrogate] + (β/η) mean_2B[KL_target surrogate],
    the estimator of ∇{−P(π_θ ≻ sg π_θ) + β KL(π_θ‖π_ref) + (β/η) KL(π_θ‖π_target)}.
    """
    _check("nash_mp_loss", logp, logp_prime, pref)
    _check_pair("nash_mp_loss", logp, kl_ref, kl_target)
    _check_rate("beta", beta)
    _check_rate("eta", eta)
    adv = (pref - 0.5).detach()                                              # (B,)
    pg = -(adv * logp) - ((-adv) * logp_prime)                                # (B,)  = (½ − P)(logp − logp')
    loss = 0.5 * pg.mean() + beta * kl_ref.surrogate.mean() + beta / eta * kl_target.surrogate.mean()
    return LossParts(loss=loss, pg=float(0.5 * pg.detach().mean()), kl_ref=float(kl_ref.value.mean()),
                     kl_target=float(kl_target.value.mean()))


def nash_mp_group_loss(logp: torch.Tensor, score: torch.Tensor, kl_ref: KLTerm, kl_target: KLTerm, *,
                       beta: float, eta: float) -> LossParts:
    """Nash-MP surrogate with K ≥ 2 samples per prompt and a leave-one-out opponent.

    logp, score: (B, K) — y_1..y_K sampled from π_θ for one prompt, every pair judged once,
    score[b, i] = mean_{j≠i} P(y_i ≻ y_j): an unbiased estimate of P(y_i ≻ π_θ) from the
    other samples. kl_ref, kl_target: KL terms of the B·K samples, flattened row-major. Then

        L = mean_{B·K}[ (½ − score)·log π_θ(y_i) ] + β mean[KL_ref] + (β/η) mean[KL_target],

    the same estimator of the same gradient as `nash_mp_loss` (equal to it for K = 2), with
    K − 1 opponents per sample: the baseline ½ stays exact (Σ_i (score_i − ½) = 0 within a
    prompt, since P(y ≻ y') + P(y' ≻ y) = 1), and the variance falls with K, so a class that
    π_θ rarely samples gets its signal more often per prompt.
    """
    if logp.ndim != 2 or logp.shape != score.shape or logp.shape[1] < 2:
        raise ValueError(f"logp and score must be (B, K) with K >= 2; got {tuple(logp.shape)} and {tuple(score.shape)}")
    for term in (kl_ref, kl_target):
        if term.surrogate.shape != (logp.numel(),):
            raise ValueError(f"nash_mp_group_loss: KL terms cover the B·K samples, shape ({logp.numel()},); "
                             f"got {tuple(term.surrogate.shape)}")
    _check_rate("beta", beta)
    _check_rate("eta", eta)
    pg = -((score - 0.5).detach() * logp)                                    # (B, K)
    loss = pg.mean() + beta * kl_ref.surrogate.mean() + beta / eta * kl_target.surrogate.mean()
    return LossParts(loss=loss, pg=float(pg.detach().mean()), kl_ref=float(kl_ref.value.mean()),
                     kl_target=float(kl_target.value.mean()))


def mirror_prox_target(score: torch.Tensor, logp_ref: torch.Tensor, logp_target: torch.Tensor, *, beta: float,
                       eta: float) -> torch.Tensor:
    """T(y) = (P̂(y ≻ π_θ) + β log π_ref(y) + (β/η) log π_target(y)) / (β + β/η): the log-probability
    (up to a constant per prompt) of the minimiser over π of the Nash-MP objective with the
    opponent held at π_θ, E_π[−P(y ≻ π_θ)] + β KL(π‖π_ref) + (β/η) KL(π‖π_target).

    The PG estimator's per-sample coefficient is (β + β/η)(log π_θ(y) − T(y)) up to that
    constant, so it descends (β + β/η) KL(π_θ‖π_T); its fixed point (π_target = π_θ) is
    π ∝ π_ref exp(P(· ≻ π)/β) = π*_β.
    """
    _check_rate("beta", beta)
    _check_rate("eta", eta)
    return (score + beta * logp_ref + beta / eta * logp_target) / (beta + beta / eta)


def explore_regression_loss(logp: torch.Tensor, target: torch.Tensor, *, beta: float, eta: float) -> torch.Tensor:
    """Regression of log-probabilities onto the Mirror Prox target, for samples from any proposal.

    logp, target: (B, N), log π_θ(y_n) (with grad) and `mirror_prox_target` of N responses per
    prompt, on-policy samples and explorers drawn elsewhere (Nash-MP `--explore`). With
    r_n = log π_θ(y_n) − T(y_n), centred over the prompt's N responses (the normaliser of π_T
    cancels),

        L = ½ (β + β/η) mean_B mean_N (r_n − r̄)²,

    zero exactly when π_θ ∝ exp T on the responses sampled, whatever distribution drew them
    (the squared-loss form of a mirror step, as SPPO, arXiv 2405.00675, and REBEL, arXiv
    2404.16767, regress theirs). On on-policy samples its gradient equals the PG estimator's
    with a mean baseline on the KL part as well; its use is for responses π_θ rarely samples,
    whose logits a policy gradient moves only in proportion to their probability.
    """
    if logp.ndim != 2 or logp.shape != target.shape or logp.shape[1] < 2:
        raise ValueError(f"logp and target must be (B, N) with N >= 2; got {tuple(logp.shape)} and {tuple(target.shape)}")
    r = logp - target.detach()
    r = r - r.mean(dim=1, keepdim=True)
    return 0.5 * (beta + beta / eta) * (r ** 2).mean()


def continuation_regression_loss(logp: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *, beta: float,
                                 eta: float) -> torch.Tensor:
    """`explore_regression_loss` for the continuations after a shared first token.

    logp, target: (B, N), log π_θ(y_{>1} | x, y_1) (with grad) and `mirror_prox_target` computed on
    the same continuations (π_ref, π_target conditional on y_1); groups: (B, N), each response's
    first token. Within a group (one prompt, one first token) the Mirror Prox step's closed form
    π_T(y_{>1} | y_1) ∝ exp T has one normaliser, so residuals are centred per group:

        L = ½ (β + β/η) · (1 / BN) Σ_{b,n} (r_bn − r̄_{b,group(n)})²,

    a group of one contributing 0. The first token's own log-probability is left out, so the
    continuation learns without its residuals moving the opening (Nash-MP `--explore-first
    reference-top`): a full-sequence regression moves log π(y_1) by the sum of the group's
    residuals, and when most continuations of a rare opening lose, that lowers the opening before
    its winning continuation is learnt.
    """
    if logp.ndim != 2 or logp.shape != target.shape or logp.shape != groups.shape:
        raise ValueError(f"logp, target and groups must be (B, N) alike; got {tuple(logp.shape)}, "
                         f"{tuple(target.shape)} and {tuple(groups.shape)}")
    r = logp - target.detach()
    same = (groups.unsqueeze(-1) == groups.unsqueeze(-2)).to(r.dtype)                   # (B, N, N)
    r = r - (same @ r.unsqueeze(-1)).squeeze(-1) / same.sum(-1)
    return 0.5 * (beta + beta / eta) * (r ** 2).mean()


def opening_regression_loss(logp_first: torch.Tensor, log_weight: torch.Tensor, groups: torch.Tensor, *, beta: float,
                            eta: float, floor: torch.Tensor | None = None) -> torch.Tensor:
    """Regression of the first tokens' log-probabilities onto the Mirror Prox step's marginal.

    logp_first: (B, N), log π_θ(y_1 | x) (with grad); log_weight: (B, N), T(y) − log q(y_{>1} | x, y_1),
    T the full response's `mirror_prox_target` and q the distribution its continuation was drawn
    from; groups: (B, N), the first tokens. The step's closed form π_T ∝ exp T gives an opening a
    the marginal π_T(a) ∝ Z_a = Σ_c exp T(a, c) = E_{c∼q(·|a)} exp(T(a, c) − log q(c | a)), estimated
    by the mean of exp(log_weight) over the group. With r_a = log π_θ(a) − log Ẑ_a centred over the
    prompt's openings, each opening counted once, and A_b the number of openings of prompt b,

        L = ½ (β + β/η) · (1 / B) Σ_b (1 / A_b) Σ_a (r_a − r̄_b)²,

    a prompt with one opening contributing 0. A mean over prompts, like the other losses, so
    that data-parallel processes, each averaging its own prompts, give the one-process gradient.
    A policy gradient moves an opening by the mean advantage of its continuations; the step
    moves it by their soft maximum, so a rare opening whose one winning continuation π_θ rarely
    draws is raised, not lowered. Ẑ_a is low when the continuations drawn are far from π_T(·|a);
    `continuation_regression_loss` pulls q = π_θ(·|a) there, where every weight equals Z_a and
    one continuation is enough.

    floor: (B, N) or None, a log-probability per opening below which the step does not lower it
    (Nash-MP `--explore-floor`): the step's value for log π(a), log π_θ(a) − r_a, is raised to
    min(floor_a, log π_θ(a)), so an opening above its floor is lowered to it and no further, and
    one already under it is left where it is unless the step raises it. At small β the step
    lowers a losing opening without end (π*_β gives it e^(−ΔP/β) of π_ref's weight), and a token
    that opens a loser on many prompts and the winner on one is then pushed down on the many
    faster than a shared model can raise it on the one; held at a floor, the losers stop
    pulling. Without a floor the gradient is the centred regression's (the centring's own
    derivative vanishes, Σ_a (r_a − r̄) = 0).
    """
    if logp_first.ndim != 2 or logp_first.shape != log_weight.shape or logp_first.shape != groups.shape:
        raise ValueError(f"logp_first, log_weight and groups must be (B, N) alike; got {tuple(logp_first.shape)}, "
                         f"{tuple(log_weight.shape)} and {tuple(groups.shape)}")
    if floor is not None and floor.shape != logp_first.shape:
        raise ValueError(f"floor must be (B, N) like logp_first; got {tuple(floor.shape)}")
    same = groups.unsqueeze(-1) == groups.unsqueeze(-2)                                  # (B, N, N)
    size = same.sum(-1).to(logp_first.dtype)                                             # (B, N): the group's size
    w = log_weight.detach().unsqueeze(-2).expand(same.shape)
    log_z = torch.logsumexp(torch.where(same, w, torch.full_like(w, -torch.inf)), -1) - size.log()
    r, once = logp_first - log_z, 1.0 / size                                              # each opening weighs 1
    openings = once.sum(1, keepdim=True)                                                  # (B, 1): A_b
    r = r - (once * r).sum(1, keepdim=True) / openings
    if floor is not None:     # the step's log π(a), log π_θ(a) − r_a, held at the floor from above
        step = (logp_first - r).detach()
        held = torch.maximum(step, torch.minimum(floor.detach(), logp_first.detach()))
        r = logp_first - held
    return 0.5 * (beta + beta / eta) * ((once * r ** 2) / openings).sum(1).mean()


def leave_one_out_score(pref: torch.Tensor) -> torch.Tensor:
    """score[b, i] = mean_{j≠i} P(y_i ≻ y_j) from pref: (B, K(K−1)/2) = P(y_i ≻ y_j) for the
    pairs i < j in `itertools.combinations(range(K), 2)` order; returns (B, K)."""
    import itertools

    n = pref.shape[1]
    K = int(round((1 + (1 + 8 * n) ** 0.5) / 2))
    if K * (K - 1) // 2 != n or K < 2:
        raise ValueError(f"pref must hold one column per pair i < j of K samples (K(K−1)/2 columns); got {n}")
    wins = torch.zeros(pref.shape[0], K, dtype=pref.dtype, device=pref.device)
    for col, (i, j) in enumerate(itertools.combinations(range(K), 2)):
        wins[:, i] += pref[:, col]
        wins[:, j] += 1.0 - pref[:, col]
    return wins / (K - 1)


def mpo_loss(logp: torch.Tensor, logp_prime: torch.Tensor, pref: torch.Tensor, kl_magnet: KLTerm, *,
             beta: float) -> LossParts:
    """MPO surrogate (magnetic mirror descent on the preference game, Wang et al. 2025).

    logp, logp_prime, pref: (B,) — y and y' both sampled from π_θ and judged once,
    pref = P(y ≻ y'); kl_magnet: KL terms of the 2B samples [y; y'] to the magnet μ:
        L = ½ mean_B[ (½ − pref)·(log π_θ(y) − log π_θ(y')) ] + β mean_2B[KL_μ surrogate],
    the estimator of ∇{−P(π_θ ≻ sg π_θ) + β KL(π_θ‖μ)} at the current policy: the gradient of
    the magnetic proximal step argmin_π P(π_k ≻ π) + β KL(π‖μ) + (β/η) KL(π‖π_k) at π = π_k
    (`trainers.lab.algorithms.magnetic_step`; the proximal term has zero gradient there).
    """
    _check("mpo_loss", logp, logp_prime, pref)
    _check_pair("mpo_loss", logp, kl_magnet)
    _check_rate("beta", beta)
    adv = (pref - 0.5).detach()                                              # (B,)
    pg = -(adv * logp) - ((-adv) * logp_prime)                                # (B,)  = (½ − P)(logp − logp')
    loss = 0.5 * pg.mean() + beta * kl_magnet.surrogate.mean()
    return LossParts(loss=loss, pg=float(0.5 * pg.detach().mean()), kl_ref=float(kl_magnet.value.mean()))


def nash_md_loss(logp: torch.Tensor, pref: torch.Tensor, kl_ref: KLTerm, *, beta: float) -> LossParts:
    """Nash-MD-PG surrogate; y ~ π_θ, y' ~ mixture, pref = P(y ≻ y'); inputs (B,).

        mean[ −(pref − ½)·log π_θ(y) + β · KL_ref surrogate(y) ]
    """
    _check("nash_md_loss", logp, pref, kl_ref.surrogate)
    _check_rate("beta", beta)
    pg = -((pref - 0.5).detach() * logp)
    loss = (pg + beta * kl_ref.surrogate).mean()
    return LossParts(loss=loss, pg=float(pg.detach().mean()), kl_ref=float(kl_ref.value.mean()))


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
