"""Benchmark: one exact Nash-MP step on 1000 contexts × 100 actions, vectorised vs a per-context loop.

Run: .venv/bin/python benchmarks/bench_lab.py [--contexts 1000] [--actions 100] [--repeat 20]

The vectorised step (`trainers.lab.algorithms.nash_mp_step`) does two batched matrix-vector products
(X, Y, Y) @ (X, Y) and two row-wise log-softmaxes; the baseline applies the same closed form
context by context in a Python loop. Both are checked to agree before timing. Also times the
certified solve of π*_β (`regularized_nash`) and one sampled practical Nash-MP step.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy.special import log_softmax

from trainers.lab import sampled as smp
from trainers.lab.algorithms import nash_mp_step
from trainers.lab.games import lowrank_game
from trainers.lab.nash import regularized_nash


def loop_step(log_pi, P, log_ref, beta, eta):
    """The baseline: the same two proximal steps, one context at a time."""
    out = np.empty_like(log_pi)
    for x in range(log_pi.shape[0]):
        lp = log_pi[x]
        half = log_softmax(((eta / beta) * (P[x] @ np.exp(lp)) + eta * log_ref[x] + lp) / (1 + eta))
        out[x] = log_softmax(((eta / beta) * (P[x] @ np.exp(half)) + eta * log_ref[x] + lp) / (1 + eta))
    return out


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, default=1000)
    ap.add_argument("--actions", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--beta", type=float, default=0.1)
    a = ap.parse_args()
    g = lowrank_game(a.contexts, a.actions, 8, 3.0, 0, reference="random")
    beta, eta = a.beta, 2 * a.beta
    rng = np.random.default_rng(0)
    lp = log_softmax(rng.standard_normal((a.contexts, a.actions)), axis=1)
    vec = nash_mp_step(lp, game=g, beta=beta, eta=eta)
    ref = loop_step(lp, g.P, g.log_pi_ref, beta, eta)
    err = float(np.max(np.abs(vec - ref)))
    assert err < 1e-12, err
    tv, mv = best_time(lambda: nash_mp_step(lp, game=g, beta=beta, eta=eta), a.repeat)
    tl, ml = best_time(lambda: loop_step(lp, g.P, g.log_pi_ref, beta, eta), max(3, a.repeat // 4))
    ts, _ = best_time(lambda: regularized_nash(g, beta), 3)
    theta = lp.copy()
    ttl = lambda: smp.nash_mp_ema_step(theta, theta, smp.judge_pairs(g, np.exp(lp), 16, rng), game=g,  # noqa: E731
                                       beta=beta, eta=eta, lr=1.0, kappa=0.1)
    tp, _ = best_time(ttl, a.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"game: {a.contexts} contexts x {a.actions} actions (lowrank, rank 8), beta={beta}, eta={eta}; "
          f"max |vectorised - loop| = {err:.1e}")
    print(f"{'what':<44} {'best ms':>10} {'median ms':>10}")
    print(f"{'Nash-MP step, vectorised (batched matmul)':<44} {tv * 1e3:>10.2f} {mv * 1e3:>10.2f}")
    print(f"{'Nash-MP step, Python loop over contexts':<44} {tl * 1e3:>10.2f} {ml * 1e3:>10.2f}")
    print(f"{'regularized_nash (certified, Newton)':<44} {ts * 1e3:>10.2f}")
    print(f"{'sampled practical Nash-MP step (B=16)':<44} {tp * 1e3:>10.2f}")
    print(f"speed-up of the vectorised step over the loop: {tl / tv:.1f}x")


if __name__ == "__main__":
    main()
