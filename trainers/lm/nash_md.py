"""Nash-MD-PG (Munos et al. 2024, "Nash learning from human feedback", arXiv 2312.00886).

Nash-MD steps π_{t+1} = argmax_π η P(π ≻ π_t^m) − KL(π‖π_t^m) against the geometric
mixture π_t^m ∝ π_t^{1−m} π_ref^m. The policy-gradient version samples y ~ π_θ and the
opponent y' from the mixture, token by token with both models' key-value caches
(`trainers.mixture.generate`), judges P(y ≻ y') once, and follows
∇log π_θ(y)·(P(y ≻ y') − ½) − β ∇KL(π_θ‖π_ref) (`trainers.losses.nash_md_loss`).
The coefficient m is constant or scheduled (`Options.mixture`, `--mixture`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.lm.options import Schedule, check_rate, option, parse_schedules

if TYPE_CHECKING:
    from trainers.lm.common import TrainConfig

NAME = "nash-md"
HELP = "Nash-MD-PG: opponent sampled from the geometric mixture of policy and reference (KV cache)."


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of Nash-MD (`arena train nash-md`)."""

    mixture: Schedule = option(Schedule("constant", 0.125), help="Geometric-mixture coefficient m (0: policy, 1: reference): a number or harmonic:C.",
                               why="the lowrank world's setting; harmonic:2 is the paper's decreasing schedule.")

    def __post_init__(self) -> None:
        parse_schedules(self, "mixture")
        check_rate(self, "mixture")


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None, accelerator=None) -> Path:
    from trainers.lm.run import Run

    run = Run(NAME, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    for step in range(run.start, config.steps):
        m = config.options.mixture(step)
        for _ in run.micro_batches():
            # sample: y from the policy, y' from the geometric mixture of policy and reference
            prompts = run.batch(step)
            ids, mask = run.encode(prompts)
            y = run.sample(policy.model, ids, mask, run.uniforms(step, 1))
            y_mix = run.sample(policy.model, ids, mask, run.uniforms(step, 2), ref=policy.reference(), m=m)
            # judge, loss and backward
            backward_against(run, prompts, ids, mask, y, y_mix, step)
        run.end_step(step, refresh_anchor=True, grad_norm=run.step(step), mixture=m)
    return run.finish()


def backward_against(run, prompts, ids, mask, y, y_opp, step: int, *, purpose: int = 3) -> None:
    """Judge P(y ≻ y') once per row and backward the Nash-MD-PG loss on the judged rows
    (`trainers.losses.nash_md_loss`); nothing when every judgment failed. Shared with EGPO."""
    import torch

    from trainers.lm.common import sequence_logprob
    from trainers.losses import nash_md_loss
    from trainers.mixture import Generation

    pref, ok = run.judge_pairs(prompts, run.texts(y), run.texts(y_opp), step, purpose=purpose)
    if run.judged == 0:                          # every judgment of the micro-batch failed: no backward
        return
    ok, weight = run.loss_rows(ok)
    lp = run.token_logprobs(run.model, ids, mask, y)[ok]                             # (B', T, V)
    with torch.no_grad():
        lp_ref = run.token_logprobs(run.policy.reference(), ids, mask, y)[ok]
    kept = Generation(tokens=y.tokens[ok], mask=y.mask[ok])
    parts = nash_md_loss(sequence_logprob(lp, kept), pref[ok], run.kl_term(lp, lp_ref, kept), beta=run.config.beta)
    run.backward(weight * parts.loss, parts, pref_mean=float(pref[ok].mean()))
