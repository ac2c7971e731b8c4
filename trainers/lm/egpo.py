"""EGPO, extragradient preference optimisation (Zhou, Fazel and Du 2025, "Extragradient
preference optimization (EGPO): beyond last-iterate convergence for Nash learning from human
feedback", arXiv 2503.08942).

Extragradient on the β-regularised preference game. With the objective of the policy π_θ
against an opponent π_o,

    L(θ; π_o) = E_x E_{y ~ π_θ, y' ~ π_o} [ −P(y ≻ y' | x) ] + β KL(π_θ ‖ π_ref),

each step k takes two gradient steps, both from θ_k:

    θ_{k+½} = θ_k − s ∇_θ L(θ_k; π_{θ_k})          (extrapolation: the opponent is π_k)
    θ_{k+1} = θ_k − s ∇_θ L(θ_k; π_{θ_{k+½}})      (update: the opponent is the extrapolated π_{k+½})

where ∇_θ L(θ; π_o) is estimated by the Nash-MD-PG surrogate (`trainers.losses.nash_md_loss`:
y from π_θ, y' from π_o, one judgment per pair, baseline ½) and the step s is the optimiser's.
On one-token responses with a softmax table θ (X, Y) the natural-gradient form of these two
steps is the exact tabular EGPO update `trainers.lab.algorithms.egpo_step`,

    θ_{k+½} = (1 − sβ) θ_k + sβ log π_ref + s P(· ≻ π_k),   θ_{k+1} = same with π_{k+½},

and the expected gradient of each phase is −π_k ⊙ (that step's direction, centred under π_k):
`tests/trainers/lm/test_egpo.py` checks both phases against `egpo_step` exactly. Cost per
step: two judge queries per prompt (one per phase) and two optimiser steps (Adam's moments
see both gradients, as in extra-Adam, Gidel et al. 2019, arXiv 1802.10551).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainers.lm.common import TrainConfig
    from trainers.lm.run import Run

NAME = "egpo"
HELP = "EGPO (extragradient): a step against π_k to π_{k+½}, then from θ_k against π_{k+½}; two queries per prompt."


@dataclass(frozen=True, kw_only=True)
class Options:
    """EGPO has no options of its own: its step is the learning rate, its β the shared --beta."""


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    import torch

    from trainers.lm.run import Run

    run = Run(NAME, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    for step in range(run.start, config.steps):
        # extrapolation: θ_{k+½} = θ_k − s ∇L(θ_k; π_k)
        theta_k = policy.copy_trainable()
        for _ in run.micro_batches():
            _micro_batch(run, step, policy.model, phase=0)
        grad_norm_half = run.step(step)
        if grad_norm_half is None:               # every judgment of the step failed: no update
            run.end_step(step, refresh_anchor=True)
            continue
        half = policy.copy_trainable()
        with torch.no_grad():                    # back to θ_k; the opponent is π_{k+½}
            for name, p in policy.trainable().items():
                p.copy_(theta_k[name])
        # update: θ_{k+1} = θ_k − s ∇L(θ_k; π_{k+½})
        for _ in run.micro_batches():
            _micro_batch(run, step, policy.view(half), phase=1)
        grad_norm = run.step(step)
        if grad_norm is None:                    # the update's judgments all failed: stay at θ_k
            run.end_step(step, refresh_anchor=True, grad_norm_extrapolation=grad_norm_half)
            continue
        run.end_step(step, refresh_anchor=True, grad_norm=grad_norm, grad_norm_extrapolation=grad_norm_half)
    return run.finish()


def _micro_batch(run: Run, step: int, opponent, *, phase: int) -> None:
    """Backward of ∇L(θ_k; π_o) on one micro-batch: y ~ π_θ, y' ~ `opponent`, one judgment each."""
    from trainers.lm.nash_md import backward_against

    policy = run.policy
    prompts = run.batch(step)
    ids, mask = run.encode(prompts)
    # sample: each phase has its own uniforms and label draws (purposes 1, 2, 3 and 4, 5, 6)
    y = run.sample(policy.model, ids, mask, run.uniforms(step, 1 + 3 * phase))
    y_opp = run.sample(opponent, ids, mask, run.uniforms(step, 2 + 3 * phase))
    backward_against(run, prompts, ids, mask, y, y_opp, step, purpose=3 + 3 * phase)
