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
already the Nash policy. In a tournament the three style checkpoints form a cycle, the
(unregularised) Nash mixture spreads over them (≈ ⅓ each), and Bradley–Terry still prints a
total order.

What a trainer regularised towards `sft` should reach is not ⅓ each but the β-regularised
Nash π*_β ∝ π_ref exp(P(· ≻ π*_β)/β) of the 7-class game (CLASSES: style × correct, plus
malformed; `class_game` reads it off the judge), with π_ref the SFT checkpoint's exact class
distribution per prompt (enumerated over its response tree): at β = 0.1 about terse .69,
sentence .20, list .11 — close to the SFT mix, tilted by the cycle. `solve_world` computes it
(`trainers.lab.nash.regularized_nash`, certified by its duality gap) into `nash.json`, where
the trainers find it and report TV and KL(π*_β‖π_θ) of the policy's classes.

Layout: DIR/ckpts/{terse,sentence,list,sft}/, DIR/prompts.jsonl, DIR/judge.txt holding
`python:arena.worlds.raters:judge`, DIR/nash.json. Built deterministically from `seed` on one
machine (no timestamps). The checkpoints are trained, so another CPU's rounding can build a
different π_ref, and with it other rare answers for a trainer to find (two builds compared in
benchmarks/RESULTS.trainers-convergence.md).
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
NASH_BETA = 0.1
"""β of the π*_β written to nash.json (trainers recompute it for another β)."""
NASH_MAX_NEW_TOKENS = 24
"""Response length limit under which π_ref is enumerated (the demo's --max-new-tokens)."""
NASH_MIN_PROB = 1e-4
"""Prefixes below this probability are not expanded; their mass is written as `pruned`."""
PI_REF_FLOOR = 1e-12
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


CLASSES = ("terse", "sentence", "list", "terse-wrong", "sentence-wrong", "list-wrong", "malformed")
"""The response classes the judge can tell apart: style × correctness, plus malformed."""


def class_of(prompt: str, text: str) -> int:
    """Index into CLASSES of a response: its style, +3 when the answer is wrong; 6 when malformed."""
    s = style_of(text)
    if s is None:
        return len(CLASSES) - 1
    return s if is_correct(prompt, text) else s + 3


def class_game(prompt: str = "Repeat the number 47.\n") -> np.ndarray:
    """(7, 7) P[c, c'] = judge(prompt, y, y') for responses y of class c and y' of class c'.

    Read from the judge itself on one representative text per class; the judge depends on a
    response only through its class, so this is the game for every prompt.
    """
    n = int(_QUESTION.search(prompt).group(1))
    reps = [render(n, s) for s in range(3)] + [render((n + 1) % N_NUMBERS, s) for s in range(3)] + ["?"]
    assert [class_of(prompt, r) for r in reps] == list(range(len(CLASSES)))
    return np.array([[judge(prompt, a, b) for b in reps] for a in reps])


def solve_world(world_dir: str | Path, *, beta: float = NASH_BETA, min_prob: float = NASH_MIN_PROB) -> dict:
    """nash.json of a raters world: the 7-class game, π_ref = the SFT checkpoint's exact class
    distribution per prompt (`trainers.lm.exact.enumerate_classes`) and π*_β
    (`trainers.lab.nash.regularized_nash`) with its certificate.

    π*_β is not "⅓ each style" (that is the unregularised Nash of the cycle): the KL to π_ref
    keeps it near the SFT mix, π*_β ∝ π_ref exp(P(· ≻ π*_β)/β).
    """
    from trainers.lab.games import Game
    from trainers.lab.nash import kl_from_logs, regularized_nash
    from trainers.lm.exact import enumerate_classes
    from arena.lm import banned_ids
    from arena.loading import load_causal_lm

    world_dir = Path(world_dir)
    contexts = [json.loads(line)["prompt"] for line in (world_dir / "prompts.jsonl").read_text().splitlines() if line.strip()]
    model, tok = load_causal_lm(world_dir / "ckpts" / "sft")
    model.eval()
    banned = banned_ids(tok)
    dist = enumerate_classes(model, tok, contexts, class_of, len(CLASSES), max_new_tokens=NASH_MAX_NEW_TOKENS,
                             min_prob=min_prob, banned=banned)
    # every class keeps a positive probability (the softmax never gives exactly 0)
    pi_ref = np.maximum(dist.normalized().numpy(), PI_REF_FLOOR)
    pi_ref = pi_ref / pi_ref.sum(axis=1, keepdims=True)
    X = len(contexts)
    P = np.broadcast_to(class_game(contexts[0]), (X, len(CLASSES), len(CLASSES))).copy()
    weights = np.full(X, 1.0 / X)
    sol = regularized_nash(Game(P=P, pi_ref=pi_ref, weights=weights), beta)
    kl = kl_from_logs(sol.log_pi, np.log(pi_ref))
    return {
        "world": "raters",
        "contexts": contexts,
        "classes": list(CLASSES),
        "class_of": "arena.worlds.raters:class_of",
        "max_new_tokens": NASH_MAX_NEW_TOKENS,
        "beta": beta,
        "P": P.tolist(),
        "pi_ref": pi_ref.tolist(),
        "pruned": float(dist.pruned.max()),
        "weights": weights.tolist(),
        "pi_star": sol.pi.tolist(),
        "gap": sol.gap,
        "residual": sol.residual,
        "kl_star_ref": float(np.dot(weights, kl)),
    }


def _examples(rng: np.random.Generator, *, mix, wrong: float, copies: int, render=render) -> list[tuple[str, str]]:
    """`copies` (question, answer) rows per number; the style drawn from `mix`, the answer
    wrong with probability `wrong`; `render(answer, style)` writes it (each world has its own)."""
    out = []
    for n in range(N_NUMBERS):
        for _ in range(copies):
            style = int(rng.choice(len(mix), p=mix))
            answer = n
            if rng.random() < wrong:
                answer = (n + int(rng.integers(1, N_NUMBERS))) % N_NUMBERS
            out.append((question(n), render(answer, style)))
    return out


def check_world_args(out_dir: str | Path, n_prompts: int) -> Path:
    """`out_dir` as a Path, after checking that it is new or empty and that `n_prompts` is in
    1..N_NUMBERS (one question per number): the checks every world builder makes first."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} already exists and is not empty; pass --out with a new directory")
    if not 1 <= n_prompts <= N_NUMBERS:
        raise InputError(f"n_prompts must be in 1..{N_NUMBERS} (one question per number); got {n_prompts}")
    return out_dir


def build_raters_world(out_dir: str | Path, *, seed: int = 0, n_prompts: int = 100, steps: int = 300,
                       progress=None) -> Path:
    """Write the raters world into `out_dir` (must not exist or be empty); returns it.

    Built in a temporary directory beside `out_dir` and moved into place at the end, so an
    interrupted build leaves nothing behind. `progress(message)` is called per checkpoint.
    """
    out_dir = check_world_args(out_dir, n_prompts)
    from arena.outputs import atomic_output

    with atomic_output(out_dir, mode="new") as tmp:
        write_style_checkpoints_and_prompts(
            tmp, world="raters world", styles=STYLES, sft_mix=SFT_MIX, sft_wrong=SFT_WRONG, render=render,
            vocab_size=VOCAB_SIZE, seed=seed, n_prompts=n_prompts, steps=steps, progress=progress)
        (tmp / "judge.txt").write_text(JUDGE_SPEC + "\n")
        if progress is not None:
            progress("solving the regularised Nash of the style game (nash.json)")
        (tmp / "nash.json").write_text(json.dumps(solve_world(tmp)) + "\n")
    return out_dir


def sft_checkpoints(datasets: dict, tok, root: Path, *, steps: int, seed: int, progress=None):
    """Train one tiny checkpoint per dataset (name: [(prompt, response)]) and save it under
    `root/name`; yield (name, SFTConfig, path) for each, in order. Every checkpoint gets the
    same number of passes over its data: `steps` is for one example per number, so a mix
    with four examples per number gets four times the steps."""
    from trainers.sft import SFTConfig, sft
    from trainers.tiny import build_model, save_checkpoint

    for k, (name, rows) in enumerate(datasets.items()):
        if progress is not None:
            progress(f"training {name} on {len(rows)} examples")
        model = build_model(tok, seed=seed)
        config = SFTConfig(steps=steps * len(rows) // N_NUMBERS, seed=seed + k)
        sft(model, tok, rows, config)
        yield name, config, save_checkpoint(model, tok, root / name)


def write_style_checkpoints_and_prompts(tmp: Path, *, world: str, styles, sft_mix, sft_wrong: float, render,
                                        vocab_size: int, seed: int, n_prompts: int, steps: int, progress=None) -> None:
    """The part the style worlds share: one tiny checkpoint per style (correct answers only)
    and one `sft` checkpoint on `sft_mix` with `sft_wrong` wrong answers, each with its
    arena_card.json, under `tmp/ckpts/`; then `n_prompts` questions in `tmp/prompts.jsonl`."""
    from trainers.tiny import build_tokenizer

    rng = np.random.default_rng(seed)
    eye = np.eye(len(styles))
    datasets = {name: _examples(rng, mix=eye[i], wrong=0.0, copies=1, render=render) for i, name in enumerate(styles)}
    datasets["sft"] = _examples(rng, mix=np.array(sft_mix), wrong=sft_wrong, copies=4, render=render)
    tok = build_tokenizer([p + r for rows in datasets.values() for p, r in rows], vocab_size=vocab_size)
    for name, config, path in sft_checkpoints(datasets, tok, tmp / "ckpts", steps=steps, seed=seed, progress=progress):
        data = (f"{world}: style mix {sft_mix} over {styles}, {sft_wrong:.0%} wrong answers" if name == "sft"
                else f"{world}: style {name} only, correct answers")
        card = {"algorithm": "sft", "config": {"steps": config.steps, "batch_size": config.batch_size,
                                               "lr": config.lr, "data": data},
                "parent": None, "seed": seed, "created": None}
        (path / "arena_card.json").write_text(json.dumps(card, indent=2) + "\n")
    picks = sorted(rng.choice(N_NUMBERS, size=n_prompts, replace=False).tolist())
    with (tmp / "prompts.jsonl").open("w") as fh:
        for i in picks:
            fh.write(json.dumps({"id": str(i), "prompt": question(i)}) + "\n")
