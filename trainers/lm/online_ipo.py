"""Online IPO (Azar et al. 2023, arXiv 2310.12036; online: Guo et al. 2024, arXiv 2402.04792):
Online DPO's loop (`trainers.lm.online_dpo`) with the IPO loss (h − (p − ½)/β)²."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainers.lm.common import TrainConfig

NAME = "online-ipo"
HELP = "Online IPO: two policy samples, judge label, IPO loss."


@dataclass(frozen=True, kw_only=True)
class Options:
    """Online IPO has no options of its own (β, --labels and the rest are shared)."""


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None,
          accelerator=None) -> Path:
    from trainers.lm import online_dpo

    return online_dpo.train(config, algorithm=NAME, overwrite=overwrite, resume=resume, progress=progress,
                            accelerator=accelerator)
