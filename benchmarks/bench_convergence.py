"""Benchmark: how close to π*_β can Nash-MP get in the raters world on a given judge budget?

Run (the world from `arena world raters --out W --prompts 100`):

    python benchmarks/bench_convergence.py --nash W/nash.json [--beta 0.1] [--seeds 3]

The LM trainer (`arena train nash-mp`) is measured end to end in
benchmarks/RESULTS.trainers-convergence.md; this script answers *why* it stops where it does,
on the world's own 7-class game (`nash.json`: P, π_ref per prompt, π*_β), with three
idealisations of the LM's update, each given the LM run's judge budget *per prompt*:

- exact: Mirror Prox on the class game (`trainers.lab.algorithms.nash_mp_step`, η = 2β),
  expected updates, no sampling: the algorithm itself, as many steps as the LM run;
- expected gradient: the practical Nash-MP loss's *expected* gradient on free per-prompt
  softmax logits (what the LM's estimator averages to, no sampling noise), the same number of
  steps, lr decayed linearly, the best of a grid: the geometry of a gradient step on logits
  (a class's logit moves in proportion to its probability) without the noise;
- tabular sampled: the practical Nash-MP estimator of the LM trainer (symmetrised pair,
  soft label P(y ≻ y'), EMA target κ = 0.1, `trainers.lab.sampled.nash_mp_ema_step`) on
  free per-prompt softmax logits, one judged pair per prompt per step, the learning rate
  decayed linearly to 0 (as `--lr-schedule linear`), the best of a grid of learning rates;
  the parameterisation an LM can at best match prompt by prompt (it has no more
  information about a prompt than that prompt's pairs, unless it generalises across prompts).

"Demo budget" is what `arena demo` trains (`arena.demo.DEMO_TRAIN`): 300 steps × 16 prompts
= 4,800 pairs over 100 prompts, 48 pairs per prompt. Prints TV(π*_β, π) (per prompt, then
averaged) for 1×, 3×, 10×, 30× that budget.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from trainers.lab import sampled as smp
from trainers.lab.algorithms import nash_mp_step
from trainers.lab.games import Game
from trainers.lab.nash import regularized_nash

DEMO_PAIRS = 300 * 16
"""Judged pairs of one `arena demo` training run (arena.demo.DEMO_TRAIN: 300 steps × 16 prompts)."""
LRS = (0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
"""Learning-rate grid of the tabular sampled runs (logit units; the best is reported)."""
EXPECTED_LRS = (1.0, 3.0, 10.0, 30.0, 100.0)
"""Learning-rate grid of the expected-gradient runs (no noise: larger steps are stable)."""
PI_REF_FLOOR = 1e-12


def raters_game(nash: dict) -> Game:
    """The class game of a raters world's nash.json (π_ref floored so that it is positive)."""
    pi_ref = np.clip(np.asarray(nash["pi_ref"], dtype=np.float64), PI_REF_FLOOR, None)
    return Game(P=np.asarray(nash["P"], dtype=np.float64), pi_ref=pi_ref / pi_ref.sum(1, keepdims=True),
                weights=np.asarray(nash["weights"], dtype=np.float64))


def mean_tv(game: Game, pi: np.ndarray, pi_star: np.ndarray) -> float:
    """ρ-weighted total variation ½Σ|π*_β − π| over the classes."""
    return float(game.weights @ (0.5 * np.abs(pi - pi_star).sum(1)))


def exact_tv(game: Game, pi_star: np.ndarray, *, beta: float, steps: int) -> float:
    """TV after `steps` exact Mirror Prox steps (η = 2β) from π_ref."""
    log_pi = game.log_pi_ref.copy()
    for _ in range(steps):
        log_pi = nash_mp_step(log_pi, game=game, beta=beta, eta=2 * beta)
    return mean_tv(game, np.exp(log_pi), pi_star)


def expected_gradient_tv(game: Game, pi_star: np.ndarray, *, beta: float, steps: int, lr: float,
                         kappa: float = 0.1) -> float:
    """TV after `steps` steps along the expected gradient of the practical Nash-MP loss on
    tabular logits, ∇_θ L = −π ⊙ (a − E_π a), a = P(· ≻ π) − β log(π/π_ref) − (β/η) log(π/π_target),
    with η = 2β, the EMA target (κ) and lr decayed linearly to 0."""
    theta = game.log_pi_ref.copy()
    target = theta.copy()
    eta = 2 * beta
    for k in range(steps):
        log_pi = log_softmax(theta, axis=1)
        pi = np.exp(log_pi)
        a = (np.einsum("xab,xb->xa", game.P, pi) - beta * (log_pi - game.log_pi_ref)
             - (beta / eta) * (log_pi - log_softmax(target, axis=1)))                # (X, Y)
        grad = -pi * (a - (pi * a).sum(1, keepdims=True))
        theta = theta - lr * (1 - k / steps) * grad
        target = kappa * theta + (1 - kappa) * target
    return mean_tv(game, np.exp(log_softmax(theta, axis=1)), pi_star)


def sampled_tv(game: Game, pi_star: np.ndarray, *, beta: float, pairs_per_prompt: int, lr: float, seed: int,
               kappa: float = 0.1) -> float:
    """TV after the practical Nash-MP estimator on tabular logits, one soft-labelled pair per
    prompt per step for `pairs_per_prompt` steps, lr decayed linearly to 0."""
    rng = np.random.default_rng(seed)
    theta = game.log_pi_ref.copy()
    target = theta.copy()
    xs = np.arange(game.n_contexts)[:, None]
    for k in range(pairs_per_prompt):
        pi = np.exp(log_softmax(theta, axis=1))
        y, y2 = smp.sample_actions(pi, 1, rng), smp.sample_actions(pi, 1, rng)        # (X, 1) each
        pairs = smp.Pairs(y=y, y2=y2, o=game.P[xs, y, y2])                          # soft label, as the LM trainer
        theta, target = smp.nash_mp_ema_step(theta, target, pairs, game=game, beta=beta, eta=2 * beta,
                                             lr=lr * (1 - k / pairs_per_prompt), kappa=kappa)
    return mean_tv(game, np.exp(log_softmax(theta, axis=1)), pi_star)


def budget_table(nash: dict, *, beta: float, multiples=(1, 3, 10, 30), seeds: int = 3, lm_steps: int = 300) -> list[dict]:
    game = raters_game(nash)
    pi_star = regularized_nash(game, beta).pi
    rows = [{"update": f"exact Mirror Prox, {lm_steps} steps", "budget": "-", "pairs per prompt": "-",
             "best lr": "-", "TV per seed": f"{exact_tv(game, pi_star, beta=beta, steps=lm_steps):.4f}"}]
    lr, tv = min(((lr, expected_gradient_tv(game, pi_star, beta=beta, steps=lm_steps, lr=lr)) for lr in EXPECTED_LRS),
                 key=lambda t: t[1])
    rows.append({"update": f"expected gradient, {lm_steps} steps", "budget": "∞ (no noise)", "pairs per prompt": "-",
                 "best lr": lr, "TV per seed": f"{tv:.4f}"})
    for m in multiples:
        per_prompt = int(round(m * DEMO_PAIRS / game.n_contexts))
        best = min(((lr, [sampled_tv(game, pi_star, beta=beta, pairs_per_prompt=per_prompt, lr=lr, seed=s)
                          for s in range(seeds)]) for lr in LRS), key=lambda t: float(np.mean(t[1])))
        rows.append({"update": "tabular sampled Nash-MP", "budget": f"{m}× demo", "pairs per prompt": per_prompt,
                     "best lr": best[0], "TV per seed": ", ".join(f"{v:.3f}" for v in best[1])})
    return rows


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nash", type=Path, required=True, help="nash.json of a raters world (arena world raters)")
    ap.add_argument("--beta", type=float, default=0.1, help="β of π*_β (recomputed from the stored game)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per budget (tabular sampled runs)")
    args = ap.parse_args(argv)
    nash = json.loads(args.nash.read_text())
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs (shared); β = {args.beta:g}, η = 2β, κ = 0.1")
    print(_table(budget_table(nash, beta=args.beta, seeds=args.seeds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
