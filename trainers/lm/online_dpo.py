"""Online DPO and Online IPO (Guo et al. 2024, "Direct language model alignment from online
AI feedback", arXiv 2402.04792; IPO: Azar et al. 2023, arXiv 2310.12036).

Two responses per prompt from the current policy, the judge's P(y ≻ y') as a soft label
(or a sampled 0/1 label with `labels="sample"`), and the DPO loss −log σ(β h) or the IPO
loss (h − 1/(2β))² on the log-ratio margin h (`trainers.losses`). DPO optimises a
Bradley–Terry-style surrogate, not the preference game: with non-transitive preferences it
does not converge to the regularised Nash π*_β. IPO with both samples from the current
policy does: its expected gradient is 4 E_y[(r(y) − E r − (P(y ≻ π_θ) − ½)/β) ∇log π_θ(y)],
r = log π_θ/π_ref, which vanishes exactly at π*_β ∝ π_ref exp(P(· ≻ π*_β)/β) (Calandriello
et al. 2024, arXiv 2403.08635; the lab's `online_ipo_step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainers.lm.common import TrainConfig

NAME = "online-dpo"
HELP = "Online DPO: two policy samples, judge label, DPO loss (a Bradley–Terry surrogate)."


@dataclass(frozen=True, kw_only=True)
class Options:
    """Online DPO has no options of its own (β, --labels and the rest are shared)."""


def train(config: TrainConfig, *, algorithm: str = NAME, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    import torch

    from trainers.lm.run import Run
    from trainers.losses import online_dpo_loss, online_ipo_loss

    loss_fn = {"online-dpo": online_dpo_loss, "online-ipo": online_ipo_loss}[algorithm]
    run = Run(algorithm, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    for step in range(run.start, config.steps):
        for _ in run.micro_batches():
            pair = run.judged_self_pair(step)    # two policy samples per prompt, judged
            if pair is None:
                continue
            prompts, ids2, mask2, gen, pref, ok, weight = pair
            n = len(prompts)
            logp = run.logprobs(run.model, ids2, mask2, gen)
            with torch.no_grad():
                ref = run.logprobs(policy.reference(), ids2, mask2, gen)
            parts = loss_fn(logp[:n][ok], logp[n:][ok], ref[:n][ok], ref[n:][ok], pref[ok], beta=config.beta)
            run.backward(weight * parts.loss, parts, pref_mean=float(pref[ok].mean()))
        run.end_step(step, refresh_anchor=True, grad_norm=run.step(step))
    return run.finish()
