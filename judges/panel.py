"""Panels: a weighted mixture of judges, i.e. a population of raters.

P_panel(a ≻ b | x) = Σ_k w_k P_k(a ≻ b | x) / Σ_k w_k. A mixture of individually transitive
raters can be non-transitive (a Condorcet cycle: three rater types with rotated orders),
which is how real non-transitive preferences arise (see DESIGN.md §2).

If any member fails on a comparison the panel fails on it, naming the member: dropping the
member and renormalising would silently change which population is being asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj
from judges.base import Comparison, Failure, Judge, as_verdict


class PanelJudge:
    """Weighted mixture of member judges; weights are normalised to sum to one."""

    def __init__(self, members: Sequence[Judge], weights: Sequence[float], specs: Sequence[str] | None = None):
        if len(members) == 0 or len(members) != len(weights):
            raise ConfigError("a panel needs one weight per member and at least one member")
        for w in weights:
            if not math.isfinite(w) or w <= 0:
                raise ConfigError(f"panel weight {w!r} must be a positive number; write panel:2*SPEC1|1*SPEC2")
        total = float(sum(weights))
        self.members = list(members)
        self.weights = [float(w) / total for w in weights]
        self.specs = list(specs) if specs is not None else [m.fingerprint for m in members]
        self.fingerprint = "panel:" + fingerprint_obj(
            sorted([[round(w, 12), m.fingerprint] for w, m in zip(self.weights, self.members)])
        )

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        comparisons = list(comparisons)
        answers = [list(m.judge(comparisons)) for m in self.members]
        for spec, a in zip(self.specs, answers):
            if len(a) != len(comparisons):
                raise RuntimeError(f"panel member {spec} returned {len(a)} verdicts for {len(comparisons)} comparisons")
        results: list[float | Failure] = []
        for i in range(len(comparisons)):
            total = 0.0
            failure = None
            for spec, w, a in zip(self.specs, self.weights, answers):
                v = as_verdict(a[i])
                if isinstance(v, Failure):
                    failure = Failure(f"panel member {spec}: {v.reason}")
                    break
                total += w * v
            results.append(failure if failure is not None else min(1.0, max(0.0, total)))
        return results

    def __repr__(self) -> str:
        return "PanelJudge(" + " | ".join(f"{w:g}*{s}" for w, s in zip(self.weights, self.specs)) + ")"


def parse_panel(body: str) -> list[tuple[float, str]]:
    """`"2*SPEC1|1*SPEC2"` -> [(2.0, "SPEC1"), (1.0, "SPEC2")]; a missing `W*` means weight 1."""
    members = parse_labelled_panel(body)
    labelled = [label for label, _, _ in members if label is not None]
    if labelled:
        raise ConfigError(f"criterion labels ({', '.join(labelled)}) in a scalar panel; load it with "
                          "judges.load_judge, which builds a criteria panel from panel:helpful=SPEC1|honest=SPEC2")
    return [(w, spec) for _, w, spec in members]


def parse_labelled_panel(body: str) -> list[tuple[str | None, float, str]]:
    """`"helpful=2*SPEC1|honest=SPEC2"` -> [("helpful", 2.0, "SPEC1"), ("honest", 1.0, "SPEC2")].

    The `name=` criterion label is optional (None); either every member has one or none does.
    """
    if not body.strip():
        raise ConfigError("empty panel; write panel:W1*SPEC1|W2*SPEC2 (e.g. panel:2*python:m:f|1*python:m:g), "
                          "or panel:helpful=SPEC1|honest=SPEC2 for one judge per criterion")
    members = []
    for part in body.split("|"):
        part = part.strip()
        if not part:
            raise ConfigError(f"empty member in panel {body!r}; separate members with a single '|'")
        label, part = split_criterion(part)
        part = part.strip()
        weight, star, spec = part.partition("*")
        if star:
            try:
                w = float(weight)
            except ValueError:
                w, spec = 1.0, part  # a '*' inside the spec itself, no weight given
        else:
            w, spec = 1.0, part
        if not math.isfinite(w) or w <= 0:
            raise ConfigError(f"panel weight {weight!r} must be a positive number; write panel:2*SPEC1|1*SPEC2")
        if spec.strip().startswith("panel:"):
            raise ConfigError("panels cannot be nested; flatten them into one panel:W1*SPEC1|W2*SPEC2|...")
        members.append((label, w, spec.strip()))
    labels = [label for label, _, _ in members]
    if any(x is None for x in labels) and any(x is not None for x in labels):
        missing = [spec for label, _, spec in members if label is None]
        raise ConfigError(f"panel members {missing} have no criterion label while others do; label every member "
                          "(panel:helpful=SPEC1|honest=SPEC2) or none")
    return members


class CriteriaPanelJudge:
    """A vector judge from one scalar judge (or weighted panel) per criterion.

    `panel:helpful=SPEC1|honest=SPEC2|honest=2*SPEC3`: each criterion asks its own members
    (a weighted mixture, as `PanelJudge`, when a criterion has several); a member's failure
    fails its criterion only.
    """

    def __init__(self, judges_by_criterion: dict[str, Judge]):
        from judges.base import check_criterion_names

        self.criteria = check_criterion_names(list(judges_by_criterion), "a criteria panel")
        self.members = dict(judges_by_criterion)
        self.fingerprint = "criteria:" + fingerprint_obj([[c, j.fingerprint] for c, j in self.members.items()])

    def judge_vector(self, comparisons: Sequence[Comparison]) -> list[dict]:
        comparisons = list(comparisons)
        answers = {}
        for c, j in self.members.items():
            a = list(j.judge(comparisons))
            if len(a) != len(comparisons):
                raise RuntimeError(f"criterion {c} judge returned {len(a)} verdicts for {len(comparisons)} comparisons")
            answers[c] = a
        return [{c: answers[c][i] for c in self.criteria} for i in range(len(comparisons))]

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        from judges.base import mean_of_criteria

        return mean_of_criteria(self.judge_vector(comparisons), self.criteria)

    def __repr__(self) -> str:
        return "CriteriaPanelJudge(" + " | ".join(f"{c}={j!r}" for c, j in self.members.items()) + ")"


def split_criterion(part: str) -> tuple[str | None, str]:
    """`"helpful=2*SPEC"` -> ("helpful", "2*SPEC"); a member without a `name=` label -> (None, part).

    A spec starts with `backend:`, so a leading `name=` before any ':' is always a label.
    """
    import re

    from judges.base import CRITERION_NAME

    m = re.match(rf"\s*({CRITERION_NAME})\s*=(.*)$", part, flags=re.S)
    if m is None or ":" in m.group(1):
        return None, part
    return m.group(1), m.group(2)
