"""Run by torchrun (2 CPU processes) from test_accelerate.py: train from a JSON config (argv[1]) with `arena`'s entry."""

import json
import sys

from trainers.lm import TrainConfig, train

if __name__ == "__main__":
    import os
    from pathlib import Path

    out = Path(json.loads(sys.argv[1])["out"])
    out.parent.joinpath(f"world-{os.environ.get('RANK', '0')}.txt").write_text(os.environ.get("WORLD_SIZE", "1"))
    train(sys.argv[2], TrainConfig(**json.loads(sys.argv[1])))
