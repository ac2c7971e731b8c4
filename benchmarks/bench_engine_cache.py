"""The hf engine's model cache, end to end: `arena tournament --adaptive` with this code against the
same command with a peer checkout whose engine loads the checkpoint on every call.

An adaptive run generates lazily: at each design step every checkpoint is asked for the few
responses the step's comparisons need, so an engine without a cache loads each checkpoint once
per step. Both runs are the user's command (`arena tournament CKPTS --adaptive ...`, each in a
fresh run directory, one after the other in one invocation), wrapped only to count the calls of
`arena.engines.hf.load_policy` and the seconds spent in them. The generations tables of the two
run directories must be identical (the cache changes no text); the script exits 1 otherwise.

Checkpoints: by default four tiny random GPT-2s built here (trainers.tiny; loading takes tens of
milliseconds, so this shows the overhead, not the gain); `--gemma DIR` (a safetensors copy of
Gemma 3 270M, e.g. /tmp/gemma-270m) makes three checkpoints that share its weight file (hard
links) and differ by generation_config.json temperature (0.7, 1.0, 1.3), so each is a separate
checkpoint that loads a real 270M model; `--ckpts DIR` uses a folder of checkpoints as is.

    python benchmarks/bench_engine_cache.py                                # tiny checkpoints
    python benchmarks/bench_engine_cache.py --gemma /tmp/gemma-270m --prompts 6 --budget 24 --max-new-tokens 16
    python benchmarks/bench_engine_cache.py --peer ../nash-arena-main      # the code to compare against
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

# Runs `arena` (arena.cli.main) with a counter around the hf engine's loader; the counts go to
# stderr as the last line, so --json on stdout stays the command's own.
WRAPPER = """
import json, sys, time
import arena.engines.hf as hf
seen = {"loads": 0, "load_s": 0.0}
load = hf.load_policy
def counted(*a, **k):
    t = time.perf_counter()
    out = load(*a, **k)
    seen["loads"] += 1
    seen["load_s"] += time.perf_counter() - t
    return out
hf.load_policy = counted
from arena.cli import main
rc = main(sys.argv[1:])
print("LOADS " + json.dumps(seen), file=sys.stderr)
sys.exit(rc)
"""


def judge(prompt: str, a: str, b: str) -> float:
    """Deterministic, content-dependent and asymmetric: the bench's judge costs nothing, so the
    difference between the runs is the engine's."""
    score = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) / 2**32 for t in (a, b)]
    return 1 / (1 + math.exp(-4 * (score[0] - score[1])))


def tiny_checkpoints(root: Path) -> Path:
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    texts = [f"Question {i}: say something about {w}." for i, w in enumerate(["cats", "rain", "maps", "tea"])]
    tok = build_tokenizer(texts * 4, vocab_size=300)
    for name, seed in {"alpha": 1, "beta": 2, "gamma": 3, "delta": 4}.items():
        save_checkpoint(build_model(tok, n_embd=32, n_layer=1, n_head=2, n_positions=128, seed=seed), tok, root / name)
    return root


def gemma_checkpoints(src: Path, root: Path) -> Path:
    """Three checkpoints over one weight file (hard links), different sampling temperatures."""
    for t in (0.7, 1.0, 1.3):
        d = root / f"gemma-t{t:.1f}".replace(".", "")
        d.mkdir(parents=True)
        for f in src.iterdir():
            if f.name == "generation_config.json":
                continue
            try:
                os.link(f, d / f.name)
            except OSError:  # another file system: a copy
                shutil.copy2(f, d / f.name)
        cfg = json.loads((src / "generation_config.json").read_text())
        (d / "generation_config.json").write_text(json.dumps({**cfg, "do_sample": True, "temperature": t}))
    return root


def warm_page_cache(ckpts: Path) -> None:
    """Read every weight file once, so neither run pays the first read from disk."""
    for f in sorted(ckpts.rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".bin"):
            with f.open("rb") as fh:
                while fh.read(1 << 24):
                    pass


def write_prompts(path: Path, n: int) -> Path:
    """`n` short prompts, one per line."""
    topics = ["cats", "rain", "maps", "tea", "code", "rivers"]
    path.write_text("".join(f"Tell me one thing about {topics[i % len(topics)]} (prompt {i}).\n" for i in range(n)))
    return path


def run_counted(code: Path, argv: list[str], wrapper: Path, tag: str, env: dict | None = None) -> tuple[float, dict, dict]:
    """(wall seconds, the wrapper's counts, the --json result) of `arena ARGV` with the code of
    checkout `code`; the wrapper prints its counts as the last stderr line, after `tag`."""
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{HERE}", "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(wrapper), *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"arena tournament failed under {code} after {wall:.0f} s:\n{proc.stderr[-3000:]}")
    counts = json.loads(proc.stderr.strip().splitlines()[-1].removeprefix(tag + " "))
    return wall, counts, json.loads(proc.stdout)


def run(code: Path, argv: list[str], wrapper: Path) -> dict:
    wall, counts, result = run_counted(code, argv, wrapper, "LOADS")
    return {"wall": wall, **counts, "calls": result["adaptive"]["calls"],
            "steps": len(result["adaptive"]["trace"]) - 1, "generations": result["run"]["generations"]}


def rows(out: Path, sql: str) -> list:
    """The rows of `sql` in run directory `out`'s store."""
    con = sqlite3.connect(out / "arena.sqlite")
    found = con.execute(sql).fetchall()
    con.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, default=ROOT.parent / "main",
                        help="checkout whose hf engine reloads on every call (default: ../main)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--gemma", type=Path, help="safetensors copy of Gemma 3 270M: three checkpoints over it")
    src.add_argument("--ckpts", type=Path, help="a folder of checkpoints, used as is")
    parser.add_argument("--prompts", type=int, default=8, help="prompts (built here)")
    parser.add_argument("--budget", type=int, default=40, help="--budget of the adaptive run (judge calls)")
    parser.add_argument("--judge-batch-size", type=int, default=4, help="comparisons per adaptive step")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    if not (args.peer / "arena" / "engines" / "hf.py").exists():
        sys.exit(f"--peer {args.peer} is not a nash-arena checkout; pass the code to compare against")

    root = Path(tempfile.mkdtemp(prefix="bench-engine-cache-", dir="/tmp" if args.gemma else None))
    try:
        if args.ckpts:
            ckpts = args.ckpts
        elif args.gemma:
            ckpts = gemma_checkpoints(args.gemma, root / "ckpts")
        else:
            ckpts = tiny_checkpoints(root / "ckpts")
        prompts = write_prompts(root / "prompts.txt", args.prompts)
        wrapper = root / "arena_counted.py"
        wrapper.write_text(WRAPPER)
        warm_page_cache(ckpts)

        def argv(out: Path) -> list[str]:
            return ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", "python:bench_engine_cache:judge",
                    "--out", str(out), "--adaptive", "--budget", str(args.budget), "--judge-batch-size",
                    str(args.judge_batch_size), "--max-new-tokens", str(args.max_new_tokens), "--batch-size",
                    str(args.batch_size), "--rounds", "200", "--json"]

        load0 = os.getloadavg()[0]
        # This code first: it pays any cold start, which favours the peer.
        mine = run(ROOT, argv(root / "run-cache"), wrapper)
        peer = run(args.peer, argv(root / "run-peer"), wrapper)
        texts = "select checkpoint, prompt, sample, params, seed, text from generations order by 1, 2, 3, 4"
        identical = rows(root / "run-cache", texts) == rows(root / "run-peer", texts)
        peer_rev = subprocess.run(["git", "-C", str(args.peer), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip() or "?"
        n = len([d for d in ckpts.iterdir() if d.is_dir()])
        print(f"adaptive tournament: {n} checkpoints ({ckpts}), {args.prompts} prompts, --budget {args.budget}, "
              f"--judge-batch-size {args.judge_batch_size}, --max-new-tokens {args.max_new_tokens}; load average "
              f"{load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("| engine | design steps | judge calls | generations | loads | load s | wall s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, r in ((f"peer {peer_rev}: load on every call", peer), ("this code: model cache", mine)):
            print(f"| {label} | {r['steps']} | {r['calls']} | {r['generations']} | {r['loads']} | "
                  f"{r['load_s']:.1f} | {r['wall']:.1f} |")
        print(f"ratio peer / this code: wall {peer['wall'] / mine['wall']:.2f}x, loads {peer['loads']} / {mine['loads']}")
        print(f"generations identical: {identical}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
