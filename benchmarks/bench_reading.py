"""Reading battles at scale: `arena rate` end to end and the pairs reader alone, side by side.

Synthetic LMArena-style battles (seeded): ``question_id, model_a, model_b, winner`` with the
labels model_a / model_b / tie / tie (bothbad) (about 10% + 5% ties), N models, one prompt per
10 battles, written once as CSV (and Parquet) in a temporary folder. Each case runs in a fresh
process under ``/usr/bin/time`` (wall seconds, CPU seconds user + system, peak resident memory),
one after another, or all at once with ``--parallel`` (on a machine shared with other work, the
CPU seconds are the figure to compare; ``--data DIR`` keeps the generated files for a rerun):

* ``ours read`` / ``main read``: ``arena.io_pairs.read_pairs(FILE)`` from this checkout (the
  columnar pyarrow reader) and from ``--main`` (the previous pandas reader);
* ``ours rate`` / ``main rate``: ``arena rate FILE --json --rounds R`` (read, count, Newton fit,
  R bootstrap rounds over prompts, cycles, Nash), the command as a user runs it;
* ``arena-rank``: lmarena's arena-rank as its README runs it: ``pandas.read_csv``,
  ``PairDataset.from_pandas``, ``BradleyTerry(...).compute_ratings_and_cis`` (sandwich intervals);
* ``fastchat``: the FastChat-style baseline, `benchmarks/fastchat_elo.py` (pandas pivot tables,
  scikit-learn LogisticRegression, a bootstrap that resamples the battles), ``--fastchat-rounds``
  rounds (default ``--rounds``); with fewer rounds the full time is also printed, extrapolated
  from its seconds per round and marked so.

arena-rank pins numpy 2.3.3, so the two peers run in a separate venv (``--peer-python``):
    python -m venv ../venv-arenarank && ../venv-arenarank/bin/pip install arena-rank pandas pyarrow scikit-learn

Run:  .venv/bin/python benchmarks/bench_reading.py --battles 1000000 --cases "ours rate,arena-rank,fastchat"
      .venv/bin/python benchmarks/bench_reading.py --battles 10000000 --cases "ours rate,arena-rank,fastchat" --fastchat-rounds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
LABELS = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])

READ = ("import sys; import arena.io_pairs as m; r = m.read_pairs(sys.argv[1]); "
        "print(len(r), r.n_models, m.__file__.split('/')[-3])")
RATE = ("import sys; from arena.cli import main; "
        "sys.exit(main(['rate', sys.argv[1], '--json', '--rounds', sys.argv[2]]))")
RATE_ANALYTIC = RATE.replace("'--json'", "'--json', '--ci', 'analytic'")
ARENA_RANK = """
import sys
import pandas as pd
from arena_rank.utils.data_utils import PairDataset
from arena_rank.models.bradley_terry import BradleyTerry
df = pd.read_csv(sys.argv[1])
ds = PairDataset.from_pandas(df)
model = BradleyTerry(n_competitors=len(ds.competitors))
out = model.compute_ratings_and_cis(ds, significance_level=0.05, ci_method="sandwich")
print(len(df), len(ds.competitors), float(out["ratings"].max()))
"""


def make_battles(folder: Path, *, battles: int, models: int, seed: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, models)
    a = rng.integers(0, models, battles)
    b = (a + rng.integers(1, models, battles)) % models
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    u = rng.random(battles)
    outcome = np.where(u < 0.10, 2, np.where(u < 0.15, 3, np.where(rng.random(battles) < p, 0, 1)))
    names = np.array([f"model-{i:03d}" for i in range(models)])
    qid = rng.integers(0, max(battles // 10, 1), battles)
    table = pa.table({
        "question_id": pa.array(np.char.add("q", qid.astype(str))),
        "model_a": pa.array(names[a]), "model_b": pa.array(names[b]), "winner": pa.array(LABELS[outcome]),
    })
    paths = {"csv": folder / "battles.csv", "parquet": folder / "battles.parquet"}
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"])
    return paths


def start_case(code: str, args: list[str], pythonpath: str, python: str = sys.executable) -> subprocess.Popen:
    """Start `python -c code args` (or `python FILE args` when `code` ends in .py) under /usr/bin/time."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    run = [code] if code.endswith(".py") else ["-c", code]
    cmd = ["/usr/bin/time", "-f", "TIME %e %M %U %S", python, *run, *args]
    # cwd outside any checkout: `python -c` puts the working directory first on sys.path,
    # which would shadow PYTHONPATH (and time this checkout's reader as "main").
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tempfile.gettempdir())


def finish_case(proc: subprocess.Popen, timeout: float) -> tuple[float, float, float, str]:
    """(wall seconds, peak MiB, CPU seconds, last stdout line) of a started case."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return float("nan"), float("nan"), float("nan"), f"stopped after {timeout:.0f}s"
    stats = [line for line in stderr.splitlines() if line.startswith("TIME ")]
    if proc.returncode != 0 or not stats:
        tail = (stderr.strip().splitlines() or ["?"])[-1]
        return float("nan"), float("nan"), float("nan"), f"failed: {tail[:120]}"
    _, wall, kb, user, system = stats[-1].split()
    out = (stdout.strip().splitlines() or [""])[-1]
    return float(wall), float(kb) / 1024, float(user) + float(system), out[:60]


def run_case(code: str, args: list[str], pythonpath: str, timeout: float,
             python: str = sys.executable) -> tuple[float, float, float, str]:
    """(wall seconds, peak MiB, CPU seconds, last stdout line) of one case in a fresh process."""
    return finish_case(start_case(code, args, pythonpath, python), timeout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--main", default="../nash-arena-cf739b8", help="checkout with the previous reader (git worktree add ../nash-arena-cf739b8 cf739b8)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    ap.add_argument("--cases", default="ours read,main read,ours read parquet,ours rate,main rate,arena-rank,fastchat")
    ap.add_argument("--peer-python", default="../venv-arenarank/bin/python",
                    help="interpreter with arena-rank, pandas and scikit-learn (a separate venv)")
    ap.add_argument("--fastchat-rounds", type=int, default=None, help="bootstrap rounds of the FastChat-style baseline (default --rounds)")
    ap.add_argument("--data", default=None, help="folder for the generated files, reused when battles.csv is there (default: a temporary one)")
    ap.add_argument("--parallel", action="store_true", help="run the cases at the same time (compare CPU seconds)")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",")]
    fc_rounds = args.rounds if args.fastchat_rounds is None else args.fastchat_rounds
    print(f"# {args.battles:,} battles, {args.models} models, ~15% ties, {args.battles // 10:,} prompts, "
          f"{args.rounds} bootstrap rounds; {platform.platform()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data) if args.data else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if (folder / "battles.csv").is_file():
            paths = {"csv": folder / "battles.csv", "parquet": folder / "battles.parquet"}
            print(f"# reusing {paths['csv']} (delete it for new data)")
        else:
            paths = make_battles(folder, battles=args.battles, models=args.models, seed=args.seed)
            print(f"# data written in {time.perf_counter() - t0:.1f}s")
        print(f"# CSV {paths['csv'].stat().st_size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.1f} at start")
        table = {
            "ours read": (READ, [str(paths["csv"])], str(HERE)),
            "ours read parquet": (READ, [str(paths["parquet"])], str(HERE)),
            "main read": (READ, [str(paths["csv"])], args.main),
            "ours rate": (RATE, [str(paths["csv"]), str(args.rounds)], str(HERE)),
            "main rate": (RATE, [str(paths["csv"]), str(args.rounds)], args.main),
            # the cluster-robust sandwich (no resampling): the estimator arena-rank's case computes
            "ours rate analytic": (RATE_ANALYTIC, [str(paths["csv"]), str(args.rounds)], str(HERE)),
            "arena-rank": (ARENA_RANK, [str(paths["csv"])], ""),
            "fastchat": (str(HERE / "benchmarks" / "fastchat_elo.py"), [str(paths["csv"]), "--rounds", str(fc_rounds)], ""),
        }
        peers = {"arena-rank", "fastchat"}
        results = {}
        print(f"{'case':<20} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9}  output")

        def python_of(case):
            return args.peer_python if case in peers else sys.executable

        if args.parallel:
            procs = {case: start_case(*table[case], python=python_of(case)) for case in cases}
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(procs)) as pool:  # read every pipe at once: none blocks on a full one
                futures = {case: pool.submit(finish_case, proc, args.timeout) for case, proc in procs.items()}
            done = {case: f.result() for case, f in futures.items()}
        for case in cases:
            results[case] = done[case] if args.parallel else run_case(*table[case], args.timeout, python=python_of(case))
            wall, mib, cpu, out = results[case]
            print(f"{case:<20} {wall:8.1f} {cpu:8.1f} {mib:9.0f}  {out}", flush=True)
            if case == "fastchat" and fc_rounds < args.rounds and "s/round" in out:
                # seconds per round measured in wall time; scale CPU by the same per-round share
                per_round = float(out.rsplit(" ", 1)[-1].removesuffix("s/round"))
                full = wall + per_round * (args.rounds - fc_rounds)
                results["fastchat (extrapolated)"] = (full, mib, cpu * full / wall, "")
                print(f"{'fastchat (extrap.)':<20} {full:8.1f} {cpu * full / wall:8.1f} {mib:9.0f}  {args.rounds} "
                      f"rounds at {per_round:.2f}s/round (extrapolated from {fc_rounds})", flush=True)
    for ours, peer in (("ours read", "main read"), ("ours rate", "main rate"), ("ours rate", "arena-rank"),
                       ("ours rate analytic", "arena-rank"),
                       ("ours rate", "fastchat"), ("ours rate", "fastchat (extrapolated)")):
        if peer == "fastchat" and fc_rounds < args.rounds:
            continue  # fewer rounds than ours: only the extrapolated figure is comparable
        if ours in results and peer in results:
            (tw, tm, tc, _), (pw, pm, pc, _) = results[ours], results[peer]
            print(f"{ours} / {peer}: wall time {tw / pw:.3g}x, CPU time {tc / pc:.3g}x, peak memory {tm / pm:.3g}x")


if __name__ == "__main__":
    main()
