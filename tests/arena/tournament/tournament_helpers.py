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
def write_tiny_llama_gguf(path: Path, *, seed: int) -> Path:
    """A 1-layer llama GGUF (16 dims, character vocabulary with a sentencepiece-style tokenizer)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    chars = list("abcdefghijklmnopqrstuvwxyz ")
    tokens = ["<unk>", "<s>", "</s>"] + [("▁" if c == " " else c) for c in chars]
    V, D, F, H = len(tokens), 16, 32, 2
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(D)
    w.add_block_count(1)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(H)
    w.add_rope_dimension_count(D // H)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(V)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * V)
    w.add_token_types([2, 3, 3] + [1] * len(chars))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def t(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    w.add_tensor("token_embd.weight", t(V, D))
    w.add_tensor("blk.0.attn_norm.weight", 1 + t(D))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{name}.weight", t(D, D))
    w.add_tensor("blk.0.ffn_norm.weight", 1 + t(D))
    w.add_tensor("blk.0.ffn_gate.weight", t(F, D))
    w.add_tensor("blk.0.ffn_up.weight", t(F, D))
    w.add_tensor("blk.0.ffn_down.weight", t(D, F))
    w.add_tensor("output_norm.weight", 1 + t(D))
    w.add_tensor("output.weight", t(V, D))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
