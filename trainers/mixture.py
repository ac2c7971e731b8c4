"""Token-by-token sampling from a policy or from the geometric mixture of two policies.

Nash-MD (Munos et al. 2024, "Nash learning from human feedback", arXiv 2312.00886) plays
against the geometric mixture π^m ∝ π_θ^{1−m} π_ref^{m}. At the sequence level this is
intractable; Nash-MD-PG samples it token by token, the next-token distribution being

    log π^m(· | x, y_<t) = log_softmax((1 − m) log π_θ(· | x, y_<t) + m log π_ref(· | x, y_<t)).

`mixture_logprobs` is a pure tensor function. `generate` runs the runtime's one sampling
loop (`arena.lm.sample`) with `Mixture` as its next-token function: the key-value cache of
*both* models (each model sees only its own cache), so a response of T tokens costs T
single-token forward passes per model instead of the O(T²) re-encoding done when the
cache is turned off (`use_cache=False`, kept for the benchmark and as a cross-check).

Randomness comes in as a (B, T) tensor of uniforms (inverse-CDF sampling), so a row's
sample depends only on its own uniforms: the same rows give the same responses whatever
the batch they are in (which makes single- and multi-process runs comparable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from arena.lm import CachedLM, Generation, draw_tokens, mask_logits, sample

__all__ = ["Generation", "Mixture", "generate", "mask_logits", "mixture_logprobs", "sample_tokens"]


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
    return draw_tokens(logprobs, uniforms)


Model = Callable[..., object]


class Mixture:
    """Next-token log-probs of the geometric mixture of `policy` and `ref` with coefficient m,
    each model with its own KV cache: a next-token function for `arena.lm.sample`. Banned
    tokens are masked in both before mixing (so 0 · (−inf) never appears: see mixture_logprobs)."""

    def __init__(self, policy: Model, ref: Model, m: float, *, banned: tuple[int, ...] = (), use_cache: bool = True):
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"mixture coefficient m must be in [0, 1]; got {m}")
        self.policy, self.ref = CachedLM(policy, use_cache=use_cache), CachedLM(ref, use_cache=use_cache)
        self.m, self.banned = m, banned

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, new: int) -> torch.Tensor:
        return mixture_logprobs(mask_logits(self.policy(ids, mask, new), self.banned),
                                mask_logits(self.ref(ids, mask, new), self.banned), self.m)


@torch.no_grad()
def generate(policy: Model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, uniforms: torch.Tensor,
             eos_token_id: int, pad_token_id: int, ref: Model | None = None, m: float = 0.0,
             banned: tuple[int, ...] = (), use_cache: bool = True, stop: tuple[str, ...] = (),
             decode: Callable[[list[int]], str] | None = None, temperature: float | Sequence[float] = 1.0,
             first: torch.Tensor | None = None) -> Generation:
    """Sample responses to left-padded prompts, token by token (`arena.lm.sample`).

    input_ids, attention_mask: (B, L) left-padded prompts. uniforms: (B, T), T = maximum
    new tokens. With `ref` given, samples the geometric mixture with coefficient m
    (`mixture_logprobs`); otherwise samples `policy`. `banned` token ids get probability 0
    (the trainers ban the pad token so that a response's text is a function of its tokens).
    A row stops at its end-of-sequence token, or after the token that completes a stop string.
    `temperature` divides the next-token logits (one per new token if a sequence) and `first`
    (B,) forces each row's first token (Nash-MP's explorers, `--explore`, `--explore-first`).
    """
    step = CachedLM(policy, use_cache=use_cache) if ref is None else \
        Mixture(policy, ref, m, banned=banned, use_cache=use_cache)
    return sample(step, input_ids, attention_mask, uniforms=uniforms, stop_ids=(eos_token_id,),
                  pad_id=pad_token_id, banned=banned, stop=stop, decode=decode, temperature=temperature,
                  first=first)
