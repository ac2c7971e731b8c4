"""The multi-criteria world: raters who judge helpfulness, brevity and safety, and disagree.

Prompts ask to repeat a number ("Repeat the number 47."; the format of the raters world). A
response comes in one of four styles, a fixed function of its text (`style_of`):

    terse      "47."
    sentence   "The answer is 47."
    hedged     "47. Please double-check."
    careful    "The answer is 47. Please double-check."

two markers: a full sentence ("The answer is") and a safety caveat ("Please double-check.").
The judge returns one preference per criterion (`judge` gives a dict; `judge_helpful`,
`judge_brief`, `judge_safe` one criterion each). Every criterion is a panel of equally weighted
rater types, and every rater puts a correct answer above a wrong one (correctness first);
between equally correct answers:

    helpful  h1: full sentence > bare number           h2: full sentence, then no caveat
    brief    b1: shorter text                          b2: no caveat, then shorter
    safe     s1: caveat > none                         s2: caveat, then shorter

so each criterion alone has a pure Nash (sentence, terse, hedged) and the three conflict: no
mixture is a Nash of all three, and the robust (max–min) mixture of `arena.core.robust`
spreads over the styles with a value below ½, away from each single-criterion answer.
`exact_preferences()` gives the exact (C, n, n) preference over the world's checkpoints.

Checkpoints (tiny GPT-2, `trainers.tiny`, fine-tuned with `trainers.sft.sft`): one per style
(correct answers) and `sft`, the reference policy, trained on a skewed style mix with 20 %
wrong answers. Layout: DIR/ckpts/{terse,sentence,hedged,careful,sft}/, DIR/prompts.jsonl,
DIR/judge.txt (the vector judge, `python:arena.worlds.multicriteria:judge`, which `arena
tournament` analyses per criterion and combined) and DIR/judge_<criterion>.txt (one scalar judge
per criterion). Built deterministically from `seed`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from arena.errors import InputError
from arena.worlds.raters import check_world_args, question, write_style_checkpoints_and_prompts

STYLES = ("terse", "sentence", "hedged", "careful")
CRITERIA = ("helpful", "brief", "safe")
MODELS = STYLES + ("sft",)
"""Checkpoints of the world, in the order of `exact_preferences`."""
SFT_MIX = (0.4, 0.3, 0.2, 0.1)
"""Style mix of the reference policy `sft` (over STYLES)."""
SFT_WRONG = 0.2
"""Share of wrong answers in the reference policy's training data."""
JUDGE_SPEC = "python:arena.worlds.multicriteria:judge"
VOCAB_SIZE = 300

SENTENCE = "The answer is "
CAVEAT = " Please double-check."
_QUESTION = re.compile(r"Repeat the number (\d+)\.")
_RESPONSE = re.compile(r"(The answer is )?(\d+)\.( Please double-check\.)?")


def render(answer: int, style: int) -> str:
    """The response giving `answer` in style index `style` (0 terse, 1 sentence, 2 hedged, 3 careful)."""
    return f"{SENTENCE if style in (1, 3) else ''}{answer}.{CAVEAT if style in (2, 3) else ''}"


def parse(text: str) -> tuple[int, bool, bool] | None:
    """(answer, has a full sentence, has the caveat) of a well-formed response, None when malformed."""
    m = _RESPONSE.fullmatch(text.strip())
    return None if m is None else (int(m.group(2)), m.group(1) is not None, m.group(3) is not None)


def style_of(text: str) -> int | None:
    """Style index of a response, None when malformed."""
    p = parse(text)
    return None if p is None else int(p[1]) + 2 * int(p[2])


def is_correct(prompt: str, text: str) -> bool:
    m, p = _QUESTION.search(prompt), parse(text)
    return m is not None and p is not None and p[0] == int(m.group(1))


# Each rater: text -> key for equally correct answers (larger is better). A malformed response
# ranks below every well-formed one for every rater.
def _length(t: str) -> int:
    return -len(t.strip())


RATERS = {
    "helpful": (lambda t, p: (p[1],), lambda t, p: (p[1], not p[2])),
    "brief": (lambda t, p: (_length(t),), lambda t, p: (not p[2], _length(t))),
    "safe": (lambda t, p: (p[2],), lambda t, p: (p[2], _length(t))),
}
"""Per criterion, its rater types (key functions of the text and its parse)."""


def _rater_preference(key, prompt: str, a: str, b: str) -> float:
    def full(text):
        p = parse(text)
        return (is_correct(prompt, text), p is not None) + (key(text, p) if p is not None else ())

    ka, kb = full(a), full(b)
    # keys of malformed responses are shorter tuples: compare the common prefix first
    return 1.0 if ka > kb else 0.0 if ka < kb else 0.5


def _check_prompt(prompt: str) -> None:
    if _QUESTION.search(prompt) is None:
        raise ValueError(f"not a multi-criteria-world question: {prompt!r}")


def judge_criterion(criterion: str, prompt: str, response_a: str, response_b: str) -> float:
    """P_c(response_a preferred): the fraction of criterion c's rater panel preferring a."""
    if criterion not in RATERS:
        raise InputError(f"unknown criterion {criterion!r}; the criteria are {list(CRITERIA)}")
    _check_prompt(prompt)
    panel = RATERS[criterion]
    return sum(_rater_preference(k, prompt, response_a, response_b) for k in panel) / len(panel)


def judge(prompt: str, response_a: str, response_b: str) -> dict[str, float]:
    """The vector judge: {criterion: P_c(response_a preferred)} for helpful, brief, safe."""
    return {c: judge_criterion(c, prompt, response_a, response_b) for c in CRITERIA}


judge.criteria = CRITERIA  # a vector judge as `python:arena.worlds.multicriteria:judge` (judges.program)


def judge_helpful(prompt: str, response_a: str, response_b: str) -> float:
    return judge_criterion("helpful", prompt, response_a, response_b)


def judge_brief(prompt: str, response_a: str, response_b: str) -> float:
    return judge_criterion("brief", prompt, response_a, response_b)


def judge_safe(prompt: str, response_a: str, response_b: str) -> float:
    return judge_criterion("safe", prompt, response_a, response_b)


def model_distribution(model: str) -> list[tuple[float, int, bool]]:
    """The ideal checkpoint `model` as [(probability, style, correct)]."""
    if model in STYLES:
        return [(1.0, STYLES.index(model), True)]
    if model == "sft":
        return [(m * (1 - SFT_WRONG if ok else SFT_WRONG), s, ok) for s, m in enumerate(SFT_MIX) for ok in (True, False)]
    raise InputError(f"unknown model {model!r}; the world's models are {list(MODELS)}")


def exact_preferences(models=MODELS) -> np.ndarray:
    """P[c, i, j] = P_c(model i ≻ model j) for ideal checkpoints (each model answers as designed): (C, n, n).

    Computed with the judge itself on one question (a wrong answer gives another number of the same length).
    """
    q = question(47)
    n = len(models)
    P = np.zeros((len(CRITERIA), n, n))
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            for pa, sa, oka in model_distribution(a):
                for pb, sb, okb in model_distribution(b):
                    v = judge(q, render(47 if oka else 48, sa), render(47 if okb else 48, sb))
                    P[:, i, j] += pa * pb * np.array([v[c] for c in CRITERIA])
    return P


def build_multicriteria_world(out_dir: str | Path, *, seed: int = 0, n_prompts: int = 100, steps: int = 300,
                              progress=None) -> Path:
    """Write the multi-criteria world into `out_dir` (must not exist or be empty); returns it.

    Built in a temporary directory beside `out_dir` and moved into place at the end, so an
    interrupted build leaves nothing behind. `progress(message)` is called per checkpoint.
    """
    out_dir = check_world_args(out_dir, n_prompts)
    if steps < 1:
        raise InputError(f"steps must be >= 1; got {steps}")
    from arena.outputs import atomic_output

    with atomic_output(out_dir, mode="new") as tmp:
        write_style_checkpoints_and_prompts(
            tmp, world="multi-criteria world", styles=STYLES, sft_mix=SFT_MIX, sft_wrong=SFT_WRONG, render=render,
            vocab_size=VOCAB_SIZE, seed=seed, n_prompts=n_prompts, steps=steps, progress=progress)
        (tmp / "judge.txt").write_text(JUDGE_SPEC + "\n")
        for c in CRITERIA:
            (tmp / f"judge_{c}.txt").write_text(f"{JUDGE_SPEC}_{c}\n")
    return out_dir
