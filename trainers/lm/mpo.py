"""MPO, Magnetic Preference Optimization (Wang et al. 2025, "Magnetic preference optimization:
achieving last-iterate convergence for language model alignment", arXiv 2410.16714).

Magnetic mirror descent on the preference game: each step follows the self-play gradient
with a KL pull towards a magnet μ,

    L(θ) = E_x E_{y, y' ~ π_θ} [ −P(y ≻ y' | x) + β log(π_θ(y)/μ(y)) ],

one judgment per pair serving both samples (`trainers.losses.mpo_loss`). The magnet starts
at π_ref and is refreshed to the current policy every `magnet_every` steps, so the run
converges towards the Nash of the *unregularised* game (the magnet follows the policy), not
towards π*_β; the exact tabular version is `trainers.lab.algorithms.magnetic_step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.lm.options import check_at_least, option

if TYPE_CHECKING:
    from trainers.lm.common import TrainConfig

NAME = "mpo"
HELP = "MPO (magnetic preference optimisation): self-play with a KL pull to a magnet refreshed to the policy."


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of MPO (`arena train mpo`)."""

    magnet_every: int = option(20, help="Steps between refreshes of the magnet μ to the current policy (μ_0 = π_ref).",
                               why="the lab's `--refresh` default; not tuned for LMs.")

    def __post_init__(self) -> None:
        check_at_least(self, ("magnet_every",), 1)


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    import torch

    from trainers.lm.common import sequence_logprob
    from trainers.lm.run import Run
    from trainers.losses import mpo_loss
    from trainers.mixture import Generation

    run = Run(NAME, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    # μ_0 = π_ref: the initial trainable tensors (with LoRA the initial adapters, which are zero)
    magnet = run.extra.setdefault("magnet", policy.copy_trainable())
    for step in range(run.start, config.steps):
        for _ in run.micro_batches():
            # sample: two responses per prompt from the current policy, judged against each other
            pair = run.judged_self_pair(step)
            if pair is None:
                continue
            _, ids2, mask2, gen, pref, ok, weight = pair
            # loss: log-probs of both samples under θ (with grad) and the magnet μ
            keep = torch.cat([ok, ok])
            lp = run.token_logprobs(run.model, ids2, mask2, gen)[keep]                    # (2B', T, V)
            with torch.no_grad():
                lp_mag = run.token_logprobs(policy.view(magnet), ids2, mask2, gen)[keep]
            kept = Generation(tokens=gen.tokens[keep], mask=gen.mask[keep])
            logp = sequence_logprob(lp, kept)                                             # (2B',)
            m = int(ok.sum())
            parts = mpo_loss(logp[:m], logp[m:], pref[ok], run.kl_term(lp, lp_mag, kept), beta=config.beta)
            run.backward(weight * parts.loss, parts, pref_mean=float(pref[ok].mean()))
        grad_norm = run.step(step)
        refreshed = grad_norm is not None and (step + 1) % config.options.magnet_every == 0
        if refreshed:   # μ ← π_θ
            with torch.no_grad():
                for name, p in policy.trainable().items():
                    magnet[name].copy_(p.detach())
        run.end_step(step, anchor=magnet, grad_norm=grad_norm, magnet_refreshed=int(refreshed))
    return run.finish()
