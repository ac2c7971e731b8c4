"""Export a run's battles in the LMArena battle schema (shell code: reads the run store, writes one file).

One row per stored judgment that did not fail, with the columns of LMArena's public battle
datasets (``lmarena-ai/arena-human-preference-*``):

* ``question_id`` (the prompt's content hash), ``model_a``, ``model_b`` (checkpoint names);
* ``winner``: ``model_a`` | ``model_b`` | ``tie`` from the judge's debiased P(a preferred)
  (above, below or at ½ within ``TIE_TOL``); with ``soft=True`` a ``score`` column holds that
  probability instead, so that `arena rate` reads the judge's soft verdicts;
* ``judge`` (the judge's fingerprint), ``p_ab``, ``p_ba`` (the two orders), ``sample``;
* with generations: ``conversation_a``/``conversation_b`` as ``[{"role": "user", ...},
  {"role": "assistant", ...}]``, ``turn`` = 1, LMArena's ``conv_metadata`` (token, header, list
  and bold counts per side) and the same counts as ``feature_<name>_a``/``feature_<name>_b``
  columns, which `arena rate` reads as style features.

The store is opened read-only (`arena.store.Store.open_readonly`): exporting never changes a run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from arena.core.style import STYLE_FEATURES, style_counts
from arena.errors import InputError
from arena.store import DB_NAME, Store

__all__ = ["ExportSummary", "export_battles", "TIE_TOL"]

# |p − ½| at or below this is a tie in the `winner` column.
TIE_TOL = 1e-9
_FORMATS = (".jsonl", ".parquet")


@dataclass(frozen=True)
class ExportSummary:
    """What `export_battles` wrote."""

    path: Path
    """The file written."""
    battles: int
    """Rows written."""
    failed: int
    """Stored judgments that failed (no verdict) and were left out."""
    missing_generations: int
    """Rows whose response text is not in the store (conversation columns left empty)."""


def _pair_generation_keys(texts: dict, pairs: set) -> dict:
    """{(fp_a, fp_b, judgment key): (generation key of a, of b)} for pairs whose checkpoints
    generated under different settings (their verdicts are stored under the hash of both keys,
    `arena.generation.GenerationKeys.pair`); a pair with one shared key needs no entry."""
    from arena.generation import GenerationKeys

    keys_of: dict = {}
    for c, _, _, k in texts:
        keys_of.setdefault(c, set()).add(k)
    out = {}
    for a, b, key in pairs:
        for ka in keys_of.get(a, ()):
            for kb in keys_of.get(b, ()):
                if ka != kb and GenerationKeys({a: ka, b: kb}).pair(a, b) == key:
                    out[(a, b, key)] = (ka, kb)
    return out


def _winner(p: float) -> str:
    if p > 0.5 + TIE_TOL:
        return "model_a"
    if p < 0.5 - TIE_TOL:
        return "model_b"
    return "tie"


def _metadata(counts: dict[str, int], side: str) -> dict:
    """LMArena's conv_metadata entries for one side (dict-valued counts as they publish them)."""
    return {
        f"sum_assistant_{side}_tokens": counts["sum_assistant_tokens"],
        f"header_count_{side}": {"total": counts["header_count"]},
        f"list_count_{side}": {"total": counts["list_count"]},
        f"bold_count_{side}": {"total": counts["bold_count"]},
    }


def export_battles(run_dir: str | Path, out: str | Path, *, soft: bool = False,
                   generations: bool = True) -> ExportSummary:
    """Write the run's judged battles to ``out`` (.jsonl or .parquet) in the LMArena schema.

    Raises InputError: not a run directory, unknown output extension, or a store without
    any successful judgment.
    """
    run_dir, out = Path(run_dir), Path(out)
    if out.suffix.lower() not in _FORMATS:
        raise InputError(f"{out}: name the export file .jsonl or .parquet")
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist; create it first")
    store = Store.open_readonly(run_dir)
    if store is None:
        raise InputError(f"{run_dir}: no {DB_NAME} here; give a run directory written by `arena tournament`")
    with store:
        conn = store.conn
        names = dict(conn.execute("SELECT fingerprint, name FROM checkpoints"))
        prompts = dict(conn.execute("SELECT hash, text FROM prompts")) if generations else {}
        texts = {}
        if generations:
            texts = {(c, p, s, k): t for c, p, s, k, t in
                     conn.execute("SELECT checkpoint, prompt, sample, params, text FROM generations")}
        judged = conn.execute("SELECT judge, params, prompt, sample, a, b, p, p_ab, p_ba, error FROM judgments "
                              "ORDER BY prompt, sample, a, b, judge, params").fetchall()
    pair_keys = _pair_generation_keys(texts, {(a, b, k) for _, k, _, _, a, b, *_ in judged}) if generations else {}
    rows, failed, missing = [], 0, 0
    for judge, params, prompt, sample, a, b, p, p_ab, p_ba, error in judged:
        if p is None:
            failed += 1
            continue
        row = {"question_id": prompt, "model_a": names.get(a, a), "model_b": names.get(b, b)}
        row.update({"score": p} if soft else {"winner": _winner(p)})
        row.update({"judge": judge, "p_ab": p_ab, "p_ba": p_ba, "sample": sample})
        if generations:
            ka, kb = pair_keys.get((a, b, params), (params, params))
            ta, tb = texts.get((a, prompt, sample, ka)), texts.get((b, prompt, sample, kb))
            if ta is None or tb is None:
                missing += 1
            else:
                user = {"role": "user", "content": prompts.get(prompt, "")}
                row["conversation_a"] = [user, {"role": "assistant", "content": ta}]
                row["conversation_b"] = [user, {"role": "assistant", "content": tb}]
                row["turn"] = 1
                ca, cb = style_counts(ta), style_counts(tb)
                row["conv_metadata"] = {**_metadata(ca, "a"), **_metadata(cb, "b")}
                for name in STYLE_FEATURES:
                    row[f"feature_{name}_a"], row[f"feature_{name}_b"] = ca[name], cb[name]
        rows.append(row)
    if not rows:
        raise InputError(f"{run_dir}: no successful judgment in the store ({failed} failed); run `arena tournament` first")
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, out)  # never half a file under the final name
    return ExportSummary(path=out, battles=len(rows), failed=failed, missing_generations=missing)
