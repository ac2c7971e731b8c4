"""Benchmark: how close to π*_β can Nash-MP get in the raters world on a given judge budget?

Run (the world from `arena world raters --out W --prompts 100`):

    python benchmarks/bench_convergence.py --nash W/nash.json [--beta 0.1] [--seeds 3] [--cv]

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

- tabular sampled + control variate (`--cv`): the same estimator with M extra samples per
  prompt per step that are *not* judged, and a surrogate s(y, y') = σ(z(y, y')) of the judge,
  z antisymmetric, fitted online by logistic regression on the soft labels of the pairs judged
  so far (`cv_sampled_tv`); features: the one-hot class (an oracle: the surrogate can match the
  judge exactly) or a style-blind one (correct / wrong / malformed only). The preference part
  of the gradient keeps its expectation whatever s is (`cv_preference_grad`); this measures
  what the best surrogate could buy at a given judge budget before building it for the LM.

- sparse judging (`--sparse`): the "all samples" control variate with a *fixed* surrogate S =
  the judge's class game plus antisymmetric Gaussian noise of scale σ (σ = 0: exact), where each
  prompt's pair is judged only with probability q and its correction p − S is weighted 1/q
  (still unbiased), so 1/q times more steps fit in the same judge budget (`sparse_cv_tv`): how
  good must a surrogate be for the judge budget to stop being the limit?

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

from bench_trainers import _table  # this folder is on sys.path when run as a script
from trainers.lab import sampled as smp
from trainers.lab.algorithms import nash_mp_step
from trainers.lab.control_variate import Surrogate, cv_preference_grad, sparse_labels
from trainers.lab.games import Game
from trainers.lab.nash import regularized_nash

DEMO_PAIRS = 300 * 16
"""Judged pairs of one `arena demo` training run (arena.demo.DEMO_TRAIN: 300 steps × 16 prompts)."""
LRS = (0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
"""Learning-rate grid of the tabular sampled runs (logit units; the best is reported)."""
EXPECTED_LRS = (1.0, 3.0, 10.0, 30.0, 100.0)
"""Learning-rate grid of the expected-gradient runs (no noise: larger steps are stable)."""
PI_REF_FLOOR = 1e-12
CV_EXTRA = (2, 6)
"""Extra (unjudged) samples per prompt per step of the control-variate rows (`--cv`)."""
CV_LRS = (2.0, 3.0, 5.0, 7.0, 10.0, 15.0)
"""Learning-rate grid of the control-variate rows (less noise: larger steps become stable)."""
FLOOR_LRS = (3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0)
"""Learning-rate grid of the noise-free row of the control-variate table."""
SURROGATE_BUFFER = 3000
"""Judged pairs the surrogate is fitted on: the newest ones (30 steps of 100 prompts)."""
SURROGATE_FIT_STEPS = 5
"""Adam steps on the buffer after each training step."""
FEATURES = {
    "class": np.eye(7),
    # correct / wrong / malformed only: the surrogate cannot see the style cycle
    "style-blind": np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 0]], dtype=np.float64),
}
"""Surrogate features φ(y) of the 7 raters classes (terse, sentence, list, the three wrong, malformed)."""


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


def _kl_and_step(game: Game, theta: np.ndarray, target: np.ndarray, g: np.ndarray, kl_rows: np.ndarray, *,
                 beta: float, eta: float, lr: float, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """One step of the control-variate rows: the sampled KL part of the practical Nash-MP gradient
    (to π_ref with weight β, to the EMA target with β/η) on the samples `kl_rows` (X, n), added to
    the preference part `g` (X, Y); then the logits' step and the target's EMA. Returns (θ, target)."""
    log_pi = log_softmax(theta, axis=1)
    rows = np.arange(game.n_contexts)
    c = beta * (log_pi - game.log_pi_ref) + (beta / eta) * (log_pi - log_softmax(target, axis=1))   # (X, Y)
    coef = c[rows[:, None], kl_rows] / kl_rows.shape[1]                          # (X, n)
    g = g.copy()
    np.add.at(g, (np.repeat(rows, kl_rows.shape[1]), kl_rows.ravel()), coef.ravel())
    g -= coef.sum(1, keepdims=True) * np.exp(log_pi)
    theta = theta - lr * g
    return theta, kappa * theta + (1 - kappa) * target


def cv_sampled_tv(game: Game, pi_star: np.ndarray, *, beta: float, pairs_per_prompt: int, lr: float, seed: int,
                  extra: int, all_samples: bool, features: str = "class", kappa: float = 0.1) -> tuple[float, float]:
    """`sampled_tv` with `extra` unjudged samples per prompt and the learned surrogate's control
    variate (`cv_preference_grad`); the KL part is the plain estimator's on the judged pair (or
    on all K samples with all_samples). Returns (TV, mean |p − s| on the last 20 steps' pairs
    before the surrogate saw them)."""
    rng = np.random.default_rng(seed)
    X = game.n_contexts
    phi = FEATURES[features]
    surrogate = Surrogate.zeros(phi.shape[1])
    a = b = np.zeros(0, dtype=np.int64)
    labels = np.zeros(0)
    theta = game.log_pi_ref.copy()
    target = theta.copy()
    rows, K, eta = np.arange(X), extra + 2, 2 * beta
    errors = []
    for k in range(pairs_per_prompt):
        log_pi = log_softmax(theta, axis=1)
        pi = np.exp(log_pi)
        ys = smp.sample_actions(pi, K, rng)                                     # (X, K)
        p = game.P[rows, ys[:, 0], ys[:, 1]]                                    # the judge, soft label
        S = surrogate.probs(phi)                                                # (Y, Y)
        errors.append(float(np.abs(p - S[ys[:, 0], ys[:, 1]]).mean()))
        g = cv_preference_grad(pi, ys, p, S, all_samples=all_samples)
        theta, target = _kl_and_step(game, theta, target, g, ys if all_samples else ys[:, :2], beta=beta, eta=eta,
                                     lr=lr * (1 - k / pairs_per_prompt), kappa=kappa)
        # fit the surrogate on the newest judged pairs
        a = np.concatenate([a, ys[:, 0]])[-SURROGATE_BUFFER:]
        b = np.concatenate([b, ys[:, 1]])[-SURROGATE_BUFFER:]
        labels = np.concatenate([labels, p])[-SURROGATE_BUFFER:]
        for _ in range(SURROGATE_FIT_STEPS):
            surrogate = surrogate.adam_step(phi, a, b, labels)
    return mean_tv(game, np.exp(log_softmax(theta, axis=1)), pi_star), float(np.mean(errors[-20:]))


def cv_table(nash: dict, *, beta: float, multiple: float = 3, seeds: int = 3, extras=CV_EXTRA, kappa: float = 0.1,
             variants=(("class", False), ("class", True), ("style-blind", True))) -> list[dict]:
    """Control-variate rows at `multiple`× the demo's budget: M ∈ CV_EXTRA, each (features,
    all_samples) variant, the best lr of CV_LRS (mean over seeds)."""
    game = raters_game(nash)
    pi_star = regularized_nash(game, beta).pi
    per_prompt = int(round(multiple * DEMO_PAIRS / game.n_contexts))
    # the floor no estimator of this gradient can beat in that many steps: no noise at all
    lr, tv = min(((lr, expected_gradient_tv(game, pi_star, beta=beta, steps=per_prompt, lr=lr, kappa=kappa))
                  for lr in FLOOR_LRS), key=lambda t: t[1])
    tail = f", κ = {kappa:g}" if kappa != 0.1 else ""
    rows = [{"update": "expected gradient (no noise)", "budget": f"{per_prompt} steps{tail}", "pairs per prompt": "-",
             "best lr": lr, "TV per seed": f"{tv:.3f}", "fit error, mean abs(p − s)": "-"}]
    for features, all_samples in variants:
        for extra in extras:
            runs = {lr: [cv_sampled_tv(game, pi_star, beta=beta, pairs_per_prompt=per_prompt, lr=lr, seed=s,
                                       extra=extra, all_samples=all_samples, features=features, kappa=kappa)
                        for s in range(seeds)]
                    for lr in CV_LRS}
            lr, best = min(runs.items(), key=lambda t: float(np.mean([tv for tv, _ in t[1]])))
            rows.append({"update": f"tabular sampled + control variate ({features} features, "
                                   f"{'all samples' if all_samples else 'opponents only'})",
                         "budget": f"{multiple:g}× demo, M = {extra}{tail}", "pairs per prompt": per_prompt, "best lr": lr,
                         "TV per seed": ", ".join(f"{tv:.3f}" for tv, _ in best),
                         "fit error, mean abs(p − s)": f"{np.mean([e for _, e in best]):.3f}"})
    return rows


SPARSE_Q = (1.0, 1 / 3, 1 / 10)
"""Judging probabilities of the --sparse rows."""
SPARSE_SIGMA = (0.0, 0.03, 0.06)
"""Noise scales of the --sparse rows' surrogate (σ of the antisymmetric noise added to the class game)."""
SPARSE_LRS = (3.0, 5.0, 10.0, 20.0)
"""Learning-rate grid of the --sparse rows."""


def noisy_surrogate(P: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The class game P (Y, Y) plus antisymmetric N(0, σ²) noise, clipped to [0, 1], with S + Sᵀ = 1."""
    E = rng.normal(0.0, sigma, P.shape)
    S = np.clip(P + (E - E.T) / np.sqrt(2), 0.0, 1.0)
    return (S + 1.0 - S.T) / 2


def sparse_cv_tv(game: Game, pi_star: np.ndarray, *, beta: float, pairs_per_prompt: int, q: float, sigma: float,
                 lr: float, seed: int, extra: int = 6, kappa: float = 0.1) -> tuple[float, int, float]:
    """`cv_sampled_tv` (all samples) with a fixed surrogate `noisy_surrogate(P, sigma)` and each
    prompt's pair judged with probability q, its correction weighted 1/q, for pairs_per_prompt / q
    steps (the same judge budget in expectation). Returns (TV, judge queries, mean |S − P|)."""
    rng = np.random.default_rng(seed)
    P = game.P[0]
    if not all(np.array_equal(P, Pc) for Pc in game.P):
        raise ValueError("sparse_cv_tv needs the same class game in every context (the raters world's)")
    S = noisy_surrogate(P, sigma, np.random.default_rng(1000 + seed))
    X = game.n_contexts
    steps = int(round(pairs_per_prompt / q))
    theta = game.log_pi_ref.copy()
    target = theta.copy()
    rows, K, eta = np.arange(X), extra + 2, 2 * beta
    queries = 0
    for k in range(steps):
        log_pi = log_softmax(theta, axis=1)
        pi = np.exp(log_pi)
        ys = smp.sample_actions(pi, K, rng)                                     # (X, K)
        judged = rng.random(X) < q
        queries += int(judged.sum())
        s01 = S[ys[:, 0], ys[:, 1]]
        p = game.P[rows, ys[:, 0], ys[:, 1]]
        g = cv_preference_grad(pi, ys, sparse_labels(p, s01, judged, q), S, all_samples=True)
        theta, target = _kl_and_step(game, theta, target, g, ys, beta=beta, eta=eta, lr=lr * (1 - k / steps),
                                     kappa=kappa)
    return mean_tv(game, np.exp(log_softmax(theta, axis=1)), pi_star), queries, float(np.abs(S - P).mean())


def sparse_table(nash: dict, *, beta: float, multiple: float = 3, seeds: int = 2, qs=SPARSE_Q,
                 sigmas=SPARSE_SIGMA) -> list[dict]:
    """--sparse rows: for each surrogate noise σ and judging probability q, the best lr of SPARSE_LRS."""
    game = raters_game(nash)
    pi_star = regularized_nash(game, beta).pi
    per_prompt = int(round(multiple * DEMO_PAIRS / game.n_contexts))
    rows = []
    for sigma in sigmas:
        for q in qs:
            runs = {lr: [sparse_cv_tv(game, pi_star, beta=beta, pairs_per_prompt=per_prompt, q=q, sigma=sigma,
                                      lr=lr, seed=s) for s in range(seeds)] for lr in SPARSE_LRS}
            lr, best = min(runs.items(), key=lambda t: float(np.mean([tv for tv, _, _ in t[1]])))
            rows.append({"surrogate": f"σ = {sigma:g}, mean |S − P| = {best[0][2]:.3f}", "q": f"{q:.3g}",
                         "steps": int(round(per_prompt / q)), "judge queries": ", ".join(str(n) for _, n, _ in best),
                         "best lr": lr, "TV per seed": ", ".join(f"{tv:.3f}" for tv, _, _ in best)})
    return rows


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nash", type=Path, required=True, help="nash.json of a raters world (arena world raters)")
    ap.add_argument("--beta", type=float, default=0.1, help="β of π*_β (recomputed from the stored game)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per budget (tabular sampled runs)")
    ap.add_argument("--cv", action="store_true",
                    help="only the control-variate rows (a learned surrogate of the judge; see --multiple)")
    ap.add_argument("--multiple", type=float, default=3, help="budget of the --cv and --sparse rows, in demo budgets")
    ap.add_argument("--extra", type=int, nargs="+", default=list(CV_EXTRA), help="M of the --cv rows")
    ap.add_argument("--kappa", type=float, default=0.1, help="target EMA rate κ of the --cv rows")
    ap.add_argument("--sparse", action="store_true",
                    help="only the sparse-judging rows: a fixed surrogate of known error, pairs judged with "
                         "probability q (see --multiple)")
    ap.add_argument("--variants", nargs="+", default=["class:opponents", "class:all", "style-blind:all"],
                    help="--cv rows as FEATURES:opponents|all")
    args = ap.parse_args(argv)
    variants = [tuple(v.split(":", 1)) for v in args.variants]
    for v in variants:
        if len(v) != 2 or v[0] not in FEATURES or v[1] not in ("opponents", "all"):
            ap.error(f"--variants takes FEATURES:opponents|all with FEATURES in {sorted(FEATURES)}; got {':'.join(v)}")
    variants = [(features, form == "all") for features, form in variants]
    if min(args.extra) < 0 or not args.multiple > 0:
        ap.error(f"--extra must be >= 0 and --multiple > 0; got {args.extra} and {args.multiple}")
    nash = json.loads(args.nash.read_text())
    kappa = args.kappa if args.cv else 0.1
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs (shared); β = {args.beta:g}, η = 2β, κ = {kappa:g}")
    if args.cv and args.sparse:
        ap.error("--cv and --sparse print different tables; give one")
    if args.sparse:
        print(_table(sparse_table(nash, beta=args.beta, multiple=args.multiple, seeds=args.seeds)))
    elif args.cv:
        print(_table(cv_table(nash, beta=args.beta, seeds=args.seeds, multiple=args.multiple, extras=args.extra,
                              kappa=args.kappa, variants=variants)))
    else:
        print(_table(budget_table(nash, beta=args.beta, seeds=args.seeds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
