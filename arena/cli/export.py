"""`arena export RUN_DIR`: write a run's battles (and generations) in the LMArena battle schema.

Parse, call `arena.export.export_battles` (which opens the run store read-only), print a line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import app, out


@app.command("export")
def export_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `arena tournament` (holds arena.sqlite)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Output .jsonl or .parquet (default RUN_DIR/battles.jsonl)."),
    soft: bool = typer.Option(False, "--soft", help="Write the judge's P(model_a preferred) as `score` instead of a hard `winner`."),
    generations: bool = typer.Option(True, "--generations/--no-generations",
                                      help="Include the conversations, LMArena's conv_metadata and style feature columns."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Export the run's judged battles so that LMArena tools (and `arena rate`) read them."""
    from arena.export import export_battles

    summary = export_battles(run_dir, out_file or run_dir / "battles.jsonl", soft=soft, generations=generations)
    info = {"path": str(summary.path), "battles": summary.battles, "failed": summary.failed,
            "missing_generations": summary.missing_generations}
    if json_out:
        print(json.dumps(info))
        return
    out.print(f"wrote {summary.battles} battles to {summary.path} ({summary.failed} failed judgments left out"
              + (f", {summary.missing_generations} without stored responses" if summary.missing_generations else "") + ")")
