"""Benchmark: the demo's second tournament, first run against a rerun that changed nothing.

Builds the demo as `arena demo` does (raters world, first tournament, Nash-MP, Nash-MD and
Online DPO trained from the SFT checkpoint into the same `ckpts/`), then times, end to end
as a user runs it (a fresh `arena tournament` process, interpreter start included):

1. the demo's second tournament, first run (new checkpoints' generations and pairs; the
   first tournament's work is reused), exactly the demo's settings;
2. the same command again in a copy of that run directory with the code this script was
   started from in `--peer` (default: ../nash-arena-cf739b8, the code before the rerun reuse: git worktree add ../nash-arena-cf739b8 cf739b8);
3. the same command again with this checkout's code (the rerun: nothing changed).

It checks that the rerun leaves results.json byte-identical and prints the ratios.

    .venv/bin/python benchmarks/bench_rerun.py [--steps 300] [--peer ../nash-arena-cf739b8] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300, help="training steps per algorithm (the demo's: 300)")
    parser.add_argument("--peer", type=Path, default=Path("../nash-arena-cf739b8"), help="checkout with the code to compare")
    parser.add_argument("--keep", type=Path, default=None, help="build the demo here and keep it")
    args = parser.parse_args()

    from arena.demo import DEMO_ALGORITHMS, DEMO_PROMPTS, DEMO_SAMPLES, DEMO_TRAIN
    from arena.tournament import TournamentConfig, run_tournament
    from arena.worlds.raters import build_raters_world
    from trainers.lm import TrainConfig, train

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-rerun-"))
    world, run_dir = root / "world", root / "run"
    ckpts, prompts = world / "ckpts", world / "prompts.jsonl"
    if not (world / "judge.txt").exists():
        build_raters_world(world, seed=0, n_prompts=DEMO_PROMPTS)
    spec = (world / "judge.txt").read_text().strip()
    if not (run_dir / "results.json").exists():
        run_tournament(TournamentConfig(ckpts_dir=ckpts, prompts=prompts, judge=spec, out=run_dir,
                                        samples=DEMO_SAMPLES, seed=0))
    for algorithm in DEMO_ALGORITHMS:
        if not (ckpts / algorithm).exists():
            train(algorithm, TrainConfig(policy=str(ckpts / "sft"), judge=spec, prompts=str(prompts),
                                         out=str(ckpts / algorithm), seed=0, **{**DEMO_TRAIN, "steps": args.steps}))
    first_state = root / "run-before-second"
    if not first_state.exists():
        shutil.copytree(run_dir, first_state)
    for d in (run_dir, root / "run-peer"):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(first_state, run_dir)

    def tournament(out: Path, code: Path) -> float:
        cmd = [str(Path(sys.executable).with_name("arena")), "tournament", str(ckpts), "--prompts", str(prompts),
               "--judge", spec, "--out", str(out), "--samples", str(DEMO_SAMPLES), "--seed", "0"]
        env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    load = os.getloadavg()[0]
    t_first = tournament(run_dir, HERE)
    first = (run_dir / "results.json").read_bytes()
    shutil.copytree(run_dir, root / "run-peer")
    t_peer = tournament(root / "run-peer", args.peer)
    t_rerun = tournament(run_dir, HERE)
    identical = (run_dir / "results.json").read_bytes() == first
    print(f"demo's second tournament: {len([d for d in ckpts.iterdir() if d.is_dir()])} checkpoints, "
          f"{DEMO_PROMPTS} prompts x {DEMO_SAMPLES} samples, training steps {args.steps}; "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'first run (this code)':<40} {t_first:8.1f} s")
    print(f"{'rerun, peer code (' + str(args.peer) + ')':<40} {t_peer:8.1f} s  ({t_peer / t_first:.2f}x the first run)")
    print(f"{'rerun, this code':<40} {t_rerun:8.1f} s  ({t_rerun / t_first:.2f}x the first run; "
          f"{t_peer / t_rerun:.1f}x faster than the peer)")
    print(f"results.json after the rerun byte-identical to the first run's: {identical}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
