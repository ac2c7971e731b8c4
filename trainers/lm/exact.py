"""Response classes of the sequence worlds: a fixed function of a response's text.

The contextual low-rank game of Tiapkin et al. 2025 (arXiv 2505.19731) is lifted to
sequences by giving every response y a class c(y) in {0, ..., Y−1} and letting the judge
answer P(y ≻ y' | x) = P_game[x, c(y), c(y')]. The class is read from the first character
of the text, so it is a function of the first token: the exact class distribution of a
transformer policy is its next-token distribution after the prompt, summed within classes.

    c(y) = (ord(y[0]) − ord(letters[0])) mod Y      for a non-empty y,
    c("") = 0,

so letters[i] (consecutive characters, e.g. "ABCDEF") is class i and every other text has
a class too (no response is ever "invalid").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def class_of_text(text: str, letters: str) -> int:
    """Class of a response text; `letters` = the Y consecutive class characters, e.g. "ABCDEF"."""
    if len(letters) < 2:
        raise ValueError(f"need at least two class letters; got {letters!r}")
    if not text:
        return 0
    return (ord(text[0]) - ord(letters[0])) % len(letters)


# ---------------------------------------------------------------------------- classes of whole responses

@dataclass(frozen=True)
class ClassDistribution:
    """The distribution of a response's class, enumerated over the policy's response tree.

    probs: (X, C) mass of the responses of each class, per prompt (not renormalised).
    pruned: (X,) mass of the prefixes dropped below `min_prob` (probs.sum(1) + pruned = 1 up to
        round-off): an upper bound on the error of every entry of probs.
    """

    probs: torch.Tensor
    pruned: torch.Tensor

    def normalized(self) -> torch.Tensor:
        """probs with each row divided by its resolved mass (the pruned mass spread pro rata)."""
        return self.probs / self.probs.sum(-1, keepdim=True).clamp_min(1e-300)


@torch.no_grad()
def enumerate_classes(model, tokenizer, prompts: Sequence[str], classify: Callable[[str, str], int],
                      n_classes: int, *, max_new_tokens: int, min_prob: float = 1e-5,
                      banned: tuple[int, ...] = (), device: str = "cpu", max_nodes: int = 4096,
                      leaves: list | None = None) -> ClassDistribution:
    """Exact class distribution of sampled responses when the class depends on the whole text.

    Expands the tree of responses breadth first (one batched forward per depth): a prefix y_<t
    of probability π(y_<t | x) ≥ min_prob is extended by every token; the end-of-sequence token
    or the length limit ends a response y, whose text (decoded as the trainers decode it) has
    class classify(x, text), and π(y | x) is added to that class. Prefixes below `min_prob` are
    dropped and their mass reported as `pruned`. Sampling is ancestral from the same
    next-token distributions (banned tokens at −inf), so with pruned = 0 this is the exact
    distribution the trainers sample from. `leaves`, when given, receives (prompt index, token
    ids, class) of every complete response found.
    """
    from trainers.lm.common import encode
    from trainers.mixture import mask_logits

    if not 0 < min_prob < 1:
        raise ValueError(f"min_prob must be in (0, 1); got {min_prob}")
    X = len(prompts)
    eos = tokenizer.eos_token_id
    probs = torch.zeros((X, n_classes), dtype=torch.float64)
    pruned = torch.zeros(X, dtype=torch.float64)
    ids, mask = encode(tokenizer, prompts, device)                                 # (X, L)
    ctx = torch.arange(X)                                                          # (N,) prompt of each live prefix
    prefix = torch.zeros((X, 0), dtype=torch.long)                                 # (N, t)
    logp = torch.zeros(X, dtype=torch.float64)                                     # (N,)
    floor = math.log(min_prob)

    def add(rows: torch.Tensor, tokens: torch.Tensor, lp: torch.Tensor) -> None:
        texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
        for x, toks, text, p in zip(rows.tolist(), tokens.tolist(), texts, lp.exp().tolist()):
            c = classify(prompts[x], text)
            probs[x, c] += p
            if leaves is not None:
                leaves.append((x, toks, c))

    for t in range(max_new_tokens):
        full = torch.cat([ids[ctx], prefix.to(device)], dim=1)                      # (N, L+t)
        attn = torch.cat([mask[ctx], torch.ones_like(prefix, device=device)], dim=1)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        logits = torch.cat([model(input_ids=full[s:s + max_nodes], attention_mask=attn[s:s + max_nodes],
                                  position_ids=pos[s:s + max_nodes], use_cache=False).logits[:, -1, :]
                            for s in range(0, len(ctx), max_nodes)])
        lp = torch.log_softmax(mask_logits(logits.double(), banned), dim=-1).cpu() + logp[:, None]   # (N, V)
        keep = lp >= floor
        low = torch.where(keep | torch.isinf(lp), torch.zeros_like(lp), lp.exp()).sum(-1)            # (N,)
        pruned.index_add_(0, ctx, low)
        node, token = keep.nonzero(as_tuple=True)
        child = torch.cat([prefix[node], token[:, None]], dim=1)                   # (M, t+1)
        child_lp = lp[node, token]
        done = (token == eos) | (t + 1 == max_new_tokens)
        add(ctx[node][done], child[done], child_lp[done])
        ctx, prefix, logp = ctx[node][~done], child[~done], child_lp[~done]
        if len(ctx) == 0:
            break
    return ClassDistribution(probs=probs, pruned=pruned)


def token_classes(tokenizer, letters: str) -> torch.Tensor:
    """(V,) class of a response whose first token is v, decoded as the trainers decode
    responses (special tokens skipped: a response that starts with end-of-sequence is "",
    class 0, not the class of the text "<|endoftext|>")."""
    return torch.tensor([class_of_text(tokenizer.decode([v], skip_special_tokens=True), letters)
                         for v in range(len(tokenizer))])
