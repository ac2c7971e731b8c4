"""Shared plumbing for sequence-classification judges (reward models, pairwise models).

Loading goes through `arena.loading` (safetensors only, no remote code by default); batches
are left-padded with explicit position ids, like the hf judge, so a text's score does not
depend on its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def load_sequence_classifier(path: str | Path, *, allow_pickle: bool, trust_remote_code: bool, device: str | None,
                             dtype: str | None = None):
    """(model, tokenizer) for a local AutoModelForSequenceClassification checkpoint, eval mode;
    dtype auto|bf16|fp16|fp32 (None/auto: the checkpoint's)."""
    from transformers import AutoModelForSequenceClassification

    from arena.lm import torch_dtype
    from arena.loading import load_pretrained

    torch_dtype_ = torch_dtype(dtype, option="dtype=")
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = load_pretrained(path, AutoModelForSequenceClassification, allow_pickle=allow_pickle,
                                 trust_remote_code=trust_remote_code, device=device, dtype=torch_dtype_,
                                 what="sequence-classification model")
    if model.config.pad_token_id is None:
        # The model pools the last non-pad token; it must know which id is padding.
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def max_length(model) -> int | None:
    """The model's context window (`arena.lm.context_length`)."""
    from arena.lm import context_length

    return context_length(model)


def classify(model, tokenizer, token_lists: Sequence[Sequence[int]], *, batch_size: int):
    """(n, num_labels) float64 logits, in input order; batches sorted by length, left-padded."""
    import numpy as np
    import torch

    from arena.lm import left_pad, positions

    n = len(token_lists)
    out = np.full((n, model.config.num_labels), np.nan)
    order = sorted(range(n), key=lambda i: len(token_lists[i]))
    pad = model.config.pad_token_id
    device = next(model.parameters()).device
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        ids, mask = left_pad([token_lists[i] for i in idx], pad, device)   # (B, T) each
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits  # (B, num_labels)
        out[idx] = logits.double().cpu().numpy()
    return out
