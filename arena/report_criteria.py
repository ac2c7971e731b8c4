"""Render a multi-criteria result (`arena.criteria.analyze_criteria`) in the terminal and to --out.

Terminal: one table with each criterion's Nash mixture, the weighted and the robust mixture side
by side (a column each, and the weighted and robust mixtures' intervals), then every mixture's
guarantee min_j P_c(mixture ≻ j) per criterion (the Pareto picture), the Elo of each model per
criterion, the robust value with its interval and binding stability, and the plain reading.

Files (`write_criteria_outputs`, through the one atomic writer `arena.outputs.atomic_output`):
results.json, matrix_<criterion>.csv per criterion (the layout of the scalar matrix.csv),
mixtures.png (the mixtures as grouped bars) and a self-contained report.html with the same
tables (built from the same rows as the terminal, so the numbers are the same) plus each
criterion's coloured preference matrix and Elo intervals, and, for a tournament whose run store
is in the directory, the battle browser (`arena.report_browser`: every criterion's verdict per
sample battle; the matrix cells link to it). The scalar report's helpers (`arena.report`) draw
the matrices, tables and images.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from arena.errors import InputError

__all__ = ["CRITERIA_FILES", "check_criteria_result", "matrix_file", "render_criteria_terminal",
           "render_criteria_html", "write_criteria_outputs"]

#: the files written for every multi-criteria result, besides one matrix_<criterion>.csv per criterion
CRITERIA_FILES = ("results.json", "mixtures.png", "report.html")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # as judges.base.CRITERION_NAME
_FIX = "re-create it with `arena rate FILE --out DIR` (or re-run the tournament)"


def _cell(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _span(iv) -> str:
    return f"[{iv[0]:.3f}, {iv[1]:.3f}]"


def matrix_file(criterion: str) -> str:
    """The file name of a criterion's matrix: matrix_<criterion>.csv for a plain name (letters,
    digits, _ and -); any other name gets a safe slug and a short hash of the name, so no two
    criteria share a file and no name leaves the output directory."""
    if _PLAIN_NAME.fullmatch(criterion):
        return f"matrix_{criterion}.csv"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", criterion).strip("_")[:40]
    digest = hashlib.sha256(criterion.encode("utf-8")).hexdigest()[:8]
    return f"matrix_{slug + '-' if slug else ''}{digest}.csv"


# --------------------------------------------------------------------------- checks


def check_criteria_result(result) -> dict:
    """The multi-criteria result dict, checked for what the renderers read (InputError naming the
    missing part and the fix). Fields added later (intervals of the robust and weighted mixtures)
    are optional: a results.json written before them still renders."""
    if not isinstance(result, dict) or result.get("kind") != "criteria":
        raise InputError(f"not a multi-criteria result (kind {result.get('kind') if isinstance(result, dict) else None!r}): "
                         "pass the dict from arena.criteria.analyze_criteria")
    for key, kind in (("models", list), ("criteria", dict), ("robust", dict), ("guarantees", dict),
                      ("settings", dict), ("reading", str)):
        if not isinstance(result.get(key), kind):
            raise InputError(f"the multi-criteria result has no '{key}' {kind.__name__}: {_FIX}")
    names = result["settings"].get("criteria")
    if not isinstance(names, list) or not names or set(names) != set(result["criteria"]):
        raise InputError(f"settings.criteria must list the criteria of 'criteria' ({list(result['criteria'])}): {_FIX}")
    for key in ("weights", "value", "binding", "gap"):
        if key not in result["robust"]:
            raise InputError(f"the multi-criteria result's 'robust' has no '{key}': {_FIX}")
    weighted = result.get("weighted")
    if weighted is not None and not (isinstance(weighted, dict) and isinstance(weighted.get("nash"), dict)
                                     and "weights" in weighted):
        raise InputError(f"the multi-criteria result's 'weighted' must be null or have 'weights' and 'nash': {_FIX}")
    files = [matrix_file(c) for c in names]
    if len(set(files)) != len(files):
        raise InputError(f"two criteria share a matrix file name ({files}): rename one of {names}")
    return result


def _single(result: dict, c: str):
    """Criterion c's result, typed as the scalar report's `Result` (checked by `Result.from_json`)."""
    from arena.result import Result

    try:
        return Result.from_json(result["criteria"][c])
    except InputError as error:
        raise InputError(f"criterion {c!r}: {error}") from None


# --------------------------------------------------------------------------- the rows (terminal and HTML)


@dataclass(frozen=True)
class _Table:
    """A table as strings: the one layout that both the terminal and the HTML render."""

    title: str
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    foot: tuple[tuple[str, ...], ...] = ()  # rows shown dimmed below a rule (the guarantees)


def _columns(result: dict) -> dict[str, dict]:
    """The mixtures side by side: label (nash[c], weighted, robust) -> model -> weight."""
    columns = {f"nash[{c}]": result["criteria"][c]["nash"]["weights"] for c in result["settings"]["criteria"]}
    if result.get("weighted") is not None:
        columns["weighted"] = result["weighted"]["nash"]["weights"]
    columns["robust"] = result["robust"]["weights"]
    return columns


def _mixtures(result: dict) -> _Table:
    """Each criterion's Nash, the weighted and the robust mixture; the weighted and robust intervals;
    the rows 'on c': what each mixture guarantees on criterion c (and its interval, when stored)."""
    names = result["settings"]["criteria"]
    models = result["models"]
    columns = _columns(result)
    # interval columns: the weighted mixture's (when it has them), then the robust one's
    ci = {}
    weighted = result.get("weighted") or {}
    if weighted.get("weights_interval"):
        ci["weighted"] = (weighted["weights_interval"], weighted.get("criterion_values_interval") or {}, weighted["level"])
    if result["robust"].get("weights_interval"):
        ci["robust"] = (result["robust"]["weights_interval"], {}, result["robust"]["level"])
    header = ("model", *columns, *(f"{label} {100 * level:.0f}% CI" for label, (_, _, level) in ci.items()))
    rows = tuple((m, *(_cell(w.get(m)) for w in columns.values()), *(_span(iv[m]) for iv, _, _ in ci.values()))
                 for m in models)
    foot = tuple((f"on {c}", *(_cell(result["guarantees"][label][c]) for label in columns),
                  *(_span(g[c]) if c in g else "" for _, g, _ in ci.values())) for c in names)
    return _Table(title=f"Mixtures over {len(models)} models, {len(names)} criteria",
                  caption="rows 'on c': the win rate the mixture guarantees on criterion c (min over models)",
                  header=header, rows=rows, foot=foot)


def _elo(result: dict, *, intervals: bool) -> _Table:
    """Elo of each model per criterion; with `intervals`, its stored interval beside it."""
    from arena.report import _fmt, _is_num

    names = result["settings"]["criteria"]
    level = result["settings"].get("level")

    def one(c, m):
        r = result["criteria"][c]["ratings"][m]
        text = _fmt(r.get("elo"), ".0f")
        ci = r.get("elo_ci")
        if intervals and isinstance(ci, list) and len(ci) == 2 and all(map(_is_num, ci)):
            text += f" [{ci[0]:.0f}, {ci[1]:.0f}]"
        return text

    title = "Elo per criterion"
    if intervals and _is_num(level):
        title += f" ({100 * level:.0f}% intervals)"
    return _Table(title=title, caption="", header=("model", *names),
                  rows=tuple((m, *(one(c, m) for c in names)) for m in result["models"]))


def _robust_lines(result: dict) -> list[str]:
    """The robust value, its interval and binding stability, and the criterion weights: plain text."""
    r = result["robust"]
    lines = [f"robust value {r['value']:.4f} (½ when the criteria agree), binding: {', '.join(r['binding'])}, "
             f"certificate gap {r['gap']:.1e}"]
    if r.get("value_interval"):
        lo, hi = r["value_interval"]
        lines.append(f"robust value interval [{lo:.4f}, {hi:.4f}] ({r['rounds']} joint resamples); binding set the "
                     f"same in {100 * r['binding_stability']:.0f}% of them (" + ", ".join(
                         f"{c} binds in {100 * x:.0f}%" for c, x in r["binding_share"].items())
                     + f"); the reported mixture keeps >= {r['guarantee_lower']:.3f} on every criterion in "
                     f"{100 * r['level']:.0f}% of them")
    if result.get("weighted") is not None:
        w = result["weighted"]["weights"]
        lines.append("weights: " + ", ".join(f"{c}={x:g}" for c, x in w.items()))
    return lines


# --------------------------------------------------------------------------- terminal


def _rich_table(t: _Table):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=t.title, title_justify="left", caption=t.caption or None, caption_justify="left")
    for k, label in enumerate(t.header):
        table.add_column(escape(label), justify="left" if k == 0 else "right")  # "nash[c]" is not rich markup
    for row in t.rows:
        table.add_row(*(escape(x) for x in row))
    if t.foot:
        table.add_section()
        for row in t.foot:
            table.add_row(*(escape(x) for x in row), style="dim")
    return table


def render_criteria_terminal(result: dict, console) -> None:
    """Print the side-by-side mixtures, the guarantees per criterion, Elo per criterion, the robust
    value and the reading."""
    result = check_criteria_result(result)
    console.print(_rich_table(_mixtures(result)))
    console.print(_rich_table(_elo(result, intervals=False)))
    for line in _robust_lines(result):
        console.print(line, markup=False, soft_wrap=True)
    console.print(result["reading"], markup=False)


# --------------------------------------------------------------------------- HTML


def _html_table(t: _Table) -> str:
    esc = html.escape
    head = f'<th class="name">{esc(t.header[0])}</th>' + "".join(f"<th>{esc(x)}</th>" for x in t.header[1:])

    def row(cells, cls=""):
        return (f"<tr{cls}>" + f'<td class="name">{esc(cells[0])}</td>'
                + "".join(f"<td>{esc(x)}</td>" for x in cells[1:]) + "</tr>")

    body = "".join(row(r) for r in t.rows) + "".join(row(r, ' class="dim"') for r in t.foot)
    caption = f"<p class='dim'>{esc(t.caption)}</p>" if t.caption else ""
    return f"<h2>{esc(t.title)}</h2><table><tr>{head}</tr>{body}</table>{caption}"


def render_criteria_html(result: dict, images: dict[str, bytes] | None = None, sections: Sequence[str] = ()) -> str:
    """A self-contained HTML page (inline CSS, images as base64 data URIs, no script): the reading,
    the mixtures side by side with their intervals and guarantees, the robust value, Elo per
    criterion with intervals, each criterion's preference matrix, run, judge and settings.
    `sections`: HTML fragments placed before the settings (the battle browser,
    `arena.report_browser.browser_html`); a matrix cell links to its pair's battles there."""
    from arena.report import _CSS, _img_tag, _info_html, _matrix_html, plain_reading

    result = check_criteria_result(result)
    esc = html.escape
    names = result["settings"]["criteria"]
    images = images or {}
    browsable = "".join(sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>arena report · criteria</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>arena report · {len(result['models'])} models, {len(names)} criteria</h1>",
        f'<p class="reading">{esc(result["reading"])}</p>',
    ]
    for key in ("run", "judge", "checkpoints"):
        if isinstance(result.get(key), dict) and result[key]:
            part = result[key]
            if key == "checkpoints":  # their generation settings have a table of their own (the browser's)
                part = {m: {k: v for k, v in card.items() if k != "generation_settings"} if isinstance(card, dict)
                        else card for m, card in part.items()}
            parts.append(_info_html(key.title(), part))
    parts.append(_html_table(_mixtures(result)))
    parts.append("".join(f"<p>{esc(line)}</p>" for line in _robust_lines(result)))
    methods = [x for x in (result["robust"].get("ci"), (result.get("weighted") or {}).get("ci")) if x]
    if methods:
        parts.append(f"<p class='dim'>intervals: {esc('; '.join(methods))}</p>")
    if "mixtures.png" in images:
        parts.append(_img_tag(images["mixtures.png"], "mixtures per criterion, weighted and robust"))
    parts.append(_html_table(_elo(result, intervals=True)))
    for c in names:
        single = _single(result, c)
        # the browser's anchors number the models of the result; a criterion lists them in the same order
        linked = browsable if list(single.models) == list(result["models"]) else ""
        parts.append(_matrix_html(single, browsable=linked, title=f"Preference matrix on {c}: P(row ≻ column)"))
        parts.append(f'<p class="dim">rows best first by Bradley–Terry on {esc(c)}; the numbers are in '
                     f"{esc(matrix_file(c))}</p>")
        parts.append(f'<p class="reading">{esc(plain_reading(single))}</p>')
    parts.extend(sections)
    parts.append(f"<h2>Settings</h2><pre>{esc(json.dumps(result['settings'], indent=2, ensure_ascii=False))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- files


def _mixtures_png(result: dict, path: Path) -> None:
    """One figure: the mixtures' weights as grouped horizontal bars, one group per model; the weighted
    and robust mixtures' intervals as error bars when stored."""
    from matplotlib.figure import Figure

    models = result["models"]
    columns = _columns(result)
    intervals = {"weighted": (result.get("weighted") or {}).get("weights_interval"),
                 "robust": result["robust"].get("weights_interval")}
    k = len(columns)
    height = 0.8 / k
    fig = Figure(figsize=(8.5, 1.2 + 0.3 * k * len(models)), dpi=100)
    ax = fig.subplots()
    for j, (label, weights) in enumerate(columns.items()):
        ys = [i + (j - (k - 1) / 2) * height for i in range(len(models))]
        xs = [weights[m] or 0.0 for m in models]
        iv = intervals.get(label)
        xerr = None if not iv else [[max(0.0, x - iv[m][0]) for x, m in zip(xs, models)],
                                    [max(0.0, iv[m][1] - x) for x, m in zip(xs, models)]]
        ax.barh(ys, xs, height=height, label=label, xerr=xerr, error_kw={"lw": 0.8, "capsize": 2})
    ax.set_yticks(range(len(models)), labels=models)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("weight" + (" (whiskers: the stored intervals)" if any(intervals.values()) else ""))
    ax.set_title("Mixtures: each criterion's Nash, weighted, robust")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, format="png")


def write_criteria_outputs(result: dict, out_dir) -> Path:
    """Write results.json, matrix_<criterion>.csv per criterion, mixtures.png and report.html into
    out_dir (merge: other files there stay), all or nothing: built in a temporary directory by
    `arena.outputs.atomic_output` and moved in only when complete. Strings pass `arena.redact`."""
    from arena.outputs import atomic_output
    from arena.redact import redact_obj
    from arena.report import _matrix_csv

    result = check_criteria_result(redact_obj(result))
    try:
        text = json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"the result is not strict JSON ({error}): pass the dict from arena.criteria") from None
    singles = {c: _single(result, c) for c in result["settings"]["criteria"]}
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file: give a directory path")
    with atomic_output(out_dir, mode="merge") as tmp:
        (tmp / "results.json").write_text(text + "\n", encoding="utf-8")
        for c, single in singles.items():
            (tmp / matrix_file(c)).write_text(_matrix_csv(single), encoding="utf-8")
        _mixtures_png(result, tmp / "mixtures.png")
        images = {"mixtures.png": (tmp / "mixtures.png").read_bytes()}
        from arena.report_browser import browser_html  # sample battles from the run store, when there is one

        sections = [browser_html(result, out_dir)]
        (tmp / "report.html").write_text(render_criteria_html(result, images, sections), encoding="utf-8")
    return out_dir
