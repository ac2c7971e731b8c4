"""Shared helpers for the tournament tests (registered as `tournament_helpers` by conftest.py).

Tiny random-init checkpoints (instant to build), judges importable as
`python:tournament_helpers:<name>` (this directory goes on PYTHONPATH for subprocesses; in
process conftest.py registers the module under that name), and a session cache for the
raters world so it is built once per test session.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXTS = [f"Question {i}: say something about {w}." for i, w in enumerate(["cats", "rain", "maps", "tea", "code"])]
_CACHE: dict = {}


def tokenizer():
    if "tok" not in _CACHE:
        from trainers.tiny import build_tokenizer

        _CACHE["tok"] = build_tokenizer(TEXTS * 4, vocab_size=300)
    return _CACHE["tok"]


def make_ckpt(path: Path, seed: int) -> Path:
    """A random-init tiny GPT-2 checkpoint (different seed, different weights)."""
    from trainers.tiny import build_model, save_checkpoint

    model = build_model(tokenizer(), n_embd=32, n_layer=1, n_head=2, n_positions=128, seed=seed)
    return save_checkpoint(model, tokenizer(), path)


def make_ckpts(root: Path, names_seeds: dict[str, int]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, seed in names_seeds.items():
        make_ckpt(root / name, seed)
    return root


def write_prompts(path: Path, n: int) -> Path:
    path.write_text("".join(f"Prompt number {i}: tell me about {['cats', 'rain', 'maps'][i % 3]}.\n" for i in range(n)))
    return path


def _score(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def judge(prompt: str, a: str, b: str) -> float:
    """Deterministic, content-dependent, asymmetric, with a mild first-position bias."""
    return min(1.0, max(0.0, 1 / (1 + math.exp(-4 * (_score(a) - _score(b)))) + 0.05))


def judge_other(prompt: str, a: str, b: str) -> float:
    """A different judge (different fingerprint and answers)."""
    return 1 / (1 + math.exp(-3 * (len(a) - len(b)) / 10))


def slow_judge(prompt: str, a: str, b: str) -> float:
    time.sleep(0.03)
    return judge(prompt, a, b)


def flaky_judge(prompt: str, a: str, b: str) -> float:
    """Fails on a fixed subset of comparisons (by content)."""
    if _score(prompt + a + b) < 0.2:
        raise RuntimeError("judge could not parse its own verdict")
    return judge(prompt, a, b)


def failing_judge(prompt: str, a: str, b: str) -> float:
    raise RuntimeError("always fails")


def raters_world(tmp_path_factory):
    """The raters world, built once per session (reduced steps keep it to seconds)."""
    if "world" not in _CACHE:
        from arena.worlds.raters import build_raters_world

        _CACHE["world"] = build_raters_world(tmp_path_factory.mktemp("raters") / "world", seed=0, n_prompts=32,
                                             steps=150)
    return _CACHE["world"]


def outage_judge(prompt: str, a: str, b: str) -> float:
    """Fails on a subset while ARENA_TEST_OUTAGE is set (a transient server problem)."""
    import os

    if os.environ.get("ARENA_TEST_OUTAGE") and _score(prompt + a + b) < 0.3:
        raise ConnectionError("server unavailable")
    return judge(prompt, a, b)


def position_judge(prompt: str, a: str, b: str) -> float:
    """Answers by position alone: always prefers the response shown first."""
    return 1.0
