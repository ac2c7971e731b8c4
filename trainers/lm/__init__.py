"""Preference fine-tuning of Hugging Face causal LMs: Nash-MP, Nash-MD, MPO, EGPO and baselines.

`train(algorithm, config)` is the one public entry (the CLI and the demo call it). Each
algorithm is one module `trainers/lm/<algo>.py` that declares its NAME, HELP, its own
`Options` dataclass and `train` (one readable loop over the shared `trainers.lm.run.Run`);
`MODULES` lists them, and the CLI builds `arena train NAME` from these declarations. Importing
this package and the declarations does not import torch (`arena --help` stays fast).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

MODULES = ("nash_mp", "nash_md", "online_dpo", "online_ipo", "self_play", "rlhf", "mpo", "egpo")
"""The algorithm modules under trainers/lm/, in the order of `arena train --help`."""


def algorithm_modules() -> dict[str, ModuleType]:
    """NAME -> module of every algorithm in MODULES."""
    mods = [importlib.import_module(f"trainers.lm.{m}") for m in MODULES]
    return {m.NAME: m for m in mods}


ALGORITHMS = tuple(algorithm_modules())
"""Names of the algorithms (`arena train NAME`)."""

__all__ = ["ALGORITHMS", "MODULES", "Schedule", "TrainConfig", "algorithm_module", "algorithm_modules", "train",
           "with_options"]


def __getattr__(name: str):
    # TrainConfig lives with the torch code; imported on first use so that the declarations stay light
    if name == "TrainConfig":
        from trainers.lm.common import TrainConfig

        return TrainConfig
    if name == "Schedule":
        from trainers.lm.options import Schedule

        return Schedule
    raise AttributeError(f"module 'trainers.lm' has no attribute {name!r}")


def algorithm_module(algorithm: str) -> ModuleType:
    """The module of `algorithm`; ConfigError naming the choices for an unknown one."""
    from arena.errors import ConfigError

    mods = algorithm_modules()
    if algorithm not in mods:
        raise ConfigError(f"unknown algorithm {algorithm!r}; use one of {', '.join(mods)}")
    return mods[algorithm]


def with_options(algorithm: str, config):
    """`config` with `options` set to `algorithm`'s Options (its defaults when None); a
    ConfigError when the config carries another algorithm's options."""
    import dataclasses

    from arena.errors import ConfigError

    module = algorithm_module(algorithm)
    if config.options is None:
        return dataclasses.replace(config, options=module.Options())
    if not isinstance(config.options, module.Options):
        raise ConfigError(f"config.options are {type(config.options).__module__}.Options, not the options of "
                          f"{algorithm}; pass trainers.lm.{module.__name__.rsplit('.', 1)[1]}.Options(...) or none")
    return config


def train(algorithm: str, config, *, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    """Train `algorithm` (one of ALGORITHMS) with `config`; returns the output checkpoint directory.

    `config.options` are the algorithm's own options (`trainers.lm.<algo>.Options`; None:
    its defaults). `progress(step, metrics_row)` is called after every step. `resume`: continue
    the interrupted run of `config.out` from its last saved state (`checkpoint-N`), which needs
    the same config; `overwrite`: start over, replacing a finished or interrupted run. Without
    either, an existing output or interrupted run is refused (`common.prepare_out`).
    """
    config = with_options(algorithm, config)
    if accelerator is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # started by `accelerate launch` (or torchrun) with several processes: data parallel
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=config.device == "cpu")
    return algorithm_module(algorithm).train(config, overwrite=overwrite, resume=resume, progress=progress,
                                             accelerator=accelerator)
