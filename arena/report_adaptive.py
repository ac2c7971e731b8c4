"""The adaptive part of a tournament's report: judge calls spent per pair (a heatmap) and the
uncertainty trace over time, from results.json's `adaptive` block (`arena.adaptive.adaptive_summary`),
in the terminal and in report.html; and the adaptive lines of a dry run's plan.

Nothing here computes: it draws what the run stored. `arena.report` calls `render_adaptive` and
`adaptive_html`, which draw nothing for a result without the block (a round robin).
"""

from __future__ import annotations

import html

__all__ = ["adaptive_block", "render_adaptive", "adaptive_html", "render_adaptive_plan"]


def adaptive_block(result) -> dict | None:
    """results.json's `adaptive` block, or None (a round robin, or another tool's result)."""
    extra = getattr(result, "extra", None)
    block = extra.get("adaptive") if isinstance(extra, dict) else None
    return block if isinstance(block, dict) and "calls_per_pair" in block else None


def _headline(block: dict) -> str:
    calls, rr = block["calls"], block["round_robin_calls"]
    share = f" ({calls / rr:.0%} of the round robin's {rr})" if rr else ""
    gens = f"; generations {block['generations']} of {block['round_robin_generations']}"
    budget = "" if block.get("budget") is None else f", budget {block['budget']}"
    return (f"adaptive run, target {block['target']}{budget}: stopped ({block.get('stop') or 'not yet'}) after "
            f"{calls} judge calls{share}{gens}")


def _trace_points(block: dict) -> list[tuple[int, float]]:
    return [(e["calls"], e["nash_tv_upper"]) for e in block.get("trace", []) if e.get("nash_tv_upper") is not None]


def render_adaptive(result, console) -> None:
    """Terminal: the headline, the calls-per-pair heatmap and the U_nash trace (nothing for a round robin)."""
    block = adaptive_block(result)
    if block is None:
        return
    from rich.table import Table

    console.print()
    console.print(_headline(block), markup=False)
    models, calls = block["calls_per_pair"]["models"], block["calls_per_pair"]["calls"]
    top = max((c for row in calls for c in row), default=0) or 1
    table = Table(title="Judge calls per pair (adaptive)", title_justify="left")
    table.add_column("")
    for k in range(len(models)):
        table.add_column(str(k + 1), justify="right")
    for i, m in enumerate(models):
        cells = []
        for j in range(len(models)):
            if i == j:
                cells.append("·")
                continue
            shade = int(round(255 - 175 * calls[i][j] / top))
            cells.append(f"[on rgb({shade},{shade},255)]{calls[i][j]}[/]")
        table.add_row(f"{i + 1} {m}", *cells)
    console.print(table)
    points = _trace_points(block)
    if points:
        console.print("Nash uncertainty U_nash over judge calls (95% quantile of TV(resampled, reported mixture)):")
        bar = 40
        for calls_k, u in points[:: max(1, len(points) // 12)] + ([points[-1]] if len(points) > 12 else []):
            console.print(f"  {calls_k:>7}  {u:.3f}  " + "█" * int(round(bar * min(u, 1.0))), markup=False)


def adaptive_html(result) -> list[str]:
    """report.html: the headline, the calls-per-pair heatmap and an SVG of the U_nash trace."""
    block = adaptive_block(result)
    if block is None:
        return []
    esc = html.escape
    models, calls = block["calls_per_pair"]["models"], block["calls_per_pair"]["calls"]
    top = max((c for row in calls for c in row), default=0) or 1
    head = "".join(f"<th>{k + 1}</th>" for k in range(len(models)))
    rows = []
    for i, m in enumerate(models):
        cells = []
        for j in range(len(models)):
            if i == j:
                cells.append('<td class="dim">·</td>')
                continue
            shade = int(round(255 - 175 * calls[i][j] / top))
            cells.append(f'<td style="background:rgb({shade},{shade},255)">{calls[i][j]}</td>')
        rows.append(f'<tr><td class="name">{i + 1} {esc(m)}</td>{"".join(cells)}</tr>')
    parts = [f"<h2>Adaptive design</h2><p>{esc(_headline(block))}</p>",
             f'<h3>Judge calls per pair</h3><table class="matrix"><tr><th></th>{head}</tr>{"".join(rows)}</table>']
    points = _trace_points(block)
    if points:
        parts.append("<h3>Nash uncertainty over judge calls</h3>" + _trace_svg(points, block.get("target", ""))
                     + "<p class='dim'>U_nash: the 95% quantile over bootstrap resamples of the total-variation "
                       "distance between the resampled and the reported Nash mixture (docs/adaptive.md)</p>")
    return parts


def _trace_svg(points: list[tuple[int, float]], target: str, width: int = 480, height: int = 200) -> str:
    pad = 36
    xmax = max(c for c, _ in points) or 1
    ymax = max(1e-9, max(u for _, u in points))

    def xy(c, u):
        return pad + (width - 2 * pad) * c / xmax, height - pad - (height - 2 * pad) * u / ymax

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(c, u) for c, u in points))
    svg = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" role="img" '
           'aria-label="U_nash against judge calls">',
           f'<polyline fill="none" stroke="#2255aa" stroke-width="2" points="{line}"/>',
           f'<text x="{pad}" y="{height - 8}" font-size="11">0</text>',
           f'<text x="{width - pad}" y="{height - 8}" font-size="11" text-anchor="end">{xmax} calls</text>',
           f'<text x="4" y="{pad - 6}" font-size="11">{ymax:.2f}</text>']
    if target.startswith("nash:"):
        eps = float(target[5:])
        if eps <= ymax:
            _, y = xy(0, eps)
            svg.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#aa3322" '
                       f'stroke-dasharray="4 3"/><text x="{width - pad}" y="{y - 4:.1f}" font-size="11" '
                       f'text-anchor="end">target {eps:g}</text>')
    svg.append("</svg>")
    return "".join(svg)


def render_adaptive_plan(block: dict, console) -> None:
    """The dry run's adaptive lines: target, budget, the expected cost and how it is estimated."""
    rr = block["round_robin_calls"]
    budget = "none" if block.get("budget") is None else str(block["budget"])
    console.print(f"adaptive: target {block['target']}, budget {budget} judge calls, steps of {block['step']} "
                  f"comparisons; judge calls already stored {block['calls_done']}", markup=False)
    console.print(f"  expected: about {block['expected_calls']} judge calls of the round robin's {rr} "
                  f"(saving {block['expected_saving']:.0%}); at least {block['floor_calls']}, at most "
                  f"{block['ceiling_calls']}", markup=False)
    console.print(f"  how: {block['how']}", markup=False)
    if "generation" in block:
        console.print(f"  generation: {block['generation']}", markup=False)
