"""Render a multi-criteria result (`arena.criteria.analyze_criteria`) in the terminal and to --out.

Terminal: one table with each criterion's Nash mixture, the weighted and the robust mixture side
by side (a column each, and the robust mixture's interval), then every mixture's guarantee min_j P_c(mixture ≻ j) per criterion
(the Pareto picture), the Elo of each model per criterion, and the plain reading.
Files: results.json through the one atomic writer (`arena.outputs.atomic_output`).
"""

from __future__ import annotations

import json
from pathlib import Path

from arena.errors import InputError

__all__ = ["render_criteria_terminal", "write_criteria_outputs"]


def _cell(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def render_criteria_terminal(result: dict, console) -> None:
    """Print the side-by-side mixtures, the guarantees per criterion, Elo per criterion and the reading."""
    from rich.markup import escape
    from rich.table import Table

    names = result["settings"]["criteria"]
    models = result["models"]
    columns = {f"nash[{c}]": result["criteria"][c]["nash"]["weights"] for c in names}
    if result.get("weighted") is not None:
        columns["weighted"] = result["weighted"]["nash"]["weights"]
    columns["robust"] = result["robust"]["weights"]

    table = Table(title=f"Mixtures over {len(models)} models, {len(names)} criteria", title_justify="left",
                  caption="rows 'on c': the win rate the mixture guarantees on criterion c (min over models)",
                  caption_justify="left")
    table.add_column("model")
    for label in columns:
        table.add_column(escape(label), justify="right")  # "nash[c]" is not rich markup
    # interval columns: the weighted mixture's (when it has them), then the robust one's
    ci = {}
    weighted = result.get("weighted") or {}
    if weighted.get("weights_interval"):
        ci["weighted"] = (weighted["weights_interval"], weighted.get("criterion_values_interval") or {}, weighted["level"])
    if result["robust"].get("weights_interval"):
        ci["robust"] = (result["robust"]["weights_interval"], {}, result["robust"]["level"])
    for label, (_, _, level) in ci.items():
        table.add_column(escape(f"{label} {100 * level:.0f}% CI"), justify="right")
    span = lambda iv: f"[{iv[0]:.3f}, {iv[1]:.3f}]"  # noqa: E731
    for m in models:
        table.add_row(escape(m), *(_cell(w.get(m)) for w in columns.values()), *(span(iv[m]) for iv, _, _ in ci.values()))
    table.add_section()
    for c in names:
        table.add_row(escape(f"on {c}"), *(_cell(result["guarantees"][label][c]) for label in columns),
                      *(span(g[c]) if c in g else "" for _, g, _ in ci.values()), style="dim")
    console.print(table)

    elo = Table(title="Elo per criterion", title_justify="left")
    elo.add_column("model")
    for c in names:
        elo.add_column(escape(c), justify="right")
    for m in models:
        elo.add_row(escape(m), *(f"{result['criteria'][c]['ratings'][m]['elo']:.0f}" for c in names))
    console.print(elo)

    r = result["robust"]
    console.print(f"robust value {r['value']:.4f} (½ when the criteria agree), binding: {', '.join(r['binding'])}, "
                  f"certificate gap {r['gap']:.1e}", markup=False, soft_wrap=True)
    if r.get("value_interval"):
        lo, hi = r["value_interval"]
        console.print(f"robust value interval [{lo:.4f}, {hi:.4f}] ({r['rounds']} joint resamples); binding set the "
                      f"same in {100 * r['binding_stability']:.0f}% of them (" + ", ".join(
                          f"{c} binds in {100 * x:.0f}%" for c, x in r["binding_share"].items())
                      + f"); the reported mixture keeps >= {r['guarantee_lower']:.3f} on every criterion in "
                      f"{100 * r['level']:.0f}% of them", markup=False, soft_wrap=True)
    if result.get("weighted") is not None:
        w = result["weighted"]["weights"]
        console.print("weights: " + ", ".join(f"{c}={x:g}" for c, x in w.items()), markup=False)
    console.print(result["reading"], markup=False)


def write_criteria_outputs(result: dict, out_dir) -> Path:
    """Write results.json into out_dir (merge: other files there stay); nothing changes on error."""
    from arena.outputs import atomic_output
    from arena.redact import redact_obj

    try:
        text = json.dumps(redact_obj(result), indent=2, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"the result is not strict JSON ({error}): pass the dict from arena.criteria") from None
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file: give a directory path")
    with atomic_output(out_dir, mode="merge") as tmp:
        (tmp / "results.json").write_text(text + "\n", encoding="utf-8")
    return out_dir
