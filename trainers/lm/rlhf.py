"""RLHF with a Bradley–Terry reward, optimised by REINFORCE leave-one-out (RLOO;
Ahmadian et al. 2024, "Back to basics", arXiv 2402.14740).

The judge is pairwise; RLHF needs a scalar reward. For each prompt, K responses are
sampled and every ordered pair within the group is judged; the reward of each response is
its maximum-likelihood Bradley–Terry score within the group (log-strengths, mean zero,
a small Gaussian prior keeps it finite), i.e. the reward a BT model fitted to these
judgments assigns. A scalar score forces transitivity, which is why RLHF cannot represent
cyclic preferences. The KL to the reference is folded into the reward
(`trainers.losses.rloo_loss`). Judge queries per step: B·K(K−1)/2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.lm.options import check_at_least, option

if TYPE_CHECKING:
    import torch

    from trainers.lm.common import TrainConfig

NAME = "rlhf"
HELP = "RLHF: Bradley–Terry reward fitted on in-group judgments, optimised by RLOO."


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of RLHF (`arena train rlhf`)."""

    rloo_k: int = option(4, help="Responses per prompt (every pair judged) for the BT reward and the leave-one-out baseline.",
                         why="a leave-one-out baseline over 4 responses: 6 judged pairs per prompt.")

    def __post_init__(self) -> None:
        check_at_least(self, ("rloo_k",), 2, " (leave-one-out needs two samples)")

BT_PRIOR = 0.1
"""Gaussian prior precision on the BT scores (keeps them finite when one response wins every game)."""


def bt_scores(W: torch.Tensor, *, prior: float = BT_PRIOR, iters: int = 50) -> torch.Tensor:
    """MAP Bradley–Terry log-strengths from soft win counts W (G, K, K) (W[g, i, j] = wins of i over j): (G, K).

    Newton's method on the concave log-likelihood Σ W_ij log σ(s_i − s_j) − prior/2 ‖s‖².
    """
    import torch

    G, K, _ = W.shape
    s = torch.zeros((G, K), dtype=torch.float64, device=W.device)
    W = W.double()
    N = W + W.transpose(1, 2)
    for _ in range(iters):
        p = torch.sigmoid(s.unsqueeze(2) - s.unsqueeze(1))                     # (G, K, K) P(i ≻ j)
        grad = (W - N * p).sum(2) - prior * s                                 # (G, K)
        M = N * p * (1 - p)                                                   # (G, K, K)
        H = M - torch.diag_embed(M.sum(2)) - prior * torch.eye(K, dtype=s.dtype, device=s.device)   # Hessian, negative definite
        step = torch.linalg.solve(H, grad.unsqueeze(-1)).squeeze(-1)
        s = s - step
        if float(step.abs().max()) < 1e-10:
            break
    return s - s.mean(1, keepdim=True)


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None, accelerator=None) -> Path:
    import torch

    from trainers.lm.run import Run
    from trainers.losses import rloo_loss

    run = Run(NAME, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    K = config.options.rloo_k
    pairs = [(i, j) for i in range(K) for j in range(i + 1, K)]
    for step in range(run.start, config.steps):
        for _ in run.micro_batches():
            prompts = run.batch(step)
            ids, mask = run.encode(prompts)
            n = len(prompts)
            idsK, maskK = ids.repeat(K, 1), mask.repeat(K, 1)                    # rows k*n + b
            gen = run.sample(policy.model, idsK, maskK, run.uniforms(step, 1, copies=K))
            texts = run.texts(gen)
            # judge every pair within each prompt's group; fit the BT reward per group
            qp, qa, qb = [], [], []
            for i, j in pairs:
                qp += prompts
                qa += texts[i * n:(i + 1) * n]
                qb += texts[j * n:(j + 1) * n]
            pref, ok = run.judge_pairs(qp, qa, qb, step)
            if run.judged == 0:                  # every judgment of the micro-batch failed: no backward
                continue
            # a group without judged pairs gets reward 0 for all its responses (no preference signal)
            W = torch.zeros((n, K, K), device=pref.device)
            for c, (i, j) in enumerate(pairs):
                got = ok[c * n:(c + 1) * n].float()
                p = pref[c * n:(c + 1) * n] * got
                W[:, i, j] += p
                W[:, j, i] += (1 - pref[c * n:(c + 1) * n]) * got
            reward = bt_scores(W).float()                                         # (n, K)
            logp = run.logprobs(run.model, idsK, maskK, gen).view(K, n).T        # (n, K)
            with torch.no_grad():
                ref = run.logprobs(policy.reference(), idsK, maskK, gen).view(K, n).T
            parts = rloo_loss(logp, ref, reward, beta=config.beta)
            run.backward(parts.loss, parts, reward_std=float(reward.std()))
        run.end_step(step, refresh_anchor=True, grad_norm=run.step(step))
    return run.finish()
