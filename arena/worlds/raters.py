"""The raters world: a population of three rater types whose tastes cycle.

Prompts are simple questions with a checkable answer: "Repeat the number 47." for the
numbers 0..99 (copying is what a two-layer model learns reliably in seconds; additions
were tried and stay near 60 % correct at that size, which would drown the style effect in
noise). A response comes in one of three styles, recognised by a fixed function of its
text (`style_of`):

    S1 terse     "47."
    S2 sentence  "The answer is 47."
    S3 list      "- answer: 47"

(anything else is malformed: no style, never correct). The judge is a panel of three
equally weighted rater types; every type prefers a correct answer to an incorrect one
(correctness first), and among equally correct answers orders the styles in a cycle:

    type 1: S1 > S2 > S3      type 2: S2 > S3 > S1      type 3: S3 > S1 > S2

so P(S1 ≻ S2) = P(S2 ≻ S3) = P(S3 ≻ S1) = 2/3 between correct answers: a Condorcet cycle
(the classic voting paradox; the intransitivity the Nash summary is built for, Balduzzi et
al. 2018, arXiv 1806.02643). The panel's answer for a pair is the fraction of types that
prefer response a (½ per type when both are equally correct and of the same style).

Checkpoints (tiny GPT-2 models, `trainers.tiny`, fine-tuned with `trainers.sft.sft`): one per
style (that style only, correct answers), and `sft`, the reference policy for the trainers,
trained on a skewed mix (60/30/10 % over S1/S2/S3) with 20 % wrong answers so that it is not
already the Nash policy. In a tournament the three style checkpoints form a cycle, the Nash
mixture spreads over them (≈ ⅓ each), and Bradley–Terry still prints a total order.

Layout: DIR/ckpts/{terse,sentence,list,sft}/, DIR/prompts.jsonl, DIR/judge.txt holding
`python:arena.worlds.raters:judge`. Built deterministically from `seed` (no timestamps).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from arena.errors import InputError

STYLES = ("terse", "sentence", "list")
RATER_ORDERS = ((0, 1, 2), (1, 2, 0), (2, 0, 1))
"""Each rater type's style order, best first (indices into STYLES)."""
SFT_MIX = (0.6, 0.3, 0.1)
"""Style mix of the reference policy `sft`."""
SFT_WRONG = 0.2
"""Share of wrong answers in the reference policy's training data."""
JUDGE_SPEC = "python:arena.worlds.raters:judge"
N_NUMBERS = 100
VOCAB_SIZE = 300
"""Small vocabulary: numbers stay digit tokens, so copying them is easy to learn."""

_QUESTION = re.compile(r"Repeat the number (\d+)\.")
_PATTERNS = (re.compile(r"(\d+)\."), re.compile(r"The answer is (\d+)\."), re.compile(r"- answer: (\d+)"))


def question(n: int) -> str:
    """The prompt asking for `n` (a newline ends it, so the answer starts on its own line)."""
    return f"Repeat the number {n}.\n"


def render(answer: int, style: int) -> str:
    """The response text giving `answer` in style index `style`."""
    return (f"{answer}.", f"The answer is {answer}.", f"- answer: {answer}")[style]


def style_of(text: str) -> int | None:
    """Style index of a response (0 terse, 1 sentence, 2 list), None when malformed."""
    t = text.strip()
    for i, pattern in enumerate(_PATTERNS):
        if pattern.fullmatch(t):
            return i
    return None


def answer_of(text: str) -> int | None:
    """The number a well-formed response gives, None when malformed."""
    t = text.strip()
    for pattern in _PATTERNS:
        m = pattern.fullmatch(t)
        if m:
            return int(m.group(1))
    return None


def is_correct(prompt: str, text: str) -> bool:
    m = _QUESTION.search(prompt)
    return m is not None and answer_of(text) == int(m.group(1))


def rater_preference(order: tuple[int, int, int], prompt: str, response_a: str, response_b: str) -> float:
    """One rater type: 1 if it prefers a, 0 if b, ½ if indifferent. Correctness first, then style."""
    def key(text):
        s = style_of(text)
        return (is_correct(prompt, text), -1 if s is None else 2 - order.index(s))

    ka, kb = key(response_a), key(response_b)
    return 1.0 if ka > kb else 0.0 if ka < kb else 0.5


def judge(prompt: str, response_a: str, response_b: str) -> float:
    """P(response_a preferred) = fraction of the (equally weighted) rater panel preferring it."""
    if _QUESTION.search(prompt) is None:
        raise ValueError(f"not a raters-world question: {prompt!r}")
    return sum(rater_preference(o, prompt, response_a, response_b) for o in RATER_ORDERS) / len(RATER_ORDERS)


def _examples(rng: np.random.Generator, *, mix, wrong: float, copies: int) -> list[tuple[str, str]]:
    out = []
    for n in range(N_NUMBERS):
        for _ in range(copies):
            style = int(rng.choice(3, p=mix))
            answer = n
            if rng.random() < wrong:
                answer = (n + int(rng.integers(1, N_NUMBERS))) % N_NUMBERS
            out.append((question(n), render(answer, style)))
    return out


def build_raters_world(out_dir: str | Path, *, seed: int = 0, n_prompts: int = 100, steps: int = 300,
                       progress=None) -> Path:
    """Write the raters world into `out_dir` (must not exist or be empty); returns it.

    Built in a temporary directory beside `out_dir` and moved into place at the end, so an
    interrupted build leaves nothing behind. `progress(message)` is called per checkpoint.
    """
    from trainers.sft import SFTConfig, sft
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} already exists and is not empty; pass --out with a new directory")
    if not 1 <= n_prompts <= 100:
        raise InputError(f"n_prompts must be in 1..{N_NUMBERS} (one question per number); got {n_prompts}")
    from arena.outputs import atomic_output

    with atomic_output(out_dir, mode="new") as tmp:
        rng = np.random.default_rng(seed)
        datasets = {name: _examples(rng, mix=np.eye(3)[i], wrong=0.0, copies=1) for i, name in enumerate(STYLES)}
        datasets["sft"] = _examples(rng, mix=np.array(SFT_MIX), wrong=SFT_WRONG, copies=4)
        texts = [p + r for rows in datasets.values() for p, r in rows]
        tok = build_tokenizer(texts, vocab_size=VOCAB_SIZE)
        for k, (name, rows) in enumerate(datasets.items()):
            if progress is not None:
                progress(f"training {name} on {len(rows)} examples")
            model = build_model(tok, seed=seed)
            # Same number of passes over the data for every checkpoint: `steps` is for one
            # example per number; the SFT mix has four per number and gets four times the steps.
            config = SFTConfig(steps=steps * len(rows) // N_NUMBERS, seed=seed + k)
            sft(model, tok, rows, config)
            path = save_checkpoint(model, tok, tmp / "ckpts" / name)
            card = {"algorithm": "sft", "config": {"steps": config.steps, "batch_size": config.batch_size,
                                                   "lr": config.lr, "data": _describe(name)},
                    "parent": None, "seed": seed, "created": None}
            (path / "arena_card.json").write_text(json.dumps(card, indent=2) + "\n")
        picks = sorted(rng.choice(N_NUMBERS, size=n_prompts, replace=False).tolist())
        with (tmp / "prompts.jsonl").open("w") as fh:
            for i in picks:
                fh.write(json.dumps({"id": str(i), "prompt": question(i)}) + "\n")
        (tmp / "judge.txt").write_text(JUDGE_SPEC + "\n")
    return out_dir


def _describe(name: str) -> str:
    if name == "sft":
        return f"raters world: style mix {SFT_MIX} over {STYLES}, {SFT_WRONG:.0%} wrong answers"
    return f"raters world: style {name} only, correct answers"
