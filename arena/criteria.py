"""Several criteria in one analysis: per-criterion results, the weighted and the robust mixture.

A multi-criteria pairs file (helpful, honest, harmless, ...; read by
`arena.io_pairs.read_pairs_or_criteria`) gives one `Records` per criterion over the same models.
`analyze_criteria` runs the ordinary single-criterion analysis (`arena.analysis.analyze_records`:
Bradley–Terry, preference matrix, cycles, Nash, with their bootstrap intervals) on each, and
combines the criteria's point-estimate matrices P_c = W_c / N_c (½ where a pair is unplayed) with
`arena.core.robust`:

* **robust**: the max–min mixture π maximising min_c min_π' P_c(π ≻ π') (an LP with a
  certificate); its value is ½ when the criteria share an equilibrium and < ½ when they
  conflict; `binding` names the criteria that hold it back;
* **weighted** (when weights are given): the maximum-entropy Nash of P_w = Σ_c w_c P_c.

The robust and weighted mixtures are point estimates (no interval yet: the per-criterion
bootstrap resamples stay inside `analyze_records`). See docs/criteria.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from arena.errors import InputError

__all__ = ["analyze_criteria", "CONFLICT_TOL"]

#: the criteria conflict when the robust value is below ½ by more than this
CONFLICT_TOL = 1e-6
P_DECIMALS = 9  # as arena.analysis: probabilities and weights
SIG_DIGITS = 8
ROBUST_ESTIMATOR = ("maximin LP over the criteria's point-estimate matrices (arena.core.robust.robust_mixture), "
                    "maximum-entropy among the maximin mixtures; a point estimate (no interval)")
WEIGHTED_ESTIMATOR = ("maximum-entropy Nash of P_w = sum_c w_c P_c over the point-estimate matrices "
                      "(arena.core.robust.weighted_nash); a point estimate (no interval)")


def _prob(x) -> float:
    return round(min(max(float(x), 0.0), 1.0), P_DECIMALS) + 0.0


def _num(x) -> float:
    return float(f"{float(x):.{SIG_DIGITS}g}")


def _as_dict(result) -> dict:
    """analyze_records' result as its JSON dict (a typed result object has `to_json()`)."""
    return result.to_json() if hasattr(result, "to_json") else result


def _point_matrix(records) -> tuple[np.ndarray, int]:
    """(P, unplayed): P = W / N symmetrised (½ where N = 0), and the number of unplayed pairs."""
    from arena.core.matrix import preference_matrix_from_counts
    from arena.core.records import pair_counts

    W, N = pair_counts(records)
    P = np.asarray(preference_matrix_from_counts(W, N).P, dtype=np.float64)
    n = P.shape[0]
    unplayed = int((np.asarray(N)[np.triu_indices(n, 1)] <= 0).sum())
    return P, unplayed


def _reading(names, robust, weighted, nash_guarantees, unplayed) -> str:
    v = robust["value"]
    lines = []
    if robust["conflict"]:
        lines.append(
            f"The criteria conflict: the best mixture for the worst case guarantees a win rate of {v:.3f} (< ½) "
            f"on every criterion against every model; binding: {', '.join(robust['binding'])} "
            "(those hold it back).")
        worst = {c: min(g.values()) for c, g in nash_guarantees.items()}
        lines.append("Each criterion's own Nash mixture guarantees on its weakest criterion: " + ", ".join(
            f"nash[{c}] {w:.3f}" for c, w in worst.items()) + ".")
    else:
        lines.append("The criteria agree: the robust mixture is a Nash equilibrium of every criterion "
                     "(value ½); it is the maximum-entropy one.")
    if weighted is not None:
        g = weighted["criterion_values"]
        low = min(g, key=g.get)
        lines.append("The weighted mixture (" + ", ".join(f"{c}={w:g}" for c, w in weighted["weights"].items())
                     + f") guarantees {g[low]:.3f} on its weakest criterion ({low}).")
    gaps = {c: k for c, k in unplayed.items() if k}
    if gaps:
        lines.append("Unplayed pairs count as ½ in the combinations: " + ", ".join(
            f"{k} in {c}" for c, k in gaps.items()) + ".")
    lines.append("The robust and weighted mixtures are point estimates (no interval).")
    return " ".join(lines)


def analyze_criteria(records_by_criterion: Mapping, *, weights=None, **analyze_kwargs) -> dict:
    """Analyse each criterion's records and combine the criteria (module docstring).

    records_by_criterion: criterion name -> `arena.core.records.Records`, all over the same
        ordered models (as `read_pairs_or_criteria` returns them).
    weights: optional criterion weights (mapping name -> w, missing names 0, or one per
        criterion): >= 0, summing to 1; needs at least two criteria.
    analyze_kwargs: passed to `arena.analysis.analyze_records` for every criterion (rounds,
        seed, level, prior, ci, significant): the same resampling settings for each.

    Returns the JSON dict: `criteria` (name -> the single-criterion result), `robust`
    ({weights, value, binding, exploitability, criterion_values, criterion_weights, gap, ...}),
    `weighted` (None without weights), `guarantees` (mixture -> min_j P_c(mixture ≻ j) per
    criterion: the Pareto picture), `models`, `settings`, `reading`.
    """
    from arena.analysis import analyze_records
    from arena.core.robust import check_weights, criterion_values, robust_mixture, weighted_nash

    if not isinstance(records_by_criterion, Mapping) or not records_by_criterion:
        raise InputError("no criteria given; pass a mapping criterion name -> records (read_pairs_or_criteria)")
    names = tuple(str(c) for c in records_by_criterion)
    models = tuple(next(iter(records_by_criterion.values())).models)
    for c, r in records_by_criterion.items():
        if tuple(r.models) != models:
            raise InputError(f"criterion {c!r} has models {list(r.models)}, not {list(models)}; put every criterion "
                             "over one model list (arena.io_pairs.read_pairs_or_criteria does)")
    w = None
    if weights is not None:
        if len(names) < 2:
            raise InputError(f"weights need at least two criteria; the file has one ({names[0]}): drop --weights")
        w = check_weights(weights, names)

    per = {}
    for c, r in records_by_criterion.items():
        try:
            per[c] = _as_dict(analyze_records(r, **analyze_kwargs))
        except InputError as error:
            raise InputError(f"criterion {c!r}: {error}") from None
    mats = {c: _point_matrix(r) for c, r in records_by_criterion.items()}
    P = np.stack([mats[c][0] for c in names])  # (C, n, n)
    unplayed = {c: mats[c][1] for c in names}

    rob = robust_mixture(P, criteria=names)
    robust = {
        "weights": {m: _prob(x) for m, x in zip(models, rob.weights)},
        "value": _prob(rob.value),
        "binding": list(rob.binding),
        "exploitability": {c: _num(x) for c, x in zip(names, rob.exploitability)},
        "criterion_values": {c: _prob(x) for c, x in zip(names, rob.criterion_values)},
        "criterion_weights": {c: _prob(x) for c, x in zip(names, rob.criterion_weights)},
        "upper_bound": _prob(rob.upper_bound),
        "gap": _num(rob.gap),
        "entropy": _num(rob.entropy),
        "conflict": bool(rob.value < 0.5 - CONFLICT_TOL),
        "unplayed_pairs": unplayed,
        "estimator": ROBUST_ESTIMATOR,
    }
    guarantees = {}
    nash_guarantees = {}
    for k, c in enumerate(names):
        p = np.array([per[c]["nash"]["weights"][m] for m in models], dtype=np.float64)
        g = criterion_values(P, p / p.sum(), criteria=names)
        nash_guarantees[c] = {d: _prob(x) for d, x in zip(names, g)}
        guarantees[f"nash[{c}]"] = nash_guarantees[c]
    weighted = None
    if w is not None:
        eq = weighted_nash(P, w, criteria=names)
        g = criterion_values(P, eq.p, criteria=names)
        weighted = {
            "weights": {c: _num(x) for c, x in zip(names, w)},
            "nash": {
                "weights": {m: _prob(x) for m, x in zip(models, eq.p)},
                "scores": {m: _num(x) for m, x in zip(models, eq.scores)},
                "exploitability": _num(eq.exploitability),
                "entropy": _num(eq.entropy),
            },
            "criterion_values": {c: _prob(x) for c, x in zip(names, g)},
            "estimator": WEIGHTED_ESTIMATOR,
        }
        guarantees["weighted"] = weighted["criterion_values"]
    guarantees["robust"] = robust["criterion_values"]

    first = per[names[0]]
    settings = {k: v for k, v in first.get("settings", {}).items() if k not in ("records", "clusters",
                                                                                "degenerate_rounds")}
    settings.update({
        "input": "pairs (criteria)",
        "criteria": list(names),
        "records": {c: per[c].get("settings", {}).get("records") for c in names},
        "weights": None if weighted is None else weighted["weights"],
    })
    return {
        "schema": first.get("schema"),
        "kind": "criteria",
        "models": list(models),
        "criteria": per,
        "robust": robust,
        "weighted": weighted,
        "guarantees": guarantees,
        "settings": settings,
        "reading": _reading(names, robust, weighted, nash_guarantees, unplayed),
    }
