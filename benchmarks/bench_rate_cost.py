"""Cost of the honest verdicts: `arena rate` end to end, this checkout against an older one.

The shared resamples add work to `arena rate`: the per-pair preferences of every bootstrap round
are kept, the matrix cells, ranks and cycle survival are read from them, and the Nash mixture is
solved on up to `arena.core.uncertainty.NASH_ROUNDS` resampled games. This script writes one
synthetic pairs file (the data of benchmarks/bench_bt.py: 200 models, 1M battles, 10% ties) and
times `arena rate FILE --json` as a user runs it, in fresh processes, alternating the two code
versions, and prints the ratio new / old.

Run (OLD = a checkout of the commit before the change, e.g. `git worktree add /tmp/old <commit>`):

    .venv/bin/python benchmarks/bench_rate_cost.py --old-src OLD
    .venv/bin/python benchmarks/bench_rate_cost.py --old-src OLD --prompts 100000   (prompt ids)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parent


def _write_pairs(path: Path, models: int, battles: int, prompts: int) -> None:
    sys.path.insert(0, str(HERE))
    import numpy as np
    import pandas as pd
    from bench_bt import synthetic_battles

    records, _ = synthetic_battles(models, battles, 0.1, 0, prompts=prompts)
    names = np.array(records.models)
    frame = pd.DataFrame({"model_a": names[records.a], "model_b": names[records.b], "score": records.score})
    if records.cluster is not None:
        frame["prompt_id"] = records.cluster
    frame.to_parquet(path)


def _time(src: Path, pairs: Path, rounds: int) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    code = ("import resource, sys, time; from arena.cli import main; t = time.perf_counter(); "
            f"rc = main(['rate', {str(pairs)!r}, '--json', '--rounds', '{rounds}']); "
            "u = resource.getrusage(resource.RUSAGE_SELF); "
            "print(f'@@ {time.perf_counter() - t} {u.ru_utime + u.ru_stime}', file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    line = next(x for x in proc.stderr.splitlines() if x.startswith("@@ "))
    wall, cpu = map(float, line.split()[1:])
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-src", type=Path, required=True, help="checkout of the previous version")
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--prompts", type=int, default=0, help="prompt ids drawn from this many (0 = none)")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.parquet"
        _write_pairs(pairs, args.models, args.battles, args.prompts)
        times = {"old": [], "new": []}
        for _ in range(args.repeat):  # alternate, so that load from other users hits both
            for name, src in (("old", args.old_src), ("new", NEW_SRC)):
                times[name].append(_time(src, pairs, args.rounds))
    print(f"data: {args.models} models, {args.battles:,} battles, 10% ties, prompts {args.prompts or 'none'}; "
          f"`arena rate FILE --json --rounds {args.rounds}` timed inside the process (read, analyse, print)")
    for name in ("old", "new"):
        w = [t[0] for t in times[name]]
        c = [t[1] for t in times[name]]
        print(f"{name}: wall {', '.join(f'{x:.1f}' for x in w)} s; CPU {', '.join(f'{x:.1f}' for x in c)} s")
    best = {k: min(t[0] for t in v) for k, v in times.items()}
    best_cpu = {k: min(t[1] for t in v) for k, v in times.items()}
    print(f"ratio new / old (best of {args.repeat}): wall {best['new'] / best['old']:.2f}x, "
          f"CPU {best_cpu['new'] / best_cpu['old']:.2f}x (target <= 1.5x)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
