"""A tournament judged by a vector judge: store each criterion's verdict, analyse per criterion and combined.

`arena.tournament.run_tournament` calls in here when its judge answers one preference per
criterion (`judges.base.is_vector`): every comparison is judged in both orders per criterion
(`judges.base.judge_vector_both_orders`, a failed criterion is a failure of that criterion
only), each criterion's verdict goes to the store's `criterion_judgments` table, and the
analysis is `arena.criteria.analyze_criteria` over one `Records` per criterion (failures of a
criterion left out of that criterion): per-criterion Bradley–Terry, matrix, cycles and Nash
with their intervals, the robust (max–min) mixture with its intervals and, with `--weights`,
the weighted Nash. results.json has the layout of `arena rate` on a criteria file, plus the
tournament's `run`, `judge` and `checkpoints` (with each one's `generation_settings`, which the
report's battle browser reads responses by). Scalar judges never come here.
"""

from __future__ import annotations

import json
from pathlib import Path

from arena.errors import InputError

__all__ = ["check_weights_for", "judge_comparisons", "criterion_rows", "criteria_analysis_key", "analyse_criteria_run"]


def check_weights_for(judge, weights) -> None:
    """--weights needs a vector judge, and names only its criteria (checked before any work)."""
    from arena.core.robust import check_weights
    from judges.base import is_vector

    if weights is None:
        return
    if not is_vector(judge):
        raise InputError("--weights needs a vector judge (one preference per criterion), e.g. "
                         "--judge 'panel:helpful=SPEC1|honest=SPEC2' or python:module:function?criteria=a,b; "
                         "drop --weights for a scalar judge")
    if len(judge.criteria) < 2:
        raise InputError(f"--weights needs at least two criteria; the judge has one ({judge.criteria[0]}): drop --weights")
    check_weights(dict(weights), tuple(judge.criteria))


def judge_comparisons(judge, comparisons):
    """(verdicts, per_criterion): both-order verdicts, and for a vector judge its per-criterion
    verdicts (the scalar verdict is then their equal-weight mean, `judges.base.combine_criteria`)."""
    import judges
    from judges.base import combine_criteria, is_vector, judge_vector_both_orders

    if not is_vector(judge):
        return judges.judge_both_orders(judge, comparisons), None
    per = judge_vector_both_orders(judge, comparisons)
    return [combine_criteria(v) for v in per], per


def criterion_rows(keys, per_criterion):
    """Store rows (prompt hash, sample, fp_a, fp_b, criterion, Judgment) from (prompt hash, sample, fp_a, fp_b) keys."""
    from arena.store import Judgment

    return [(p, s, fa, fb, c, Judgment(v.p, v.p_ab, v.p_ba, v.error))
            for (p, s, fa, fb), per in zip(keys, per_criterion) for c, v in per.items()]


def _lookup(table: dict, prompt: str, sample: int, fa: str, fb: str) -> dict | None:
    from arena.store import flip

    if fa <= fb:
        return table.get((prompt, sample, fa, fb))
    per = table.get((prompt, sample, fb, fa))
    return None if per is None else {c: flip(j) for c, j in per.items()}


def criteria_records(ckpts, prompts, plan, table: dict, phash, fps, criteria) -> tuple[dict, dict, int]:
    """({criterion: Records}, {criterion: failures}, comparisons) from the stored per-criterion verdicts."""
    from arena.core.records import make_records

    playing = sorted({i for pair in plan.pairs for i in pair})
    names = [c.name for c in ckpts]
    cols = {c: ([], [], [], []) for c in criteria}
    failures = {c: 0 for c in criteria}
    examples = {}
    for a, b, p, s in plan.cmp_keys:
        per = _lookup(table, phash[p], s, fps[a], fps[b])
        if per is None or set(per) != set(criteria):
            raise RuntimeError(f"per-criterion verdicts of {names[a]} vs {names[b]} on prompt {prompts[p].id} are "
                               "missing from the store; rerun with --retry-failures")
        for c in criteria:
            j = per[c]
            if j.p is None:
                failures[c] += 1
                examples.setdefault(c, j.error)
                continue
            xa, xb, xs, xc = cols[c]
            xa.append(names[a])
            xb.append(names[b])
            xs.append(j.p)
            xc.append(p)
    records = {}
    for c in criteria:
        xa, xb, xs, xc = cols[c]
        if not xs:
            raise InputError(f"every judgment of criterion {c!r} failed (e.g. {examples.get(c)}); fix the judge and "
                             "rerun with --retry-failures")
        records[c] = make_records(xa, xb, xs, cluster=xc, models=[names[i] for i in playing])
    return records, failures, len(plan.cmp_keys)


def criteria_analysis_key(ckpts, prompts, plan, table: dict, phash, fps, *, config, spec: str, judge, keys) -> str:
    """Hash of everything the multi-criteria analysis depends on: as `arena.tournament.analysis_key`
    (the generation settings' key included), with every criterion's verdict per comparison and the
    criterion weights."""
    import arena
    from arena.fingerprint import fingerprint_obj
    from arena.tournament import _card

    verdicts = []
    for a, b, p, s in plan.cmp_keys:
        per = _lookup(table, phash[p], s, fps[a], fps[b]) or {}
        verdicts.append({c: [j.p, j.p_ab, j.p_ba, j.error] for c, j in sorted(per.items())})
    return fingerprint_obj({
        "kind": "criteria", "version": arena.__version__, "names": list(plan.names),
        "cards": [_card(c) for c in ckpts], "prompts": [[p.id, h] for p, h in zip(prompts, phash)],
        "pairs": [list(p) for p in plan.pairs], "cmp_keys": [list(k) for k in plan.cmp_keys],
        "gen_keys": len(plan.gen_keys), "params": keys.token(), "judge": [spec, judge.fingerprint, list(judge.criteria)],
        "verdicts": verdicts, "weights": None if config.weights is None else sorted(dict(config.weights).items()),
        "analysis": [config.rounds, config.level, config.prior, config.seed],
    })


def analyse_criteria_run(ckpts, prompts, plan, phash, fps, *, config, spec: str, judge, keys, out: Path,
                         new: dict, reused: dict, console=None, generation_settings: dict | None = None) -> dict:
    """The multi-criteria result of a tournament (module docstring), written to out/results.json.
    The analysis is stored under `criteria_analysis_key`: a rerun with nothing changed reuses it.
    generation_settings: {checkpoint fingerprint: results.json's `generation_settings`}, recorded
    per checkpoint as in a scalar run (the report's battle browser reads each checkpoint's
    responses under its generation key)."""
    import judges
    from arena.criteria import analyze_criteria
    from arena.report_criteria import write_criteria_outputs
    from arena.store import Store

    with Store.open(out) as store:
        table = keys.criterion_judgments(store, judge.fingerprint)   # each pair under its own key
        key = criteria_analysis_key(ckpts, prompts, plan, table, phash, fps, config=config, spec=spec, judge=judge,
                                    keys=keys)
        stored = store.analysis(key)
    if stored is not None:
        result = json.loads(stored)
        result["run"] = {**result["run"], "new": new, "reused": reused}   # this call's work
        result["checkpoints"] = _with_settings(result["checkpoints"], generation_settings)
        if console is not None:
            console.print(f"nothing changed since the analysis in {out}: reusing it (key {key})", soft_wrap=True)
        if config.write_reports:
            write_criteria_outputs(result, out)
            _wrote(console, out)
        return result
    criteria = tuple(judge.criteria)
    records, failures, comparisons = criteria_records(ckpts, prompts, plan, table, phash, fps, criteria)
    weights = None if config.weights is None else dict(config.weights)
    result = analyze_criteria(records, weights=weights, rounds=config.rounds, seed=config.seed, level=config.level,
                              prior=config.prior)
    position = {}
    for c in criteria:
        verdicts = []
        for a, b, p, s in plan.cmp_keys:
            j = _lookup(table, phash[p], s, fps[a], fps[b])[c]
            verdicts.append(judges.PairVerdict(j.p, j.p_ab, j.p_ba, j.error))
        position[c] = judges.position_report(verdicts)
    playing = sorted({i for pair in plan.pairs for i in pair})
    result["run"] = {"generations": len(plan.gen_keys), "judgments": 2 * comparisons, "comparisons": comparisons,
                     "failures": failures, "new": new, "reused": reused}
    result["judge"] = {"spec": spec, "fingerprint": judge.fingerprint, "criteria": list(criteria),
                       "failures": failures,
                       "position_consistency": {c: position[c]["consistency"] for c in criteria},
                       "first_position_rate": {c: position[c]["first_position_rate"] for c in criteria}}
    result["checkpoints"] = _with_settings({ckpts[i].name: {"fingerprint": ckpts[i].fingerprint, "kind": ckpts[i].kind}
                                            for i in playing}, generation_settings)
    result["settings"]["input"] = "tournament (criteria)"
    text = json.dumps(result, allow_nan=False)  # strict JSON, as every result
    with Store.open(out) as store:
        store.put_analysis(key, text)
    if config.write_reports:
        write_criteria_outputs(result, out)
        _wrote(console, out)
    return result


def _with_settings(cards: dict, generation_settings: dict | None) -> dict:
    """The checkpoint cards with this call's `generation_settings` (a stored analysis gets the current ones)."""
    if not generation_settings:
        return cards
    return {name: {**card, "generation_settings": generation_settings[card["fingerprint"]]}
            if card.get("fingerprint") in generation_settings else card for name, card in cards.items()}


def _wrote(console, out: Path) -> None:
    if console is not None:
        console.print(f"wrote {out}/results.json, matrix_<criterion>.csv, mixtures.png and report.html", soft_wrap=True)
