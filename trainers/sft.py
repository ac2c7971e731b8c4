"""Supervised fine-tuning: maximise log π_θ(y | x) on (prompt, response) pairs.

Used to build the worlds' reference checkpoints. The loss covers the response tokens and
the end-of-sequence token only (prompt tokens are masked), averaged over tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class SFTConfig:
    steps: int = 300
    """Optimiser steps."""
    batch_size: int = 32
    """Examples per step (sampled with replacement, seeded)."""
    lr: float = 3e-3
    """AdamW learning rate (constant after a short warm-up)."""
    seed: int = 0
    """Seed for batch sampling."""


def sft(model, tokenizer, examples: Sequence[tuple[str, str]], config: SFTConfig = SFTConfig(),
        *, progress=None) -> list[float]:
    """Fine-tune `model` in place on `examples` = [(prompt, response)]; returns the loss curve.

    `progress`, if given, is called as progress(step, loss) after each step.
    """
    import torch

    if not examples:
        raise ValueError("sft needs at least one (prompt, response) example")
    rows = [_encode(tokenizer, p, r) for p, r in examples]
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    warmup = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    model.train()
    losses = []
    for step in range(config.steps):
        idx = torch.randint(len(rows), (config.batch_size,), generator=gen).tolist()
        input_ids, labels, attention = _collate([rows[i] for i in idx], tokenizer.pad_token_id)
        out = model(input_ids=input_ids, attention_mask=attention, labels=labels)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(out.loss.item())
        if progress is not None:
            progress(step, losses[-1])
    model.eval()
    return losses


def _encode(tokenizer, prompt: str, response: str) -> tuple[list[int], int]:
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return prompt_ids + response_ids + [tokenizer.eos_token_id], len(prompt_ids)


def _collate(rows, pad_id):
    """Right-pad for training (positions start at 0 for every row); mask prompt and padding."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return input_ids, labels, attention
