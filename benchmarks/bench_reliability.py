"""Fault injection end to end: `arena judge` on N pairs against a fake OpenAI-compatible server
(127.0.0.1) that fails a share of requests, side by side with the fault-free run.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_reliability.py [--pairs 200] [--rate 0.2]
        [--max-retries 1] [--peer /path/to/other/checkout]

For each code tree (this one; `--peer`, e.g. a checkout of the previous version, for a before/after) it runs
`arena judge --json` in a child process three times: on a fault-free server, on a faulty one,
and on the same faulty one with `--retry-failures`. It counts, against the fault-free verdicts,
rows equal, rows recorded as failures, and silent changes (a number that differs), the
wall time of each run and its ratio to the fault-free one, and how often the API key (echoed
by the server in its 401 bodies) appears in stdout and stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_spec = importlib.util.spec_from_file_location("fake_openai", ROOT / "tests" / "judges" / "fake_openai.py")
fake_openai = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_openai)

KEY = "sk-bench-NEVER-WRITE-ME-0123456789"
# option names both versions know; short waits (the faults, not the backoff, are measured)
OPTIONS = "backoff=0.001&backoff_max=0.01&timeout=0.3&max_concurrency=8"
TOL = 1e-12


def run_judge(tree: Path, pairs: Path, url: str, *extra: str, retries: int = 1) -> tuple[dict, str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENAI_API_KEY": KEY, "OMP_NUM_THREADS": "1"}
    code = "import sys; from arena.cli import main; sys.exit(main(sys.argv[1:]))"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "judge", str(pairs), "--judge",
                           f"openai:{url}#judge-model?{OPTIONS}&max_retries={retries}", "--json", *extra],
                          env=env, capture_output=True, text=True, cwd=tree)
    seconds = time.perf_counter() - start
    try:
        obj = json.loads(proc.stdout)
    except json.JSONDecodeError:
        obj = {"rows": [], "error": proc.stderr[-500:]}
    return obj, proc.stdout + proc.stderr, seconds


def compare(want: dict, got: dict) -> dict:
    equal = failed = changed = 0
    for w, g in zip(want["rows"], got["rows"]):
        if g["p"] is None:
            failed += 1
        elif abs(g["p"] - w["p"]) <= TOL:
            equal += 1
        else:
            changed += 1
    return {"equal": equal, "failed": failed, "silent_changes": changed}


def bench(tree: Path, pairs: Path, rate: float, retries: int) -> dict:
    with fake_openai.FakeOpenAI(rate=0.0) as clean:
        want, _, t_clean = run_judge(tree, pairs, clean.url, retries=retries)
    with fake_openai.FakeOpenAI(rate=rate, stall=0.6) as faulty:
        got, text, t_faulty = run_judge(tree, pairs, faulty.url, retries=retries)
        faults = dict(faulty.faults)
        again, text2, t_retry = run_judge(tree, pairs, faulty.url, "--retry-failures", retries=retries)
    out = {"fault_free_s": t_clean, "faulty_s": t_faulty, "faults_injected": faults,
           "faulty": compare(want, got), "key_in_output": (text + text2).count(KEY)}
    out["after_retry"] = compare(want, again) if again.get("rows") else {"error": "no --retry-failures in this tree"}
    out["retry_s"] = t_retry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--max-retries", type=int, default=1,
                        help="client retries (1: a fault lasting two tries outlasts them and is recorded)")
    parser.add_argument("--peer", type=Path, default=None, help="another checkout to run side by side (before/after)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.jsonl"
        pairs.write_text("".join(json.dumps({"prompt": f"question {i}", "response_a": f"answer a{i} " * (1 + i % 3),
                                             "response_b": f"answer b{i}"}) + "\n" for i in range(args.pairs)))
        trees = [("this tree", ROOT)] + ([("peer", args.peer)] if args.peer else [])
        for label, tree in trees:
            r = bench(tree, pairs, args.rate, args.max_retries)
            print(f"== {label} ({tree}) — {args.pairs} pairs, fault rate {args.rate:.0%}, max_retries={args.max_retries}")
            print(f"  faults injected: {r['faults_injected']}")
            print(f"  faulty run:   {r['faulty']}")
            print(f"  after --retry-failures: {r['after_retry']}")
            print(f"  API key occurrences in stdout+stderr: {r['key_in_output']}")
            print(f"  wall: fault-free {r['fault_free_s']:.2f} s, faulty {r['faulty_s']:.2f} s "
                  f"({r['faulty_s'] / r['fault_free_s']:.2f}×), retry pass {r['retry_s']:.2f} s")


if __name__ == "__main__":
    main()
