"""Maximum-entropy Nash: arena.core.nash against a cvxpy `entr` formulation.

The baseline is OpenSpiel's approach (open_spiel/python/algorithms/nash_averaging.py,
`max_entropy_symmetric_nash`: min pᵀ log p s.t. A p <= pᵀ A p = 0, 1ᵀp = 1, p >= 0 with a
general convex solver, cvxopt there) written with cvxpy: maximise sum(entr(p)) s.t.
A p <= 0, sum p = 1, p >= 0, solved by cvxpy's default exponential-cone solver (Clarabel).
Both solve the same games; the exploitability max_i (A p)_i is in P - ½ units (A = P - ½),
for cvxpy after clipping its tiny negative weights and renormalising (its raw answer is
reported as well). Times: wall clock and process CPU time (both single-threaded, so CPU
time is the steady figure on a shared machine); arena's are the median of --repeats runs,
cvxpy's a single run after a warm-up solve.

Games (seeded): "random"   P = sigmoid(G - Gᵀ), G standard normal: a unique equilibrium
                           with about half the models in the support;
                "duplicated" the random game with 10% of the models copied: the equilibria
                           form a face and maximum entropy must split mass between copies;
                "bt+noise" Bradley-Terry strengths plus small non-transitive noise: a small
                           support.

Run: .venv/bin/python benchmarks/bench_nash.py [--sizes 200 1000] [--seed 0]
Both solvers are limited to one BLAS/OpenMP thread (set before numpy is imported) unless
OMP_NUM_THREADS is already set, so that the comparison does not depend on free cores.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from arena.core.nash import nash_from_preferences  # noqa: E402


def make_game(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (P, origin): origin[i] = the model i is a copy of (i itself if original)."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        G = rng.standard_normal((n, n))
        return 1 / (1 + np.exp(-(G - G.T))), np.arange(n)
    if kind == "duplicated":
        base = n - n // 10
        G = rng.standard_normal((base, base))
        P = 1 / (1 + np.exp(-(G - G.T)))
        idx = np.r_[np.arange(base), rng.integers(0, base, size=n - base)]
        return P[np.ix_(idx, idx)], idx
    if kind == "bt+noise":
        theta = rng.normal(size=n)
        E = rng.normal(size=(n, n))
        return 1 / (1 + np.exp(-(theta[:, None] - theta[None, :] + (E - E.T) / 2))), np.arange(n)
    raise ValueError(kind)


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def cvxpy_max_entropy(A: np.ndarray, solver: str | None = None):
    """Returns (p or None, status, solver name); a solver failure is a result, not a crash."""
    import cvxpy as cp

    n = A.shape[0]
    p = cp.Variable(n)
    prob = cp.Problem(cp.Maximize(cp.sum(cp.entr(p))), [A @ p <= 0, cp.sum(p) == 1, p >= 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prob.solve(solver=solver)
        except cp.error.SolverError:
            return None, "failed", solver or "default", float("nan")
    return np.asarray(p.value), prob.status, prob.solver_stats.solver_name, prob.solver_stats.solve_time


def entropy(p):
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--kinds", nargs="+", default=["random", "duplicated", "bt+noise"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs of arena's solver (median reported)")
    args = ap.parse_args(argv)

    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
          f"python={platform.python_version()} numpy={np.__version__} threads={os.environ['OMP_NUM_THREADS']}")
    header = (f"{'game':<11} {'n':>5} {'supp':>5} | {'arena s':>8} {'cpu s':>7} {'expl':>9} | "
              f"{'cvxpy s':>8} {'cpu s':>7} {'expl':>9} {'raw expl':>9} {'status':>18} | "
              f"{'x wall':>7} {'x cpu':>6} {'max|dp|':>8} {'dH':>9}")
    print(header)
    print("-" * len(header))
    # warm up both (imports, first-call compilation) on a small game so timings are steady state
    Pw, _ = make_game("random", 20, args.seed + 1)
    nash_from_preferences(Pw)
    cvxpy_max_entropy(Pw - 0.5)
    worst = {}
    notes: list[str] = []
    for n in args.sizes:
        for kind in args.kinds:
            P, origin = make_game(kind, n, args.seed)
            A = P - 0.5
            runs = [timed(lambda: nash_from_preferences(P)) for _ in range(args.repeats)]
            eq = runs[0][0]
            wall = statistics.median(r[1] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            for solver in (None,):  # cvxpy default (Clarabel); a failure is reported as such
                (p_raw, status, name, solve_s), cwall, ccpu = timed(lambda: cvxpy_max_entropy(A, solver))
                left = (f"{kind:<11} {n:>5} {(eq.p > 0).sum():>5} | {wall:>8.3f} {cpu:>7.3f} "
                        f"{eq.exploitability:>9.1e} | {cwall:>8.3f} {ccpu:>7.3f} ")
                if p_raw is None:
                    print(left + f"{'-':>9} {'-':>9} {status + '/' + name:>18} |", flush=True)
                    continue
                raw_expl = float((A @ p_raw).max())
                q = np.clip(p_raw, 0, None)
                q = q / q.sum()
                cexpl = float((A @ q).max())
                print(left + f"{cexpl:>9.1e} {raw_expl:>9.1e} {status + '/' + name:>18} | "
                      f"{cwall / wall:>7.1f} {ccpu / cpu:>6.1f} {np.abs(eq.p - q).max():>8.1e} "
                      f"{eq.entropy - entropy(q):>9.1e}", flush=True)
                notes.append(f"{kind} n={n}: cvxpy time inside {name} {solve_s:.3f} s of {cwall:.3f} s wall")
                if kind == "duplicated":  # copies of one model must share its mass equally
                    spread = lambda x: max(float(np.ptp(x[origin == o])) for o in np.unique(origin))  # noqa: E731
                    notes.append(f"{kind} n={n}: max weight spread among copies of a model: "
                                 f"arena {spread(eq.p):.1e}, cvxpy {spread(q):.1e}")
                break
            worst[n] = max(worst.get(n, 0.0), eq.exploitability)
    for line in notes:
        print(line)
    for n, e in worst.items():
        print(f"n={n}: worst arena exploitability {e:.2e} ({'<' if e < 1e-8 else '>='} 1e-8 target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
