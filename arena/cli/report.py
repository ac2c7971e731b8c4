"""`arena report RUN_DIR`: re-render a finished run from RUN_DIR/results.json."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from arena.cli._app import app, err, out
from arena.errors import InputError


@app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="A directory written by `arena rate --out` or `arena tournament`."),
    json_out: bool = typer.Option(False, "--json", help="Print the stored result as one JSON object."),
    html: bool = typer.Option(False, "--html", help="Rewrite the plots and report.html in RUN_DIR from results.json."),
) -> None:
    """Show the ratings, preference matrix, cycles and Nash mixture of a finished run."""
    from arena.report import load_result, plain_reading, render_terminal, write_outputs

    result = load_result(run_dir)
    result = replace(result, reading=plain_reading(result))  # from this version's rules, also for older files
    text = None
    if json_out:  # before --html writes anything: a hand-edited NaN cannot be printed as JSON
        try:
            text = json.dumps(result.to_json(), allow_nan=False)
        except ValueError:
            raise InputError(f"{Path(run_dir) / 'results.json'} holds NaN or infinite numbers; re-create it with "
                             "`arena rate FILE --out DIR` (or re-run the tournament)") from None
    if html:
        write_outputs(result, run_dir)
    if json_out:
        print(text)
    else:
        render_terminal(result, out)
    if html:
        err.print(f"wrote {Path(run_dir) / 'report.html'}", markup=False, soft_wrap=True)
