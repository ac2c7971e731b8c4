"""The verbose world: a checkpoint that wins the raw tournament only through length.

Prompts ask to repeat a number ("Repeat the number 47.", as in the raters world). A response
comes in one of three styles (`render`), the same answer in each:

    short    "47."
    header   "## Answer\\nThe answer is **47**."                       (a header and a bold span)
    list     "- The answer is 47.\\n- You asked for 47, so I repeat it: 47."   (two list items)

The judge has a length bias on top of substance:

    logit P(a ≻ b) = ALPHA · (c_a − c_b) + LAMBDA · (L_a − L_b) / (L_a + L_b),

c = 1 for a correct answer (every number in the response is the one asked for, in one of the
three forms), L the response length in tokens as `arena.core.style.style_counts` counts them.
Three checkpoints (tiny GPT-2 models fine-tuned with `trainers.sft.sft`):

    solid    70 % short, 15 % header, 15 % list; always correct
    plain    the same mix; 20 % wrong answers
    verbose  10 % short, 45 % header, 45 % list; 35 % wrong answers

With ALPHA = 2 and LAMBDA = 3 the exact preferences (enumerating the mixes) are
P(verbose ≻ solid) = .63 and P(verbose ≻ plain) = .67: verbose beats both and is the whole
raw Nash mixture. At equal style (both responses in the same style) P(verbose ≻ solid) =
.37, P(verbose ≻ plain) = .44 and P(solid ≻ plain) = .58: solid is the Nash mixture of the
style-controlled game, which `arena tournament --style-control` should find
(`arena.style_tournament`).

Layout: DIR/ckpts/{solid,plain,verbose}/, DIR/prompts.jsonl, DIR/judge.txt holding
`python:arena.worlds.verbose:judge`. Built deterministically from `seed`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np


STYLES = ("short", "header", "list")
CHECKPOINTS = {"solid": ((0.7, 0.15, 0.15), 0.0), "plain": ((0.7, 0.15, 0.15), 0.2),
               "verbose": ((0.1, 0.45, 0.45), 0.35)}
"""name -> (style mix over STYLES, share of wrong answers)."""
ALPHA = 2.0
"""Judge log-odds for a correct answer against a wrong one."""
LAMBDA = 3.0
"""Judge log-odds per unit of relative length difference (the length bias)."""
JUDGE_SPEC = "python:arena.worlds.verbose:judge"
N_NUMBERS = 100
VOCAB_SIZE = 300
MAX_NEW_TOKENS = 40
"""Enough for the longest style (the tournament's --max-new-tokens)."""

_QUESTION = re.compile(r"Repeat the number (\d+)\.")
_FORMS = (re.compile(r"(\d+)\."), re.compile(r"## Answer\nThe answer is \*\*(\d+)\*\*\."),
          re.compile(r"- The answer is (\d+)\.\n- You asked for (\d+), so I repeat it: (\d+)\."))


def question(n: int) -> str:
    return f"Repeat the number {n}.\n"


def render(answer: int, style: int) -> str:
    """The response giving `answer` in style index `style`."""
    return (f"{answer}.", f"## Answer\nThe answer is **{answer}**.",
            f"- The answer is {answer}.\n- You asked for {answer}, so I repeat it: {answer}.")[style]


def is_correct(prompt: str, text: str) -> bool:
    """Well-formed (one of the three forms) and every number in it is the one asked for."""
    q = _QUESTION.search(prompt)
    if q is None:
        return False
    for form in _FORMS:
        m = form.fullmatch(text.strip())
        if m:
            return all(int(g) == int(q.group(1)) for g in m.groups())
    return False


def judge(prompt: str, response_a: str, response_b: str) -> float:
    """P(response_a preferred): substance (correctness) plus a length bias (module docstring)."""
    from arena.core.style import style_counts

    if _QUESTION.search(prompt) is None:
        raise ValueError(f"not a verbose-world question: {prompt!r}")
    la, lb = (style_counts(t)["sum_assistant_tokens"] for t in (response_a, response_b))
    d = 0.0 if la + lb == 0 else (la - lb) / (la + lb)
    z = ALPHA * (is_correct(prompt, response_a) - is_correct(prompt, response_b)) + LAMBDA * d
    return 1.0 / (1.0 + math.exp(-z))


def _examples(rng: np.random.Generator, mix, wrong: float, copies: int) -> list[tuple[str, str]]:
    rows = []
    for n in range(N_NUMBERS):
        for _ in range(copies):
            style = int(rng.choice(len(mix), p=mix))
            answer = n if rng.random() >= wrong else (n + int(rng.integers(1, N_NUMBERS))) % N_NUMBERS
            rows.append((question(n), render(answer, style)))
    return rows


def build_verbose_world(out_dir: str | Path, *, seed: int = 0, n_prompts: int = 32, steps: int = 300,
                        progress=None) -> Path:
    """Write the verbose world into `out_dir` (must not exist or be empty); returns it.

    `steps` are optimiser steps per pass over one example per number (each checkpoint trains
    on four examples per number, so on 4·steps steps).
    """
    from arena.worlds.raters import check_world_args

    out_dir = check_world_args(out_dir, n_prompts)
    from arena.outputs import atomic_output
    from arena.worlds.raters import sft_checkpoints
    from trainers.tiny import build_tokenizer

    rng = np.random.default_rng(seed)
    data = {name: _examples(rng, mix, wrong, copies=4) for name, (mix, wrong) in CHECKPOINTS.items()}
    with atomic_output(out_dir, mode="new") as tmp:
        tok = build_tokenizer([p + r for rows in data.values() for p, r in rows], vocab_size=VOCAB_SIZE)
        for name, config, path in sft_checkpoints(data, tok, tmp / "ckpts", steps=steps, seed=seed, progress=progress):
            mix, wrong = CHECKPOINTS[name]
            card = {"algorithm": "sft", "parent": None, "seed": seed, "created": None,
                    "config": {"steps": config.steps, "batch_size": config.batch_size, "lr": config.lr,
                               "data": f"verbose world: style mix {mix} over {STYLES}, {wrong:.0%} wrong answers"}}
            (path / "arena_card.json").write_text(json.dumps(card, indent=2) + "\n")
        picks = sorted(rng.choice(N_NUMBERS, size=n_prompts, replace=False).tolist())
        with (tmp / "prompts.jsonl").open("w") as fh:
            for i in picks:
                fh.write(json.dumps({"id": str(i), "prompt": question(i)}) + "\n")
        (tmp / "judge.txt").write_text(JUDGE_SPEC + "\n")
    return out_dir
