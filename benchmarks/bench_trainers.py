"""Benchmarks of the LM trainers (CPU by default; prints a table, writes nothing else).

    .venv/bin/python benchmarks/bench_trainers.py mixture   # geometric-mixture sampling, KV cache vs none
    .venv/bin/python benchmarks/bench_trainers.py memory    # peak memory of Nash-MP, LoRA vs full fine-tuning
    .venv/bin/python benchmarks/bench_trainers.py curves    # exact KL(π*_β‖π_θ) on the lowrank world, per algorithm

curves: builds the lowrank world (`arena world lowrank` defaults), trains Nash-MP, Nash-MD
and Online DPO from its SFT checkpoint with the same steps, batch and judge (so the same
number of judge queries), and plots the exact KL(π*_β ‖ π_θ) of the transformer's class
distribution against judge queries (docs/img/trainers_lowrank.png; --out to change).

mixture: the same tiny GPT-2 policy and reference, the same uniforms, 128 and 512 new tokens
(end-of-sequence banned so every row runs to the full length); `trainers.mixture.generate`
with both models' key-value caches against the same loop re-encoding the whole prefix at
every token (`use_cache=False`, what a cache-less implementation does). The table shows
seconds, the ratio, and how many rows came out token-for-token identical: in float32 a row
can split where a uniform falls within rounding distance (~1e-7) of a CDF boundary, after
which it continues differently; in float64 all rows agree (checked by hand, and the default
tests check cache = no cache on short responses).

memory: each configuration runs in a fresh subprocess (peak resident set size, ru_maxrss)
for 3 Nash-MP steps on a wider GPT-2 (about 19M parameters, so the weights dominate the
interpreter's own footprint); a process that only loads the model is the baseline, and the
table shows the peak above it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_mixture(tokens=(128, 512), batch: int = 8, repeats: int = 2) -> list[dict]:
    import torch

    from trainers.mixture import generate
    from trainers.tiny import build_model, build_tokenizer

    torch.set_num_threads(1)
    tok = build_tokenizer(["the quick brown fox jumps over the lazy dog"] * 4, vocab_size=300)
    pol = build_model(tok, n_embd=64, n_layer=2, n_positions=1024, seed=1).eval()
    ref = build_model(tok, n_embd=64, n_layer=2, n_positions=1024, seed=2).eval()
    enc = tok(["the quick brown fox"] * batch, return_tensors="pt")
    rows = []
    for T in tokens:
        u = torch.rand(batch, T, generator=torch.Generator().manual_seed(T))
        times, outs = {}, {}
        for use_cache in (True, False):
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                g = generate(pol, enc["input_ids"], enc["attention_mask"], ref=ref, m=0.125, uniforms=u,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                             banned=(tok.eos_token_id, tok.pad_token_id), use_cache=use_cache)
                best = min(best, time.perf_counter() - t0)
            times[use_cache], outs[use_cache] = best, g.tokens
        rows.append({"new_tokens": T, "batch": batch, "cache_s": round(times[True], 3),
                     "no_cache_s": round(times[False], 3), "speedup": round(times[False] / times[True], 2),
                     "rows_identical": f"{int((outs[True] == outs[False]).all(1).sum())}/{batch}"})
    return rows


_MEMORY_CHILD = r"""
import json, resource, sys, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(1)
mode, world = sys.argv[2], sys.argv[3]
if mode == "load":
    from arena.loading import load_causal_lm
    load_causal_lm(world + "/ckpts/sft")
else:
    from trainers.lm import TrainConfig, train
    train("nash-mp", TrainConfig(policy=world + "/ckpts/sft", judge="python:arena.worlds.lowrank:judge",
          prompts=world + "/prompts.jsonl", out=world + "/out-" + mode, steps=3, batch_size=4,
          max_new_tokens=4, eval_every=0, save_every=0, lora=(mode == "lora")), overwrite=True)
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def bench_memory() -> list[dict]:
    import torch

    from arena.worlds.lowrank import LowrankWorld, build_lowrank_world
    from trainers.tiny import build_model, save_checkpoint
    from arena.loading import load_causal_lm

    with tempfile.TemporaryDirectory() as tmp:
        world = build_lowrank_world(Path(tmp) / "w", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=5))
        _, tok = load_causal_lm(world / "ckpts" / "sft")
        big = build_model(tok, n_embd=512, n_layer=6, n_head=8, seed=0)       # a wider policy, same tokenizer
        n_params = sum(p.numel() for p in big.parameters())
        save_checkpoint(big, tok, world / "ckpts" / "sft")
        rss = {}
        for mode in ("load", "full", "lora"):
            proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(ROOT), mode, str(world)],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            rss[mode] = json.loads(proc.stdout.strip().splitlines()[-1])["maxrss_kb"] / 1024
    full, lora = rss["full"] - rss["load"], rss["lora"] - rss["load"]
    return [{"params_M": round(n_params / 1e6, 1), "load_only_MiB": round(rss["load"]),
             "full_above_load_MiB": round(full), "lora_above_load_MiB": round(lora),
             "full_over_lora": round(full / max(lora, 1e-9), 2)}]


CURVE_ALGOS = ("nash-mp", "nash-md", "online-dpo")


def bench_curves(*, steps: int = 300, batch: int = 64, lr: float = 1e-3, lr_schedule: str = "linear", seed: int = 0,
                 png: Path = ROOT / "docs" / "img" / "trainers_lowrank.png", work: Path | None = None) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world
    from trainers.lm import TrainConfig, train

    torch.set_num_threads(1)
    tmp = tempfile.TemporaryDirectory() if work is None else None
    root = Path(tmp.name) if tmp else Path(work)
    world = root / "lowrank"
    if not (world / "nash.json").is_file():
        build_lowrank_world(world, LowrankWorld(seed=seed), overwrite=True)
    nash = json.loads((world / "nash.json").read_text())
    curves, rows = {}, []
    for algo in CURVE_ALGOS:
        t0 = time.perf_counter()
        out = train(algo, TrainConfig(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC,
                                      prompts=str(world / "prompts.jsonl"), out=str(root / "runs" / algo),
                                      steps=steps, batch_size=batch, lr=lr, lr_schedule=lr_schedule,
                                      beta=nash["beta"], seed=seed,
                                      max_new_tokens=4, eval_every=50, save_every=0), overwrite=True)
        seconds = time.perf_counter() - t0
        m = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        curves[algo] = m
        tail = [r["kl_to_nash"] for r in m[-max(1, steps // 10):]]
        rows.append({"algorithm": algo, "steps": steps, "judge_queries": m[-1]["judge_queries"],
                     "kl_to_nash_start": round(m[0]["kl_to_nash"], 4), "kl_to_nash_end": round(m[-1]["kl_to_nash"], 4),
                     "kl_to_nash_last10pct_mean": round(sum(tail) / len(tail), 4),
                     "kl_to_nash_min": round(min(r["kl_to_nash"] for r in m), 4), "seconds": round(seconds, 1)})
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for algo, m in curves.items():
        ax.plot([r["judge_queries"] for r in m], [r["kl_to_nash"] for r in m], label=algo)
    ax.axhline(nash["kl_star_ref"], color="grey", ls=":", label="SFT reference")
    ax.set_yscale("log")
    ax.set_xlabel("judge queries")
    ax.set_ylabel("exact KL(π*_β ‖ π_θ)")
    ax.set_title(f"lowrank world: β = {nash['beta']:g}, batch {batch}, lr {lr:g} ({lr_schedule}), seed {seed}",
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    if tmp:
        tmp.cleanup()
    return rows


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", default=["mixture", "memory"], choices=["mixture", "memory", "curves"])
    ap.add_argument("--steps", type=int, default=300, help="curves: training steps per algorithm")
    ap.add_argument("--batch", type=int, default=64, help="curves: prompts per step")
    ap.add_argument("--lr", type=float, default=1e-3, help="curves: learning rate")
    ap.add_argument("--seed", type=int, default=0, help="curves: world and training seed")
    ap.add_argument("--work", type=Path, default=None, help="curves: keep the world and runs here")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "trainers_lowrank.png")
    args = ap.parse_args(argv)
    for which in args.which:
        if which == "curves":
            rows = bench_curves(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, png=args.png,
                                work=args.work)
        else:
            rows = bench_mixture() if which == "mixture" else bench_memory()
        print(f"## {which}\n\n{_table(rows)}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
