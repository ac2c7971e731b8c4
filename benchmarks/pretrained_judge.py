"""A python judge with a clear, learnable signal for a *base* pretrained model
(`benchmarks/bench_pretrained.py`): short sums, "What is 7 + 12?", answered after
"Question: {prompt}\\nAnswer:" up to the first newline.

The judge scores one response at a time and compares the scores:

    s(y) = [the first integer in y is the sum] − LENGTH_COST · len(y)      (empty y: s = EMPTY)
    P(a ≻ b) = σ(SHARPNESS · (s(a) − s(b)))

so a correct answer beats a wrong one (P ≈ 0.95), and between two equally correct answers the
shorter wins slightly. The empty answer loses to every non-empty one, so collapsing onto the
end-of-sequence token (the cheapest way to be short) is not rewarded. A base model answers
some sums right and pads many answers with text, so both parts of the signal can be learnt.

Spec: `python:benchmarks.pretrained_judge:judge` (run from the repository root).
"""

from __future__ import annotations

import math
import random
import re

SHARPNESS = 3.0
"""Slope of the logistic link on the score difference (right vs wrong: σ(3) ≈ 0.95)."""
LENGTH_COST = 0.01
"""Score lost per character: 50 characters cost half of a correct answer."""
EMPTY = -1.0
"""Score of an empty (whitespace-only) answer: below any non-empty one up to 200 characters."""

_SUM = re.compile(r"What is (\d+) \+ (\d+)\?")
_INT = re.compile(r"-?\d+")


def make_prompts(n: int, *, seed: int, low: int = 2, high: int = 30) -> list[str]:
    """n prompts "What is a + b?" with a, b uniform in [low, high], drawn from `seed`."""
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    r = random.Random(seed)
    return [f"What is {r.randint(low, high)} + {r.randint(low, high)}?" for _ in range(n)]


def answer(prompt: str) -> int:
    """The sum asked for in a prompt of `make_prompts`."""
    m = _SUM.search(prompt)
    if m is None:
        raise ValueError(f"not a prompt of make_prompts: {prompt!r}; expected 'What is A + B?'")
    return int(m[1]) + int(m[2])


def correct(prompt: str, response: str) -> bool:
    """Whether the first integer in the response is the sum asked for."""
    n = _INT.search(response)
    return n is not None and int(n[0]) == answer(prompt)


def score(prompt: str, response: str) -> float:
    """s(y): 1 for a correct answer, minus LENGTH_COST per character; EMPTY for an empty one."""
    if not response.strip():
        return EMPTY
    return float(correct(prompt, response)) - LENGTH_COST * len(response)


def judge(prompt: str, a: str, b: str) -> float:
    """P(a ≻ b) = σ(SHARPNESS · (s(a) − s(b)))."""
    return 1.0 / (1.0 + math.exp(-SHARPNESS * (score(prompt, a) - score(prompt, b))))
