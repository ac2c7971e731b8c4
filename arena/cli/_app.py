"""The Typer application objects shared by the command modules.

Each command lives in its own module (`arena/cli/<command>.py`) and registers itself on
these apps; `arena.cli` imports them all. Heavy imports (torch, transformers) happen inside
the command functions, so `arena --help` and `arena rate` stay fast.
"""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="arena",
    help="Evaluate and train language-model policies with game theory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
lab_app = typer.Typer(help="Exact tabular/contextual game dynamics (ground truth).", no_args_is_help=True)
world_app = typer.Typer(help="Materialise a synthetic world (prompts, SFT checkpoint, judge).", no_args_is_help=True)
train_app = typer.Typer(help="Fine-tune a policy against a judge; one command per algorithm (trainers/lm/<algo>.py).", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
app.add_typer(world_app, name="world")
app.add_typer(train_app, name="train")

# Tables and reports go to stdout; progress, notes and errors to stderr, so that
# `--json` output on stdout is always exactly one JSON object.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
