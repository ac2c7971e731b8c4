"""Training steps/s with and without `--use-vllm`, end to end as a user runs `arena train`.

    .venv-vllm/bin/python benchmarks/bench_vllm_train.py [--world DIR] [--steps 10] [--batch-size 8]
        [--max-new-tokens 32] [--algorithm online-dpo]

Run with the `.venv-vllm` interpreter (scripts/setup_vllm_cpu.sh). Builds a small lowrank
world (4 contexts x 4 actions, a tiny GPT-2 SFT policy; as tests/trainers/lm) unless --world
is given (any world directory: ckpts/sft, prompts.jsonl, judge.txt), then trains its SFT
policy twice, one run after the other in this one invocation, with the same options: the hf
sampler, then `--use-vllm` (in-process engine, the CPU start-up settings of tests/vllm).
Prints, per run: wall time of the whole command (imports, vLLM start-up, training, saving),
the training loop's own time (`seconds` of the last metrics row: from the end of setup to the
last step) and steps/s over it, and the ratio. Writes nothing but the two runs' directories
under a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VLLM_OPTIONS = {"gpu_memory_utilization": "0.2", "enforce_eager": "true"}


def arena(*args: str, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    code = "import sys; from arena.cli import _entry; sys.argv[0] = 'arena'; _entry()"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    return time.perf_counter() - t0, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--algorithm", default="online-dpo")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_vllm_train_"))
    world = a.world
    if world is None:
        from arena.worlds.lowrank import LowrankWorld, build_lowrank_world

        world = build_lowrank_world(tmp / "world", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))
    judge = (world / "judge.txt").read_text().strip()
    common = ["train", a.algorithm, "--policy", str(world / "ckpts" / "sft"), "--judge", judge,
              "--prompts", str(world / "prompts.jsonl"), "--steps", str(a.steps), "--batch-size", str(a.batch_size),
              "--max-new-tokens", str(a.max_new_tokens), "--eval-every", "0", "--save-every", "0", "--json"]
    vllm = ["--use-vllm", *[x for k, v in VLLM_OPTIONS.items() for x in ("--vllm-option", f"{k}={v}")]]
    rows = []
    for name, extra in (("hf", []), ("vllm", vllm)):
        out = tmp / name
        wall, proc = arena(*common, "--out", str(out), *extra, env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        last = json.loads(proc.stdout)["metrics"]
        rows.append((name, wall, last["seconds"], a.steps / last["seconds"]))
    print(f"{a.algorithm}, {a.steps} steps, batch {a.batch_size} prompts x 2 responses, <= {a.max_new_tokens} new tokens; "
          f"world {world}")
    print(f"{'sampler':8} {'wall s':>8} {'loop s':>8} {'steps/s':>8}")
    for name, wall, loop, sps in rows:
        print(f"{name:8} {wall:8.1f} {loop:8.1f} {sps:8.3f}")
    print(f"ratio vllm/hf steps/s (loop): {rows[1][3] / rows[0][3]:.2f}; wall: {rows[0][1] / rows[1][1]:.2f}")


if __name__ == "__main__":
    main()
