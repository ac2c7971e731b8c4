"""Benchmarks of the LM trainers (CPU by default; prints a table, writes nothing else).

    .venv/bin/python benchmarks/bench_trainers.py mixture   # geometric-mixture sampling, KV cache vs none
    .venv/bin/python benchmarks/bench_trainers.py memory    # peak memory of Nash-MP, LoRA vs full fine-tuning

mixture: the same tiny GPT-2 policy and reference, the same uniforms, 128 and 512 new tokens
(end-of-sequence banned so every row runs to the full length); `trainers.mixture.generate`
with both models' key-value caches against the same loop re-encoding the whole prefix at
every token (`use_cache=False`, what a cache-less implementation does). The two must
produce identical tokens; the table shows seconds and the ratio.

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
                     "identical_tokens": bool(torch.equal(outs[True], outs[False]))})
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


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", default=["mixture", "memory"], choices=["mixture", "memory"])
    args = ap.parse_args(argv)
    for which in args.which:
        rows = bench_mixture() if which == "mixture" else bench_memory()
        print(f"## {which}\n\n{_table(rows)}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
