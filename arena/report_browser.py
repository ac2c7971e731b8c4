"""Battle browser: sample responses for each pair of the preference matrix, in the HTML report.

A tournament's run directory holds every response and both judge verdicts of every
comparison (`arena.store`). For each compared pair the report shows a handful of them
(`MAX_BATTLES`), chosen to be telling rather than typical (`pick_battles`): the comparison
the first model wins most clearly, the one the second wins most clearly, and the one whose two
judge orders disagree most (position bias made visible); then others in a fixed order. Each
shows the prompt, both responses (escaped; cut at `MAX_CHARS` with the full length noted) and
the judge's verdict in both orders: p_ab = P(a ≻ b | a shown first) and p_ba = P(a ≻ b | b
shown first) = 1 − judge(b, a), whose mean is the comparison's score. Pairs are collapsed
(`<details>`), so the page stays small and readable.

A multi-criteria result (a tournament with a vector judge, `arena.tournament_criteria`) browses
the store's `criterion_judgments`: each battle shows every criterion's verdict in both orders and
their combination, P_w = Σ_c w_c P_c with the result's `--weights` (the weighted Nash's
preference) or else the equal-weight mean (the store's scalar verdict). The combination picks
the first two battles; the third is the one on which the criteria disagree most
(max_c P_c − min_c P_c), which is where a multi-criteria verdict parts from a scalar one.

The generation settings of each checkpoint (`checkpoints.<name>.generation_settings` in
results.json, `arena.generation`) head the section. Without a run store (`arena rate`, or a
directory holding results.json only) or without a judge in the result there are no battles and
the section holds the settings only, or nothing.
"""

from __future__ import annotations

import html
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BATTLES = 3
"""Comparisons shown per pair."""
MAX_CHARS = 500
"""Characters shown of a prompt or a response; the full length is noted when it is cut."""
SETTING_FIELDS = ("engine", "temperature", "top_p", "top_k", "max_new_tokens", "stop", "samples", "prompts")


@dataclass(frozen=True)
class Battle:
    """One comparison of a pair, oriented from the pair's first model a."""

    prompt: str
    """Prompt hash in the store."""
    sample: int
    p: float | None
    """Mean of the two orders: the comparison's score P(a ≻ b); None for a failure."""
    p_ab: float | None
    """P(a ≻ b) with a shown first."""
    p_ba: float | None
    """P(a ≻ b) with b shown first (1 − judge(b, a))."""
    error: str | None = None
    criteria: tuple[tuple[str, Any], ...] = ()
    """A vector judge's verdict per criterion, ((name, `arena.store.Judgment` oriented from a), ...);
    p, p_ab, p_ba are then their combination. Empty for a scalar judge."""


def disagreement(battle: Battle) -> float | None:
    """What the third pick maximises: for a multi-criteria battle the spread max_c p_c − min_c p_c
    of its criteria (None when a criterion failed), else |p_ab − p_ba| between the judge orders
    (None when an order is missing)."""
    if battle.criteria:
        ps = [j.p for _, j in battle.criteria]
        return None if any(x is None for x in ps) else max(ps) - min(ps)
    if battle.p_ab is None or battle.p_ba is None:
        return None
    return abs(battle.p_ab - battle.p_ba)


def pick_battles(battles: Sequence[Battle], *, k: int = MAX_BATTLES) -> list[int]:
    """Indices of up to `k` telling battles: a's clearest win (largest p), b's clearest win
    (smallest p), the largest `disagreement` (between the judge orders, or between the criteria
    of a multi-criteria battle), then the rest by (prompt, sample); failures last. Ties are broken
    by (prompt, sample), so the choice depends on the battles only, not on their order."""
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    order = sorted(range(len(battles)), key=lambda i: (battles[i].prompt, battles[i].sample))
    ok = [i for i in order if battles[i].p is not None]
    chosen: list[int] = []

    def take(i):
        if i not in chosen and len(chosen) < k:
            chosen.append(i)

    if ok:
        take(max(ok, key=lambda i: battles[i].p))                      # first max in (prompt, sample) order
        take(min(ok, key=lambda i: battles[i].p))
        both = [i for i in ok if disagreement(battles[i]) is not None]
        if both:
            take(max(both, key=lambda i: disagreement(battles[i])))
    for i in ok + [i for i in order if battles[i].p is None]:
        take(i)
    return chosen


@dataclass(frozen=True)
class _Run:
    """What the browser reads of a result: a scalar `arena.result.Result` or a multi-criteria dict
    (`arena.report_criteria.check_criteria_result`)."""

    models: tuple[str, ...]
    cards: Mapping[str, Any]
    """results.json's `checkpoints`: name -> card (fingerprint, generation_settings)."""
    judge_fp: str | None
    criteria: tuple[str, ...]
    """The vector judge's criteria; () for a scalar judge."""
    weights: Mapping[str, float] | None
    """The result's criterion weights (the weighted Nash's); None: the equal-weight mean."""
    matrices: tuple[tuple[str, Any], ...]
    """(criterion, P) for each pair's header; ("", P) for a scalar result."""


def _run_of(result) -> _Run:
    if isinstance(result, Mapping):  # multi-criteria
        names = tuple(result["settings"]["criteria"])
        judge = result.get("judge") if isinstance(result.get("judge"), Mapping) else {}
        cards = result.get("checkpoints") if isinstance(result.get("checkpoints"), Mapping) else {}
        weighted = result.get("weighted")
        return _Run(models=tuple(result["models"]), cards=cards, judge_fp=judge.get("fingerprint"), criteria=names,
                    weights=dict(weighted["weights"]) if weighted else None,
                    matrices=tuple((c, (result["criteria"][c].get("preference") or {}).get("P")) for c in names))
    cards = result.checkpoints if isinstance(result.checkpoints, dict) else {}
    judge_fp = getattr(result.judge, "fingerprint", None) if result.judge is not None else None
    return _Run(models=tuple(result.models), cards=cards, judge_fp=judge_fp, criteria=(), weights=None,
                matrices=(("", result.preference.P),))


def combine(per: Sequence[tuple[str, Any]], weights: Mapping[str, float] | None = None):
    """One comparison's criteria combined as the report combines them: P_w = Σ_c w_c P_c in each
    order (weights summing to 1, `arena.core.robust.check_weights`), or the equal-weight mean
    (`judges.base.combine_criteria`, the store's scalar verdict) without weights; a failure when
    any criterion failed. per: ((criterion, Judgment), ...)."""
    from arena.store import Judgment

    failed = [f"{c}: {j.error}" for c, j in per if j.p is None]
    if failed:
        return Judgment(None, None, None, "; ".join(failed))
    w = [1.0 / len(per) if weights is None else float(weights.get(c, 0.0)) for c, _ in per]

    def mix(field):
        xs = [getattr(j, field) for _, j in per]
        return None if any(x is None for x in xs) else sum(wc * x for wc, x in zip(w, xs))

    return Judgment(mix("p"), mix("p_ab"), mix("p_ba"), None)


def _verdicts(store, run: _Run) -> list[tuple]:
    """[(params, prompt, sample, fp_a, fp_b, Judgment, per-criterion verdicts)] of the run's judge,
    in (params, prompt, sample) order; for a vector judge the Judgment is `combine`d from the
    criterion rows (a comparison missing a criterion is left out)."""
    from arena.store import Judgment

    if not run.criteria:
        rows = store.conn.execute("SELECT params, prompt, sample, a, b, p, p_ab, p_ba, error FROM judgments "
                                  "WHERE judge=? ORDER BY params, prompt, sample", (run.judge_fp,))
        return [(params, pr, s, fa, fb, Judgment(p, p_ab, p_ba, e), ())
                for params, pr, s, fa, fb, p, p_ab, p_ba, e in rows]
    try:
        rows = store.conn.execute("SELECT params, prompt, sample, a, b, criterion, p, p_ab, p_ba, error FROM "
                                  "criterion_judgments WHERE judge=? ORDER BY params, prompt, sample, a, b",
                                  (run.judge_fp,)).fetchall()
    except sqlite3.OperationalError:  # a store from before the table (opened read-only)
        return []
    groups: dict[tuple, dict] = {}
    for params, pr, s, fa, fb, c, p, p_ab, p_ba, e in rows:
        groups.setdefault((params, pr, s, fa, fb), {})[c] = Judgment(p, p_ab, p_ba, e)
    out = []
    for key, found in groups.items():
        if set(run.criteria) <= set(found):
            per = tuple((c, found[c]) for c in run.criteria)
            out.append((*key, combine(per, run.weights), per))
    return out


def read_battles(run_dir: str | Path, result) -> dict[tuple[int, int], tuple[int, list[tuple[Battle, str, str, str]]]]:
    """{(i, j) model indices, i < j: (comparisons stored, [(battle, prompt text, response of
    models[i], response of models[j]) for the picked battles])} from the run store; {} when
    there is no store or the result names no judge or fingerprints. `result`: a scalar
    `Result`, or a multi-criteria result dict (its battles carry every criterion's verdict).

    Each checkpoint's responses are read under its own generation key and each pair's verdicts
    under its pair key (`arena.generation.GenerationKeys`). A results.json written before
    generation keys were recorded read every row of the judge (such runs had one key).
    """
    from arena.generation import GenerationKeys
    from arena.store import Store, flip

    run = _run_of(result)
    fps = {m: (run.cards.get(m) or {}).get("fingerprint") for m in run.models}
    if run.judge_fp is None or not all(fps.values()):
        return {}
    store = Store.open_readonly(run_dir)
    if store is None:
        return {}
    gen_keys = {fps[m]: ((run.cards.get(m) or {}).get("generation_settings") or {}).get("key") for m in run.models}
    keys = GenerationKeys(gen_keys) if all(gen_keys.values()) else None
    index = {fp: i for i, fp in enumerate(fps[m] for m in run.models)}
    try:
        pairs: dict[tuple[int, int], dict] = {}
        for params, prompt, sample, fa, fb, j, per in _verdicts(store, run):
            if fa not in index or fb not in index or (keys is not None and keys.pair(fa, fb) != params):
                continue
            i, k = index[fa], index[fb]
            if i > k:  # oriented from the model listed first in the result
                i, k, j, per = k, i, flip(j), tuple((c, flip(x)) for c, x in per)
            pairs.setdefault((i, k), {}).setdefault((prompt, sample), (params, j, per))
        out = {}
        for (i, k), found in sorted(pairs.items()):
            items = sorted(found.items())
            battles = [Battle(pr, s, j.p, j.p_ab, j.p_ba, j.error, per) for (pr, s), (_, j, per) in items]
            shown = []
            for n in pick_battles(battles):
                (pr, s), (params, _, _) = items[n]
                text = [_text(store, "SELECT text FROM prompts WHERE hash=?", (pr,))]
                for fp in (fps[run.models[i]], fps[run.models[k]]):
                    key = params if keys is None else keys.of(fp)
                    text.append(_text(store, "SELECT text FROM generations WHERE checkpoint=? AND prompt=? AND "
                                             "sample=? AND params=?", (fp, pr, s, key)))
                shown.append((battles[n], *text))
            out[(i, k)] = (len(battles), shown)
        return out
    finally:
        store.close()


def _text(store, sql: str, args: tuple) -> str | None:
    row = store.conn.execute(sql, args).fetchone()
    return None if row is None else row[0]


def browser_html(result, run_dir: str | Path | None) -> str:
    """The report section: generation settings per checkpoint, then the sample battles of each
    pair (collapsed); "" when the result has neither. `result`: a scalar `Result` or a
    multi-criteria result dict (then each battle shows every criterion's verdict)."""
    esc = html.escape
    run = _run_of(result)
    models = list(run.models)
    settings = {m: (run.cards.get(m) or {}).get("generation_settings") for m in models}
    parts = []
    if any(isinstance(s, dict) for s in settings.values()):
        head = "".join(f"<th>{esc(f.replace('_', ' '))}</th>" for f in SETTING_FIELDS)
        rows = "".join(
            f'<tr><td class="name">{esc(m)}</td>'
            + "".join(f"<td>{_setting(s, f, esc)}</td>" for f in SETTING_FIELDS) + "</tr>"
            for m, s in settings.items() if isinstance(s, dict))
        parts.append("<h2>Generation settings</h2>"
                     f'<table><tr><th class="name">checkpoint</th>{head}</tr>{rows}</table>'
                     "<p class='dim'>* from the checkpoint's generation_config.json; other values from a flag or "
                     "the default</p>")
    battles = read_battles(run_dir, result) if run_dir is not None else {}
    if battles:
        parts.append(f"<h2>Sample battles</h2><p class='dim'>{_intro(run, esc)}</p>")
        for (i, k), (total, shown) in battles.items():
            a, b = models[i], models[k]
            cells = [f"P{f'_{esc(c)}' if c else ''}({esc(a)} ≻ {esc(b)}) = {P[i][k]:.2f}; "
                     for c, P in run.matrices if _num(_entry(P, i, k))]
            body = "".join(_battle_html(battle, prompt, ta, tb, a, b, esc, run)
                           for battle, prompt, ta, tb in shown)
            parts.append(f'<details id="{battle_anchor(i, k)}"><summary><b>{esc(a)}</b> vs <b>{esc(b)}</b> '
                         f'<span class="dim">({"".join(cells)}{len(shown)} of {total} comparisons)</span></summary>'
                         f"{body}</details>")
    return "".join(parts)


def _intro(run: _Run, esc) -> str:
    if not run.criteria:
        return (f"Up to {MAX_BATTLES} comparisons per pair: the first model's clearest win, the second's clearest "
                "win, the largest disagreement between the two judge orders. Each verdict is P(a ≻ b) as judged "
                "with a shown first and with b shown first (1 − the judge's answer for b over a); their mean is "
                "the comparison's score.")
    return (f"Up to {MAX_BATTLES} comparisons per pair: the first model's clearest win and the second's on "
            f"their combination ({esc(_combined_label(run))}, the last row), then the one on which the criteria "
            "disagree most. Each criterion's verdict is P(a ≻ b) as judged with a shown first and with b shown "
            "first (1 − the judge's answer for b over a); their mean is the comparison's score on that criterion.")


def _combined_label(run: _Run) -> str:
    if run.weights is None:
        return "equal-weight mean"
    return "weighted " + " + ".join(f"{w:g}·{c}" for c, w in run.weights.items())


def _entry(P, i: int, k: int):
    try:
        return P[i][k]
    except (TypeError, IndexError, KeyError):
        return None


def battle_anchor(i: int, j: int) -> str:
    """The HTML id of pair (i, j)'s battles (either order), which the matrix cells link to."""
    return f"battles-{min(i, j)}-{max(i, j)}"


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _setting(s: dict, field: str, esc) -> str:
    value = s.get(field)
    if field == "stop":
        text = ", ".join(repr(x) for x in value) if value else "—"
    elif field == "prompts":
        text = "built-in" if value is None else str(value)
    elif field == "top_k" and value == 0:
        text = "off"
    else:
        text = "—" if value is None else str(value)
    mark = "*" if (s.get("source") or {}).get(field) == "generation_config" else ""
    return esc(text) + mark


def _cut(text: str | None, esc) -> str:
    if text is None:
        return '<span class="dim">(not in the store)</span>'
    if len(text) <= MAX_CHARS:
        return esc(text)
    return f'{esc(text[:MAX_CHARS])}<span class="dim">… (cut; {len(text)} characters in full)</span>'


def _p(x) -> str:
    return f"{x:.2f}" if _num(x) else "—"


def _battle_html(battle: Battle, prompt, ta, tb, a: str, b: str, esc, run: _Run | None = None) -> str:
    if battle.criteria:
        verdict = _criteria_table(battle, a, b, esc, run)
    elif battle.p is None:
        verdict = f"<p>failed: {esc(battle.error or 'no verdict')}</p>"
    else:
        verdict = (f"<p>P({esc(a)} ≻ {esc(b)}): {_p(battle.p_ab)} with {esc(a)} shown first, {_p(battle.p_ba)} "
                   f"with {esc(b)} shown first; mean <b>{_p(battle.p)}</b></p>")
    pre = 'style="white-space:pre-wrap;text-align:left;margin:0"'
    return (f'<div class="battle"><p class="dim">prompt (sample {battle.sample}):</p><pre {pre}>{_cut(prompt, esc)}</pre>'
            f'<table style="width:100%;table-layout:fixed"><tr><th class="name">{esc(a)}</th>'
            f'<th class="name">{esc(b)}</th></tr><tr><td style="vertical-align:top;text-align:left"><pre {pre}>'
            f'{_cut(ta, esc)}</pre></td><td style="vertical-align:top;text-align:left"><pre {pre}>{_cut(tb, esc)}'
            f"</pre></td></tr></table>{verdict}</div>")


def _criteria_table(battle: Battle, a: str, b: str, esc, run: _Run | None) -> str:
    """A multi-criteria battle's verdicts: one row per criterion (both orders and their mean), then
    their combination (`combine`)."""
    def row(name, j, cls=""):
        if j.p is None:
            return (f'<tr{cls}><td class="name">{esc(name)}</td><td colspan="3">failed: '
                    f'{esc(j.error or "no verdict")}</td></tr>')
        return (f'<tr{cls}><td class="name">{esc(name)}</td><td>{_p(j.p_ab)}</td><td>{_p(j.p_ba)}</td>'
                f"<td><b>{_p(j.p)}</b></td></tr>")

    from arena.store import Judgment

    label = "combined" if run is None else _combined_label(run)
    combined = Judgment(battle.p, battle.p_ab, battle.p_ba, battle.error)
    return (f'<table class="verdicts"><tr><th class="name">P({esc(a)} ≻ {esc(b)}) on</th><th>{esc(a)} shown first'
            f'</th><th>{esc(b)} shown first</th><th>mean</th></tr>'
            + "".join(row(c, j) for c, j in battle.criteria)
            + row(label, combined, ' class="dim"') + "</table>")
