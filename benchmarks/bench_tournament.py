"""Benchmark: a tournament of 6 tiny checkpoints × 32 prompts, then a 7th checkpoint added.

Measures the wall time of (1) the 6-checkpoint tournament from scratch, (2) adding a 7th
checkpoint to that run directory (incremental: only its generations and its 6 new pairs),
(3) the 7-checkpoint tournament from scratch in a fresh run directory (the baseline the
incremental run is compared with, same process), and counts the work each did.

Checkpoints: tiny GPT-2 models (`trainers.tiny`, 2 layers, 64 dims, ~130k parameters,
random init, distinct seeds) generating up to --max-new-tokens tokens at temperature 1.
Judge: a deterministic programmatic judge (`python:bench_tournament:judge`, a hash of the
texts), so the numbers measure the tournament machinery (generation, store, scheduling,
analysis with a 1000-round prompt-clustered bootstrap, reports), not a judge model.

    .venv/bin/python benchmarks/bench_tournament.py [--max-new-tokens 32] [--prompts 32]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def judge(prompt: str, a: str, b: str) -> float:
    """Deterministic pseudo-preference from the texts' hashes."""
    ha = int(hashlib.sha256((prompt + a).encode()).hexdigest()[:8], 16)
    hb = int(hashlib.sha256((prompt + b).encode()).hexdigest()[:8], 16)
    return 0.5 + 0.5 * (ha - hb) / 2**32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # so `python:bench_tournament:judge` imports

    from arena.tournament import TournamentConfig, run_tournament
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    prompts_text = [f"Prompt {i}: write a short line about {w}." for i, w in
                    enumerate(["cats", "rain", "tea", "maps", "code", "boats", "bread", "stars"] * 8)][: args.prompts]
    root = Path(tempfile.mkdtemp(prefix="bench-tournament-"))
    tok = build_tokenizer(prompts_text * 2)
    for i in range(7):
        save_checkpoint(build_model(tok, seed=i), tok, (root / "all" / f"m{i}"))
    (root / "prompts.txt").write_text("\n".join(prompts_text) + "\n")
    ckpts = root / "ckpts"
    ckpts.mkdir()
    for i in range(6):
        (root / "all" / f"m{i}").rename(ckpts / f"m{i}")

    def run(ckpts_dir, out):
        config = TournamentConfig(ckpts_dir=ckpts_dir, prompts=root / "prompts.txt", judge="python:bench_tournament:judge",
                                  out=out, max_new_tokens=args.max_new_tokens, rounds=args.rounds)
        t = time.perf_counter()
        r = run_tournament(config)
        return time.perf_counter() - t, r.run.to_json()

    rows = []
    t6, run6 = run(ckpts, root / "run")
    rows.append(("6 checkpoints, from scratch", t6, run6))
    (root / "all" / "m6").rename(ckpts / "m6")
    t_add, run_add = run(ckpts, root / "run")
    rows.append(("add a 7th (incremental)", t_add, run_add))
    t7, run7 = run(ckpts, root / "run-fresh")
    rows.append(("7 checkpoints, from scratch", t7, run7))
    t_re, run_re = run(ckpts, root / "run")
    rows.append(("rerun, nothing changed", t_re, run_re))

    print(f"tiny GPT-2 ×7 (random init), {args.prompts} prompts, max {args.max_new_tokens} new tokens, "
          f"{args.rounds} bootstrap rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'scenario':34} {'wall s':>8} {'gens new':>9} {'gens reused':>12} {'judge calls new':>16} {'reused':>7}")
    for name, t, r in rows:
        print(f"{name:34} {t:8.1f} {r['new']['generations']:9d} {r['reused']['generations']:12d} "
              f"{r['new']['judgments']:16d} {r['reused']['judgments']:7d}")
    print(f"adding a 7th costs {t_add / t7:.2f}× a from-scratch 7-checkpoint run "
          f"({run_add['new']['generations']}/{run7['new']['generations']} generations, "
          f"{run_add['new']['judgments']}/{run7['new']['judgments']} judge calls)")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
