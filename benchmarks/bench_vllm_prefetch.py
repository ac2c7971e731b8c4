"""`arena tournament --adaptive --engine vllm` with this code against the same command with a peer
checkout whose vLLM engine builds a `vllm.LLM` at every design step that needs a checkpoint.

This code's vLLM engine declares `prefetch = True`: the first step that needs a checkpoint
generates all of its responses, so each checkpoint's `LLM` is built once per run. Both runs
are the user's command (`arena tournament CKPTS --adaptive --engine vllm ...`, each in a fresh
run directory, one after the other in one invocation), wrapped only to count `vllm.LLM`
constructions and the seconds spent in them. The judged comparisons (judgments table) and
the `adaptive` block of the two results must be identical, and every response the peer
generated must be the same text here; the script exits 1 otherwise.

Needs vLLM: run it with the Python of `.venv-vllm` (scripts/setup_vllm_cpu.sh) on a CPU, or of a
CUDA install of `nash-arena[vllm]`. On a CPU it passes vLLM the tests' fast-start options
(tests/vllm/vllm_helpers.py: no torch.compile, workers in process, 20% of RAM for the KV cache).
Checkpoints: four tiny random GPT-2s built here (`tiny_checkpoints`), or `--ckpts DIR` as is.

    .venv-vllm/bin/python benchmarks/bench_vllm_prefetch.py                    # peer: ../main
    .venv-vllm/bin/python benchmarks/bench_vllm_prefetch.py --peer ../main --prompts 16 --budget 96
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_engine_cache import rows, run_counted, write_prompts  # noqa: E402

# Runs `arena` (arena.cli.main) with a counter around vllm.LLM; the counts go to stderr as the
# last line, so --json on stdout stays the command's own.
WRAPPER = """
import json, os, sys, time
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
import vllm
seen = {"builds": 0, "build_s": 0.0}
class Counted(vllm.LLM):
    def __init__(self, *a, **k):
        t = time.perf_counter()
        super().__init__(*a, **k)
        seen["builds"] += 1
        seen["build_s"] += time.perf_counter() - t
vllm.LLM = Counted
from arena.cli import main
rc = main(sys.argv[1:])
print("BUILDS " + json.dumps(seen), file=sys.stderr)
sys.exit(rc)
"""
CPU_OPTIONS = {"gpu_memory_utilization": "0.2", "enforce_eager": "true", "distributed_executor_backend": "uni"}


def tiny_checkpoints(root: Path) -> Path:
    """Four random GPT-2s of trainers.tiny's default size (head_dim 32: vLLM's CPU attention has no
    kernel for the 16 of bench_engine_cache's smaller ones)."""
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    texts = [f"Question {i}: say something about {w}." for i, w in enumerate(["cats", "rain", "maps", "tea"])]
    tok = build_tokenizer(texts * 4, vocab_size=300)
    for name, seed in {"alpha": 1, "beta": 2, "gamma": 3, "delta": 4}.items():
        save_checkpoint(build_model(tok, seed=seed), tok, root / name)
    return root


def run(code: Path, argv: list[str], wrapper: Path) -> dict:
    wall, counts, result = run_counted(code, argv, wrapper, "BUILDS",
                                       {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"})
    return {"wall": wall, **counts, "adaptive": result["adaptive"], "new": result["run"]["new"],
            "steps": len(result["adaptive"]["trace"]) - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, default=ROOT.parent / "main",
                        help="checkout whose vllm engine builds an LLM per step (default: ../main)")
    parser.add_argument("--ckpts", type=Path, help="a folder of checkpoints, used as is")
    parser.add_argument("--prompts", type=int, default=8, help="prompts (built here)")
    parser.add_argument("--budget", type=int, default=48, help="--budget of the adaptive run (judge calls)")
    parser.add_argument("--judge-batch-size", type=int, default=8, help="comparisons per adaptive step")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--gpu", action="store_true", help="vLLM's own defaults instead of the CPU fast-start options")
    args = parser.parse_args()
    if not (args.peer / "arena" / "engines" / "vllm.py").exists():
        sys.exit(f"--peer {args.peer} is not a nash-arena checkout; pass the code to compare against")

    root = Path(tempfile.mkdtemp(prefix="bench-vllm-prefetch-"))
    try:
        if args.ckpts:
            ckpts = args.ckpts
        else:
            ckpts = tiny_checkpoints(root / "ckpts")
        prompts = write_prompts(root / "prompts.txt", args.prompts)
        wrapper = root / "arena_counted.py"
        wrapper.write_text(WRAPPER)
        options = [] if args.gpu else [a for k, v in CPU_OPTIONS.items() for a in ("--engine-option", f"{k}={v}")]

        def argv(out: Path) -> list[str]:
            return ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", "python:bench_engine_cache:judge",
                    "--out", str(out), "--engine", "vllm", *options, "--adaptive", "--budget", str(args.budget),
                    "--judge-batch-size", str(args.judge_batch_size), "--max-new-tokens", str(args.max_new_tokens),
                    "--rounds", "200", "--json"]

        load0 = os.getloadavg()[0]
        # This code first: it pays any cold start (imports, page cache), which favours the peer.
        mine = run(ROOT, argv(root / "run-prefetch"), wrapper)
        peer = run(args.peer, argv(root / "run-peer"), wrapper)
        judged = "select prompt, sample, a, b, p, p_ab, p_ba from judgments order by 1, 2, 3, 4"
        texts = "select checkpoint, prompt, sample, params, seed, text from generations"
        same_judged = rows(root / "run-prefetch", judged) == rows(root / "run-peer", judged)
        same_texts = set(rows(root / "run-peer", texts)) <= set(rows(root / "run-prefetch", texts))
        same_design = mine["adaptive"] == peer["adaptive"]
        peer_rev = subprocess.run(["git", "-C", str(args.peer), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip() or "?"
        n = len([d for d in ckpts.iterdir() if d.is_dir()])
        print(f"adaptive tournament, --engine vllm: {n} checkpoints, {args.prompts} prompts, --budget {args.budget}, "
              f"--judge-batch-size {args.judge_batch_size}, --max-new-tokens {args.max_new_tokens}; load average "
              f"{load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("| engine | design steps | judge calls | generations (new) | LLM builds | build s | wall s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, r in ((f"peer {peer_rev}: an LLM per step and checkpoint", peer),
                         ("this code: each checkpoint's responses at its first use", mine)):
            print(f"| {label} | {r['steps']} | {r['adaptive']['calls']} | {r['new']['generations']} | {r['builds']} | "
                  f"{r['build_s']:.1f} | {r['wall']:.1f} |")
        print(f"ratio peer / this code: wall {peer['wall'] / mine['wall']:.2f}x, LLM builds {peer['builds']} / "
              f"{mine['builds']}; unjudged generations here: {mine['new'].get('unjudged_generations')}")
        print(f"judged comparisons identical: {same_judged}; adaptive block identical: {same_design}; "
              f"peer's texts identical here: {same_texts}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not (same_judged and same_design and same_texts):
        sys.exit(1)


if __name__ == "__main__":
    main()
