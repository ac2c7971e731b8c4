"""`arena report RUN_DIR`: re-render a finished run from RUN_DIR/results.json (scalar or multi-criteria)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from arena.cli._app import app, err, out
from arena.errors import InputError


def _json_text(data: dict, run_dir: Path) -> str:
    """One strict JSON line, checked before --html writes anything: a hand-edited NaN cannot be printed."""
    try:
        return json.dumps(data, allow_nan=False)
    except ValueError:
        raise InputError(f"{Path(run_dir) / 'results.json'} holds NaN or infinite numbers; re-create it with "
                         "`arena rate FILE --out DIR` (or re-run the tournament)") from None


@app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="A directory written by `arena rate --out` or `arena tournament`."),
    json_out: bool = typer.Option(False, "--json", help="Print the stored result as one JSON object."),
    html: bool = typer.Option(False, "--html", help="Rewrite the plots and report.html in RUN_DIR from results.json."),
) -> None:
    """Show the ratings, preference matrix, cycles and Nash mixture of a finished run (per criterion,
    weighted and robust for a multi-criteria run)."""
    from arena.report import load_result_json

    data = load_result_json(run_dir)
    if data.get("kind") == "criteria":  # arena.criteria: per criterion, weighted and robust side by side
        from arena.report_criteria import check_criteria_result, render_criteria_terminal, write_criteria_outputs

        from arena.criteria import criteria_reading

        result = check_criteria_result(data)
        result = {**result, "reading": criteria_reading(result)}  # this version's rules, also for older files
        as_json, write, render = result, write_criteria_outputs, render_criteria_terminal
    else:
        from arena.report import plain_reading, render_terminal, write_outputs
        from arena.result import Result

        result = Result.from_json(data)  # typed and upgraded: an older schema gets the new fields as null
        result = replace(result, reading=plain_reading(result))  # from this version's rules, also for older files
        as_json, write, render = result.to_json(), write_outputs, render_terminal
    text = _json_text(as_json, run_dir) if json_out else None  # before --html writes: NaN cannot be printed
    if html:
        write(result, run_dir)
    if json_out:
        print(text)
    else:
        render(result, out)
    if html:
        err.print(f"wrote {Path(run_dir) / 'report.html'}", markup=False, soft_wrap=True)
