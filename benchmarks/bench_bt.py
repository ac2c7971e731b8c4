"""Bradley–Terry + bootstrap intervals: this project against a FastChat-style baseline.

Same synthetic battles for both (default: N = 200 models, 1M battles, 10% ties, seeded).

* ours: `arena.core.bootstrap.bootstrap_bradley_terry` from the records: counts, the exact
  Newton fit, then 1000 multinomial bootstrap rounds over the distinct-outcome table, fitted
  in batches by chord-Newton iterations warm-started at the full fit (every round certified to
  a gradient norm of 1e-10 per game).
* baseline: FastChat's Bradley–Terry bootstrap (lm-sys/FastChat,
  fastchat/serve/monitor/rating_systems.py, `compute_bootstrap_bt`), re-implemented: group the
  battles into distinct (model_a, model_b, outcome) triples, draw multinomial weights over them
  per round, and fit the weighted cross-entropy (ties as label ½) by scipy L-BFGS-B from zero in
  every round (gtol 1e-6, maxiter 100, as FastChat); 100 rounds, one process.

Run:  .venv/bin/python benchmarks/bench_bt.py            (full size, a few minutes on 2 cores)
      .venv/bin/python benchmarks/bench_bt.py --models 50 --battles 100000 --rounds 200 --baseline-rounds 20
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

# One BLAS thread, as the test suite runs: on a shared 2-core machine OpenBLAS threads
# oversubscribe and make small dense solves 10-70x slower. Set before numpy loads BLAS;
# an explicit OMP_NUM_THREADS in the environment wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from arena.core.bootstrap import bootstrap_bradley_terry  # noqa: E402
from arena.core.records import Records, pair_counts  # noqa: E402


def synthetic_battles(n: int, m: int, ties: float, seed: int, prompts: int = 0) -> tuple[Records, np.ndarray]:
    """m battles between uniformly random pairs, θ ~ N(0, 1), a share `ties` of them tied.

    A battle is tied with probability κ·4p(1 − p), p = σ(θ_a − θ_b), κ set so that ties make up
    the share `ties` on average; otherwise a wins with probability (p − t/2)/(1 − t). Then the
    expected score is exactly p, so Bradley–Terry with ties as half a win is consistent for θ
    (a tie rate independent of p would shrink the fitted θ towards 0).
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, size=n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n  # b != a
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
    shape = 4.0 * p * (1.0 - p)
    kappa = min(0.5, ties / shape.mean())  # κ <= ½ keeps (p − t/2)/(1 − t) in [0, 1]
    t = kappa * shape
    tie = rng.random(m) < t
    win = rng.random(m) < (p - t / 2) / (1 - t)
    score = np.where(tie, 0.5, win.astype(np.float64))
    cluster = rng.integers(0, prompts, m) if prompts else None
    models = tuple(f"model_{i:03d}" for i in range(n))
    return Records(models=models, a=a, b=b, score=score, cluster=cluster), theta


def baseline_fastchat(records: Records, rounds: int, seed: int, level: float = 0.95):
    """FastChat's `compute_bootstrap_bt` algorithm, re-implemented (single process).

    As in lm-sys/FastChat fastchat/serve/monitor/rating_systems.py: distinct
    (model_a, model_b, outcome) triples with their counts, labels 1 / 0.5 / 0; per round a
    Multinomial(m, counts/m) draw of weights (divided by m), and a weighted cross-entropy fit by
    scipy L-BFGS-B from zero ratings with logits ln(10)·(r_a − r_b), gtol 1e-6, maxiter 100.
    FastChat spreads the rounds over a multiprocessing pool; here both sides use one process.
    """
    n = records.n_models
    alpha = np.log(10.0)
    outcome = np.rint(records.score * 2).astype(np.int64)  # 0 b wins, 1 tie, 2 a wins
    key = (records.a * n + records.b) * 3 + outcome
    uniq, counts = np.unique(key, return_counts=True)
    ab, out = np.divmod(uniq, 3)
    ta, tb = np.divmod(ab, n)
    label = out / 2.0

    def loss_and_grad(r, w):
        logits = alpha * (r[ta] - r[tb])
        # −[y log σ(z) + (1 − y) log σ(−z)], stable form.
        loss = (w * (np.logaddexp(0.0, -logits) + (1.0 - label) * logits)).sum()
        g = -alpha * (label - 1.0 / (1.0 + np.exp(-logits))) * w
        grad = np.bincount(ta, weights=g, minlength=n) - np.bincount(tb, weights=g, minlength=n)
        return loss, grad

    def fit(w):
        res = minimize(loss_and_grad, np.zeros(n), args=(w,), jac=True, method="L-BFGS-B",
                       options={"maxiter": 100, "gtol": 1e-6})
        theta = alpha * res.x  # natural-log scale, as ours
        return theta - theta.mean()

    m = len(records)
    theta = fit(counts / m)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(m, counts / counts.sum(), size=rounds) / m
    samples = np.stack([fit(w) for w in weights])
    a_ = (1 - level) / 2
    lo, hi = np.quantile(samples, [a_, 1 - a_], axis=0)
    return theta, lo, hi, samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--ties", type=float, default=0.10)
    ap.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds, ours")
    ap.add_argument("--baseline-rounds", type=int, default=100, help="bootstrap rounds, baseline")
    ap.add_argument("--prompts", type=int, default=100_000,
                    help="prompt ids for an extra clustered-bootstrap run of ours (0 = skip)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    records, truth = synthetic_battles(args.models, args.battles, args.ties, args.seed)
    print(f"data: {args.models} models, {args.battles:,} battles, "
          f"{np.mean(records.score == 0.5):.1%} ties, seed {args.seed}")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    def timed(fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w0, time.process_time() - c0

    ours, t_ours, c_ours = timed(lambda: bootstrap_bradley_terry(records, rounds=args.rounds, seed=args.seed))
    (b_theta, b_lo, b_hi, _), t_base, c_base = timed(
        lambda: baseline_fastchat(records, args.baseline_rounds, args.seed))
    rows = [("ours: exact fit + multinomial bootstrap", args.rounds, t_ours, c_ours),
            ("baseline: FastChat compute_bootstrap_bt (L-BFGS from 0)", args.baseline_rounds, t_base, c_base)]
    t_cluster = None
    if args.prompts:
        clustered = Records(models=records.models, a=records.a, b=records.b, score=records.score,
                            cluster=np.random.default_rng(args.seed + 1).integers(0, args.prompts, len(records)))
        ours_c, t_cluster, c_cluster = timed(lambda: bootstrap_bradley_terry(clustered, rounds=args.rounds, seed=args.seed))
        rows.append((f"ours: prompt-cluster bootstrap ({args.prompts:,} prompts)", args.rounds, t_cluster, c_cluster))

    print()
    print(f"{'method':<58} {'rounds':>7} {'wall s':>8} {'CPU s':>8} {'CPU ms/round':>13}")
    for name, r, t, c in rows:
        print(f"{name:<58} {r:>7} {t:>8.2f} {c:>8.2f} {1000 * c / r:>13.2f}")
    print()
    print(f"time ratio baseline ({args.baseline_rounds} rounds) / ours ({args.rounds} rounds): "
          f"wall {t_base / t_ours:.2f}x, CPU {c_base / c_ours:.2f}x;"
          f"   per round (CPU): {c_base / args.baseline_rounds / (c_ours / args.rounds):.1f}x")
    width_ours = np.median(ours.hi - ours.lo)
    width_base = np.median(b_hi - b_lo)
    W, N = pair_counts(records)

    def grad_per_game(theta):
        P = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        return np.linalg.norm(W.sum(axis=1) - (N * P).sum(axis=1)) / len(records)

    print(f"full-data fit, gradient norm per game: ours {grad_per_game(ours.theta):.1e}, "
          f"baseline {grad_per_game(b_theta):.1e}")
    print(f"agreement: max |θ ours − θ baseline| = {np.max(np.abs(ours.theta - b_theta)):.2e}; "
          f"median 95% width ours {width_ours:.4f} vs baseline {width_base:.4f}")
    t = truth - truth.mean()
    print(f"coverage of the true θ by ours' 95% intervals: {np.mean((ours.lo <= t) & (t <= ours.hi)):.3f} "
          f"({args.models} models); degenerate rounds: {ours.degenerate}")
    if t_cluster is not None:
        print(f"clustered intervals (independent prompts, so ≈ multinomial): median width {np.median(ours_c.hi - ours_c.lo):.4f}")
    print(f"load average at the end (other users of the machine): {os.getloadavg()[0]:.1f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
