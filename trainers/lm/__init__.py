"""Preference fine-tuning of Hugging Face causal LMs: Nash-MP, Nash-MD, MPO and baselines.

`train(algorithm, config)` is the one public entry (the CLI and the demo call it); each
algorithm is one readable loop in `trainers/lm/<algo>.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainers.lm.common import ALGORITHMS, Schedule, TrainConfig

__all__ = ["ALGORITHMS", "Schedule", "TrainConfig", "train"]


def train(algorithm: str, config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    """Train `algorithm` (one of ALGORITHMS) with `config`; returns the output checkpoint directory.

    `progress(step, metrics_row)` is called after every step. `resume`: continue the
    interrupted run of `config.out` from its last saved state (`checkpoint-N`), which needs the
    same config; `overwrite`: start over, replacing a finished or interrupted run. Without
    either, an existing output or interrupted run is refused (`common.prepare_out`).
    """
    from arena.errors import ConfigError

    if accelerator is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # started by `accelerate launch` (or torchrun) with several processes: data parallel
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=config.device == "cpu")
    kw = dict(overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    if algorithm == "nash-mp":
        from trainers.lm import nash_mp
        return nash_mp.train(config, **kw)
    if algorithm == "self-play":
        from trainers.lm import nash_mp
        return nash_mp.train(config, algorithm="self-play", **kw)
    if algorithm == "nash-md":
        from trainers.lm import nash_md
        return nash_md.train(config, **kw)
    if algorithm in ("online-dpo", "online-ipo"):
        from trainers.lm import online_dpo
        return online_dpo.train(config, algorithm=algorithm, **kw)
    if algorithm == "mpo":
        from trainers.lm import mpo
        return mpo.train(config, **kw)
    if algorithm == "rlhf":
        from trainers.lm import rlhf
        return rlhf.train(config, **kw)
    raise ConfigError(f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
