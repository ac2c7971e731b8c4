"""`arena judge PAIRS_FILE --judge SPEC`: run a judge on pairs, both orders, with position-bias diagnostics.

Parse, read the comparisons (`judges.io`), build the judge (`judges.load_judge`, which
checks everything before any work), judge in chunks with a progress bar on stderr
(`judges.judge_both_orders`), render a table or one JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import app, err, out

_CHUNK = 64  # comparisons per progress step


@app.command("judge")
def judge_command(
    pairs_file: Path = typer.Argument(..., help="CSV or JSONL with columns prompt, response_a, response_b."),
    judge: str = typer.Option(..., "--judge", "-j", help="Judge spec: hf:PATH, openai:URL#MODEL, reward:PATH, "
                              "pairmodel:PATH, vllm:PATH, python:module:function, panel:W1*SPEC1|W2*SPEC2; "
                              "options as SPEC?key=value&... (see docs/judges.md)."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Prompts per forward pass (hf, reward, pairmodel, vllm)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights dtype of hf, reward and pairmodel judges: auto, bf16, fp16, fp32."),
) -> None:
    """Judge every row in both orders; print P(a preferred) per row and a position-bias report."""
    from arena.cli._checks import at_least
    from judges import judge_both_orders, load_judge, position_report
    from judges.io import read_comparisons

    if batch_size is not None:
        at_least("--batch-size", batch_size, 1, example=16)
    comparisons = read_comparisons(pairs_file)
    options = {} if batch_size is None else {"batch_size": batch_size}
    if dtype is not None:
        options["dtype"] = dtype
    judge_obj = load_judge(judge, **options)
    verdicts = []
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]judging[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=len(comparisons) <= _CHUNK) as bar:
        task = bar.add_task("judge", total=len(comparisons))
        diagnostics = []
        for start in range(0, len(comparisons), _CHUNK):
            chunk = comparisons[start:start + _CHUNK]
            verdicts.extend(judge_both_orders(judge_obj, chunk))
            if hasattr(judge_obj, "diagnostics"):
                diagnostics.append((len(chunk), judge_obj.diagnostics()))
            bar.update(task, advance=len(chunk))
    report = position_report(verdicts)
    info = {"spec": judge, "fingerprint": judge_obj.fingerprint, **_merge(diagnostics)}
    if json_out:
        print(json.dumps({
            "rows": [{"p": v.p, "p_ab": v.p_ab, "p_ba": v.p_ba, "error": v.error} for v in verdicts],
            "position": {"consistency": report["consistency"], "first_position_rate": report["first_position_rate"]},
            "failures": report["failures"],
            "judge": info,
        }))
        return
    _render(verdicts, report, info)


def _merge(diagnostics: list[tuple[int, dict]]) -> dict:
    """Combine per-chunk label-mass diagnostics (weighted mean, overall min)."""
    means = [(n, d.get("label_mass_mean")) for n, d in diagnostics if d.get("label_mass_mean") is not None]
    mins = [d.get("label_mass_min") for _, d in diagnostics if d.get("label_mass_min") is not None]
    if not means:
        return {}
    total = sum(n for n, _ in means)
    return {"label_mass_mean": sum(n * m for n, m in means) / total, "label_mass_min": min(mins)}


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _render(verdicts, report: dict, info: dict) -> None:
    from rich.table import Table

    table = Table(title=f"judge {info['spec']}", title_justify="left")
    table.add_column("row", justify="right")
    table.add_column("p (debiased)", justify="right")
    table.add_column("p_ab (a first)", justify="right")
    table.add_column("p_ba (b first)", justify="right")
    table.add_column("error", overflow="fold")
    for i, v in enumerate(verdicts, start=1):
        table.add_row(str(i), _fmt(v.p), _fmt(v.p_ab), _fmt(v.p_ba), v.error or "")
    out.print(table)
    out.print(f"[bold]position consistency[/] {_fmt(report['consistency'])}  (share of pairs with the same winner in both orders)")
    out.print(f"[bold]first-position rate[/]  {_fmt(report['first_position_rate'])}  (½ = no position bias; 1 = always the first)")
    out.print(f"[bold]failures[/]             {report['failures']} of {report['n']} pairs (never counted)")
    if "label_mass_mean" in info:
        out.print(f"[bold]label mass[/]           mean {_fmt(info['label_mass_mean'])}, min {_fmt(info['label_mass_min'])}"
                  "  (probability the judge puts on its two verdict labels; low = not answering the question)")
    out.print(f"[dim]fingerprint {info['fingerprint']}[/]")
