"""`arena report RUN_DIR`: re-render a finished run from RUN_DIR/results.json."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from arena.cli._app import app, err, out


@app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="A directory written by `arena rate --out` or `arena tournament`."),
    json_out: bool = typer.Option(False, "--json", help="Print the stored result as one JSON object."),
    html: bool = typer.Option(False, "--html", help="Rewrite the plots and report.html in RUN_DIR from results.json."),
) -> None:
    """Show the ratings, preference matrix, cycles and Nash mixture of a finished run."""
    from arena.report import load_result, render_terminal, write_outputs

    result = load_result(run_dir)
    if html:
        write_outputs(result, run_dir)
    if json_out:
        print(json.dumps(result, allow_nan=False))
    else:
        render_terminal(result, out)
    if html:
        err.print(f"wrote {Path(run_dir) / 'report.html'}", markup=False, soft_wrap=True)
