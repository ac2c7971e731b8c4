"""A vector judge for the multi-criteria tournament tests (registered as `criteria_helpers` by
conftest.py; importable as `python:criteria_helpers:<name>`). Kept out of `tournament_helpers`,
whose source is part of its judges' fingerprints and so of the golden files."""

from __future__ import annotations

import math

import tournament_helpers as h


def helpful_judge(prompt: str, a: str, b: str) -> float:
    """The criterion "helpful" of `vector_judge`: the helpers' hash judge."""
    return h.judge(prompt, a, b)


def brief_judge(prompt: str, a: str, b: str) -> float:
    """The criterion "brief" of `vector_judge`: the shorter response wins."""
    return 1 / (1 + math.exp((len(a) - len(b)) / 5))


def vector_judge(prompt: str, a: str, b: str) -> dict[str, float]:
    """helpful and brief, with brief failing (NaN) on some comparisons."""
    out = {"helpful": helpful_judge(prompt, a, b), "brief": brief_judge(prompt, a, b)}
    if h._score(prompt + a + b) < 0.2:
        out["brief"] = float("nan")
    return out


vector_judge.criteria = ("helpful", "brief")
