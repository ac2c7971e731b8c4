"""Nash-MP, the practical deep version (Tiapkin et al. 2025, "Accelerating Nash learning
from human feedback via Mirror Prox", arXiv 2505.19731; later versions: Nash Prox).

An online policy θ and a target θ_target, an exponential moving average of θ
(θ_target ← κ θ + (1 − κ) θ_target after each step). Each step minimises

    L(θ) = E_x E_{y, y' ~ π_θ} [ −P(y ≻ y' | x) + β log(π_θ(y)/π_ref(y)) + (β/η) log(π_θ(y)/π_target(y)) ]

with one judgment per pair serving both samples (symmetrisation; the baseline ½ is exact):
see `trainers.losses.nash_mp_loss`. κ = 1 makes the target the current policy, i.e.
regularised self-play (`trainers.lm.self_play`). `--samples-per-prompt K` judges every pair of K
samples (`nash_mp_group_loss`); `--cv-samples M` adds M unjudged samples scored by a learned
surrogate of the judge, a control variate (`nash_mp_cv_loss`, `trainers.lm.surrogate`);
with it, `--judge-fraction q` judges each prompt's pair only with probability q and weighs the
judged correction by 1/q (still unbiased), so 1/q times more steps cost the same judge queries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.lm.options import Schedule, check_at_least, check_rate, option, parse_schedules

if TYPE_CHECKING:
    import torch

    from trainers.lm.common import TrainConfig
    from trainers.lm.run import Run

NAME = "nash-mp"
HELP = "Nash-MP (Mirror Prox, practical): EMA target, KL to reference and target, symmetrised PG."

ETA = option(None, shown="2β", help="Step η: the KL to the target weighs β/η.",
             why="the largest step for which Mirror Prox converges linearly (arXiv 2505.19731); a larger η warns.")
SAMPLES_PER_PROMPT = option(2, help="K responses per prompt, every pair judged, leave-one-out opponents.",
                            why="one judged pair per prompt, the paper's estimator; K > 2 judges K(K−1)/2 pairs per prompt.")


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of Nash-MP (`arena train nash-mp`)."""

    eta: float | None = ETA
    kappa: Schedule = option(Schedule("constant", 0.1), help="Target EMA rate κ: a number or harmonic:C (C/(k+C)).",
                             why="converged in the lowrank world; κ = 1 is self-play (no extrapolation).")
    samples_per_prompt: int = SAMPLES_PER_PROMPT
    cv_samples: int = option(0, help="M more samples per prompt, not judged, scored by a surrogate of the judge "
                                     "fitted on reference-model features: a control variate (0: off).",
                             why="off is the paper's estimator; M = 6 took 2.8× the time per step for no clear "
                                 "gain in the raters world (benchmarks/RESULTS.trainers-convergence.md).")
    judge_fraction: float = option(1.0, help="With --cv-samples: judge each prompt's pair with probability q "
                                             "(seeded by step), its correction weighted 1/q; unjudged prompts "
                                             "learn from the surrogate only.",
                                   why="1 is the paper's one judged pair per prompt per step; q < 1 is an "
                                       "experiment (benchmarks/RESULTS.trainers-convergence.md).")

    def __post_init__(self) -> None:
        from arena.errors import ConfigError

        parse_schedules(self, "kappa")
        check_rate(self, "kappa")
        if self.eta is not None and not self.eta > 0:
            raise ConfigError(f"--eta must be > 0; got {self.eta}")
        check_at_least(self, ("samples_per_prompt",), 2, " (a sample needs an opponent)")
        check_at_least(self, ("cv_samples",), 0)
        if not 0 < self.judge_fraction <= 1:
            raise ConfigError(f"--judge-fraction must be in (0, 1] (the probability that a prompt's pair is "
                              f"judged); got {self.judge_fraction}")
        if self.judge_fraction < 1 and not self.cv_samples:
            raise ConfigError(f"--judge-fraction {self.judge_fraction} needs a surrogate for the unjudged prompts: "
                              f"add --cv-samples M (e.g. 6)")
        if self.cv_samples and self.samples_per_prompt > 2:
            raise ConfigError(f"--cv-samples {self.cv_samples} adds unjudged samples to the one judged pair per "
                              f"prompt; it does not combine with --samples-per-prompt {self.samples_per_prompt} "
                              f"(every pair judged): drop one of the two")

    def resolve(self, *, beta: float) -> "Options":
        """η = 2β when not given (the default is a function of β)."""
        return self if self.eta is not None else dataclasses.replace(self, eta=2.0 * beta)


SELF_PLAY_ETA = 1.0
"""η passed to the loss in self-play, where it plays no part: the target is θ itself, so the
KL-to-target term is 0 with zero gradient whatever its weight β/η."""


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None, accelerator=None,
          algorithm: str = NAME) -> Path:
    import warnings

    from trainers.lm.common import ema_, eta_warning
    from trainers.lm.run import Run

    if algorithm == "nash-mp" and (message := eta_warning(config)) is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    run = Run(algorithm, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    opts = config.options
    target = run.extra.setdefault("target", policy.copy_trainable())       # EMA of the trainable tensors
    self_play = algorithm == "self-play"
    cv = getattr(opts, "cv_samples", 0)     # self-play's options have no control variate
    for step in range(run.start, config.steps):
        judged = []                          # the step's features and judged pairs, for the surrogate
        for _ in run.micro_batches():
            if opts.samples_per_prompt > 2:
                _group_micro_batch(run, step, target, self_play)
            elif cv:
                _cv_micro_batch(run, step, target, self_play, judged)
            else:
                _pair_micro_batch(run, step, target, self_play)
        if judged:                           # the surrogate moves between steps only
            _fit_surrogate(run, judged)
        grad_norm = run.step(step)
        if grad_norm is None:                # every judgment of the step failed: no update
            run.end_step(step, anchor=target)
            continue
        # move the target
        kappa = 1.0 if self_play else opts.kappa(step)
        ema_(target, policy, kappa)
        run.end_step(step, anchor=target, grad_norm=grad_norm, kappa=kappa)
    return run.finish()


def _pair_micro_batch(run: Run, step: int, target: dict[str, torch.Tensor], self_play: bool) -> None:
    """Backward of one micro-batch with two samples per prompt, one judged pair (`nash_mp_loss`)."""
    import torch

    from trainers.lm.common import sequence_logprob
    from trainers.losses import nash_mp_loss
    from trainers.mixture import Generation

    config, policy = run.config, run.policy
    # sample: two responses per prompt from the current policy
    prompts = run.batch(step)
    ids, mask = run.encode(prompts)
    gen = run.sample(policy.model, torch.cat([ids, ids]), torch.cat([mask, mask]), run.uniforms(step, 1, copies=2))
    texts = run.texts(gen)
    n = len(prompts)
    # judge: one query per pair
    pref, ok = run.judge_pairs(prompts, texts[:n], texts[n:], step)
    if run.judged == 0:                  # every judgment of the micro-batch failed: no backward
        return
    ok, weight = run.loss_rows(ok)
    # loss: log-probs of both samples under θ (with grad), π_ref and π_target
    ids2, mask2 = torch.cat([ids, ids]), torch.cat([mask, mask])
    keep = torch.cat([ok, ok])
    lp = run.token_logprobs(run.model, ids2, mask2, gen)[keep]                    # (2B', T, V)
    with torch.no_grad():
        lp_ref = run.token_logprobs(policy.reference(), ids2, mask2, gen)[keep]
        lp_tgt = lp.detach() if self_play else run.token_logprobs(policy.view(target), ids2, mask2, gen)[keep]
    kept = Generation(tokens=gen.tokens[keep], mask=gen.mask[keep])
    logp = sequence_logprob(lp, kept)                                             # (2B',)
    m = int(ok.sum())
    parts = nash_mp_loss(logp[:m], logp[m:], pref[ok], run.kl_term(lp, lp_ref, kept),
                         run.kl_term(lp, lp_tgt, kept), beta=config.beta,
                         eta=SELF_PLAY_ETA if self_play else config.options.eta)
    run.backward(weight * parts.loss, parts, pref_mean=float(pref[ok].mean()),
                 response_tokens=float(gen.mask.sum(-1).float().mean()))


def _group_micro_batch(run: Run, step: int, target: dict[str, torch.Tensor], self_play: bool) -> None:
    """Backward of one micro-batch with K > 2 samples per prompt, every pair judged (`nash_mp_group_loss`)."""
    import itertools

    import torch

    from trainers.lm.common import sequence_logprob
    from trainers.losses import leave_one_out_score, nash_mp_group_loss
    from trainers.mixture import Generation

    config, policy = run.config, run.policy
    K = config.options.samples_per_prompt
    prompts = run.batch(step)
    n = len(prompts)
    ids, mask = run.encode(prompts)
    idsK, maskK = torch.cat([ids] * K), torch.cat([mask] * K)                     # (K·B, L), copy-major
    gen = run.sample(policy.model, idsK, maskK, run.uniforms(step, 1, copies=K))
    texts = run.texts(gen)
    pairs = list(itertools.combinations(range(K), 2))
    pref, ok = run.judge_pairs([p for _ in pairs for p in prompts], [texts[i * n + b] for i, _ in pairs for b in range(n)],
                               [texts[j * n + b] for _, j in pairs for b in range(n)], step)
    if run.judged == 0:                  # every judgment of the micro-batch failed: no backward
        return
    pref, ok = pref.view(len(pairs), n).T, ok.view(len(pairs), n).T.all(1)      # (B, pairs), (B,)
    ok, weight = run.loss_rows(ok)
    keep = ok.repeat(K)                                                          # copy-major rows
    lp = run.token_logprobs(run.model, idsK, maskK, gen)[keep]                   # (K·B', T, V)
    with torch.no_grad():
        lp_ref = run.token_logprobs(policy.reference(), idsK, maskK, gen)[keep]
        lp_tgt = lp.detach() if self_play else run.token_logprobs(policy.view(target), idsK, maskK, gen)[keep]
    kept = Generation(tokens=gen.tokens[keep], mask=gen.mask[keep])
    m = int(ok.sum())
    logp = sequence_logprob(lp, kept).view(K, m).T                               # (B', K)
    # KL terms reordered prompt-major to match logp.reshape(-1)
    order = torch.arange(K * m).view(K, m).T.reshape(-1)
    kl_ref, kl_tgt = run.kl_term(lp, lp_ref, kept), run.kl_term(lp, lp_tgt, kept)
    kl_ref, kl_tgt = (type(t)(surrogate=t.surrogate[order], value=t.value[order]) for t in (kl_ref, kl_tgt))
    parts = nash_mp_group_loss(logp, leave_one_out_score(pref[ok]), kl_ref, kl_tgt, beta=config.beta,
                               eta=SELF_PLAY_ETA if self_play else config.options.eta)
    run.backward(weight * parts.loss, parts, pref_mean=float(pref[ok].mean()),
                 response_tokens=float(gen.mask.sum(-1).float().mean()))


JUDGE_DRAW = 11
"""Purpose (`common.generator`) of the draws that pick the prompts judged at a step (`--judge-fraction`)."""
ORACLE_ENV = "ARENA_ORACLE_SURROGATE"
"""EXPERIMENT ONLY (not a feature): =1 replaces the surrogate's features by the one-hot raters
class of the response (`arena.worlds.raters.class_of`), so the fitted S is the judge's class game:
the best case of the control variate (benchmarks/RESULTS.trainers-convergence.md)."""


def _judged_rows(run: Run, step: int, q: float) -> torch.Tensor:
    """(B_local,) bool: whose pair is judged at `step`, each prompt with probability q, drawn for
    the step's whole batch from (seed, step) and cut to this micro-batch's rows."""
    import torch

    from trainers.lm.common import generator

    u = torch.rand(run.step_batch_size(), generator=generator(run.config.seed, step, JUDGE_DRAW))
    return (u < q)[run.rows]


def _oracle_features(prompts: list[str], texts: list[str], keep, d: int):
    """EXPERIMENT ONLY (`ORACLE_ENV`): (rows kept, d) one-hot raters class of each kept sample,
    texts copy-major over the prompts."""
    import numpy as np

    from arena.worlds.raters import class_of

    n = len(prompts)
    rows = [i for i in range(len(texts)) if bool(keep[i])]
    phi = np.zeros((len(rows), d))
    for r, i in enumerate(rows):
        phi[r, class_of(prompts[i % n], texts[i])] = 1.0
    return phi


def _cv_micro_batch(run: Run, step: int, target: dict[str, torch.Tensor], self_play: bool, judged: list) -> None:
    """Backward of one micro-batch with K = M + 2 samples per prompt, (y_1, y_2) judged and the
    surrogate of the judge as a control variate over all K (`nash_mp_cv_loss`); appends the
    micro-batch's features and judged pairs to `judged` for the fit after the step.

    `--judge-fraction q < 1`: only the prompts `_judged_rows` picks are judged, their corrections
    weighted 1/q; the others enter with their surrogate scores and KL terms."""
    import os

    import torch

    from arena.errors import ConfigError
    from trainers.lm.common import sequence_logprob
    from trainers.lm.surrogate import SurrogateState, final_hidden, projection, response_features
    from trainers.losses import nash_mp_cv_loss
    from trainers.mixture import Generation

    config, policy = run.config, run.policy
    K = config.options.cv_samples + 2
    prompts = run.batch(step)
    n = len(prompts)
    ids, mask = run.encode(prompts)
    idsK, maskK = torch.cat([ids] * K), torch.cat([mask] * K)                     # (K·B, L), copy-major
    # the first two copies are the pair path's samples (same uniforms), then M more
    gen = run.sample(policy.model, idsK, maskK, run.uniforms(step, 1, copies=K))
    texts = run.texts(gen)
    # judge: one query per picked prompt, (y_1, y_2) only
    q = config.options.judge_fraction
    if q < 1 and run.world > 1:
        raise ConfigError("--judge-fraction < 1 runs in one process only (the judged share differs between "
                          "processes); launch without accelerate or use --judge-fraction 1")
    sel = _judged_rows(run, step, q) if q < 1 else torch.ones(n, dtype=torch.bool)
    idx = sel.nonzero().squeeze(1).tolist()
    pref = torch.full((n,), 0.5, device=run.device)                              # unjudged: never read
    ok = torch.ones(n, dtype=torch.bool, device=run.device)
    if idx:
        p_sel, ok_sel = run.judge_pairs([prompts[i] for i in idx], [texts[i] for i in idx],
                                        [texts[n + i] for i in idx], step)
        pref[idx], ok[idx] = p_sel.to(pref.dtype), ok_sel
        if len(idx) == n and run.judged == 0:   # every judgment of the micro-batch failed: no backward
            return
    ok, weight = run.loss_rows(ok)
    sel = sel.to(run.device)[ok]                                                 # (B',) judged among the kept
    keep = ok.repeat(K)                                                          # copy-major rows
    lp = run.token_logprobs(run.model, idsK, maskK, gen)[keep]                   # (K·B', T, V)
    with torch.no_grad(), final_hidden(policy.model) as hidden:
        lp_ref = run.token_logprobs(policy.reference(), idsK, maskK, gen)        # (K·B, T, V)
    with torch.no_grad():
        lp_tgt = lp.detach() if self_play else run.token_logprobs(policy.view(target), idsK, maskK, gen)[keep]
    kept = Generation(tokens=gen.tokens[keep], mask=gen.mask[keep])
    m = int(ok.sum())
    # features of the K·B' kept samples from the reference's forward: (B', K, d)
    L = ids.shape[1]
    h = hidden[-1][:, L:][keep]                                                  # (K·B', T, H) at the response tokens
    lp_ref = lp_ref[keep]
    tok_ref = lp_ref.gather(-1, kept.tokens.to(lp_ref.device).unsqueeze(-1)).squeeze(-1)   # (K·B', T)
    proj = projection(h.shape[-1], seed=config.seed).to(h.device)
    phi = response_features(h, tok_ref, kept.mask, proj=proj)                   # (K·B', d)
    if os.environ.get(ORACLE_ENV) == "1":
        phi = _oracle_features(prompts, texts, keep.cpu(), phi.shape[1])
    phi = phi.reshape(K, m, -1).transpose(1, 0, 2)                                 # (B', K, d)
    state = SurrogateState.from_tensors(run.extra["surrogate"]) if "surrogate" in run.extra else SurrogateState.empty()
    S = torch.from_numpy(state.probs(phi)).to(run.device)                        # (B', K, K)
    p = pref[ok]
    values = dict(judged_fraction=float(sel.float().mean()))
    if bool(sel.any()):                  # before S sees these pairs
        values.update(pref_mean=float(p[sel].mean()), surrogate_error=float((p - S[:, 0, 1].to(p.dtype)).abs()[sel].mean()))
    logp = sequence_logprob(lp, kept).view(K, m).T                               # (B', K)
    order = torch.arange(K * m).view(K, m).T.reshape(-1)                         # KL terms prompt-major
    kl_ref, kl_tgt = run.kl_term(lp, lp_ref, kept), run.kl_term(lp, lp_tgt, kept)
    kl_ref, kl_tgt = (type(t)(surrogate=t.surrogate[order], value=t.value[order]) for t in (kl_ref, kl_tgt))
    w = None if q >= 1 else sel.to(logp.dtype) / q                              # (B',) 1{judged}/q
    parts = nash_mp_cv_loss(logp, p, S, kl_ref, kl_tgt, beta=config.beta,
                            eta=SELF_PLAY_ETA if self_play else config.options.eta, correction_weight=w)
    run.backward(weight * parts.loss, parts, response_tokens=float(gen.mask.sum(-1).float().mean()), **values)
    if weight:
        judged.append((phi, p.double().cpu().numpy(), sel.cpu().numpy()))


def _fit_surrogate(run: Run, judged: list) -> None:
    """Fit the surrogate on the step's judged pairs (added to its buffer) and keep it in the
    resume state."""
    import numpy as np

    from trainers.lm.surrogate import SurrogateState

    state = SurrogateState.from_tensors(run.extra["surrogate"]) if "surrogate" in run.extra else SurrogateState.empty()
    phi = np.concatenate([f for f, _, _ in judged])                             # (B, K, d)
    p = np.concatenate([q for _, q, _ in judged])
    sel = np.concatenate([s for _, _, s in judged])                              # (B,) whose pair was judged
    state = state.update(phi.reshape(-1, phi.shape[-1]), phi[sel, 0], phi[sel, 1], p[sel])
    run.extra["surrogate"] = state.to_tensors()
