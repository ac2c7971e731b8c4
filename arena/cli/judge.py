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
from arena.errors import ConfigError

_CHUNK = 64  # comparisons per progress step


@app.command("judge")
def judge_command(
    pairs_file: Path = typer.Argument(..., help="CSV or JSONL with columns prompt, response_a, response_b."),
    judge: str = typer.Option(..., "--judge", "-j", help="Judge spec: hf:PATH, openai:URL#MODEL, reward:PATH, "
                              "pairmodel:PATH, vllm:PATH, python:module:function, panel:W1*SPEC1|W2*SPEC2; "
                              "options as SPEC?key=value&... (see docs/judges.md)."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Prompts per forward pass (hf, reward, pairmodel, vllm)."),
    retry_failures: bool = typer.Option(False, "--retry-failures", help="Judge the rows that failed once more "
                                        "(e.g. after a server hiccup) before reporting."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the judged rows as battles (.jsonl or .csv: "
                                            "model_a, model_b, prompt_id, score, p_ab, p_ba) that `arena rate` reads."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights dtype of hf, reward and pairmodel judges: auto, bf16, fp16, fp32."),
) -> None:
    """Judge every row in both orders; print P(a preferred) per row and a position-bias report."""
    from arena.cli._checks import at_least
    from judges import judge_both_orders, load_judge, position_report
    from judges.io import check_out_path, pair_keys, read_comparisons, write_judged_pairs

    if batch_size is not None:
        at_least("--batch-size", batch_size, 1, example=16)
    comparisons = read_comparisons(pairs_file)
    keys = None if out_file is None else (check_out_path(out_file), pair_keys(pairs_file))[1]
    options = {} if batch_size is None else {"batch_size": batch_size}
    if dtype is not None:
        options["dtype"] = dtype
    judge_obj = load_judge(judge, **options)
    from arena.progress import open_progress

    diagnostics: list[tuple[int, dict]] = []  # (label masses behind the mean, diagnostics) per call

    def judge_all(rows: list) -> list:
        out_rows = []
        with open_progress(err, transient=True, disable=len(rows) <= _CHUNK) as bar:
            task = bar.add_task("judging", total=len(rows))
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start:start + _CHUNK]
                out_rows.extend(judge_both_orders(judge_obj, chunk))
                if hasattr(judge_obj, "diagnostics"):
                    masses = sum(m is not None for m in getattr(judge_obj, "label_mass", []) or [])
                    diagnostics.append((masses, judge_obj.diagnostics()))
                bar.update(task, advance=len(chunk))
        return out_rows

    verdicts = judge_all(comparisons)
    retried = None
    if retry_failures:
        failed = [i for i, v in enumerate(verdicts) if not v.ok]
        diagnostics.clear()  # the counts describe the verdicts reported, i.e. the last try of each row
        again = judge_all([comparisons[i] for i in failed])
        for i, v in zip(failed, again):
            verdicts[i] = v
        retried = {"rows": len(failed), "recovered": sum(v.ok for v in again)}
    report = position_report(verdicts)
    info = {"spec": judge, "fingerprint": judge_obj.fingerprint, **_merge(diagnostics)}
    if retried is not None:
        info["retried"] = retried
    written = None if keys is None else write_judged_pairs(out_file, keys, verdicts)
    if written is not None:
        err.print(f"wrote {written} battles to {out_file} ({len(verdicts) - written} failed rows left out)")
    if json_out:
        print(json.dumps({
            "rows": [{"p": v.p, "p_ab": v.p_ab, "p_ba": v.p_ba, "error": v.error} for v in verdicts],
            "position": {"consistency": report["consistency"], "first_position_rate": report["first_position_rate"]},
            "failures": report["failures"],
            "judge": info,
        }))
    else:
        _render(verdicts, report, info)
    if verdicts and report["failures"] == len(verdicts):
        example = next(v.error for v in verdicts if v.error)
        raise ConfigError(f"no row could be judged (e.g. {example}); fix the judge or its server and rerun")


_COUNTS = ("from_logprobs", "from_text", "text_fallbacks", "failures")


def _merge(diagnostics: list[tuple[int, dict]]) -> dict:
    """Combine per-call diagnostics: counts summed (judge calls, both orders), label mass as a
    weighted mean and the overall min."""
    out = {}
    for key in _COUNTS:
        if any(key in d for _, d in diagnostics):
            out[key] = sum(d.get(key, 0) for _, d in diagnostics)
    means = [(n, d["label_mass_mean"]) for n, d in diagnostics if d.get("label_mass_mean") is not None]
    if means:
        total = sum(n for n, _ in means) or 1
        out["label_mass_mean"] = sum(n * m for n, m in means) / total
        out["label_mass_min"] = min(d["label_mass_min"] for _, d in diagnostics if d.get("label_mass_min") is not None)
    return out


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
    if "from_logprobs" in info:
        out.print(f"[bold]judge calls[/]          {info['from_logprobs']} from logprobs, {info['from_text']} text verdicts, "
                  f"{info['text_fallbacks']} text fallbacks, {info['failures']} failed")
    if "retried" in info:
        out.print(f"[bold]retried[/]              {info['retried']['rows']} failed rows, {info['retried']['recovered']} recovered")
    if "label_mass_mean" in info:
        out.print(f"[bold]label mass[/]           mean {_fmt(info['label_mass_mean'])}, min {_fmt(info['label_mass_min'])}"
                  "  (probability the judge puts on its two verdict labels; low = not answering the question)")
    out.print(f"[dim]fingerprint {info['fingerprint']}[/]")
