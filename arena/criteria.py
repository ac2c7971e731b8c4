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

The robust mixture carries intervals (`arena.core.robust.robust_uncertainty`) from R joint
resamples (R = min(rounds, NASH_ROUNDS), as the ordinary Nash): every criterion is resampled
with the same draw of whole prompts (the cluster bootstrap over the union of the criteria's
prompt ids), so a prompt on which the criteria disagree moves them together; without prompt
ids, each criterion's comparisons are resampled on their own (multinomial). The weighted
mixture is re-solved on the same resamples (`weighted_uncertainty`): percentile intervals of
its weights and of what it guarantees on each criterion. See docs/criteria.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from arena.errors import InputError

__all__ = ["analyze_criteria", "criteria_reading", "weighted_uncertainty", "CONFLICT_TOL"]

#: the criteria conflict when the robust value is below ½ by more than this
CONFLICT_TOL = 1e-6
P_DECIMALS = 9  # as arena.analysis: probabilities and weights
SIG_DIGITS = 8
ROBUST_ESTIMATOR = ("maximin LP over the criteria's point-estimate matrices (arena.core.robust.robust_mixture), "
                    "maximum-entropy among the maximin mixtures")
ROBUST_CI = ("percentile intervals of the maximin mixture re-solved on {rounds} joint resamples of the criteria "
             "({method}; arena.core.robust.robust_uncertainty)")
WEIGHTED_ESTIMATOR = ("maximum-entropy Nash of P_w = sum_c w_c P_c over the point-estimate matrices "
                      "(arena.core.robust.weighted_nash)")
WEIGHTED_CI = ("percentile intervals of the weighted Nash re-solved on {rounds} joint resamples of the criteria "
               "({method}; the same resamples as the robust mixture's)")


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


def criteria_reading(result: Mapping) -> str:
    """The reading of a multi-criteria result dict (as `analyze_criteria` returns it, or an older
    results.json), from this version's rules: `arena report` re-reads stored files with it."""
    names = list(result["settings"]["criteria"])
    robust = result["robust"]
    nash_guarantees = {c: result["guarantees"][f"nash[{c}]"] for c in names}
    return _reading(names, robust, result.get("weighted"), nash_guarantees, robust.get("unplayed_pairs") or {})


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
    if robust.get("value_interval") is not None:
        lo, hi = robust["value_interval"]
        lines.append(f"Robust value interval [{lo:.3f}, {hi:.3f}]; the binding criteria are the same in "
                     f"{100 * robust['binding_stability']:.0f}% of the resamples; the reported mixture keeps at least "
                     f"{robust['guarantee_lower']:.3f} on every criterion in {100 * robust['level']:.0f}% of them.")
        if weighted is not None and weighted.get("criterion_values_interval") is not None:
            g = weighted["criterion_values_interval"]
            low = min(weighted["criterion_values"], key=weighted["criterion_values"].get)
            lines.append(f"The weighted mixture's guarantee on {low}: [{g[low][0]:.3f}, {g[low][1]:.3f}] "
                         f"({100 * weighted['level']:.0f}% interval, re-solved per resample).")
    else:
        lines.append("The robust and weighted mixtures are point estimates (no interval).")
    return " ".join(lines)


def _resampled_games(records_by_criterion, names, n: int, *, rounds: int, seed: int) -> tuple[np.ndarray, str]:
    """(R, C, n, n) preference matrices of R joint resamples (module docstring), and the scheme's name."""
    recs = [records_by_criterion[c] for c in names]
    rng = np.random.default_rng([int(seed), 0xC417])  # a stream of its own, apart from analyze_records'
    cells = n * n

    def matrix(W):  # (R, n·n) soft wins -> (R, n, n) P, ½ where unplayed (as preference_matrix_from_counts)
        W = W.reshape(-1, n, n)
        N = W + np.swapaxes(W, 1, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            P = np.where(N > 0, (W / N + 1.0 - np.swapaxes(W, 1, 2) / N) / 2.0, 0.5)
        idx = np.arange(n)
        P[:, idx, idx] = 0.5
        return P

    if all(r.cluster is not None for r in recs):
        ids = np.unique(np.concatenate([np.asarray(r.cluster) for r in recs]))
        K = ids.size
        counts = rng.multinomial(K, np.full(K, 1.0 / K), size=rounds).astype(np.float64)  # (R, K)
        out = []
        for r in recs:
            k = np.searchsorted(ids, np.asarray(r.cluster))
            Wk = np.bincount(k * cells + r.a * n + r.b, weights=r.score, minlength=K * cells)
            Wk += np.bincount(k * cells + r.b * n + r.a, weights=1.0 - r.score, minlength=K * cells)
            out.append(matrix(counts @ Wk.reshape(K, cells)))
        return np.stack(out, axis=1), f"cluster bootstrap over {K} prompts, shared by the criteria"
    out = []
    for r in recs:
        m = len(r)
        counts = rng.multinomial(m, np.full(m, 1.0 / m), size=rounds).astype(np.float64)  # (R, m)
        W = np.zeros((rounds, cells))
        np.add.at(W.T, r.a * n + r.b, (counts * r.score).T)
        np.add.at(W.T, r.b * n + r.a, (counts * (1.0 - r.score)).T)
        out.append(matrix(W))
    return np.stack(out, axis=1), "multinomial bootstrap of each criterion's comparisons (no prompt ids)"


def _resamples(records_by_criterion, names, models, analyze_kwargs) -> tuple[np.ndarray, str] | None:
    """The joint resamples both mixtures' intervals use ((R, C, n, n), scheme), None without the bootstrap."""
    from arena.core.uncertainty import NASH_ROUNDS

    rounds = int(analyze_kwargs.get("rounds", 1000))
    if analyze_kwargs.get("ci", "bootstrap") != "bootstrap" or rounds < 1:
        return None
    return _resampled_games(records_by_criterion, names, len(models), rounds=min(rounds, NASH_ROUNDS),
                            seed=int(analyze_kwargs.get("seed", 0)))


def weighted_uncertainty(S: np.ndarray, w: np.ndarray, p: np.ndarray, values: np.ndarray, *,
                         level: float = 0.95) -> dict:
    """The weighted Nash re-solved on each resampled game S (R, C, n, n): percentile intervals.

    p (n,), values (C,): the point estimate's mixture and its guarantee per criterion. Returns
    arrays `weights_lo`, `weights_hi` (n,) of the mixture's weights and `values_lo`,
    `values_hi` (C,) of what each round's mixture guarantees per criterion
    (`criterion_values`), each widened to contain the estimate (as `robust_uncertainty`), and
    `rounds`.
    """
    from arena.core.robust import criterion_values, weighted_nash

    alpha = (1.0 - float(level)) / 2.0
    mixtures = [weighted_nash(P, w).p for P in S]
    W = np.array(mixtures)                                                      # (R, n)
    V = np.array([criterion_values(P, q) for P, q in zip(S, mixtures)])         # (R, C)
    w_lo, w_hi = np.quantile(W, [alpha, 1.0 - alpha], axis=0)
    v_lo, v_hi = np.quantile(V, [alpha, 1.0 - alpha], axis=0)
    return {"weights_lo": np.minimum(w_lo, p), "weights_hi": np.maximum(w_hi, p),
            "values_lo": np.minimum(v_lo, values), "values_hi": np.maximum(v_hi, values), "rounds": len(mixtures)}


def _robust_intervals(resampled, names, models, rob, analyze_kwargs) -> dict:
    """The robust mixture's interval fields (None without the bootstrap)."""
    from arena.core.robust import robust_uncertainty

    level = float(analyze_kwargs.get("level", 0.95))
    if resampled is None:
        return {"weights_interval": None, "value_interval": None, "binding_share": None, "binding_stability": None,
                "guarantee_lower": None, "level": level, "rounds": 0, "ci": None}
    S, method = resampled
    u = robust_uncertainty(S, rob, level=level)
    return {
        "weights_interval": {m: [_prob(lo), _prob(hi)] for m, lo, hi in zip(models, u.weights_lo, u.weights_hi)},
        "value_interval": [_prob(u.value_lo), _prob(u.value_hi)],
        "binding_share": {c: _prob(x) for c, x in zip(names, u.binding_share)},
        "binding_stability": _prob(u.binding_same),
        "guarantee_lower": _prob(u.guarantee_lower),
        "level": level,
        "rounds": u.rounds,
        "failed_rounds": u.failed,
        "ci": ROBUST_CI.format(rounds=u.rounds, method=method),
    }


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
    resampled = _resamples(records_by_criterion, names, models, analyze_kwargs)
    robust.update(_robust_intervals(resampled, names, models, rob, analyze_kwargs))
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
            "weights_interval": None, "criterion_values_interval": None,
            "level": float(analyze_kwargs.get("level", 0.95)), "rounds": 0, "ci": None,
        }
        if resampled is not None:
            S, method = resampled
            u = weighted_uncertainty(S, w, eq.p, g, level=weighted["level"])
            weighted.update({
                "weights_interval": {m: [_prob(lo), _prob(hi)]
                                     for m, lo, hi in zip(models, u["weights_lo"], u["weights_hi"])},
                "criterion_values_interval": {c: [_prob(lo), _prob(hi)]
                                              for c, lo, hi in zip(names, u["values_lo"], u["values_hi"])},
                "rounds": u["rounds"],
                "ci": WEIGHTED_CI.format(rounds=u["rounds"], method=method),
            })
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
