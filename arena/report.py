"""Render an analysis result (`arena.analysis`) for people: terminal, plots, HTML.

The typed result (`arena.result.Result`) is the single source: `arena rate`, `arena
tournament` and `arena report` all render it here, by attribute; each public renderer also
takes its JSON form (checked and typed by `Result.from_json`). `render_terminal` prints rich tables (Bradley–Terry/Elo with
intervals, the preference matrix coloured by preference, the cycles, the Nash mixture and
a plain-language reading); `write_outputs` writes a run directory (results.json,
matrix.csv, heatmap.png, nash.png, ratings.png, a self-contained report.html) atomically.

Why both a rating and a mixture: a scalar score forces transitivity; when the majority
preferences cycle, the maximum-entropy Nash mixture of the preference game is the summary
that stays well defined (Balduzzi et al. 2018, "Re-evaluating evaluation", arXiv 1806.02643).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from arena.errors import InputError
from arena.result import Result

__all__ = [
    "OUTPUT_FILES",
    "validate_result",
    "load_result",
    "plain_reading",
    "render_terminal",
    "render_html",
    "write_outputs",
]

OUTPUT_FILES = ("results.json", "matrix.csv", "heatmap.png", "nash.png", "ratings.png", "report.html")
MAX_MATRIX = 12  # models shown in the terminal matrix (the files hold all of them)
MAX_TRIANGLES = 10  # cyclic triangles listed in the terminal
ZERO_WEIGHT = 1e-6  # a Nash weight below this is shown as "no weight"
BAR_WIDTH = 32
MAX_NAME = 28  # model names longer than this are shortened in the matrix rows
LOOSE_NASH_WIDTH = 0.5  # a Nash weight interval wider than this: the data do not pin the mixture down
SUPPORT_MENTION = 0.25  # a model outside the support but in this share of resampled supports is named


# --------------------------------------------------------------------------- checks


def validate_result(result) -> Result:
    """The typed result: a `Result` as it is, or its JSON form checked and typed by
    `Result.from_json` (any schema it reads; InputError naming the problem otherwise)."""
    return result if isinstance(result, Result) else Result.from_json(result)


def load_result(run_dir) -> Result:
    """Read RUN_DIR/results.json as a `Result` (any schema `arena.result` reads; InputError
    with the fix when absent or malformed)."""
    # Typed and upgraded: an older schema gets the new fields as null (see arena.result).
    return Result.from_json(load_result_json(run_dir))


def load_result_json(run_dir) -> dict:
    """RUN_DIR/results.json as its JSON object, untyped (a multi-criteria result, `kind`
    "criteria", is read by `arena.report_criteria`); InputError with the fix when absent or
    not JSON."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory: give the run directory that holds results.json")
    path = run_dir / "results.json"
    if not path.is_file():
        raise InputError(
            f"{path} not found: give a directory written by `arena rate FILE --out DIR` or `arena tournament`"
        )
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON ({error}): re-create it with `arena rate FILE --out DIR`") from None
    if not isinstance(result, dict):
        raise InputError(f"{path} is not a JSON object: re-create it with `arena rate FILE --out DIR`")
    return result


# --------------------------------------------------------------------------- helpers


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _fmt(x, spec: str, missing: str = "—") -> str:
    return format(x, spec) if _is_num(x) else missing


def _order(result: Result) -> list[int]:
    """Model indices best first: by Bradley–Terry θ, then Nash weight, then name."""
    models = result.models
    ratings = result.ratings
    weights = result.nash.weights

    def key(i):
        bt = ratings[models[i]].bt
        w = weights.get(models[i])
        return (-(bt if _is_num(bt) else -math.inf), -(w if _is_num(w) else 0.0), models[i])

    return sorted(range(len(models)), key=key)


def _unplayed(result: Result, i: int, j: int) -> bool:
    """True when the counts say i and j never met (their P = ½ is a placeholder)."""
    n = result.preference.n
    return n is not None and _is_num(n[i][j]) and n[i][j] <= 0


def _significant(result: Result, i: int, j: int) -> int:
    """+1 if P[i, j] is significantly above ½, −1 if below, 0 otherwise (counts needed)."""
    pref = result.preference
    if pref.n is None or pref.lo is None or pref.hi is None:
        return 0
    lo, hi = pref.lo[i][j], pref.hi[i][j]
    if _is_num(lo) and lo > 0.5:
        return 1
    if _is_num(hi) and hi < 0.5:
        return -1
    return 0


def _level(result: Result) -> float | None:
    level = result.settings.level
    return level if _is_num(level) else None


def _rgb(p: float) -> tuple[int, int, int]:
    """Diverging colour: red below ½, near white at ½, green above (RdYlGn-like)."""
    red, mid, green = (215, 48, 39), (247, 247, 247), (26, 152, 80)
    t = max(-1.0, min(1.0, 2.0 * (p - 0.5)))
    end = green if t > 0 else red
    t = abs(t)
    return tuple(round(m + (e - m) * t) for m, e in zip(mid, end))


def _bar(weight: float, width: int = BAR_WIDTH) -> str:
    blocks = " ▏▎▍▌▋▊▉█"
    cells = max(0.0, min(1.0, weight)) * width
    full = int(cells)
    part = int(round((cells - full) * 8))
    if part == 8:
        full, part = full + 1, 0
    return "█" * full + (blocks[part] if part else "")


def _positive(weights: dict, models: list[str]) -> list[str]:
    on = [m for m in models if _is_num(weights.get(m)) and weights[m] > ZERO_WEIGHT]
    return sorted(on, key=lambda m: (-weights[m], m))


def _plain(value) -> str:
    """A short one-line rendering of a section value (numbers, strings, small dicts/lists)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value[:8]) + (f" (+{len(value) - 8} more)" if len(value) > 8 else "") or "none"
    if isinstance(value, float) and _is_num(value):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _names(names: list[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def _n_triangles(result: Result) -> int:
    """Total number of cyclic triangles (the stored list may be capped)."""
    listed = len(result.cycles.triangles or [])
    total = result.cycles.n_triangles
    return max(total, listed) if isinstance(total, int) else listed


def _unanimous_pairs(result: Result) -> int:
    """Compared pairs whose stored P is 0 or 1 to within LOG_ODDS_EPS (infinite log-odds)."""
    from arena.core.cycles import LOG_ODDS_EPS

    P = result.preference.P
    n = len(P)
    return sum(
        1
        for i in range(n)
        for j in range(i + 1, n)
        if _is_num(P[i][j]) and not _unplayed(result, i, j)
        and (P[i][j] <= LOG_ODDS_EPS or P[i][j] >= 1.0 - LOG_ODDS_EPS)
    )


def _share_caveat(result: Result) -> str:
    """How HodgeRank read the unanimous pairs, so a reader can weigh the cyclic share."""
    from arena.core.cycles import LOG_ODDS_EPS

    k = _unanimous_pairs(result)
    if k == 0:
        return ""
    y_max = math.log((1.0 - LOG_ODDS_EPS) / LOG_ODDS_EPS)
    return (
        f"{k} unanimous pair{'s' if k != 1 else ''} (P = 0 or 1) {'enter' if k != 1 else 'enters'} "
        f"as log-odds of at least {y_max:.1f}, so unanimity alone adds no cyclic share"
    )


def _ranked_triangles(result: Result) -> list:
    """Cyclic triangles, strongest first (by their weakest edge P), for display."""
    idx = {m: i for i, m in enumerate(result.models)}
    P = result.preference.P

    def weakest(tri):
        a, b, c = tri
        vals = [P[idx[x]][idx[y]] for x, y in ((a, b), (b, c), (c, a))]
        return min(v if _is_num(v) else 0.0 for v in vals)

    return sorted(result.cycles.triangles or [], key=lambda t: -weakest(t))


# --------------------------------------------------------------------------- the reading


def _interval(result: Result, i: int, j: int) -> tuple:
    """(lo, hi) of P[i, j] when the result has counts (so real intervals), else (None, None)."""
    pref = result.preference
    if pref.n is None or pref.lo is None or pref.hi is None:
        return None, None
    lo, hi = pref.lo[i][j], pref.hi[i][j]
    return (lo, hi) if _is_num(lo) and _is_num(hi) else (None, None)


def _at(result: Result) -> str:
    level = _level(result)
    return f" at the {level:.0%} level" if level is not None else ""


def _judge_sentence(result: Result) -> str:
    from arena.analysis import judge_warnings

    problems = judge_warnings(result.judge, comparisons=None if result.run is None else result.run.comparisons)
    if not problems:
        return ""
    return (f"Warning: the judge looks broken ({'; '.join(problems)}), so what follows describes the judge "
            f"as much as the models; do not read it as a finding.")


def _ratings_sentence(result: Result, order: list[int]) -> str:
    models = result.models
    top = models[order[0]]
    r = result.ratings[top]
    elo = r.elo
    text = f"Bradley–Terry ranks {top} top{f' (Elo {elo:.0f})' if _is_num(elo) else ''}"
    ri = r.rank_interval
    if not (isinstance(ri, list) and len(ri) == 2):
        return text + "."
    level = _level(result)
    also = [models[i] for i in order[1:] if (result.ratings[models[i]].rank_interval or [0])[0] == 1]
    if not also:
        return text + f"; its {level:.0%} rank interval is [1, {ri[1]}] (bootstrap rank quantiles), so the rating puts it first."
    return (text + f", but the top rank is not settled: the {level:.0%} rank intervals of "
            f"{_names(also)} also include 1 (bootstrap rank quantiles).")


def _separation_sentence(result: Result, a: int, b: int) -> str:
    """How many judgments of a vs b would roughly be needed for their interval to exclude ½."""
    from arena.core.uncertainty import judgments_to_separate

    models = result.models
    n = result.preference.n
    lo, hi = _interval(result, a, b)
    p = result.preference.P[a][b]
    if n is None or lo is None or not _is_num(n[a][b]):
        return ""
    games = n[a][b]
    need = judgments_to_separate(p, lo, hi, games)
    pair = f"{models[a]} vs {models[b]}"
    if need is None:
        return (f" {pair} split evenly (P = {p:.2f} over {games:g} judgments): more judgments are not "
                f"expected to separate them.")
    return (f" Separating {pair} (P = {p:.2f}, interval [{lo:.2f}, {hi:.2f}], {games:g} judgments) would take "
            f"roughly {_round_count(need)} judgments of that pair ({need / games:.1f}× as many), if the observed "
            f"preference held.")


def _round_count(x: float) -> str:
    if x < 100:
        return f"{x:.0f}"
    digits = max(0, len(str(int(x))) - 2)
    return f"{round(x, -digits):,.0f}"


def _head_to_head_sentences(result: Result, order: list[int]) -> list[str]:
    models = result.models
    idx = {m: i for i, m in enumerate(models)}
    P = result.preference.P
    cycles = result.cycles
    winner = cycles.condorcet_winner
    has_ci = result.preference.n is not None
    top = order[0]
    if cycles.top_set is None or not has_ci:
        # Matrix input (no counts) or a result written before significance was checked.
        why = ("a preference matrix carries no counts, so nothing here has an interval"
               if not has_ci else "this result was written by an older arena without significance checks")
        if winner is not None:
            return [f"On the point estimates ({why}), {winner} beats every other model head to head."]
        return [f"On the point estimates ({why}), no model beats every other head to head."]
    top_set = cycles.top_set or []
    matrix_ci = result.settings.matrix_ci
    method = f" (matrix intervals: {matrix_ci})" if matrix_ci else ""
    out = []
    if winner is not None:
        out.append(f"{winner} beats every other model head to head, each one significantly{_at(result)}{method}: "
                   f"a Condorcet winner.")
        return out
    majority = cycles.majority_winner
    if majority is not None:
        w = idx[majority]
        weak = [m for m in models if m != majority and _significant(result, w, idx[m]) != 1]
        out.append(f"{majority} beats every other model on the point estimates, but not significantly against "
                   f"{_names(weak)}{_at(result)}{method}, so no Condorcet winner is claimed.")
    if len(top_set) >= len(models):
        out.append(f"Head to head the models are not distinguishable{_at(result)}: no group of them "
                   f"significantly beats all the others.")
    elif len(top_set) > 1:
        out.append(f"The top set (the smallest group whose members each significantly beat every model outside it) "
                   f"is {_names(top_set)}: {len(top_set)} of {len(models)} models.")
    # the closest call at the top: the BT leader against the model that does best against it
    rivals = [j for j in range(len(models)) if j != top and _significant(result, top, j) == 0
              and not _unplayed(result, top, j)]
    if rivals:
        j = max(rivals, key=lambda k: (P[k][top] if _is_num(P[k][top]) else 0.0, -k))
        out[-1] += _separation_sentence(result, top, j)
    return out


def _cycle_sentences(result: Result, order: list[int]) -> list[str]:
    models = result.models
    idx = {m: i for i, m in enumerate(models)}
    P = result.preference.P
    triangles = _ranked_triangles(result)
    n_tri = _n_triangles(result)
    top = models[order[0]]
    out = []
    if triangles:
        a, b, c = triangles[0]
        text = (f"The majority preferences cycle: {a} beats {b}, {b} beats {c}, and {c} beats {a}"
                f"{'' if n_tri == 1 else f' ({n_tri} cyclic triangles in all)'}")
        survival = _survival(result, triangles[0])
        if survival is not None:
            text += f"; this cycle keeps all three edges in {survival:.0%} of the bootstrap resamples"
        out.append(text + ".")
    else:
        out.append("The majority preferences are transitive: no cyclic triangle.")
    beaters = sorted(
        (m for m in models if m != top and _is_num(P[idx[m]][idx[top]]) and P[idx[m]][idx[top]] > 0.5),
        key=lambda m: -P[idx[m]][idx[top]],
    )
    if beaters:
        b0 = beaters[0]
        p = P[idx[b0]][idx[top]]
        text = f"Yet {b0} beats {top} head to head (P = {p:.2f})"
        lo, hi = _interval(result, idx[b0], idx[top])
        if lo is not None and not lo > 0.5:
            out.append(text + f", though not significantly ({_level(result) or 0:.0%} interval [{lo:.2f}, {hi:.2f}]): "
                       f"the data cannot tell which of the two is preferred head to head.")
        else:
            sig = f", significantly{_at(result)}" if lo is not None else ""
            out.append(text + f"{sig}; which model looks best depends on who it is compared against.")
    return out


def _survival(result: Result, triangle) -> float | None:
    cycles = result.cycles
    survival = cycles.triangle_survival
    listed = cycles.triangles or []
    if not isinstance(survival, list) or list(triangle) not in listed:
        return None
    k = listed.index(list(triangle))
    return survival[k] if k < len(survival) and _is_num(survival[k]) else None


def _nash_sentences(result: Result) -> list[str]:
    models = result.models
    nash = result.nash
    weights = nash.weights
    support = _positive(weights, models)
    zero = [m for m in models if m not in support]
    intervals = nash.intervals
    prob = nash.support_probability or {}
    if not isinstance(intervals, dict):
        if len(support) == 1:
            return [f"The Nash mixture puts all its weight on {support[0]}: no other model beats it on average "
                    f"over the field (point estimate; no interval for the mixture)."]
        return [f"The Nash mixture, which no model beats on average, spreads its weight over "
                f"{_names([f'{m} ({weights[m]:.0%})' for m in support])}"
                + (f" and gives none to {_names(zero)}, which the mixture beats." if zero else ".")]
    level = _level(result) or 0.95

    def one(m):
        lo, hi = intervals[m]
        sp = prob.get(m)
        return (f"{m} ({weights[m]:.0%}; {level:.0%} interval [{lo:.0%}, {hi:.0%}]"
                + (f", in support {sp:.0%})" if _is_num(sp) else ")"))

    loose = max((intervals[m][1] - intervals[m][0] for m in models), default=0.0) > LOOSE_NASH_WIDTH
    head = "The maximum-entropy Nash mixture of the point-estimate matrix"
    if len(support) == 1:
        text = f"{head} puts all its weight on {one(support[0])}"
    else:
        text = f"{head} spreads its weight over {_names([one(m) for m in support], 4)}"
    if prob:
        text += " ('in support': the share of the resampled mixtures that give the model weight)"
    maybe = [m for m in zero if _is_num(prob.get(m)) and prob[m] >= SUPPORT_MENTION]
    if maybe:
        text += f"; {_names(maybe)} {'is' if len(maybe) == 1 else 'are'} in the support of at least " \
                f"{SUPPORT_MENTION:.0%} of the resampled mixtures though not of this one"
    text += "."
    if loose:
        text += (" The resampled mixtures differ widely, so these data do not pin the mixture down: "
                 "read its weights as one plausible equilibrium, not as a finding.")
    ex = nash.resampled_exploitability
    if isinstance(ex, dict) and _is_num(ex.get("median")) and _is_num(ex.get("upper")):
        text += (f" In the resampled games some model beats the reported mixture by a median {ex['median']:.3f} "
                 f"(up to {ex['upper']:.3f} at the {ex.get('quantile', level):.0%} quantile; P − ½ units).")
    return [text]


def plain_reading(result: Result) -> str:
    """One paragraph that claims only what the intervals support, naming the method behind each.

    Order: a judge-health warning (when the judge looks broken), the rating and its rank
    interval, the head-to-head claims (a Condorcet winner only when significant, else the
    top set or "not distinguishable", with roughly how many more judgments would separate
    the closest call), the cycles with their survival under resampling, the Nash mixture
    with its intervals. A result without counts or written before these checks gets point
    statements that say so. `result`: a `Result` or its JSON form.
    """
    result = validate_result(result)
    order = _order(result)
    share = result.cycles.cyclic_share
    caveat = _share_caveat(result)
    share_txt = (
        f"{share:.0%} of the log-odds flow between models is cyclic (HodgeRank"
        + (f"; {caveat})." if caveat else ").")
        if _is_num(share) else ""
    )
    parts = [_judge_sentence(result), _ratings_sentence(result, order)]
    parts += _head_to_head_sentences(result, order)
    parts += _cycle_sentences(result, order)
    parts += _nash_sentences(result)
    parts.append(share_txt)
    text = " ".join(p.strip() for p in parts if p)
    text += _noise_note(result, _ranked_triangles(result))
    # `arena rate --style-control` (arena.boards.style_control): the sentence when the raw and
    # the style-controlled Nash supports differ.
    style = result.extra.get("style_control")
    if isinstance(style, dict) and isinstance(style.get("reading"), str):
        text += " " + style["reading"]
    return text


def _noise_note(result: Result, triangles: list) -> str:
    """Say how many listed cycles are significant, when intervals exist to tell."""
    if not triangles or result.preference.n is None:
        return ""
    if result.settings.significant:
        return ""  # only significant edges were used
    idx = {m: i for i, m in enumerate(result.models)}
    sig = sum(
        all(_significant(result, idx[x], idx[y]) == 1 for x, y in ((a, b), (b, c), (c, a)))
        for a, b, c in triangles
    )
    level = _level(result)
    at = f" at the {level:.0%} level" if level is not None else ""
    if sig == 0:
        return (
            f" None of the cycles is significant{at} (each has an edge whose interval contains ½), "
            f"so they may be sampling noise; `--significant` keeps only significant edges."
        )
    if sig < len(triangles):
        return f" {sig} of the {len(triangles)} cyclic triangles are significant{at} on all three edges."
    return f" {'The cycle is' if sig == 1 else f'All {sig} cycles are'} significant{at} on every edge."


# --------------------------------------------------------------------------- terminal


def _render_run(result: Result, console) -> None:
    from rich.table import Table
    from rich.text import Text as T  # plain text: names and specs may contain [markup] or :emoji:

    run = None if result.run is None else result.run.to_json()
    if run:
        table = Table(title="Run", title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        for key in ("generations", "judgments", "reused", "failures"):
            if key in run:
                table.add_row(T(key), T(_plain(run[key])))
        for key, value in run.items():
            if key not in ("generations", "judgments", "reused", "failures"):
                table.add_row(T(key.replace("_", " ")), T(_plain(value)))
        console.print(table)
        console.print()
    judge = None if result.judge is None else result.judge.to_json()
    if judge:
        table = Table(title="Judge", title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        labels = {
            "spec": "spec",
            "fingerprint": "fingerprint",
            "position_consistency": "position consistency",
            "first_position_rate": "first-position rate",
            "failures": "failures",
        }
        for key, label in labels.items():
            if key in judge:
                value = judge[key]
                text = f"{value:.1%}" if key.endswith(("consistency", "rate")) and _is_num(value) else _plain(value)
                table.add_row(T(label), T(text))
        for key, value in judge.items():
            if key not in labels:
                table.add_row(T(key.replace("_", " ")), T(_plain(value)))
        console.print(table)
        console.print()
    ckpts = result.checkpoints
    if isinstance(ckpts, dict) and ckpts:
        keys = []
        for card in ckpts.values():
            if isinstance(card, dict):
                for k, v in card.items():
                    if k not in keys and not isinstance(v, (dict, list)):
                        keys.append(k)
        table = Table(title="Checkpoints", title_justify="left")
        table.add_column("checkpoint", style="bold")
        for k in keys:
            table.add_column(T(k))
        for name, card in ckpts.items():
            card = card if isinstance(card, dict) else {}
            table.add_row(T(name), *[T("" if card.get(k) is None else str(card.get(k))) for k in keys])
        console.print(table)
        console.print()


def _ratings_table(result: Result):
    from rich.table import Table
    from rich.text import Text

    models = result.models
    ratings = result.ratings
    weights = result.nash.weights
    level = _level(result)
    ci_label = f"{level:.0%} interval" if level is not None else "interval"
    method = result.settings.ci
    table = Table(
        title="Bradley–Terry / Elo",
        title_justify="left",
        caption=Text(f"intervals: {method}" + ("; rank: bootstrap rank interval" if any(
            isinstance(ratings[m].rank_interval, list) for m in models) else "")) if method else None,
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("model", style="bold")
    table.add_column("Elo", justify="right")
    table.add_column(f"{ci_label} (Elo)", justify="center")
    table.add_column("BT θ", justify="right")
    ranks = any(isinstance(ratings[m].rank_interval, list) for m in models)
    if ranks:
        table.add_column("rank", justify="center")
    table.add_column("win rate", justify="right")
    table.add_column("Nash", justify="right")
    for rank, i in enumerate(_order(result), start=1):
        m = models[i]
        r = ratings[m]
        ci = r.elo_ci
        ci_txt = f"[{ci[0]:.0f}, {ci[1]:.0f}]" if ci and all(_is_num(x) for x in ci) else "—"
        w = weights.get(m)
        w_txt = _fmt(w, ".3f") if not (_is_num(w) and w <= ZERO_WEIGHT) else "0"
        extra = [_rank_txt(r.rank_interval)] if ranks else []
        table.add_row(
            str(rank), Text(m), _fmt(r.elo, ".0f"), ci_txt, _fmt(r.bt, "+.3f"), *extra,
            _fmt(r.win_rate, ".1%"), w_txt,
        )
    return table


def _rank_txt(ri) -> str:
    if not (isinstance(ri, list) and len(ri) == 2):
        return "—"
    return f"{ri[0]}" if ri[0] == ri[1] else f"{ri[0]}–{ri[1]}"


def _short(name: str, width: int = MAX_NAME) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _cell(p: float) -> str:
    """Two decimals without the leading zero (".62"), so a column is 4 characters wide."""
    return f"{p:.2f}"[1:] if p < 0.995 else "1.0"


def _matrix_table(result: Result, width: int = 120):
    """The preference matrix, best model first, as many columns as fit in `width`."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    models = result.models
    P = result.preference.P
    order = _order(result)
    label_w = max(len(_short(models[i])) for i in order[:MAX_MATRIX]) + len(str(min(len(order), MAX_MATRIX))) + 1
    fit = max(2, (width - label_w - 3) // 7)  # each column: 4 characters, a mark, 2 of padding
    shown = order[: min(MAX_MATRIX, fit)]
    marks = result.preference.n is not None
    matrix_ci = result.settings.matrix_ci
    caption = "P(row ≻ column); " + (
        "* = interval excludes ½" + (f" (intervals: {matrix_ci})" if matrix_ci else "")
        if marks else "no counts, so no intervals")
    if any(_unplayed(result, i, j) for i in shown for j in shown if i != j):
        caption += "; – = never compared"
    if len(order) > len(shown):
        caption += f"; top {len(shown)} of {len(order)} by Bradley–Terry (all in matrix.csv / --json)"
    table = Table(title="Preference matrix", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    for k in range(len(shown)):
        table.add_column(str(k + 1), justify="center", no_wrap=True, min_width=4)
    for k, i in enumerate(shown):
        cells = []
        for j in shown:
            if i == j:
                cells.append(Text("  · ", style="dim"))
                continue
            p = P[i][j]
            if not _is_num(p) or _unplayed(result, i, j):
                cells.append(Text("  – ", style="dim"))
                continue
            mark = "*" if _significant(result, i, j) else " "
            r, g, b = _rgb(p)
            cells.append(Text(f"{_cell(p)}{mark}", style=f"black on rgb({r},{g},{b})"))
        table.add_row(Text(f"{k + 1} {_short(models[i])}"), *cells)
    return table, Text(caption, style="dim")  # the caption is printed below, at full width


def _cycles_text(result: Result):
    from rich.text import Text

    models = result.models
    idx = {m: i for i, m in enumerate(models)}
    P = result.preference.P
    cycles = result.cycles
    triangles = _ranked_triangles(result)
    out = Text()
    out.append("Cycles\n", style="bold")
    winner = cycles.condorcet_winner
    significance = cycles.top_set is not None and result.preference.n is not None
    if winner is not None:
        out.append("  Condorcet winner: ")
        out.append(f"{winner}", style="bold green")
        out.append(f" (every head-to-head significant{_at(result)})\n" if significance else " (point estimates)\n")
    else:
        comps = cycles.components or []
        top = comps[0] if comps else []
        out.append("  Condorcet winner: ")
        out.append("none", style="bold red")
        majority = cycles.majority_winner
        if significance and majority is not None:
            out.append(f": {majority} beats every other model on the point estimates, not significantly\n")
        else:
            out.append(f": the top component has {len(top)} models ({_names(list(top), 8)})\n")
    top_set = cycles.top_set
    if significance and isinstance(top_set, list) and winner is None:
        if len(top_set) >= len(models):
            out.append(f"  top set: all {len(models)} models: not distinguishable{_at(result)}\n")
        else:
            out.append(f"  top set (each member significantly beats every model outside): {_names(top_set, 8)}\n")
    share = cycles.cyclic_share
    if _is_num(share):
        out.append(f"  cyclic share of the log-odds flow (HodgeRank): {share:.1%}\n")
        caveat = _share_caveat(result)
        if caveat:
            out.append(f"    {caveat}\n", style="dim")
    if not triangles:
        out.append("  no cyclic triangles: the majority preferences are transitive\n")
        return out
    label = "significant cyclic triangle" if result.settings.significant else "cyclic triangle"
    strongest = ", strongest first" if len(triangles) > 1 else ""
    total = _n_triangles(result)
    out.append(f"  {total} {label}{'s' if total != 1 else ''}{strongest}:\n")
    for a, b, c in triangles[:MAX_TRIANGLES]:
        probs = [P[idx[x]][idx[y]] for x, y in ((a, b), (b, c), (c, a))]
        out.append(f"    {a} ≻ {b} ≻ {c} ≻ {a}", style="yellow")
        if all(_is_num(p) for p in probs):
            out.append(f"   (P = {probs[0]:.2f}, {probs[1]:.2f}, {probs[2]:.2f})", style="dim")
        survival = _survival(result, (a, b, c))
        if survival is not None:
            out.append(f"   survives {survival:.0%} of resamples", style="dim")
        out.append("\n")
    if total > MAX_TRIANGLES:
        more = "see --json" if len(triangles) >= total else f"--json lists {len(triangles)}"
        out.append(f"    … and {total - MAX_TRIANGLES} more ({more})\n", style="dim")
    return out


def _nash_text(result: Result):
    from rich.text import Text

    models = result.models
    nash = result.nash
    weights = nash.weights
    support = _positive(weights, models)
    width = max((len(m) for m in support), default=0)
    out = Text()
    out.append("Nash mixture (maximum entropy, of the point-estimate matrix)\n", style="bold")
    intervals = nash.intervals if isinstance(nash.intervals, dict) else None
    prob = nash.support_probability or {}
    level = _level(result) or 0.95
    for m in support:
        out.append(f"  {m:<{width}}  {weights[m]:6.1%}  ")
        out.append(_bar(weights[m]), style="cyan")
        if intervals is not None and m in intervals:
            lo, hi = intervals[m]
            sp = prob.get(m)
            out.append(f"  {level:.0%} interval [{lo:.1%}, {hi:.1%}]" + (f", in support {sp:.0%}" if _is_num(sp) else ""),
                       style="dim")
        out.append("\n")
    zero = [m for m in models if m not in support]
    if zero:
        out.append(f"  no weight: {_names(zero, 10)}\n", style="dim")
    expl = nash.exploitability
    if _is_num(expl):
        out.append(f"  certificate: exploitability max_i (A p)_i = {expl:.1e}\n", style="dim")
    ex = nash.resampled_exploitability
    if isinstance(ex, dict) and _is_num(ex.get("median")) and _is_num(ex.get("upper")):
        out.append(f"  against the resampled games: exploitability median {ex['median']:.3f}, "
                   f"{ex.get('quantile', level):.0%} quantile {ex['upper']:.3f} ({nash.method or 'bootstrap'})\n",
                   style="dim")
    elif intervals is None:
        out.append("  no interval for the mixture (no bootstrap resamples)\n", style="dim")
    return out


def render_terminal(result: Result, console) -> None:
    """Print the result with rich: run/judge/checkpoint sections when present, ratings,
    preference matrix, cycles, Nash mixture and a plain-language reading."""
    from rich.padding import Padding
    from rich.rule import Rule

    result = validate_result(result)
    settings = result.settings
    title = f"{len(result.models)} models"
    if _is_num(settings.records):
        title += f", {settings.records} comparisons"
    if settings.input == "matrix":
        title += " (preference matrix input)"
    console.print(Rule(f"[bold]arena[/] · {title}"))
    _render_run(result, console)
    console.print(_ratings_table(result))
    console.print()
    matrix, caption = _matrix_table(result, console.width)
    console.print(matrix)
    console.print(caption)
    console.print()
    console.print(_cycles_text(result))
    console.print(_nash_text(result))
    console.print(Padding(plain_reading(result), (0, 2)), style="italic")
    from arena.report_adaptive import render_adaptive  # draws nothing for a round robin

    render_adaptive(result, console)


# --------------------------------------------------------------------------- plots


def _ordered(result: Result):
    order = _order(result)
    models = result.models
    return order, [models[i] for i in order]


def _heatmap_png(result: Result, path: Path) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    order, names = _ordered(result)
    P = np.array([[result.preference.P[i][j] for j in order] for i in order], dtype=float)
    n = len(order)
    size = min(4.0 + 0.45 * n, 16.0)
    fig = Figure(figsize=(size + 1.2, size), dpi=100)
    ax = fig.subplots()
    unplayed = np.array([[_unplayed(result, i, j) for j in order] for i in order], dtype=bool)
    import matplotlib

    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#d9d9d9")  # never compared: grey
    im = ax.imshow(np.ma.masked_array(P, mask=unplayed), cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels=names, rotation=60, ha="right", fontsize=8 if n > 20 else 10)
    ax.set_yticks(range(n), labels=names, fontsize=8 if n > 20 else 10)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title("P(row ≻ column)")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                if i != j and not unplayed[i, j]:
                    mark = "*" if _significant(result, order[i], order[j]) else ""
                    ax.text(j, i, f"{P[i, j]:.2f}{mark}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _nash_png(result: Result, path: Path) -> None:
    from matplotlib.figure import Figure

    models = result.models
    weights = result.nash.weights
    names = sorted(models, key=lambda m: (-(weights[m] if _is_num(weights[m]) else 0.0), m))
    values = [weights[m] if _is_num(weights[m]) else 0.0 for m in names]
    fig = Figure(figsize=(7, 1.2 + 0.35 * len(names)), dpi=100)
    ax = fig.subplots()
    ax.barh(range(len(names)), values, color="#2c7fb8")
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values + [1e-9]) * 1.15)
    ax.set_xlabel("weight")
    ax.set_title("Maximum-entropy Nash mixture")
    for k, v in enumerate(values):
        ax.text(v, k, f" {v:.1%}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _ratings_png(result: Result, path: Path) -> None:
    from matplotlib.figure import Figure

    order, names = _ordered(result)
    ratings = result.ratings
    elo = [ratings[m].elo for m in names]
    fig = Figure(figsize=(7, 1.2 + 0.35 * len(names)), dpi=100)
    ax = fig.subplots()
    ys = list(range(len(names)))
    for y, m, e in zip(ys, names, elo):
        if not _is_num(e):
            continue
        ci = ratings[m].elo_ci
        if ci and all(_is_num(x) for x in ci):
            # With few bootstrap rounds the estimate can fall outside its percentile interval.
            ax.errorbar(e, y, xerr=[[max(0.0, e - ci[0])], [max(0.0, ci[1] - e)]], fmt="o", color="#333333", capsize=3)
        else:
            ax.plot(e, y, "o", color="#333333")
    ax.set_yticks(ys, labels=names)
    ax.invert_yaxis()
    level = _level(result)
    ax.set_xlabel("Elo" + (f" with {level:.0%} interval" if level is not None else ""))
    ax.set_title("Bradley–Terry ratings")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .5rem;border:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td.name,th.name{text-align:left;font-weight:600}
table.matrix td{text-align:center;font-variant-numeric:tabular-nums;min-width:3rem}
.reading{background:#f7f7f2;border-left:4px solid #999;padding:.75rem 1rem}
.cycle{color:#8a5a00}.dim{color:#777}img{max-width:100%;height:auto;margin:.5rem 0}
.bar{display:inline-block;height:.8rem;background:#2c7fb8;vertical-align:middle}
"""


def _img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _info_html(title: str, part: dict) -> str:
    """A titled two-column table of a result section (run, judge): one row per key, values in one line."""
    esc = html.escape
    rows = "".join(
        f'<tr><td class="name">{esc(str(k).replace("_", " "))}</td><td>{esc(_plain(v))}</td></tr>'
        for k, v in part.items()
    )
    return f"<h2>{esc(title)}</h2><table>{rows}</table>"


def _matrix_html(result: Result, *, browsable: str = "", title: str = "Preference matrix P(row ≻ column)") -> str:
    """The preference matrix as a coloured table (rows and columns best first, `_order`), with its
    legend; a cell links to its pair's battles when `browsable` (the battle browser's HTML) has them."""
    from arena.report_browser import battle_anchor

    esc = html.escape
    models = result.models
    P = result.preference.P
    order = _order(result)
    head = "".join(f"<th>{k + 1}</th>" for k in range(len(order)))
    body = []
    for k, i in enumerate(order):
        cells = []
        for j in order:
            if i == j:
                cells.append('<td class="dim">·</td>')
                continue
            p = P[i][j]
            if not _is_num(p) or _unplayed(result, i, j):
                cells.append('<td class="dim">–</td>')
                continue
            r, g, b = _rgb(p)
            mark = "*" if _significant(result, i, j) else ""
            text = f"{p:.2f}{mark}"
            anchor = battle_anchor(i, j)
            if f'id="{anchor}"' in browsable:  # the battle browser below has this pair's battles
                text = f'<a href="#{anchor}" title="sample battles">{text}</a>'
            cells.append(f'<td style="background:rgb({r},{g},{b})">{text}</td>')
        body.append(f'<tr><td class="name">{k + 1} {esc(models[i])}</td>{"".join(cells)}</tr>')
    marks = result.preference.n is not None
    return (
        f'<h2>{esc(title)}</h2><table class="matrix"><tr><th></th>{head}</tr>'
        f"{''.join(body)}</table><p class='dim'>"
        + ("* = interval excludes ½" if marks else "matrix input: no counts, so no intervals")
        + ("; – = never compared" if any(_unplayed(result, i, j) for i in order for j in order if i != j) else "")
        + "</p>"
    )


def render_html(result: Result, images: dict[str, bytes] | None = None, sections: Sequence[str] = ()) -> str:
    """A self-contained HTML page (inline CSS, images as base64 data URIs); `sections`: HTML
    fragments placed before the settings (e.g. `arena.report_browser.browser_html`)."""
    result = validate_result(result)
    esc = html.escape
    models = result.models
    ratings = result.ratings
    weights = result.nash.weights
    P = result.preference.P
    order = _order(result)
    settings = result.settings
    images = images or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>arena report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>arena report · {len(models)} models</h1>",
        f'<p class="reading">{esc(plain_reading(result))}</p>',
    ]
    for key in ("run", "judge"):
        part = None if getattr(result, key) is None else getattr(result, key).to_json()
        if part:
            parts.append(_info_html(key.title(), part))
    ckpts = result.checkpoints
    if isinstance(ckpts, dict) and ckpts:
        keys = []
        for card in ckpts.values():
            for k, v in (card.items() if isinstance(card, dict) else ()):
                if k not in keys and not isinstance(v, (dict, list)):
                    keys.append(k)
        head = "".join(f"<th>{esc(k)}</th>" for k in keys)
        body = "".join(
            f'<tr><td class="name">{esc(name)}</td>'
            + "".join(
                f"<td>{esc('' if not isinstance(card, dict) or card.get(k) is None else str(card.get(k)))}</td>"
                for k in keys
            )
            + "</tr>"
            for name, card in ckpts.items()
        )
        parts.append(f'<h2>Checkpoints</h2><table><tr><th class="name">checkpoint</th>{head}</tr>{body}</table>')

    level = _level(result)
    rows = []
    for rank, i in enumerate(order, start=1):
        m = models[i]
        r = ratings[m]
        ci = r.elo_ci
        ci_txt = f"[{ci[0]:.0f}, {ci[1]:.0f}]" if ci and all(_is_num(x) for x in ci) else "—"
        rows.append(
            f'<tr><td>{rank}</td><td class="name">{esc(m)}</td><td>{_fmt(r.elo, ".0f")}</td>'
            f"<td>{ci_txt}</td><td>{_fmt(r.bt, '+.3f')}</td><td>{_fmt(r.win_rate, '.1%')}</td>"
            f"<td>{_fmt(weights.get(m), '.3f')}</td></tr>"
        )
    ci_head = f"{level:.0%} interval (Elo)" if level is not None else "interval (Elo)"
    parts.append(
        "<h2>Bradley–Terry / Elo</h2><table><tr><th>#</th><th class='name'>model</th><th>Elo</th>"
        f"<th>{ci_head}</th><th>BT θ</th><th>win rate</th><th>Nash</th></tr>{''.join(rows)}</table>"
        f"<p class='dim'>intervals: {esc(str(settings.ci or 'n/a'))}</p>"
    )
    # style control (`arena tournament --style-control`, `arena rate --style-control`): arena.style_tournament
    from arena.style_tournament import style_control_html

    parts.append(style_control_html(result))
    if "ratings.png" in images:
        parts.append(_img_tag(images["ratings.png"], "ratings with intervals"))

    browsable = "".join(sections)
    parts.append(_matrix_html(result, browsable=browsable))
    if "heatmap.png" in images:
        parts.append(_img_tag(images["heatmap.png"], "preference heatmap"))

    cycles = result.cycles
    winner = cycles.condorcet_winner
    comps = cycles.components or []
    items = []
    significance = cycles.top_set is not None and result.preference.n is not None
    if winner is not None:
        items.append(f"<li>Condorcet winner: <b>{esc(winner)}</b>"
                     + (f" (every head-to-head significant{esc(_at(result))})" if significance else " (point estimates)")
                     + "</li>")
    else:
        top = comps[0] if comps else []
        items.append(f"<li>Condorcet winner: none: the top component has {len(top)} models ({esc(', '.join(top))})</li>")
        top_set = cycles.top_set
        if significance and isinstance(top_set, list):
            items.append("<li>top set (each member significantly beats every model outside): "
                         + (f"all {len(models)} models, not distinguishable{esc(_at(result))}"
                            if len(top_set) >= len(models) else esc(", ".join(top_set))) + "</li>")
    share = cycles.cyclic_share
    if _is_num(share):
        caveat = _share_caveat(result)
        items.append(
            f"<li>cyclic share of the log-odds flow (HodgeRank): {share:.1%}"
            + (f' <span class="dim">({esc(caveat)})</span>' if caveat else "")
            + "</li>"
        )
    triangles = _ranked_triangles(result)
    n_tri = _n_triangles(result)
    items.append(f"<li>{n_tri} cyclic triangle{'s' if n_tri != 1 else ''}, strongest first</li>")
    idx = {m: i for i, m in enumerate(models)}

    def _edge_ps(a, b, c):
        ps = [P[idx[x]][idx[y]] for x, y in ((a, b), (b, c), (c, a))]
        return f' <span class="dim">(P = {", ".join(f"{p:.2f}" for p in ps)})</span>' if all(map(_is_num, ps)) else ""

    def _surv(t):
        v = _survival(result, t)
        return f' <span class="dim">(survives {v:.0%} of resamples)</span>' if v is not None else ""

    tri = "".join(
        f'<li class="cycle">{esc(f"{a} ≻ {b} ≻ {c} ≻ {a}")}{_edge_ps(a, b, c)}{_surv((a, b, c))}</li>'
        for a, b, c in triangles[:100]
    )
    more = f"<li class='dim'>… and {len(triangles) - 100} more</li>" if len(triangles) > 100 else ""
    parts.append(f"<h2>Cycles</h2><ul>{''.join(items)}</ul><ul>{tri}{more}</ul>")

    support = _positive(weights, models)
    nash_iv = result.nash.intervals if isinstance(result.nash.intervals, dict) else {}
    nash_sp = result.nash.support_probability or {}

    def _iv(m):
        if m not in nash_iv:
            return ""
        lo, hi = nash_iv[m]
        sp = nash_sp.get(m)
        return (f"[{lo:.1%}, {hi:.1%}]" + (f", in support {sp:.0%}" if _is_num(sp) else ""))

    bars = "".join(
        f'<tr><td class="name">{esc(m)}</td><td>{weights[m]:.1%}</td><td>{esc(_iv(m))}</td>'
        f'<td style="text-align:left"><span class="bar" style="width:{300 * weights[m]:.0f}px"></span></td></tr>'
        for m in support
    )
    zero = [m for m in models if m not in support]
    expl = result.nash.exploitability
    parts.append(
        f"<h2>Nash mixture (maximum entropy)</h2><table>{bars}</table>"
        + (f"<p class='dim'>no weight: {esc(', '.join(zero))}</p>" if zero else "")
        + (f"<p class='dim'>certificate: exploitability {expl:.1e}</p>" if _is_num(expl) else "")
    )
    if "nash.png" in images:
        parts.append(_img_tag(images["nash.png"], "Nash weights"))
    from arena.boards import boards_html
    from arena.report_adaptive import adaptive_html  # nothing for a round robin

    parts.extend(adaptive_html(result))
    parts.extend(x for x in (boards_html(result), *sections) if x)
    parts.append(f"<h2>Settings</h2><pre>{esc(json.dumps(settings.to_json(), indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- files


def _matrix_csv(result: Result) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    models = result.models
    writer.writerow(["", *models])
    for m, row in zip(models, result.preference.P):
        writer.writerow([m, *(repr(float(x)) if _is_num(x) else "" for x in row)])
    return buf.getvalue()


def write_outputs(result: Result, out_dir) -> Path:
    """Write results.json, matrix.csv, heatmap.png, nash.png, ratings.png and report.html.

    Through the one atomic writer (`arena.outputs.atomic_output`, mode merge): everything is
    built in a temporary directory beside `out_dir` first; only when all of it succeeded do the
    files replace their namesakes in `out_dir` (other files there are left alone). On any error
    nothing in `out_dir` changes. Strings pass `arena.redact` (no secret in a result file).
    Returns `out_dir`.
    """
    from arena.outputs import atomic_output
    from arena.redact import redact_obj

    data = redact_obj(validate_result(result).to_json())
    result = Result.from_json(data)
    try:
        text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InputError(f"the result is not strict JSON ({error}): pass the Result from arena.analysis") from None
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file: give a directory path")
    with atomic_output(out_dir, mode="merge") as tmp:
        (tmp / "results.json").write_text(text + "\n", encoding="utf-8")
        (tmp / "matrix.csv").write_text(_matrix_csv(result), encoding="utf-8")
        _heatmap_png(result, tmp / "heatmap.png")
        _nash_png(result, tmp / "nash.png")
        _ratings_png(result, tmp / "ratings.png")
        images = {name: (tmp / name).read_bytes() for name in ("heatmap.png", "nash.png", "ratings.png")}
        from arena.report_browser import browser_html  # sample battles from the run store, when there is one

        sections = [browser_html(result, out_dir)]
        (tmp / "report.html").write_text(render_html(result, images, sections), encoding="utf-8")
    return out_dir
