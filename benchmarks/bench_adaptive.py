"""Adaptive design against round robin: judge calls to a Nash mixture within TV 0.05 of the truth.

Simulated Bernoulli judgments on games whose true P is known:

* cycle16: 16 checkpoints, a rock-paper-scissors cycle with unequal edges on top of 13
  dominated checkpoints (Bradley–Terry among themselves);
* bt32: 32 models, Bradley–Terry strengths ~ N(0, 1) plus a small antisymmetric perturbation
  (near-transitive);
* soccer: the 10 × 10 win-probability table of MuJoCo soccer agents (Rowland et al. 2019,
  open_spiel paper_data, in ../shared/data/openspiel);
* rrps: the 43 × 43 repeated rock-paper-scissors bot table (Lanctot et al. 2023), expected
  return v in [−1000, 1000] mapped to P = ½ + v/2000 and made antisymmetric.

For each world and seed, with the same seed for both designs:

* adaptive: `AdaptiveScheduler` with target nash:EPS, batches of max(pairs, calls/2), stopping
  by its own rule (U_nash ≤ EPS, module docstring of arena.core.design); we record its calls and
  the TV of its point Nash to the truth at the stop;
* round robin: sweeps of every pair, checked after sweeps on a geometric grid (×1.1) up to a
  cap; "oracle calls" = the first checkpoint from which the point Nash stays within EPS of the
  truth at every later checkpoint (it knows the truth, which favours the round robin).

The ratio is adaptive calls at its own stop / round-robin oracle calls. Coverage: after each
adaptive run, the Nash intervals `arena rate` reports (`nash_uncertainty` on the shared
bootstrap) are computed on the adaptive data and on a round robin of the same size; we count
how often the true weight of each model lies in its interval.

    python benchmarks/bench_adaptive.py                 # all worlds, 10 seeds
    python benchmarks/bench_adaptive.py --worlds cycle16 --seeds 3

End to end (`--tournament WORLD_DIR`, e.g. after `arena world raters --out WORLD_DIR`): the
user's commands `arena tournament WORLD_DIR/ckpts` and the same with `--adaptive [--target T]
[--budget B]`, one after the other in one invocation, each in a fresh run directory; prints
judge calls, generations, wall time, the verdict (cyclic triangles, Nash support) and the ratios.

    python benchmarks/bench_adaptive.py --tournament /tmp/raters --samples 2 --budget 384
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.core.bootstrap import bootstrap_bradley_terry  # noqa: E402
from arena.core.design import (  # noqa: E402
    DESIGN_PRIOR, EXPLORE, AdaptiveScheduler, RoundRobin, design_state, parse_target, stop_reason, total_variation,
)
from arena.core.nash import nash_from_preferences  # noqa: E402
from arena.core.records import Records  # noqa: E402
from arena.core.uncertainty import nash_uncertainty  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "openspiel"  # the shared data beside the checkout


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def world_cycle16() -> np.ndarray:
    theta = np.concatenate([[1.2, 1.2, 1.2], np.linspace(0.5, -2.0, 13)])
    P = _sigmoid(theta[:, None] - theta[None, :])
    cyc = {(0, 1): 0.68, (1, 2): 0.62, (2, 0): 0.74}
    for (a, b), v in cyc.items():
        P[a, b], P[b, a] = v, 1.0 - v
    return P


def world_bt32(rng_seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    theta = rng.normal(0.0, 1.0, 32)
    E = rng.normal(0.0, 0.03, (32, 32))
    P = np.clip(_sigmoid(theta[:, None] - theta[None, :]) + (E - E.T) / 2, 0.01, 0.99)
    np.fill_diagonal(P, 0.5)
    return P


def world_soccer() -> np.ndarray:
    P = np.loadtxt(DATA / "response_graph_ucb_soccer.txt")
    return (P + 1.0 - P.T) / 2.0


def world_rrps() -> np.ndarray:
    rows = [ast.literal_eval(line) for line in (DATA / "pbe_rrps_bot_table_file.txt").read_text().splitlines() if line.strip()]
    names = sorted({r[0] for r in rows} | {r[1] for r in rows})
    idx = {m: k for k, m in enumerate(names)}
    V = np.zeros((len(names), len(names)))
    for a, b, v in rows:
        V[idx[a], idx[b]] = v
    P = 0.5 + (V - V.T) / 4000.0  # antisymmetric part of v/2000
    np.fill_diagonal(P, 0.5)
    return np.clip(P, 0.0, 1.0)


#: budget of a run in judgments per pair: the ill-conditioned tables get less (they hit it anyway)
CAP_SWEEPS = {"cycle16": 3000, "bt32": 3000, "soccer": 500, "rrps": 30}
WORLDS = {"cycle16": world_cycle16, "bt32": world_bt32, "soccer": world_soccer, "rrps": world_rrps}


class Sim:
    """Bernoulli judgments of chosen pairs from the true P; records grow in place."""

    def __init__(self, P: np.ndarray, seed: int):
        self.P, self.rng = P, np.random.default_rng(seed)
        self.a, self.b, self.s = [], [], []
        self.models = tuple(f"m{k}" for k in range(P.shape[0]))

    def judge(self, pairs: np.ndarray) -> None:
        i, j = pairs[:, 0], pairs[:, 1]
        self.a.append(i)
        self.b.append(j)
        self.s.append((self.rng.random(i.size) < self.P[i, j]).astype(np.float64))

    def records(self) -> Records:
        if not self.a:
            return Records(self.models, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        return Records(self.models, np.concatenate(self.a), np.concatenate(self.b), np.concatenate(self.s))


def run_design(P, p_true, seed, eps, rounds, cap, *, adaptive: bool, growth: float = 1.5, explore: float = EXPLORE):
    """One run with the stopping rule nash:eps (or the cap); returns (sim, calls, TV at the stop, reason).

    Batches grow the calls by the factor `growth` (at least one sweep); the round robin's batches
    are whole sweeps, so it is checked after complete sweeps only. The last batch is cut at the
    budget `cap`, so two designs that run into it are compared at exactly equal calls.
    """
    target = parse_target(f"nash:{eps}", budget=cap)
    sched = AdaptiveScheduler(target=target, rounds=rounds, explore=explore) if adaptive else RoundRobin()
    sim = Sim(P, seed)
    n_pairs = P.shape[0] * (P.shape[0] - 1) // 2
    calls = 0
    while True:
        state = design_state(sim.records(), rounds=rounds if calls else 0, seed=seed)
        reason = stop_reason(state, target) if calls else None
        if reason:
            break
        k = max(n_pairs, int(calls * (growth - 1.0)))
        if not adaptive:
            k = n_pairs * max(1, k // n_pairs)
        k = min(k, cap - calls)  # the last batch ends at the budget: both designs stop at equal calls
        batch = sched.next_batch(state, k)
        sim.judge(batch)
        calls += len(batch)
    return sim, calls, float(total_variation(state.p_hat, p_true)), reason


def run_round_robin(P, p_true, seed, eps, cap_sweeps):
    """Oracle calls: first checkpoint from which TV(p̂, p*) <= eps at every later checkpoint."""
    rng = np.random.default_rng(seed)
    n = P.shape[0]
    i, j = np.triu_indices(n, 1)
    wins = np.zeros(i.size)
    sweeps, ok_from, checks = 0, None, 0
    grid = sorted({int(round(1.1 ** t)) for t in range(400) if 1.1 ** t <= cap_sweeps} | {cap_sweeps})
    for target in grid:
        step = target - sweeps
        wins += rng.binomial(step, P[i, j])
        sweeps = target
        Ph = np.full((n, n), 0.5)
        Ph[i, j] = wins / sweeps
        Ph[j, i] = 1.0 - Ph[i, j]
        tv = float(total_variation(nash_from_preferences(Ph).p, p_true))
        checks += 1
        if tv <= eps:
            ok_from = sweeps if ok_from is None else ok_from
        else:
            ok_from = None
    return None if ok_from is None else ok_from * i.size


def coverage(records: Records, p_true, seed, rounds=200, level=0.95):
    from arena.core.matrix import preference_matrix_from_counts
    from arena.core.records import pair_counts

    W, N = pair_counts(records)
    p_hat = nash_from_preferences(preference_matrix_from_counts(W, N).P).p
    bt = bootstrap_bradley_terry(records, rounds=rounds, seed=seed, level=level, prior=DESIGN_PRIOR, keep_pairs=True)
    nu = nash_uncertainty(bt.pair_samples, bt.cells, p_hat, level=level, max_rounds=rounds)
    return (p_true >= nu.lo - 1e-9) & (p_true <= nu.hi + 1e-9)


def uniform_records(P, calls, seed):
    sim = Sim(P, seed + 10_000)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), calls))
    return sim.records()


def tournament_end_to_end(world: Path, extra: list[str], rounds: int, samples: int = 1) -> None:
    """Round robin and adaptive `arena tournament` on one world, as a user runs them (module docstring)."""
    import json
    import os
    import subprocess
    import tempfile

    arena = Path(sys.executable).with_name("arena")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, flags in (("round robin", []), ("adaptive", ["--adaptive", *extra])):
            cmd = [str(arena), "tournament", str(world / "ckpts"), "--out", str(Path(tmp) / label.replace(" ", "-")),
                   "--rounds", str(rounds), "--samples", str(samples), "--json", *flags]
            print("command:", " ".join(cmd[1:]))
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"{label} failed: {done.stderr[-2000:]}")
            r = json.loads(done.stdout)
            support = sorted(m for m, w in r["nash"]["weights"].items() if w > 1e-6)
            triangles = sorted(tuple(sorted(t)) for t in r["cycles"]["triangles"])
            rows[label] = (r["run"]["judgments"], r["run"]["generations"], dt, support, triangles,
                           (r.get("adaptive") or {}).get("stop"))
    print(f"{'design':12} {'judge calls':>11} {'generations':>11} {'wall s':>7}  stop       Nash support / triangles")
    for label, (calls, gens, dt, support, tri, stop) in rows.items():
        print(f"{label:12} {calls:>11} {gens:>11} {dt:>7.1f}  {str(stop or '-'):10} {support} / {tri}")
    (c0, g0, t0, s0, tr0, _), (c1, g1, t1, s1, tr1, _) = rows["round robin"], rows["adaptive"]
    print(f"adaptive / round robin: judge calls {c1 / c0:.2f}, generations {g1 / g0:.2f}, wall time {t1 / t0:.2f}; "
          f"same Nash support: {s0 == s1}; same cyclic triangles: {tr0 == tr1}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tournament", type=Path, default=None,
                    help="end to end: round robin against --adaptive on this world directory (module docstring)")
    ap.add_argument("--target", default=None, help="with --tournament: the adaptive run's --target")
    ap.add_argument("--budget", type=int, default=None, help="with --tournament: the adaptive run's --budget")
    ap.add_argument("--tournament-rounds", type=int, default=200, help="with --tournament: bootstrap rounds")
    ap.add_argument("--samples", type=int, default=1, help="with --tournament: responses per (checkpoint, prompt)")
    ap.add_argument("--worlds", default="cycle16,bt32,soccer,rrps")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=20, help="resamples per design step")
    ap.add_argument("--cap-sweeps", type=int, default=None,
                    help="judgments per pair the budget allows (default: per world, CAP_SWEEPS)")
    ap.add_argument("--coverage-worlds", default="cycle16,bt32")
    ap.add_argument("--explore", type=float, default=EXPLORE,
                    help="the adaptive scheduler's exploration floor (share of a round robin's count per pair)")
    args = ap.parse_args()
    print(f"command: python benchmarks/bench_adaptive.py {' '.join(sys.argv[1:])}")
    if args.tournament is not None:
        extra = (["--target", args.target] if args.target else []) + (["--budget", str(args.budget)] if args.budget else [])
        tournament_end_to_end(args.tournament, extra, args.tournament_rounds, args.samples)
        return
    print(f"eps={args.eps} seeds={args.seeds} resamples per step={args.rounds} explore={args.explore} "
          f"budget per pair={args.cap_sweeps or CAP_SWEEPS}")
    print("medians over seeds; RR = round robin; TV = distance of the point Nash to the true one at the stop;")
    print("ok = seeds with TV <= eps; oracle = first sweep from which RR stays within eps (knows the truth)")
    print(f"{'world':8} {'n':>3} {'sup':>3} | {'RR calls':>9} {'TV':>6} {'ok':>5} | {'RR oracle':>9} | "
          f"{'adaptive':>9} {'TV':>6} {'ok':>5} | {'ratio':>6} {'vs orc':>6} | {'time s':>6}")
    for name in args.worlds.split(","):
        P = WORLDS[name]()
        p_true = nash_from_preferences(P).p
        n = P.shape[0]
        t0 = time.perf_counter()
        rr, rs, ad, tvs, tvr, covs = [], [], [], [], [], {"adaptive": [], "uniform": []}
        cap_sweeps = args.cap_sweeps or CAP_SWEEPS[name]
        cap = cap_sweeps * n * (n - 1) // 2
        for seed in range(args.seeds):
            sim, calls, tv, _ = run_design(P, p_true, seed, args.eps, args.rounds, cap, adaptive=True,
                                           explore=args.explore)
            ad.append(calls)
            tvs.append(tv)
            _, calls_rr, tv_rr, _ = run_design(P, p_true, seed, args.eps, args.rounds, cap, adaptive=False)
            rs.append(calls_rr)
            tvr.append(tv_rr)
            rr.append(run_round_robin(P, p_true, seed, args.eps, cap_sweeps))
            if name in args.coverage_worlds.split(","):
                covs["adaptive"].append(coverage(sim.records(), p_true, seed))
                covs["uniform"].append(coverage(uniform_records(P, calls, seed), p_true, seed))
        dt = time.perf_counter() - t0
        rr_ok = [r for r in rr if r is not None]
        rr_med = float(np.median(rr_ok)) if len(rr_ok) == len(rr) else float("inf")
        ok_a = sum(t <= args.eps for t in tvs)
        ok_r = sum(t <= args.eps for t in tvr)
        print(f"{name:8} {n:>3} {int((p_true > 1e-6).sum()):>3} | {np.median(rs):>9.0f} {np.median(tvr):>6.3f} {ok_r:>2}/{len(tvr):<2}"
              f" | {rr_med:>9.0f} | {np.median(ad):>9.0f} {np.median(tvs):>6.3f} {ok_a:>2}/{len(tvs):<2}"
              f" | {np.median(ad) / np.median(rs):>6.2f} {np.median(ad) / rr_med:>6.2f} | {dt:>6.1f}")
        print(f"         TV at the stop: mean RR {np.mean(tvr):.3f}, adaptive {np.mean(tvs):.3f}; seeds with TV > 0.3 "
              f"(the point Nash on another face): RR {sum(t > 0.3 for t in tvr)}/{len(tvr)}, "
              f"adaptive {sum(t > 0.3 for t in tvs)}/{len(tvs)}")
        print("         per-seed adaptive / round robin (same rule): "
              + ", ".join(f"{x / y:.2f}" for x, y in zip(ad, rs)))
        if covs["adaptive"]:
            ca, cu = np.mean(covs["adaptive"]), np.mean(covs["uniform"])
            print(f"         Nash interval coverage (true weight in 95% interval, {len(covs['adaptive'])} runs x {n} models): "
                  f"adaptive {ca:.3f}, uniform same size {cu:.3f}")


if __name__ == "__main__":
    main()
