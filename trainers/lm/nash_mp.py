"""Nash-MP, the practical deep version (Tiapkin et al. 2025, "Accelerating Nash learning
from human feedback via Mirror Prox", arXiv 2505.19731; later versions: Nash Prox).

An online policy θ and a target θ_target, an exponential moving average of θ
(θ_target ← κ θ + (1 − κ) θ_target after each step). Each step minimises

    L(θ) = E_x E_{y, y' ~ π_θ} [ −P(y ≻ y' | x) + β log(π_θ(y)/π_ref(y)) + (β/η) log(π_θ(y)/π_target(y)) ]

with one judgment per pair serving both samples (symmetrisation; the baseline ½ is exact):
see `trainers.losses.nash_mp_loss`. κ = 1 makes the target the current policy, i.e.
regularised self-play (`trainers.lm.self_play`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from trainers.lm.common import TrainConfig, ema_, eta_warning, sequence_logprob
from trainers.mixture import Generation
from trainers.lm.run import Run
from trainers.losses import nash_mp_loss


def train(config: TrainConfig, *, overwrite: bool = False, progress=None, accelerator=None,
          algorithm: str = "nash-mp") -> Path:
    if algorithm == "nash-mp" and (message := eta_warning(config)) is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    run = Run(algorithm, config, overwrite=overwrite, progress=progress, accelerator=accelerator)
    policy = run.policy
    target = run.extra.setdefault("target", policy.copy_trainable())       # EMA of the trainable tensors
    self_play = algorithm == "self-play"
    for step in range(run.start, config.steps):
        # sample: two responses per prompt from the current policy
        prompts = run.batch(step)
        ids, mask = run.encode(prompts)
        gen = run.sample(policy.model, torch.cat([ids, ids]), torch.cat([mask, mask]), run.uniforms(step, 1, copies=2))
        texts = run.texts(gen)
        n = len(prompts)
        # judge: one query per pair
        pref, ok = run.judge_pairs(prompts, texts[:n], texts[n:], step)
        if run.judged == 0:                  # every judgment of the global batch failed: no step
            run.end_step(step, None, anchor=target, skipped=1)
            continue
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
                             run.kl_term(lp, lp_tgt, kept), beta=config.beta, eta=config.eta)
        # update, then move the target
        grad_norm = run.update(weight * parts.loss, step)
        kappa = 1.0 if self_play else config.kappa(step)
        ema_(target, policy, kappa)
        run.end_step(step, parts, anchor=target, grad_norm=grad_norm, kappa=kappa,
                     pref_mean=float(pref[ok].mean()), response_tokens=float(gen.mask.sum(-1).float().mean()))
    return run.finish()
