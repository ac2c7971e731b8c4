"""`arena rate` extras on a `Result`: boards by category, an anchored Elo scale, style control.

Each function takes an analysed `arena.result.Result` (or the records behind it) and returns a
new one with fields added (`extra`, `settings.extra`); nothing here reads files or prints.

* `analyze_by`: one board per value of a column (``category``, ``language``, ...), as
  `Result.extra["by"][value]` = that board's JSON (the single-board layout), beside the
  overall board. A value whose board cannot be fitted (e.g. models that never lose within
  it) is listed in ``settings.by_skipped`` with the reason instead.
* `anchor`: shift the Elo scale so that one model has a given Elo (FastChat and Arena-Hard
  anchor a reference model, e.g. ``--anchor mixtral-8x7b-instruct-v0.1=1114``); θ and every
  Elo interval shift by the same amount, so only the origin changes.
* `style_control`: the contextual Bradley–Terry fit and the style-controlled preference
  matrix with its maximum-entropy Nash mixture (`arena.core.style`, `arena.core.nash`), as
  `Result.extra["style_control"]`, and a sentence for the reading when the raw and the
  controlled Nash supports differ. When the sides are not random (a tournament, or a file
  exported from one) every comparison enters in both orientations
  (`arena.core.style.both_orientations`); the one place that decides it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from arena.errors import InputError
from arena.result import Result

__all__ = ["parse_anchor", "anchor", "analyze_by", "style_control", "ORIENTATIONS", "STYLE_ROUNDS", "style_reading"]

#: bootstrap refits behind the controlled preference intervals (each is a Newton fit over all
#: records, so fewer than the ratings' rounds; `arena rate --rounds` lowers it further)
STYLE_ROUNDS = 200


# --------------------------------------------------------------------------- anchor


def parse_anchor(text: str) -> tuple[str, float]:
    """``MODEL=ELO`` -> (model, elo); InputError with an example otherwise."""
    model, sep, value = str(text).rpartition("=")
    try:
        elo = float(value)
    except ValueError:
        elo = math.nan
    if not sep or not model.strip() or not math.isfinite(elo):
        raise InputError(f"--anchor needs MODEL=ELO; got {text!r}: e.g. --anchor gpt-4-0314=1114")
    return model.strip(), elo


def _shift(x, delta):
    return None if x is None else float(x) + delta


def anchor(result: Result, model: str, elo: float) -> Result:
    """`result` with every Elo (and Elo interval) shifted so that `model` has Elo `elo`.

    The style-controlled ratings (when present) are anchored the same way on their own scale.
    Raises InputError when `model` is not rated or has no Elo.
    """
    if model not in result.ratings:
        raise InputError(f"--anchor {model}: no such model (models: {', '.join(result.models)}); "
                         "give one of them")
    current = result.ratings[model].elo
    if current is None:
        raise InputError(f"--anchor {model}: the model has no finite Elo to anchor; pick another model")
    delta = float(elo) - float(current)
    ratings = {m: replace(r, elo=_shift(r.elo, delta),
                          elo_ci=None if r.elo_ci is None else [_shift(x, delta) for x in r.elo_ci])
               for m, r in result.ratings.items()}
    extra = dict(result.extra)
    sc = extra.get("style_control")
    if isinstance(sc, dict) and model in sc.get("ratings", {}):
        d2 = float(elo) - sc["ratings"][model]["elo"]
        sc = {**sc, "ratings": {m: {**r, "elo": r["elo"] + d2,
                                    "elo_ci": None if r.get("elo_ci") is None else [x + d2 for x in r["elo_ci"]]}
                                for m, r in sc["ratings"].items()}}
        extra["style_control"] = sc
    settings = replace(result.settings, extra={**result.settings.extra,
                                               "anchor": {"model": model, "elo": float(elo), "shift": delta}})
    return replace(result, ratings=ratings, settings=settings, extra=extra)


# --------------------------------------------------------------------------- boards by a column


def analyze_by(result: Result, by: dict, column: str, analyze) -> Result:
    """`result` (the overall board) with ``extra["by"]`` = {value: board JSON}.

    `by`: {value: Records} (`arena.io_pairs.read_pairs_by`); `analyze(records) -> Result`
    builds one board (the caller's settings, anchor and style control applied). A value whose
    board fails with InputError is left out and named in ``settings.by_skipped``.
    """
    boards, skipped = {}, {}
    for value, records in by.items():
        try:
            boards[value] = analyze(records).to_json()
        except InputError as error:
            skipped[value] = str(error)
    settings = replace(result.settings, extra={**result.settings.extra, "by": column,
                                               **({"by_skipped": skipped} if skipped else {})})
    return replace(result, settings=settings, extra={**result.extra, "by": boards})


# --------------------------------------------------------------------------- style control


def _support(weights: np.ndarray, models) -> list[str]:
    from arena.report import ZERO_WEIGHT

    return [m for m, w in zip(models, weights) if w > ZERO_WEIGHT]


def _style_rating_draws(records, *, rounds: int, seed: int) -> tuple[np.ndarray, int]:
    """θ of the contextual fit on `rounds` resamples (whole prompts when the records have
    clusters, else records), each started afresh; (draws (r, n), failed refits)."""
    from arena.core.records import Records
    from arena.core.style import fit_contextual_bradley_terry

    rng = np.random.default_rng(seed)
    m = len(records)
    units = records.cluster if records.cluster is not None else np.arange(m)
    n_units = int(units.max()) + 1
    draws, failed = [], 0
    for _ in range(rounds):
        counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        rows = np.repeat(np.arange(m), counts[units])
        sample = Records(models=records.models, a=records.a[rows], b=records.b[rows], score=records.score[rows],
                         features=records.features[rows], feature_names=records.feature_names)
        try:
            draws.append(fit_contextual_bradley_terry(sample).theta)
        except InputError:  # a model that never loses or never wins in this resample
            failed += 1
    return np.array(draws).reshape(-1, records.n_models), failed


#: `style_control`'s ``orientations``: decide from the file, always both, or the records as read
ORIENTATIONS = ("auto", "both", "as read")


def _orientation_note(both: bool, orientations: str, sides) -> str:
    """The start of ``method``: whether both orientations were fitted, and why when decided here."""
    if not both:
        return ""
    if orientations != "auto":
        return "each comparison in both orientations; "
    why = "one model always on side a of each pair" if sides.fixed else f"p = {sides.p:.1g}"
    return f"each comparison in both orientations (sides not random: {why}); "


def style_control(result: Result, records, *, rounds: int, seed: int, level: float,
                  orientations: str = "auto") -> Result:
    """`result` with ``extra["style_control"]`` = {coefficients, ratings, preference, nash,
    feature_names, method, orientations, random_sides_p} from the records' per-side features,
    and the reading sentence.

    ``orientations``: "both" fits every comparison in both orientations (what a tournament
    needs: its lower-index checkpoint is always side a), "as read" fits the records as they
    are (arena-rank's fit, right when sides are random), "auto" (`arena rate`) uses both unless
    `arena.core.style.side_test` finds the sides random.

    Raises InputError when the records carry no features or ``orientations`` is unknown.
    """
    from arena.core.bradley_terry import elo as to_elo
    from arena.core.nash import nash_from_preferences
    from arena.core.style import (
        both_orientations,
        fit_contextual_bradley_terry,
        side_test,
        style_controlled_preferences,
    )

    if orientations not in ORIENTATIONS:
        raise InputError(f"orientations must be one of {', '.join(ORIENTATIONS)}; got {orientations!r}")
    unit = "prompt-cluster" if records.cluster is not None else "comparison"
    sides = side_test(records)
    both = orientations == "both" or (orientations == "auto" and not sides.random)
    if both:
        records = both_orientations(records)
    fit = fit_contextual_bradley_terry(records)
    ctl = style_controlled_preferences(records, level=level, rounds=min(int(rounds), STYLE_ROUNDS), seed=seed)
    nash = nash_from_preferences(ctl.P)
    models = list(records.models)
    elo = np.asarray(to_elo(fit.theta), dtype=np.float64)
    refits = min(int(rounds), STYLE_ROUNDS)
    draws, failed = _style_rating_draws(records, rounds=refits, seed=seed)
    if draws.shape[0] >= 2:
        q = np.quantile(draws, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0)  # (2, n)
        elo_ci = np.asarray(to_elo(q), dtype=np.float64)
    else:
        elo_ci = None
    part = {
        "feature_names": list(fit.feature_names),
        "coefficients": {
            name: {"ratings": float(fit.coef[k]), "preference": float(ctl.coef[k]),
                   "preference_ci": [float(ctl.coef_lo[k]), float(ctl.coef_hi[k])]}
            for k, name in enumerate(fit.feature_names)},
        "ratings": {m: {"bt": float(fit.theta[i]), "elo": float(elo[i]),
                        "elo_ci": None if elo_ci is None else [float(elo_ci[0, i]), float(elo_ci[1, i])]}
                    for i, m in enumerate(models)},
        "preference": {"models": models, "P": ctl.P.tolist(), "lo": ctl.lo.tolist(), "hi": ctl.hi.tolist()},
        "nash": {"weights": {m: float(w) for m, w in zip(models, nash.p)},
                 "exploitability": float(nash.exploitability), "entropy": float(nash.entropy)},
        "orientations": "both" if both else "as read",
        "random_sides_p": sides.p,
        "method": (_orientation_note(both, orientations, sides)
                   + f"contextual Bradley–Terry (maximum likelihood, grad {fit.grad_norm:.1e}); preference at equal "
                   f"style: per-pair log-odds with shared style coefficients, {ctl.rounds} {unit} "
                   f"bootstrap refits at level {level}; maximum-entropy Nash of the controlled matrix; "
                   f"controlled Elo intervals: percentile over {draws.shape[0]} {unit} bootstrap refits"
                   + (f" ({failed} without a finite fit, left out)" if failed else "")),
    }
    raw = np.array([result.nash.weights[m] or 0.0 for m in models])
    part["reading"] = style_reading(_support(raw, models), _support(nash.p, models), list(fit.feature_names))
    return replace(result, extra={**result.extra, "style_control": part})


def style_reading(raw: list[str], controlled: list[str], features: list[str]) -> str | None:
    """A sentence when the raw and the style-controlled Nash supports differ, else None."""
    if set(raw) == set(controlled):
        return None
    gone = [m for m in raw if m not in controlled]
    new = [m for m in controlled if m not in raw]
    text = f"Controlling for style ({', '.join(features)}) changes the Nash support from {', '.join(raw)} " \
           f"to {', '.join(controlled)}"
    if gone:
        text += f": {', '.join(gone)} {'is' if len(gone) == 1 else 'are'} in the equilibrium only through style"
    if new:
        text += f"{';' if gone else ':'} {', '.join(new)} enter{'s' if len(new) == 1 else ''} it at equal style"
    return text + "."


# --------------------------------------------------------------------------- HTML: one board at a time


def boards_html(result: Result) -> str:
    """The ``--by`` boards of `result` as an HTML section: a ``<select>`` listing every value and
    one compact board per value (Elo with interval, Nash weight with interval, the preference
    matrix), only the selected one shown. A few lines of inline script switch boards (no external
    library; the page works offline); without script the first board shows. "" without boards.
    """
    import html as _html

    boards = result.extra.get("by") if isinstance(result.extra, dict) else None
    if not isinstance(boards, dict) or not boards:
        return ""
    esc = _html.escape
    column = str(result.settings.extra.get("by") or "category")
    options, sections = [], []
    for k, (value, board) in enumerate(boards.items()):
        ident = f"board-{k}"
        n = (board.get("settings") or {}).get("records")
        label = f"{value} ({n} comparisons)" if n is not None else str(value)
        options.append(f'<option value="{ident}">{esc(label)}</option>')
        sections.append(f'<div class="board" id="{ident}" data-value="{esc(str(value), quote=True)}"'
                        f'{" hidden" if k else ""}>{_board_tables(board, esc)}</div>')
    skipped = result.settings.extra.get("by_skipped") or {}
    notes = "".join(f"<li>{esc(str(v))}: no board ({esc(str(why))})</li>" for v, why in skipped.items())
    script = ("<script>document.getElementById('board-select').addEventListener('change',function(e){"
              "document.querySelectorAll('div.board').forEach(function(d){d.hidden=d.id!==e.target.value;});});"
              "</script>")
    return (f"<h2>Boards by {esc(column)}</h2>"
            f'<p><label for="board-select">{esc(column)}: </label><select id="board-select">{"".join(options)}'
            f"</select> <span class=\"dim\">{len(boards)} boards; the tables above are the overall board</span></p>"
            + "".join(sections) + (f"<ul class='dim'>{notes}</ul>" if notes else "") + script)


def _board_tables(board: dict, esc) -> str:
    """One board's JSON (the single-board layout) as a ratings table and a matrix table."""
    models = list(board.get("models") or [])
    ratings = board.get("ratings") or {}
    nash = board.get("nash") or {}
    weights = nash.get("weights") or {}
    intervals = nash.get("intervals") or {}

    def num(x, spec):
        return "—" if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x) else format(x, spec)

    def iv(pair, spec):
        return f"[{num(pair[0], spec)}, {num(pair[1], spec)}]" if isinstance(pair, list) and len(pair) == 2 else "—"

    order = sorted(models, key=lambda m: -(ratings.get(m, {}).get("elo") or -math.inf))
    rows = "".join(
        f'<tr><td class="name">{esc(m)}</td><td>{num(ratings.get(m, {}).get("elo"), ".0f")}</td>'
        f'<td>{iv(ratings.get(m, {}).get("elo_ci"), ".0f")}</td><td>{num(weights.get(m), ".3f")}</td>'
        f'<td>{iv(intervals.get(m), ".2f")}</td></tr>' for m in order)
    P = (board.get("preference") or {}).get("P") or []
    idx = {m: i for i, m in enumerate(models)}
    head = "".join(f"<th>{esc(m)}</th>" for m in order)
    body = "".join(
        f'<tr><td class="name">{esc(a)}</td>'
        + "".join('<td class="dim">·</td>' if a == b else f"<td>{num(P[idx[a]][idx[b]], '.2f')}</td>" for b in order)
        + "</tr>" for a in order) if len(P) == len(models) else ""
    return ("<table><tr><th class='name'>model</th><th>Elo</th><th>interval</th><th>Nash</th><th>interval</th></tr>"
            f"{rows}</table>"
            + (f'<table class="matrix"><tr><th>P(row ≻ column)</th>{head}</tr>{body}</table>' if body else ""))
