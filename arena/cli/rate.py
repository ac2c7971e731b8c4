"""`arena rate FILE`: analyse existing judgments (pairs) or a preference matrix.

Parse, read, call `arena.analysis`, render with `arena.report`. Bad input raises an
`arena.errors.InputError` (one line: cause and fix), which `arena.cli.main` turns into
exit code 2; nothing is written then.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import app, err, out
from arena.cli._checks import not_a_file
from arena.errors import InputError


class Format(str, Enum):
    pairs = "pairs"
    matrix = "matrix"


class CI(str, Enum):
    bootstrap = "bootstrap"
    analytic = "analytic"


# Below this much work (rounds × (models² + prompts)) the bootstrap takes well under a
# second and a progress bar would only flicker.
_PROGRESS_WORK = 2_000_000


def _read(file: Path, fmt: str | None):
    """Return ("pairs", Records), ("criteria", {criterion: Records}) or ("matrix", (models, P))."""
    from arena.io_pairs import detect_format, read_matrix, read_pairs_or_criteria

    if not file.exists():
        raise InputError(f"{file} not found: give the path of a pairs file (CSV/JSONL/Parquet) or a matrix CSV")
    if file.is_dir() and (file / "arena.sqlite").exists():
        raise InputError(f"{file} is a run directory: use `arena report {file}` (or `arena export {file}` for its battles)")
    if fmt == "matrix" and file.suffix.lower() in (".jsonl", ".ndjson", ".json", ".parquet", ".pq"):
        raise InputError(f"{file}: a preference matrix is a CSV file (model names as header and first column), "
                         f"not {file.suffix}; for a pairs file use --format pairs")
    kind = fmt or detect_format(file)
    if kind == "matrix":
        return "matrix", read_matrix(file)
    data = read_pairs_or_criteria(file)
    return ("criteria" if isinstance(data, dict) else "pairs"), data


def _input(file: Path | None, format: Format | None, *, example: bool, seed: int):
    """What `arena rate` analyses: the built-in cyclic example drawn with `seed` (as ("pairs",
    Records)) under --example, else FILE as `_read` returns it."""
    if not example:
        return _read(file, format.value if format else None)
    from arena.core.records import make_records
    from arena.examples import cyclic_example_pairs

    frame = cyclic_example_pairs(seed=seed)
    score = frame["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}).to_numpy()
    return "pairs", make_records(frame["model_a"], frame["model_b"], score, cluster=frame["prompt_id"])


def _suggest(file, format, *, example, k, target, rounds, seed, level, prior, json_out, out_dir) -> None:
    """`--suggest K`: the adaptive design's next K judgments on the records (arena.core.design)."""
    from arena.core.design import DESIGN_PRIOR, parse_target, suggest
    from arena.core.uncertainty import NASH_ROUNDS

    if k < 1:
        raise InputError(f"--suggest must be >= 1 judgments; got {k}: e.g. --suggest 100")
    if out_dir is not None:
        raise InputError("--suggest prints the next judgments only; drop --out (or run without --suggest)")
    goal = parse_target(target)
    if goal.kind == "budget":
        raise InputError("--target for --suggest is nash:EPS or top")
    kind, records = _input(file, format, example=example, seed=seed)
    if kind != "pairs":
        raise InputError(f"--suggest needs judgments (a pairs file), not a preference matrix: {file} has no counts")
    # Each resample is one equilibrium solve; the Nash intervals of `arena rate` use as many.
    res = suggest(records, k, target=goal, rounds=min(rounds, NASH_ROUNDS), seed=seed, level=level,
                  prior=prior if prior > 0 else DESIGN_PRIOR)
    st, models = res.state, records.models
    rows = [{"model_a": models[i], "model_b": models[j], "judgments": int(c), "games": int(st.N[i, j]),
             "p": float(st.P[i, j])} for (i, j), c in zip(res.pairs.tolist(), res.judgments)]
    spread = st.spread
    summary = {
        "k": int(k), "target": target, "met": res.reason, "calls": st.calls, "level": level,
        "nash_tv_upper": None if spread is None else spread.tv_upper,
        "top_set": None if spread is None else [models[i] for i in spread.top_set],
        "undecided_top_pairs": None if spread is None else spread.undecided_top,
        "rounds": 0 if spread is None else int(spread.weights.shape[0]), "seed": seed,
    }
    if json_out:
        print(json.dumps({"suggest": rows, **summary}, allow_nan=False))
        return
    from rich.table import Table

    table = Table(title=f"next {k} judgments for {target}")
    for col in ("model_a", "model_b", "judgments", "games so far", "P(a ≻ b)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model_a"], r["model_b"], str(r["judgments"]), str(r["games"]), f"{r['p']:.3f}")
    out.print(table)
    if spread is not None:
        out.print(f"Nash uncertainty U = {spread.tv_upper:.3f} (the {level:.0%} quantile of the TV distance between "
                  f"resampled and reported mixtures); top set: {', '.join(summary['top_set'])}; "
                  f"{spread.undecided_top} undecided pairs touch it", markup=False, soft_wrap=True)
    if res.reason:
        out.print(f"target {target} is already met on these data; the judgments above would tighten it further",
                  markup=False, soft_wrap=True)


def _analyze_pairs(records, *, rounds, seed, level, prior, ci, significant, quiet):
    from arena.analysis import analyze_records

    clusters = 0 if records.cluster is None else int(records.cluster.max()) + 1
    work = rounds * (records.n_models**2 + clusters)
    if ci != "bootstrap" or quiet or work < _PROGRESS_WORK:
        return analyze_records(records, rounds=rounds, seed=seed, level=level, prior=prior, ci=ci,
                               significant=significant)
    from arena.progress import open_progress

    with open_progress(err, transient=True) as bar:
        # Indeterminate (pulsing) until the core reports progress, if it does.
        task = bar.add_task(f"bootstrap ({rounds} rounds)", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return analyze_records(records, rounds=rounds, seed=seed, level=level, prior=prior, ci=ci,
                               significant=significant, progress=progress)


def _rate_criteria(data, *, file, weights, json_out, out_dir, **analyze_kwargs) -> None:
    """Analyse a multi-criteria file (`arena.criteria`), render it with `arena.report_criteria`."""
    from arena.cli.lab import _parse_weights
    from arena.criteria import analyze_criteria
    from arena.report import plain_reading
    from arena.report_criteria import render_criteria_terminal, write_criteria_outputs

    parsed = None if weights is None else _parse_weights(weights)
    result = analyze_criteria(data, weights=parsed, **analyze_kwargs)
    result["settings"]["file"] = str(file)
    for single in result["criteria"].values():  # each criterion keeps the single-criterion layout
        single["settings"]["file"] = str(file)
        single["reading"] = plain_reading(single)
    if out_dir is not None:
        write_criteria_outputs(result, out_dir)
    if json_out:
        print(json.dumps(result, allow_nan=False))
    else:
        render_criteria_terminal(result, out)
    if out_dir is not None:
        err.print(f"wrote {out_dir}/ (results.json, matrix_<criterion>.csv, mixtures.png, report.html)",
                  markup=False, soft_wrap=True)


def _rate_boards(file, format, *, example, by, anchored, style, json_out, out_dir, rounds, seed, level, prior, ci,
                 significant) -> None:
    """`--by COLUMN` and/or `--style-control` (arena.boards): pairs files only."""
    from arena.boards import analyze_by, anchor as anchor_result, style_control
    from arena.report import plain_reading

    flags = " and ".join(f for f, on in (("--by", by is not None), ("--style-control", style)) if on)
    if example:
        raise InputError(f"{flags} needs a pairs FILE (the built-in example has no category or style columns); "
                         "drop --example")
    if format is not None and format.value == "matrix":
        raise InputError(f"{flags} needs judgments (a pairs file), not a preference matrix")
    if by is not None:
        from arena.io_pairs import detect_format, read_pairs_by

        if not file.exists():
            raise InputError(f"{file} not found: give the path of a pairs file (CSV/JSONL/Parquet)")
        if file.is_file() and file.suffix.lower() in (".csv", ".tsv") and detect_format(file) == "matrix":
            raise InputError(f"{flags} needs judgments (a pairs file), not a preference matrix")
        records, groups = read_pairs_by(file, by)
    else:
        kind, records = _read(file, format.value if format else None)
        if kind != "pairs":
            what = "a preference matrix" if kind == "matrix" else "a multi-criteria file"
            raise InputError(f"{flags} needs a single-criterion pairs file, not {what}")
        groups = None

    def board(recs, *, quiet, own_anchor):
        res = _analyze_pairs(recs, rounds=rounds, seed=seed, level=level, prior=prior, ci=ci,
                             significant=significant, quiet=quiet)
        if style:
            res = style_control(res, recs, rounds=rounds, seed=seed, level=level)
        if anchored is not None and (own_anchor or anchored[0] in res.ratings):
            res = anchor_result(res, *anchored)
        res = replace(res, settings=replace(res.settings, extra={**res.settings.extra, "file": str(file),
                                                                   "style_control": bool(style)}))
        return replace(res, reading=plain_reading(res))

    result = board(records, quiet=False, own_anchor=True)
    if groups is not None:
        result = analyze_by(result, groups, by, lambda recs: board(recs, quiet=True, own_anchor=False))
        result = replace(result, reading=plain_reading(result))
    extra = [r for r, on in ((_render_style, style), (_render_by, groups is not None)) if on]
    _emit(result, out_dir=out_dir, json_out=json_out, extra_renderers=extra)


def _emit(result, *, out_dir, json_out: bool, extra_renderers=()) -> None:
    """Write the run directory (when --out), then print one JSON object or the terminal report."""
    if out_dir is not None:
        from arena.report import write_outputs

        write_outputs(result, out_dir)
    if json_out:
        print(json.dumps(result.to_json(), allow_nan=False))
    else:
        from arena.report import render_terminal

        render_terminal(result, out)
        for render in extra_renderers:
            render(result, out)
    if out_dir is not None:
        err.print(f"wrote {out_dir}/ (results.json, matrix.csv, heatmap.png, nash.png, ratings.png, report.html)",
                  markup=False, soft_wrap=True)


def _interval(values, fmt) -> str:
    return "" if not values or None in values else f"[{fmt(values[0])}, {fmt(values[1])}]"


def _render_style(result, console) -> None:
    from rich.table import Table

    sc = result.extra["style_control"]
    table = Table(title="style control: raw vs at equal style (ctl)")
    for col in ("model", "Elo", "interval", "Elo ctl", "interval", "Nash", "Nash ctl"):
        table.add_column(col, no_wrap=True)
    for m in sorted(result.models, key=lambda m: -sc["ratings"][m]["elo"]):
        r, c = result.ratings[m], sc["ratings"][m]
        table.add_row(m, "" if r.elo is None else f"{r.elo:.0f}", _interval(r.elo_ci, lambda x: f"{x:.0f}"),
                      f"{c['elo']:.0f}", _interval(c.get("elo_ci"), lambda x: f"{x:.0f}"),
                      f"{result.nash.weights[m] or 0.0:.2f}", f"{sc['nash']['weights'][m]:.2f}")
    console.print(table)
    coefs = ", ".join(f"{name} {c['ratings']:+.3f}" for name, c in sc["coefficients"].items())
    console.print(f"style coefficients (log-odds per standard deviation): {coefs}", markup=False, soft_wrap=True)
    if sc.get("orientations") == "both":
        console.print("sides not random (side a is mostly one model of each pair): each comparison fitted in both "
                      "orientations", markup=False, soft_wrap=True)


def _render_baseline(result, console) -> None:
    from rich.table import Table

    part = result.extra["baseline"]
    table = Table(title=f"win rate against {part['model']} (baseline at 50%)")
    for col in ("model", "score", f"{part['level']:.0%} interval"):
        table.add_column(col, no_wrap=True)
    for m, s in sorted(part["scores"].items(), key=lambda kv: -kv[1]["score"]):
        table.add_row(m, f"{100 * s['score']:.1f}%", _interval(s["ci"], lambda x: f"{100 * x:.1f}%"))
    console.print(table)


def _render_by(result, console) -> None:
    from rich.table import Table

    column = result.settings.extra.get("by")
    for value, board in result.extra["by"].items():
        ratings, nash = board["ratings"], board["nash"]
        intervals = nash.get("intervals") or {}
        table = Table(title=f"{column} = {value} ({board['settings'].get('records')} comparisons)")
        for col in ("model", "Elo", "interval", "Nash", "interval"):
            table.add_column(col)
        for m in sorted(board["models"], key=lambda m: -(ratings[m]["elo"] or -math.inf)):
            r = ratings[m]
            table.add_row(m, "" if r["elo"] is None else f"{r['elo']:.0f}", _interval(r.get("elo_ci"), lambda x: f"{x:.0f}"),
                          f"{nash['weights'][m] or 0.0:.2f}", _interval(intervals.get(m), lambda x: f"{x:.2f}"))
        console.print(table)
    for value, why in (result.settings.extra.get("by_skipped") or {}).items():
        console.print(f"{column} = {value}: no board ({why})", markup=False, soft_wrap=True)


@app.command("rate")
def rate(
    file: Optional[Path] = typer.Argument(None, help="Pairs (CSV/JSONL/Parquet: model_a, model_b, winner|score[, prompt_id]) or a matrix CSV."),
    format: Optional[Format] = typer.Option(None, "--format", help="Input kind; detected from the file when omitted."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout instead of tables."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write results.json, matrix.csv, PNG plots and report.html here."),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap rounds."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
    prior: float = typer.Option(0.0, "--prior", help="Bradley–Terry prior strength (needed when the comparison graph is not connected)."),
    ci: CI = typer.Option(CI.bootstrap, "--ci", help="Interval method for the ratings."),
    significant: bool = typer.Option(False, "--significant", help="Count only majority edges whose interval excludes ½ in the cycles."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Multi-criteria files: criterion weights NAME=W,... (sum 1) for the weighted Nash mixture."),
    example: bool = typer.Option(False, "--example", help="Analyse the built-in cyclic example (three rater types, a Condorcet cycle; drawn with --seed) instead of FILE."),
    suggest: Optional[int] = typer.Option(None, "--suggest", help="Print the K judgments to make next (pairs, with counts) instead of the analysis; see docs/adaptive.md."),
    target: str = typer.Option("nash:0.05", "--target", help="With --suggest: what the next judgments should settle: nash:EPS or top."),
    by: Optional[str] = typer.Option(None, "--by", help="One board per value of this column (e.g. category, language) beside the overall one."),
    anchor: Optional[str] = typer.Option(None, "--anchor", help="Shift the Elo scale so that MODEL has this Elo: MODEL=ELO, e.g. gpt-4-0314=1114; or MODEL=50%: also score every model by its win rate against MODEL (Arena-Hard's baseline at 50%)."),
    style_control: bool = typer.Option(False, "--style-control", help="Also fit style-controlled ratings, preference matrix and Nash from the feature_<name>_a/_b columns."),
) -> None:
    """Bradley–Terry/Elo with intervals, preference matrix, cycles and the Nash mixture of FILE.

    A multi-criteria FILE (a criterion column, or score_<c> columns) gets all of it per criterion, with the robust (max–min) mixture and, given --weights, the weighted one, side by side.
    """
    if example and file is not None:
        raise InputError("give either FILE or --example, not both")
    if not example and file is None:
        raise InputError("no input: give FILE (pairs or matrix) or --example for the built-in cyclic example")
    if rounds < 1:
        raise InputError(f"--rounds must be >= 1; got {rounds}")
    if not 0.0 < level < 1.0:
        raise InputError(f"--level must lie strictly between 0 and 1; got {level}: e.g. --level 0.95")
    if not prior >= 0.0:
        raise InputError(f"--prior must be >= 0; got {prior}: e.g. --prior 0.1")
    not_a_file("--out", out_dir)
    if suggest is not None:
        _suggest(file, format, example=example, k=suggest, target=target, rounds=rounds, seed=seed, level=level,
                 prior=prior, json_out=json_out, out_dir=out_dir)
        return

    from arena.analysis import analyze_matrix

    anchored = baseline = None
    if anchor is not None:
        from arena.baseline import parse_baseline
        from arena.boards import parse_anchor

        baseline = parse_baseline(anchor)
        anchored = parse_anchor(anchor) if baseline is None else None
    if baseline is not None and (by is not None or style_control):
        raise InputError(f"--anchor {anchor} (baseline at 50%) applies to one plain board: drop --by/--style-control, "
                         "or anchor the Elo scale instead (MODEL=ELO)")
    if by is not None or style_control:
        _rate_boards(file, format, example=example, by=by, anchored=anchored, style=style_control,
                     json_out=json_out, out_dir=out_dir, rounds=rounds, seed=seed, level=level, prior=prior,
                     ci=ci.value, significant=significant)
        return

    kind, data = _input(file, format, example=example, seed=seed)

    # --- several criteria (a `criterion` column or score_<c> columns): arena.criteria ---
    if weights is not None and kind != "criteria":
        raise InputError("--weights combines criteria: give a multi-criteria pairs file (a criterion column "
                         "or one score_<c> column per criterion), or drop --weights")
    if baseline is not None and kind != "pairs":
        raise InputError(f"--anchor {anchor} (baseline at 50%) needs a pairs file (its intervals resample the "
                         "comparisons); for a matrix or multi-criteria file use MODEL=ELO or drop --anchor")
    if kind == "criteria" and anchored is not None:
        raise InputError("--anchor applies to one board: drop it for a multi-criteria file")
    if kind == "criteria":
        _rate_criteria(data, file=file, weights=weights, json_out=json_out, out_dir=out_dir, rounds=rounds,
                       seed=seed, level=level, prior=prior, ci=ci.value, significant=significant)
        return

    if kind == "matrix":
        models, P = data
        result = analyze_matrix(models, P, prior=prior, significant=significant)
    else:
        result = _analyze_pairs(data, rounds=rounds, seed=seed, level=level, prior=prior, ci=ci.value,
                                significant=significant, quiet=False)
    if anchored is not None:
        from arena.boards import anchor as anchor_result

        result = anchor_result(result, *anchored)
    if baseline is not None:
        from arena.baseline import baseline_scores

        result = baseline_scores(result, data, baseline, rounds=rounds, seed=seed, level=level, prior=prior, ci=ci.value)
    added = {"file": str(file) if file is not None else None}
    if example:
        added["example"] = f"arena.examples.cyclic_example_pairs(seed={seed})"
    result = replace(result, settings=replace(result.settings, extra={**result.settings.extra, **added}))
    from arena.report import plain_reading

    result = replace(result, reading=plain_reading(result))  # the same text the terminal and report.html show

    _emit(result, out_dir=out_dir, json_out=json_out, extra_renderers=[_render_baseline] if baseline else ())
