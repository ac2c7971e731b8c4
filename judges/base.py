"""The judge protocol, typed failures, and both-order judging written once for every backend.

A judge answers P(y ≻ y' | x) for a batch of comparisons, in ONE order: the probability that
the response shown first (`response_a`) is preferred. LLM judges favour a position (Zheng et
al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", arXiv 2306.05685,
§3.3-3.4), so every comparison is judged in both orders and the two are combined:

    p_ab = judge(x, a, b)              P(a ≻ b | a shown first)
    p_ba = 1 - judge(x, b, a)          P(a ≻ b | b shown first)
    p    = (p_ab + p_ba) / 2           the position-debiased estimate

A verdict that cannot be obtained is a `Failure(reason)`, never a number: a parsed "-1"
that an un-swap turns into "second response wins" (1 - (-1) = 2, clipped to a win) is a
real bug in a well-known library. Here a failure in either order makes `p` None and carries
its reason; `position_report` never counts failures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# A verdict exactly at ½ counts as "no preference" when comparing the two orders.
TIE_TOL = 1e-9


@dataclass(frozen=True)
class Comparison:
    """One pairwise question: which of `response_a`, `response_b` better answers `prompt`."""

    prompt: str
    response_a: str
    response_b: str

    def swapped(self) -> "Comparison":
        """The same question with the responses shown in the other order."""
        return Comparison(self.prompt, self.response_b, self.response_a)


@dataclass(frozen=True)
class Failure:
    """A verdict that could not be obtained; `reason` says why. Never a number.

    The reason passes `arena.redact.redact` here, once for every backend: a server or a user's
    judge that echoes an API key cannot get it into the store or onto the terminal.
    """

    reason: str

    def __post_init__(self):
        if not isinstance(self.reason, str) or not self.reason:
            raise TypeError(f"Failure.reason must be a non-empty string; got {self.reason!r}")
        from arena.redact import redact

        object.__setattr__(self, "reason", redact(self.reason))


@runtime_checkable
class Judge(Protocol):
    """Anything with a stable `fingerprint` and a batched single-order `judge` method."""

    fingerprint: str

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        """P(response_a preferred | response_a shown first) per comparison, or a Failure."""
        ...


@dataclass(frozen=True)
class PairVerdict:
    """Both-order result for one comparison.

    p_ab: P(a preferred | a shown first); p_ba: P(a preferred | b shown first) = 1 - judge(b, a);
    p: (p_ab + p_ba) / 2, None whenever either order failed; error: None or the reason(s).
    """

    p: float | None
    p_ab: float | None
    p_ba: float | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.p is not None


def as_verdict(value) -> float | Failure:
    """A judge's raw answer checked: a finite probability in [0, 1], else a Failure.

    Booleans, NaN, infinities, strings, None and numbers outside [0, 1] are failures with a
    reason: a bad value is never clipped into a win.
    """
    if isinstance(value, Failure):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_numpy_scalar(value):
        return Failure(f"judge returned {value!r} ({type(value).__name__}); expected a probability in [0, 1]")
    x = float(value)
    if not math.isfinite(x) or x < 0.0 or x > 1.0:
        return Failure(f"judge returned {x!r}; expected a probability in [0, 1]")
    return x


def _is_numpy_scalar(value) -> bool:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, np.floating | np.integer)


def _comparison_list(comparisons) -> list:
    """`comparisons` as a list, each checked to be a `Comparison` (the two both-order helpers' input)."""
    comparisons = list(comparisons)
    for i, c in enumerate(comparisons):
        if not isinstance(c, Comparison):
            raise TypeError(f"comparisons[{i}] is {type(c).__name__}; build it with judges.Comparison(prompt, a, b)")
    return comparisons


def judge_both_orders(judge: Judge, comparisons: Sequence[Comparison]) -> list[PairVerdict]:
    """Judge each comparison as (a, b) and as (b, a) in one batched call; combine per pair.

    Both orders go to the backend in a single `judge` call (2n comparisons: the n originals,
    then the n swapped) so a backend batches across them. A result list of the wrong length
    is a bug in the backend and raises; a bad single value becomes a Failure.
    """
    comparisons = _comparison_list(comparisons)
    n = len(comparisons)
    if n == 0:
        return []
    raw = judge.judge(comparisons + [c.swapped() for c in comparisons])
    raw = list(raw)
    if len(raw) != 2 * n:
        raise RuntimeError(
            f"judge {getattr(judge, 'fingerprint', judge)!r} returned {len(raw)} verdicts for {2 * n} comparisons"
        )
    verdicts = []
    for first, second in zip(raw[:n], raw[n:]):
        first, second = as_verdict(first), as_verdict(second)
        p_ab = None if isinstance(first, Failure) else first
        # Un-swap only real numbers: a failure stays a failure (never 1 - failure).
        p_ba = None if isinstance(second, Failure) else 1.0 - second
        errors = []
        if isinstance(first, Failure):
            errors.append(f"a first: {first.reason}")
        if isinstance(second, Failure):
            errors.append(f"b first: {second.reason}")
        p = None if p_ab is None or p_ba is None else 0.5 * (p_ab + p_ba)
        verdicts.append(PairVerdict(p=p, p_ab=p_ab, p_ba=p_ba, error="; ".join(errors) or None))
    return verdicts


def position_report(verdicts: Sequence[PairVerdict]) -> dict:
    """Position-bias diagnostics over the pairs judged successfully in both orders.

    consistency: share of pairs whose preferred response is the same in both orders
      (sign of p_ab - ½ equals sign of p_ba - ½; a tie counts as its own side).
    first_position_rate: mean probability that the response shown first is preferred,
      over both orders: mean of p_ab and 1 - p_ba = judge(b, a). An unbiased judge gives ½
      (content effects cancel because every pair is seen both ways); one that always says
      "the first" gives 1.
    failures: pairs with a failure in either order (excluded from the two rates).
    n: pairs in total. Rates are None when no pair succeeded.
    """
    ok = [v for v in verdicts if v.p_ab is not None and v.p_ba is not None]
    failures = len(verdicts) - len(ok)
    if not ok:
        return {"consistency": None, "first_position_rate": None, "failures": failures, "n": len(verdicts)}
    consistent = sum(_side(v.p_ab) == _side(v.p_ba) for v in ok)
    first = sum(v.p_ab + (1.0 - v.p_ba) for v in ok) / (2 * len(ok))
    return {
        "consistency": consistent / len(ok),
        "first_position_rate": first,
        "failures": failures,
        "n": len(verdicts),
    }


def _side(p: float) -> int:
    return 0 if abs(p - 0.5) <= TIE_TOL else (1 if p > 0.5 else -1)


# ---------------------------------------------------------------------------- vector judges

#: a criterion name: letters, digits, _ and -, starting with a letter or _
CRITERION_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"

@runtime_checkable
class VectorJudge(Protocol):
    """A judge that answers one preference per named criterion (helpful, honest, ...).

    `judge_vector` returns, per comparison (single order, as `Judge.judge`), a dict
    {criterion: P_c(response_a preferred) or Failure}, or one Failure for every criterion.
    A vector judge also has the scalar `judge` (the equal-weight mean, a failure when any
    criterion failed), so it runs wherever a scalar judge does.
    """

    fingerprint: str
    criteria: tuple[str, ...]

    def judge_vector(self, comparisons: Sequence[Comparison]) -> list[dict | Failure]:
        ...


def is_vector(judge) -> bool:
    """True when `judge` answers one preference per criterion (`VectorJudge`)."""
    return isinstance(getattr(judge, "criteria", None), tuple) and callable(getattr(judge, "judge_vector", None))


def as_criteria(value, criteria: Sequence[str]) -> dict[str, float | Failure]:
    """A vector judge's raw answer for one comparison, checked per criterion.

    A Failure (or anything that is not a dict) fails every criterion with the reason; a missing
    criterion fails that criterion alone; each value goes through `as_verdict`. Keys that are
    not criteria are ignored (a misspelt one shows up as the real criterion missing).
    """
    if isinstance(value, Failure):
        return {c: value for c in criteria}
    if not isinstance(value, dict):
        f = Failure(f"vector judge returned {type(value).__name__}; expected a dict {{criterion: probability}}")
        return {c: f for c in criteria}
    return {c: as_verdict(value[c]) if c in value else Failure(f"no verdict for criterion {c!r} "
                                                                  f"(the judge returned {sorted(map(str, value))})")
            for c in criteria}


def mean_of_criteria(answers: Sequence[dict | Failure], criteria: Sequence[str]) -> list[float | Failure]:
    """The scalar `judge` of a vector judge: the equal-weight mean, a Failure naming the failed criteria."""
    out: list[float | Failure] = []
    for value in answers:
        v = as_criteria(value, criteria)
        failed = [f"{c}: {x.reason}" for c, x in v.items() if isinstance(x, Failure)]
        out.append(Failure("; ".join(failed)) if failed else sum(v.values()) / len(criteria))
    return out


def judge_vector_both_orders(judge, comparisons: Sequence[Comparison]) -> list[dict[str, PairVerdict]]:
    """`judge_both_orders` per criterion: {criterion: PairVerdict} per comparison.

    One batched `judge_vector` call over the n originals then the n swapped; each criterion is
    un-swapped and debiased on its own, and a criterion that failed in either order is a failure
    for that criterion only (p None with the reason), never a tie.
    """
    comparisons = _comparison_list(comparisons)
    n = len(comparisons)
    if n == 0:
        return []
    raw = list(judge.judge_vector(comparisons + [c.swapped() for c in comparisons]))
    if len(raw) != 2 * n:
        raise RuntimeError(f"judge {getattr(judge, 'fingerprint', judge)!r} returned {len(raw)} verdicts "
                           f"for {2 * n} comparisons")
    out = []
    for first, second in zip(raw[:n], raw[n:]):
        first, second = as_criteria(first, judge.criteria), as_criteria(second, judge.criteria)
        per = {}
        for c in judge.criteria:
            x, y = first[c], second[c]
            p_ab = None if isinstance(x, Failure) else x
            p_ba = None if isinstance(y, Failure) else 1.0 - y
            errors = [f"{side}: {v.reason}" for side, v in (("a first", x), ("b first", y)) if isinstance(v, Failure)]
            p = None if p_ab is None or p_ba is None else 0.5 * (p_ab + p_ba)
            per[c] = PairVerdict(p=p, p_ab=p_ab, p_ba=p_ba, error="; ".join(errors) or None)
        out.append(per)
    return out


def combine_criteria(verdicts: dict[str, PairVerdict]) -> PairVerdict:
    """The equal-weight mean of one comparison's per-criterion verdicts (a failure if any failed)."""
    failed = [f"{c}: {v.error}" for c, v in verdicts.items() if not v.ok]
    if failed:
        return PairVerdict(p=None, p_ab=None, p_ba=None, error="; ".join(failed))
    k = len(verdicts)
    return PairVerdict(p=sum(v.p for v in verdicts.values()) / k, p_ab=sum(v.p_ab for v in verdicts.values()) / k,
                       p_ba=sum(v.p_ba for v in verdicts.values()) / k, error=None)


def check_criterion_names(names: Sequence[str], where: str) -> tuple[str, ...]:
    """Criterion names: non-empty identifiers (letters, digits, _ and -), each once."""
    import re

    from arena.errors import ConfigError

    names = tuple(str(x).strip() for x in names)
    for x in names:
        if not re.fullmatch(CRITERION_NAME, x):
            raise ConfigError(f"criterion name {x!r} in {where} is not a plain name; use letters, digits, _ or -, "
                             "e.g. helpful")
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"{where} needs one or more distinct criterion names; got {list(names)}")
    return names
