"""Tiny checkpoints for the judge tests, built once per session (offline, seconds)."""

import pytest

from judges.templates import DEFAULT_ANSWER_PREFIX, DEFAULT_TEMPLATE

TEXTS = [
    DEFAULT_TEMPLATE, DEFAULT_ANSWER_PREFIX, "[[A]] [[B]] [[C]] Verdict: A B C",
    "What is two plus two? Four. It is 4. Five. The answer is four because 2 + 2 = 4.",
    "Name a colour. Blue. Red is a colour. Green, like grass. The sky is blue.",
] * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<|endoftext|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def _sharpen(model, factor=30.0):
    """Scale the (tied) embeddings so next-token probabilities are far from uniform."""
    import torch

    with torch.no_grad():
        model.transformer.wte.weight.mul_(factor)


@pytest.fixture(scope="session")
def tiny_tok():
    from trainers.tiny import build_tokenizer

    return build_tokenizer(TEXTS, vocab_size=384)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory, tiny_tok):
    from trainers.tiny import build_model, save_checkpoint

    model = build_model(tiny_tok, seed=1)
    _sharpen(model)
    return save_checkpoint(model, tiny_tok, tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="session")
def tiny_chat_dir(tmp_path_factory, tiny_tok):
    import copy

    from trainers.tiny import build_model, save_checkpoint

    tok = copy.deepcopy(tiny_tok)
    tok.chat_template = CHAT_TEMPLATE
    model = build_model(tok, seed=2)
    _sharpen(model)
    return save_checkpoint(model, tok, tmp_path_factory.mktemp("tiny_chat"))


@pytest.fixture
def three_ckpts(tmp_path):
    """tmp_path / "ckpts" with three tiny GPT-2 checkpoints m1, m2, m3 (seeds 1, 2, 3), for
    tournaments whose judge is a fake server."""
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    tok = build_tokenizer(["some words for a tokenizer"] * 4, vocab_size=280)
    for name, seed in (("m1", 1), ("m2", 2), ("m3", 3)):
        save_checkpoint(build_model(tok, n_embd=16, n_layer=1, n_head=2, n_positions=64, seed=seed), tok,
                        tmp_path / "ckpts" / name)
    return tmp_path / "ckpts"


def _seq_cls_dir(tmp_path_factory, tok, num_labels, seed, name):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                        num_labels=num_labels, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    model = GPT2ForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight.mul_(50.0)  # spread the scores so σ(r_a - r_b) is far from ½
    path = tmp_path_factory.mktemp(name)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory, tiny_tok):
    return _seq_cls_dir(tmp_path_factory, tiny_tok, 1, 3, "tiny_reward")


@pytest.fixture(scope="session")
def tiny_pair2_dir(tmp_path_factory, tiny_tok):
    return _seq_cls_dir(tmp_path_factory, tiny_tok, 2, 4, "tiny_pair2")


@pytest.fixture(scope="session")
def tiny_pair1_dir(tmp_path_factory, tiny_tok):
    return _seq_cls_dir(tmp_path_factory, tiny_tok, 1, 5, "tiny_pair1")


@pytest.fixture(scope="session")
def comparisons():
    from judges import Comparison

    return [Comparison(*c) for c in COMPARISONS]


COMPARISONS = [
    ("What is two plus two?", "Four.", "Five."),
    ("Name a colour.", "Blue.", "Red is a colour, and so is green, like grass; the sky is blue."),
    ("What is two plus two?", "The answer is four because 2 + 2 = 4.", "4"),
    ("Name a colour.", "Green", "Green"),
    ("x", "A", "B"),
]
