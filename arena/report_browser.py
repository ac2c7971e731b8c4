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

The generation settings of each checkpoint (`checkpoints.<name>.generation_settings` in
results.json, `arena.generation`) head the section. Without a run store (`arena rate`) or
without a judge in the result there are no battles and the section holds the settings only,
or nothing.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


def pick_battles(battles: Sequence[Battle], *, k: int = MAX_BATTLES) -> list[int]:
    """Indices of up to `k` telling battles: a's clearest win (largest p), b's clearest win
    (smallest p), the largest disagreement |p_ab − p_ba| between the judge orders, then the
    rest by (prompt, sample); failures last. Ties are broken by (prompt, sample), so the choice
    depends on the battles only, not on their order."""
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
        both = [i for i in ok if battles[i].p_ab is not None and battles[i].p_ba is not None]
        if both:
            take(max(both, key=lambda i: abs(battles[i].p_ab - battles[i].p_ba)))
    for i in ok + [i for i in order if battles[i].p is None]:
        take(i)
    return chosen


def read_battles(run_dir: str | Path, result) -> dict[tuple[int, int], tuple[int, list[tuple[Battle, str, str, str]]]]:
    """{(i, j) model indices, i < j: (comparisons stored, [(battle, prompt text, response of
    models[i], response of models[j]) for the picked battles])} from the run store; {} when
    there is no store or the result names no judge or fingerprints.

    Each checkpoint's responses are read under its own generation key and each pair's verdicts
    under its pair key (`arena.generation.GenerationKeys`). A results.json written before
    generation keys were recorded read every row of the judge (such runs had one key).
    """
    from arena.generation import GenerationKeys
    from arena.store import Store, flip, Judgment

    judge_fp = getattr(result.judge, "fingerprint", None) if result.judge is not None else None
    cards = result.checkpoints if isinstance(result.checkpoints, dict) else {}
    fps = {m: (cards.get(m) or {}).get("fingerprint") for m in result.models}
    if judge_fp is None or not all(fps.values()):
        return {}
    store = Store.open_readonly(run_dir)
    if store is None:
        return {}
    gen_keys = {fps[m]: ((cards.get(m) or {}).get("generation_settings") or {}).get("key") for m in result.models}
    keys = GenerationKeys(gen_keys) if all(gen_keys.values()) else None
    index = {fp: i for i, fp in enumerate(fps[m] for m in result.models)}
    try:
        rows = store.conn.execute("SELECT params, prompt, sample, a, b, p, p_ab, p_ba, error FROM judgments "
                                  "WHERE judge=? ORDER BY params, prompt, sample", (judge_fp,)).fetchall()
        pairs: dict[tuple[int, int], dict] = {}
        for params, prompt, sample, fa, fb, p, p_ab, p_ba, error in rows:
            if fa not in index or fb not in index or (keys is not None and keys.pair(fa, fb) != params):
                continue
            j = Judgment(p, p_ab, p_ba, error)
            i, k = index[fa], index[fb]
            if i > k:  # oriented from the model listed first in the result
                i, k, j = k, i, flip(j)
            pairs.setdefault((i, k), {}).setdefault((prompt, sample), (params, j))
        out = {}
        for (i, k), found in sorted(pairs.items()):
            items = sorted(found.items())
            battles = [Battle(pr, s, j.p, j.p_ab, j.p_ba, j.error) for (pr, s), (_, j) in items]
            shown = []
            for n in pick_battles(battles):
                (pr, s), (params, _) = items[n]
                text = [_text(store, "SELECT text FROM prompts WHERE hash=?", (pr,))]
                for fp in (fps[result.models[i]], fps[result.models[k]]):
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
    pair (collapsed); "" when the result has neither."""
    esc = html.escape
    models = list(result.models)
    cards = result.checkpoints if isinstance(result.checkpoints, dict) else {}
    settings = {m: (cards.get(m) or {}).get("generation_settings") for m in models}
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
        parts.append(f"<h2>Sample battles</h2><p class='dim'>Up to {MAX_BATTLES} comparisons per pair: the first "
                     "model's clearest win, the second's clearest win, the largest disagreement between the two "
                     "judge orders. Each verdict is P(a ≻ b) as judged with a shown first and with b shown first "
                     "(1 − the judge's answer for b over a); their mean is the comparison's score.</p>")
        for (i, k), (total, shown) in battles.items():
            a, b = models[i], models[k]
            P = result.preference.P[i][k]
            cell = f"P({esc(a)} ≻ {esc(b)}) = {P:.2f}; " if _num(P) else ""
            body = "".join(_battle_html(battle, prompt, ta, tb, a, b, esc) for battle, prompt, ta, tb in shown)
            parts.append(f'<details id="{battle_anchor(i, k)}"><summary><b>{esc(a)}</b> vs <b>{esc(b)}</b> '
                         f'<span class="dim">({cell}{len(shown)} of {total} comparisons)</span></summary>'
                         f"{body}</details>")
    return "".join(parts)


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


def _battle_html(battle: Battle, prompt, ta, tb, a: str, b: str, esc) -> str:
    if battle.p is None:
        verdict = f"failed: {esc(battle.error or 'no verdict')}"
    else:
        verdict = (f"P({esc(a)} ≻ {esc(b)}): {_p(battle.p_ab)} with {esc(a)} shown first, {_p(battle.p_ba)} with "
                   f"{esc(b)} shown first; mean <b>{_p(battle.p)}</b>")
    pre = 'style="white-space:pre-wrap;text-align:left;margin:0"'
    return (f'<div class="battle"><p class="dim">prompt (sample {battle.sample}):</p><pre {pre}>{_cut(prompt, esc)}</pre>'
            f'<table style="width:100%;table-layout:fixed"><tr><th class="name">{esc(a)}</th>'
            f'<th class="name">{esc(b)}</th></tr><tr><td style="vertical-align:top;text-align:left"><pre {pre}>'
            f'{_cut(ta, esc)}</pre></td><td style="vertical-align:top;text-align:left"><pre {pre}>{_cut(tb, esc)}'
            f"</pre></td></tr></table><p>{verdict}</p></div>")
