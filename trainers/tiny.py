"""Tiny GPT-2-style checkpoints built offline, for tests, worlds and the demo.

No hub access: the tokenizer is a byte-level BPE trained in milliseconds on the text it
will see (every single byte stays a token, so labels like "A" and "B" are single tokens),
and the model is a `GPT2LMHeadModel` with a few hundred thousand parameters. The result is a
normal `save_pretrained` directory (config, `model.safetensors`, tokenizer files) that is
loaded by the same code as any user's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<pad>"


def build_tokenizer(texts: Iterable[str], *, vocab_size: int = 384):
    """Train a byte-level BPE tokenizer on `texts`; returns a `PreTrainedTokenizerFast`.

    Left padding (the convention for batched generation and last-token scoring).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        padding_side="left",
    )


def build_model(tokenizer, *, n_embd: int = 64, n_layer: int = 2, n_head: int = 2,
                n_positions: int = 256, seed: int = 0):
    """A freshly initialised `GPT2LMHeadModel` sized for `tokenizer` (seeded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save_checkpoint(model, tokenizer, path: str | Path) -> Path:
    """Write a standard `save_pretrained` directory (safetensors weights)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
