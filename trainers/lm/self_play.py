"""Regularised self-play: Nash-MP with κ = 1, the target is the current policy (so its KL
term has zero gradient, η plays no part, and the step is the symmetrised self-play gradient
with β KL(π_θ‖π_ref)). The loop is Nash-MP's (`trainers.lm.nash_mp.train`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.lm.nash_mp import SAMPLES_PER_PROMPT
from trainers.lm.options import check_at_least

if TYPE_CHECKING:
    from trainers.lm.common import TrainConfig

NAME = "self-play"
HELP = "Regularised self-play: Nash-MP with κ = 1 (the target is the current policy)."


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of regularised self-play (`arena train self-play`): Nash-MP's without κ and η
    (the target is the policy itself)."""

    samples_per_prompt: int = SAMPLES_PER_PROMPT

    def __post_init__(self) -> None:
        check_at_least(self, ("samples_per_prompt",), 2, " (a sample needs an opponent)")


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    from trainers.lm import nash_mp

    return nash_mp.train(config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator,
                         algorithm=NAME)
