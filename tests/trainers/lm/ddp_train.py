"""Run by `accelerate launch` or torchrun (2 CPU processes) from test_accelerate.py: train from a JSON config (argv[1]) with `arena`'s entry.

argv[2] is the algorithm; argv[3], if given, is `stop-at=N` (every process stops after step N,
as a crash would stop it) or `resume`."""

import json
import os
import sys

from trainers.lm import TrainConfig, algorithm_module, train


def rank1_fails(prompt: str, response_a: str, response_b: str) -> float | None:
    """The lowrank judge on rank 0; every judgment fails (None) on rank 1 (judge spec python:ddp_train:rank1_fails)."""
    from arena.worlds.lowrank import judge

    return None if os.environ.get("RANK") == "1" else judge(prompt, response_a, response_b)


def stop_at(at: int):
    """A progress callback that ends the process after step `at`, as a crash would."""
    def progress(step, row):
        if step == at:
            raise SystemExit(3)
    return progress


if __name__ == "__main__":
    from pathlib import Path

    out = Path(json.loads(sys.argv[1])["out"])
    out.parent.joinpath(f"world-{os.environ.get('RANK', '0')}.txt").write_text(os.environ.get("WORLD_SIZE", "1"))
    how = sys.argv[3] if len(sys.argv) > 3 else ""
    train(sys.argv[2], TrainConfig.from_json(json.loads(sys.argv[1]), algorithm_module(sys.argv[2]).Options),
          progress=stop_at(int(how.split("=")[1])) if how.startswith("stop-at=") else None, resume=how == "resume")
