"""Style control inside tournaments: LMArena's style features from the stored responses.

A tournament keeps every response it judged, so the style covariates that `arena rate
--style-control` reads from ``feature_<name>_a/_b`` columns can be computed here from the
texts themselves: per side, `arena.core.style.style_counts` (LMArena's set: length in tokens,
markdown headers, list items, bold spans; Li, Chiang et al. 2024,
https://lmsys.org/blog/2024-08-28-style-control/). The fit is then exactly the one of `arena
rate --style-control` (`arena.boards.style_control`): relative differences
(f_a − f_b)/(f_a + f_b), normalised by their standard deviation; a contextual Bradley–Terry
fit for the ratings; per-pair log-odds with shared style coefficients, evaluated at equal
style, for the controlled preference matrix and its maximum-entropy Nash mixture; and a
sentence when the raw and the controlled Nash supports differ. Each comparison enters in both
orientations (`arena.core.style.both_orientations`): a tournament's side a is always the
lower-index checkpoint. `arena rate` does the same on a file whose sides are not random, so a
file `arena export` writes from a tournament gives the tournament's style control.

Length is counted in words and punctuation marks (the tokenizer-free proxy of `style_counts`):
checkpoints in one tournament may use different tokenizers, and a judge sees text, not tokens.

`style_control_html` renders ``Result.extra["style_control"]`` (from a tournament or from
`arena rate`) as a section of report.html.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from arena.core.records import Records
from arena.core.style import STYLE_FEATURES, style_counts
from arena.errors import InputError
from arena.result import Result

__all__ = ["response_features", "tournament_style_control", "style_control_html"]


def response_features(responses: Sequence[tuple[str, str]]) -> np.ndarray:
    """(m, 2, k) LMArena style counts of each (response a, response b), k = len(STYLE_FEATURES)."""
    out = np.zeros((len(responses), 2, len(STYLE_FEATURES)))
    for r, pair in enumerate(responses):
        for side, text in enumerate(pair):
            counts = style_counts(text)
            out[r, side] = [counts[name] for name in STYLE_FEATURES]
    return out


def tournament_style_control(result: Result, records: Records, responses: Sequence[tuple[str, str]], *,
                             rounds: int, seed: int, level: float) -> Result:
    """`result` with ``extra["style_control"]`` fitted on the style of the judged responses.

    `records` are the comparisons behind `result` and `responses` their (text a, text b), in
    the same order. The reading sentence is in ``extra["style_control"]["reading"]`` (None
    when the raw and controlled Nash supports agree); `arena.report.plain_reading` appends it.

    Raises InputError when the responses do not line up with the records, or when no style
    feature varies (every response has the same counts: nothing to control for).
    """
    from arena.boards import style_control

    if len(responses) != len(records):
        raise InputError(f"style control needs one (response a, response b) per comparison; got "
                         f"{len(responses)} for {len(records)} comparisons")
    features = response_features(responses)
    d = features[:, 0] - features[:, 1]
    if not np.any(d):
        raise InputError("style control: every pair of responses has the same length and markdown counts, so "
                         "there is no style to control for; drop --style-control")
    # A tournament puts the lower-index checkpoint on side a of every comparison, so the mean
    # style difference is not 0 and the centring of the contextual fit (arena-rank's, which
    # assumes random sides) would move part of the style effect into θ: every comparison enters
    # in both orientations (`arena.core.style.both_orientations`), whatever the side test says.
    styled = replace(records, features=features, feature_names=STYLE_FEATURES)
    result = style_control(result, styled, rounds=rounds, seed=seed, level=level, orientations="both")
    part = dict(result.extra["style_control"])
    part["source"] = "stored responses (arena.core.style.style_counts; length in words and punctuation marks)"
    per_model = {}
    for i, m in enumerate(records.models):  # each model's mean counts over the responses it was judged on
        rows = np.concatenate([features[records.a == i, 0], features[records.b == i, 1]])
        per_model[m] = {name: float(rows[:, k].mean()) if len(rows) else None for k, name in enumerate(STYLE_FEATURES)}
    part["mean_features"] = per_model
    return replace(result, extra={**result.extra, "style_control": part})


def style_control_html(result: Result) -> str:
    """The report.html section for ``result.extra["style_control"]`` ('' when absent)."""
    sc = result.extra.get("style_control") if isinstance(result.extra, dict) else None
    if not isinstance(sc, dict) or "ratings" not in sc or "nash" not in sc:
        return ""
    esc = html.escape
    raw_nash = result.nash.weights
    ctl_nash = sc["nash"]["weights"]
    means = sc.get("mean_features") or {}
    rows = []
    for m in sorted(sc["ratings"], key=lambda m: -sc["ratings"][m]["elo"]):
        r, c = result.ratings.get(m), sc["ratings"][m]
        ci = c.get("elo_ci")
        length = (means.get(m) or {}).get("sum_assistant_tokens")
        rows.append(
            f'<tr><td class="name">{esc(m)}</td>'
            f"<td>{'—' if r is None or r.elo is None else f'{r.elo:.0f}'}</td>"
            f"<td>{c['elo']:.0f}</td><td>{'—' if not ci else f'[{ci[0]:.0f}, {ci[1]:.0f}]'}</td>"
            f"<td>{(raw_nash.get(m) or 0.0):.3f}</td><td>{ctl_nash.get(m, 0.0):.3f}</td>"
            f"<td>{'—' if length is None else f'{length:.1f}'}</td></tr>")
    coefs = ", ".join(f"{esc(name)} {c['ratings']:+.3f}" for name, c in sc.get("coefficients", {}).items())
    reading = sc.get("reading") or "Controlling for style leaves the Nash support unchanged."
    return ("<h2>Style control</h2>"
            f"<p>{esc(reading)}</p>"
            "<table><tr><th class='name'>model</th><th>Elo</th><th>Elo at equal style</th><th>interval</th>"
            f"<th>Nash</th><th>Nash at equal style</th><th>mean length</th></tr>{''.join(rows)}</table>"
            f"<p class='dim'>style coefficients (log-odds per standard deviation): {coefs}. "
            f"{esc(str(sc.get('method', '')))}</p>")
