"""Coverage of the arena's intervals: matrix cells, Nash weights and ranks, on worlds with known truth.

Everything comes from the one shared bootstrap of `arena.analysis` (`bootstrap_bradley_terry(...,
keep_pairs=True)` and `arena.core.uncertainty`), as `arena rate` computes it:

* matrix cells: 3 models, every pair judged 4 times on each of 32 prompts, a prompt shifting the
  pair's log-odds by N(0, τ²) (τ = 1); target = the mean preference over prompts. Prompt-cluster
  bootstrap (what `arena rate` reports with prompt ids) side by side with per-cell Wilson.
* Nash weights: games with a known P, each pair judged `--per-pair` times (independent judgments,
  multinomial bootstrap); target = the maximum-entropy Nash of the true P.
    - "interior": rock–paper–scissors with unequal edges plus a dominated model (true Nash
      (0.375, 0.25, 0.375, 0); the support is stable under noise).
    - "edge": the fourth model is almost in the support (it loses to the mixture by 0.01): the
      Nash is not smooth there, resampled supports flip, and coverage drops.
* ranks: 20 models, θ ~ N(0, 1), 20k battles between random pairs; target = the true rank.

Run:  .venv/bin/python benchmarks/bench_coverage.py                 (about 5 minutes on 2 loaded cores)
      .venv/bin/python benchmarks/bench_coverage.py --datasets 10   (quick look)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from arena.core.bootstrap import bootstrap_bradley_terry  # noqa: E402
from arena.core.matrix import preference_matrix_from_counts  # noqa: E402
from arena.core.nash import nash_from_preferences  # noqa: E402
from arena.core.records import make_records, pair_counts  # noqa: E402
from arena.core.uncertainty import matrix_intervals, nash_uncertainty, rank_intervals  # noqa: E402

LEVEL = 0.95
GAMES = {
    "interior": np.array([[.5, .35, .6, .6], [.65, .5, .35, .6], [.4, .65, .5, .6], [.4, .4, .4, .5]]),
    # d loses to the mixture (0.375, 0.25, 0.375) by 0.01 only: on the edge of the support
    "edge": np.array([[.5, .35, .6, .527], [.65, .5, .35, .5], [.4, .65, .5, .5], [.473, .5, .5, .5]]),
}


def clustered_records(rng, logit, *, prompts=32, per_prompt=4, tau=1.0):
    """Every pair judged `per_prompt` times on each of `prompts` prompts; a prompt shifts the
    pair's log-odds by N(0, tau²), so judgments of one prompt are dependent (also used by
    tests/arena/core/test_uncertainty.py)."""
    n = len(logit)
    a, b, s, c = [], [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            p = 1.0 / (1.0 + np.exp(-(logit[i] - logit[j] + rng.normal(0.0, tau, prompts))))
            wins = rng.random((prompts, per_prompt)) < p[:, None]
            a += [f"m{i}"] * wins.size
            b += [f"m{j}"] * wins.size
            s += wins.astype(float).ravel().tolist()
            c += np.repeat(np.arange(prompts), per_prompt).tolist()
    return make_records(a, b, s, cluster=c, models=[f"m{k}" for k in range(n)])


def matrix_coverage(datasets: int, rounds: int, seed: int) -> tuple[float, float, int]:
    logit, tau = np.array([0.0, 0.4, -0.3]), 1.0
    z, wz = np.polynomial.hermite_e.hermegauss(80)
    wz = wz / wz.sum()
    truth = {(i, j): float((wz / (1.0 + np.exp(-(logit[i] - logit[j] + tau * z)))).sum())
             for i in range(3) for j in range(i + 1, 3)}
    rng = np.random.default_rng(seed)
    boot = wilson = total = 0
    for rep in range(datasets):
        records = clustered_records(rng, logit, tau=tau)
        bt = bootstrap_bradley_terry(records, rounds=rounds, seed=rep, keep_pairs=True)
        W, N = pair_counts(records)
        pm = preference_matrix_from_counts(W, N, level=LEVEL)
        lo, hi = matrix_intervals(bt.pair_samples, bt.cells, pm.P, level=LEVEL)
        for (i, j), v in truth.items():
            boot += lo[i, j] <= v <= hi[i, j]
            wilson += pm.lo[i, j] <= v <= pm.hi[i, j]
            total += 1
    return boot / total, wilson / total, total


def game_records(rng, P, per_pair):
    n = P.shape[0]
    a, b, s = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            a += [f"m{i}"] * per_pair
            b += [f"m{j}"] * per_pair
            s += (rng.random(per_pair) < P[i, j]).astype(float).tolist()
    return make_records(a, b, s, models=[f"m{k}" for k in range(n)])


def nash_coverage(P, *, datasets: int, rounds: int, nash_rounds: int, per_pair: int, seed: int):
    """Per-model coverage of the true max-entropy Nash weights, and the median interval width."""
    truth = nash_from_preferences(P).p
    rng = np.random.default_rng(seed)
    covered = np.zeros(P.shape[0])
    widths = []
    for rep in range(datasets):
        records = game_records(rng, P, per_pair)
        bt = bootstrap_bradley_terry(records, rounds=rounds, seed=rep, keep_pairs=True)
        W, N = pair_counts(records)
        p_hat = nash_from_preferences(preference_matrix_from_counts(W, N).P).p
        u = nash_uncertainty(bt.pair_samples, bt.cells, p_hat, level=LEVEL, max_rounds=nash_rounds)
        covered += (u.lo <= truth + 1e-9) & (truth - 1e-9 <= u.hi)
        widths.append(u.hi - u.lo)
    return truth, covered / datasets, np.median(np.array(widths), axis=0)


def rank_coverage(datasets: int, rounds: int, seed: int, n: int = 20, m: int = 20_000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    hits = total = 0
    widths = []
    for rep in range(datasets):
        theta = rng.normal(0.0, 1.0, n)
        true_rank = 1 + (theta[None, :] > theta[:, None]).sum(axis=1)
        a = rng.integers(0, n, m)
        b = (a + rng.integers(1, n, m)) % n
        s = (rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))).astype(float)
        names = np.array([f"m{k:02d}" for k in range(n)])
        records = make_records(names[a], names[b], s, models=list(names))
        bt = bootstrap_bradley_terry(records, rounds=rounds, seed=rep)
        R = rank_intervals(bt.samples, level=LEVEL)
        hits += int(((R[:, 0] <= true_rank) & (true_rank <= R[:, 1])).sum())
        total += n
        widths.append(np.median(R[:, 1] - R[:, 0] + 1))
    return hits / total, float(np.median(widths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=50, help="simulated data sets per world")
    ap.add_argument("--rounds", type=int, default=400, help="bootstrap rounds per data set")
    ap.add_argument("--nash-rounds", type=int, default=100, help="resampled equilibria per data set")
    ap.add_argument("--per-pair", type=int, default=400, help="judgments per pair in the Nash worlds")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}; level {LEVEL}")
    t = time.perf_counter()
    boot, wilson, k = matrix_coverage(3 * args.datasets, args.rounds, args.seed)
    print(f"matrix cells (32 prompts x 4 judgments per pair, tau = 1; {k} intervals): "
          f"prompt-cluster bootstrap {boot:.3f}, Wilson {wilson:.3f}   [{time.perf_counter() - t:.0f} s]")
    for name, P in GAMES.items():
        t = time.perf_counter()
        truth, cov, width = nash_coverage(P, datasets=args.datasets, rounds=args.rounds,
                                          nash_rounds=args.nash_rounds, per_pair=args.per_pair, seed=args.seed)
        print(f"Nash weights, game '{name}' ({args.per_pair} judgments per pair, {args.datasets} data sets): "
              f"true p = {np.round(truth, 3).tolist()}, coverage per model {np.round(cov, 3).tolist()} "
              f"(mean {cov.mean():.3f}), median width {np.round(width, 3).tolist()}   "
              f"[{time.perf_counter() - t:.0f} s]")
    t = time.perf_counter()
    cov, width = rank_coverage(args.datasets, args.rounds, args.seed)
    print(f"ranks (20 models, 20k battles, {args.datasets} worlds): coverage of the true rank {cov:.3f}, "
          f"median interval length {width:.1f} ranks   [{time.perf_counter() - t:.0f} s]")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
