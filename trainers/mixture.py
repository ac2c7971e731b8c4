"""Token-by-token sampling from a policy or from the geometric mixture of two policies.

Nash-MD (Munos et al. 2024, "Nash learning from human feedback", arXiv 2312.00886) plays
against the geometric mixture π^m ∝ π_θ^{1−m} π_ref^{m}. At the sequence level this is
intractable; Nash-MD-PG samples it token by token, the next-token distribution being

    log π^m(· | x, y_<t) = log_softmax((1 − m) log π_θ(· | x, y_<t) + m log π_ref(· | x, y_<t)).

`mixture_logprobs` and `sample_tokens` are pure tensor functions. `generate` runs the loop
with the key-value cache of *both* models (each model sees only its own cache), so a
response of T tokens costs T single-token forward passes per model instead of the
O(T²) re-encoding done when the cache is turned off (`use_cache=False`, kept for
the benchmark and as a cross-check).

Randomness comes in as a (B, T) tensor of uniforms (inverse-CDF sampling), so a row's
sample depends only on its own uniforms: the same rows give the same responses whatever
the batch they are in (which makes single- and multi-process runs comparable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def mask_logits(logits: torch.Tensor, banned: tuple[int, ...]) -> torch.Tensor:
    """Set the logits of `banned` token ids to −inf; logits (..., V)."""
    if not banned:
        return logits
    logits = logits.clone()
    logits[..., list(banned)] = float("-inf")
    return logits


def mixture_logprobs(logits_policy: torch.Tensor, logits_ref: torch.Tensor, m: float) -> torch.Tensor:
    """Normalised log-probs of the geometric mixture π_θ^{1−m} π_ref^m; inputs and output (..., V).

    m = 0 gives π_θ, m = 1 gives π_ref. The per-row normalisers of the two log-softmaxes
    cancel after the final log_softmax, so raw logits would give the same answer.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"mixture coefficient m must be in [0, 1]; got {m}")
    if logits_policy.shape != logits_ref.shape:
        raise ValueError(f"policy and reference logits must share a shape (same vocabulary); "
                         f"got {tuple(logits_policy.shape)} and {tuple(logits_ref.shape)}")
    log_p, log_q = torch.log_softmax(logits_policy, dim=-1), torch.log_softmax(logits_ref, dim=-1)
    # At the endpoints one factor has exponent 0 (π^0 = 1 even where π = 0): drop it, since
    # 0 · (−inf) on a banned token is NaN and would poison the whole row (harmonic:C gives m = 1 at step 0).
    if m == 0.0:
        return log_p
    if m == 1.0:
        return log_q
    return torch.log_softmax((1.0 - m) * log_p + m * log_q, dim=-1)


def sample_tokens(logprobs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sample one token per row: logprobs (B, V), uniforms (B,) in [0, 1) -> (B,) int64."""
    cdf = torch.cumsum(logprobs.float().exp(), dim=-1)                      # (B, V)
    u = uniforms.to(device=cdf.device, dtype=cdf.dtype).unsqueeze(-1) * cdf[:, -1:]                  # (B, 1) scaled to the total mass
    idx = torch.searchsorted(cdf, u, right=True).squeeze(-1)               # (B,)
    # Never return a zero-probability token, even at the float edge of the CDF.
    return idx.clamp(max=logprobs.shape[-1] - 1)


@dataclass(frozen=True)
class Generation:
    """Sampled responses, right-padded."""

    tokens: torch.Tensor
    """(B, T) int64 response token ids, pad after the end-of-sequence token."""
    mask: torch.Tensor
    """(B, T) int64, 1 on response tokens (the end-of-sequence token included), 0 on padding."""


def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on the first real token of each left-padded row; (B, L)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


Model = Callable[..., object]


def cache_argument(model) -> str:
    """Name of the key-value cache argument of `model`'s forward: `cache` (transformers >= 5.x) or
    `past_key_values` (older releases); looks through peft wrappers and `AdaptersOff`."""
    import inspect

    inner = getattr(model, "model", model)                     # AdaptersOff wrapper
    if hasattr(inner, "get_base_model"):                       # peft
        inner = inner.get_base_model()
    params = inspect.signature(inner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@torch.no_grad()
def generate(policy: Model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, uniforms: torch.Tensor,
             eos_token_id: int, pad_token_id: int, ref: Model | None = None, m: float = 0.0,
             banned: tuple[int, ...] = (), use_cache: bool = True) -> Generation:
    """Sample responses to left-padded prompts, token by token.

    input_ids, attention_mask: (B, L) left-padded prompts. uniforms: (B, T), T = maximum
    new tokens. With `ref` given, samples the geometric mixture with coefficient m
    (`mixture_logprobs`); otherwise samples `policy`. `banned` token ids get probability 0
    (the trainers ban the pad token so that a response's text is a function of its tokens).
    A row stops at its end-of-sequence token.
    """
    if input_ids.shape != attention_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} differ")
    if uniforms.dim() != 2 or uniforms.shape[0] != input_ids.shape[0]:
        raise ValueError(f"uniforms must be (B, max_new_tokens) with B = {input_ids.shape[0]}; got {tuple(uniforms.shape)}")
    models = [policy] if ref is None else [policy, ref]
    B, T = uniforms.shape
    device = input_ids.device
    uniforms = uniforms.to(device)
    mask = attention_mask.long()
    ids = input_ids
    pasts: list[object] = [None] * len(models)
    cache_kw = [cache_argument(model) for model in models]
    step_ids, step_pos = ids, _positions(mask)
    tokens = torch.full((B, T), pad_token_id, dtype=torch.long, device=device)
    out_mask = torch.zeros((B, T), dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    for t in range(T):
        logits = []
        for i, model in enumerate(models):
            if use_cache:
                out = model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos,
                            use_cache=True, **{cache_kw[i]: pasts[i]})
                pasts[i] = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            else:
                out = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), use_cache=False)
            logits.append(mask_logits(out.logits[:, -1, :].float(), banned))   # (B, V)
        if ref is None:
            logprobs = torch.log_softmax(logits[0], dim=-1)
        else:
            logprobs = mixture_logprobs(logits[0], logits[1], m)
        nxt = sample_tokens(logprobs, uniforms[:, t])                          # (B,)
        nxt = torch.where(done, torch.full_like(nxt, pad_token_id), nxt)
        tokens[:, t] = nxt
        out_mask[:, t] = (~done).long()
        done = done | (nxt == eos_token_id)
        if bool(done.all()):
            tokens, out_mask = tokens[:, : t + 1], out_mask[:, : t + 1]
            break
        step_pos = mask.sum(-1, keepdim=True)                                  # (B, 1) next position
        mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=1)
        ids = torch.cat([ids, nxt.unsqueeze(-1)], dim=1)
        step_ids = nxt.unsqueeze(-1)
    return Generation(tokens=tokens, mask=out_mask)
