"""The one language-model runtime: prompt encoding, positions, the KV cache and the sampling loop.

Every place that feeds a causal LM (the hf engine, the hf/reward/pairwise judges, the LM
trainers, the Nash-MD mixture sampler) goes through these functions, so a policy is trained
on exactly the token ids it is evaluated on.

Prompt rule (`encode_prompt`): the prompt goes through `PromptFormat.template` ("{prompt}"
replaced) when one is given; then, when the tokenizer has a chat template and the user did
not turn it off, it becomes the user message (after an optional system message) with the
generation prompt added, and the template's text is tokenized *without* the tokenizer's
special tokens (the chat template writes its own BOS); otherwise the text (system prompt
first, then a blank line) is tokenized *with* them (a tokenizer that adds BOS adds it).

Sampling (`draw_tokens`) inverts the CDF of the (temperature, top-p) distribution at one
uniform u per row, so a row's token is a function of its logits and its own u:

    top_p = 1:  y = min{ k : sum_{j <= k} p_j > u }   over the vocabulary in id order (no sort);
    top_p < 1:  the same over the smallest prefix of the probabilities sorted in decreasing
                order whose mass is >= top_p (Holtzman et al. 2019, arXiv 1904.09751), found
                with `torch.topk` on a growing k instead of a full sort.

`sample` is the one token-by-token loop with a KV cache; it takes a next-token function
(`CachedLM` of one model, or `Mixture` of a policy and a reference for Nash-MD), so the
engine and the trainers share it. Left padding with position ids counted from each row's
first real token (`positions`) makes a row's logits those it would have alone (up to
floating-point summation order).
"""

from __future__ import annotations

import codecs
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arena.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where it is used: `arena.engines` imports this module for PromptFormat
    import torch

CHAT_MODES = ("auto", "on", "off")
DTYPES = ("auto", "bf16", "fp16", "fp32")
_DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "half": "fp16", "float": "fp32"}


def torch_dtype(name: str | None, *, option: str = "--dtype"):
    """The torch dtype of auto|bf16|fp16|fp32 (long names accepted); None for auto (the checkpoint's own)."""
    key = _DTYPE_ALIASES.get(name, name) if name is not None else "auto"
    if key not in DTYPES:
        raise ConfigError(f"{option} {name!r} is not a dtype; use one of {', '.join(DTYPES)}")
    if key == "auto":
        return None
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[key]


# ---------------------------------------------------------------------------- prompts

@dataclass(frozen=True, kw_only=True)
class PromptFormat:
    """How a prompt text becomes the model's input (the same for training and evaluation)."""

    chat: str = "auto"
    """auto: the tokenizer's chat template when it has one; on: require it; off: never."""
    template: str | None = None
    """Text around the prompt, with "{prompt}" where it goes (e.g. "Question: {prompt}\\nAnswer:")."""
    system: str | None = None
    """System prompt (a system message with a chat template, else a first paragraph)."""

    def __post_init__(self) -> None:
        if self.chat not in CHAT_MODES:
            raise ConfigError(f"chat template mode {self.chat!r}; use auto, on or off")
        if self.template is not None and "{prompt}" not in self.template:
            raise ConfigError(f"--prompt-template {self.template!r} has no {{prompt}}; e.g. 'Question: {{prompt}}\\nAnswer:'")

    def key(self) -> dict:
        """The fields that differ from the default (empty for the default format)."""
        return {k: v for k, v in (("chat", self.chat), ("template", self.template), ("system", self.system))
                if v != PromptFormat.__dataclass_fields__[k].default}


def use_chat_template(tokenizer, mode: str = "auto") -> bool:
    """Whether the chat template applies: the tokenizer has one and `mode` is not off."""
    if mode not in CHAT_MODES:
        raise ConfigError(f"chat_template={mode!r}; use auto, on or off")
    has = bool(getattr(tokenizer, "chat_template", None))
    if mode == "on" and not has:
        raise ConfigError("chat_template=on but the tokenizer has no chat template; use chat_template=auto or off")
    return has and mode != "off"


def format_prompt(tokenizer, prompt: str, fmt: PromptFormat = PromptFormat(), *, prefill: str = "") -> tuple[str, bool]:
    """(text, templated): the prompt as the model sees it, and whether a chat template wrote it.

    `prefill` is appended after the generation prompt (a judge's "Verdict: [[").
    """
    text = fmt.template.replace("{prompt}", prompt) if fmt.template else prompt
    if use_chat_template(tokenizer, fmt.chat):
        messages = ([{"role": "system", "content": fmt.system}] if fmt.system else []) + [{"role": "user", "content": text}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefill, True
    if fmt.system:
        text = f"{fmt.system}\n\n{text}"
    return text + prefill, False


def encode_text(tokenizer, text: str, *, templated: bool) -> list[int]:
    """Token ids of `text`: the tokenizer's special tokens (BOS) only when no chat template wrote them."""
    return tokenizer.encode(text, add_special_tokens=not templated)


def encode_prompt(tokenizer, prompt: str, fmt: PromptFormat = PromptFormat(), *, prefill: str = "") -> list[int]:
    """Token ids of one prompt under the one formatting rule (module docstring)."""
    text, templated = format_prompt(tokenizer, prompt, fmt, prefill=prefill)
    return encode_text(tokenizer, text, templated=templated)


def left_pad(token_lists: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), each (B, L), rows right-aligned (left padding)."""
    import torch

    L = max((len(t) for t in token_lists), default=0)
    ids = torch.full((len(token_lists), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), L), dtype=torch.long)
    for row, toks in enumerate(token_lists):
        if toks:
            ids[row, L - len(toks):] = torch.as_tensor(list(toks), dtype=torch.long)
            mask[row, L - len(toks):] = 1
    return ids.to(device), mask.to(device)


def encode_prompts(tokenizer, prompts: Sequence[str], fmt: PromptFormat = PromptFormat(),
                   device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask, (B, L) each."""
    return left_pad([encode_prompt(tokenizer, p, fmt) for p in prompts], pad_id(tokenizer), device)


def pad_id(tokenizer) -> int:
    """The padding id (end of sequence when the tokenizer has no pad token)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return 0 if pad is None else int(pad)


def banned_ids(tokenizer) -> tuple[int, ...]:
    """Token ids the trainers never sample: the pad token, unless it is the end of sequence (so
    that a response's text is a function of its tokens, and the enumerations that compute π_ref
    and a policy's classes see the tree the trainers sample)."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    return (int(pad),) if pad is not None and pad != eos else ()


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on the first real token of each left-padded row; (B, L)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def context_length(model) -> int | None:
    """The model's context window (max_position_embeddings / n_positions), None when unknown."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# ---------------------------------------------------------------------------- stop strings

def parse_stop(values: Sequence[str] | None) -> tuple[str, ...]:
    """Stop strings from the command line, escape sequences ("\\n", "\\t", "\\u2028") decoded."""
    out = []
    for v in values or ():
        try:
            s = codecs.decode(v, "unicode_escape") if "\\" in v else v
        except UnicodeDecodeError as error:
            raise ConfigError(f"--stop {v!r} has a bad escape sequence ({error.reason}); write e.g. --stop '\\n'") from None
        if not s:
            raise ConfigError("--stop '' is empty; give a non-empty stop string such as '\\n'")
        out.append(s)
    return tuple(dict.fromkeys(out))


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


# ---------------------------------------------------------------------------- one forward with a cache

def _inner_module(model):
    import torch

    inner = getattr(model, "model", model) if not isinstance(model, torch.nn.Module) else model  # AdaptersOff/WithParams
    while type(inner).__name__ in ("DistributedDataParallel", "FullyShardedDataParallel"):   # they pass kwargs on
        inner = inner.module
    if hasattr(inner, "get_base_model"):  # peft
        inner = inner.get_base_model()
    return inner


def forward_arguments(model) -> tuple[str, bool]:
    """(name of the KV-cache argument, whether forward() takes `logits_to_keep`) of `model`.

    transformers >= 5.x calls the cache `cache`, older releases `past_key_values`; looks
    through peft wrappers and the trainers' reference/target views.
    """
    params = inspect.signature(_inner_module(model).forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


class CachedLM:
    """Next-token logits of one causal LM, keeping its KV cache between calls."""

    def __init__(self, model, *, use_cache: bool = True):
        self.model, self.use_cache = model, use_cache
        self.cache_arg, self.keep_arg = forward_arguments(model)
        self.past = None

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, new: int) -> torch.Tensor:
        """Logits (B, V) after the last of `ids` (B, L); `new` = how many trailing tokens are not cached yet."""
        kw = {"logits_to_keep": 1} if self.keep_arg else {}
        if self.use_cache:
            out = self.model(input_ids=ids[:, -new:], attention_mask=mask, position_ids=positions(mask)[:, -new:],
                             use_cache=True, **{self.cache_arg: self.past}, **kw)
            self.past = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        else:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=False, **kw)
        return out.logits[:, -1, :].float()


def mask_logits(logits: torch.Tensor, banned: tuple[int, ...]) -> torch.Tensor:
    """Set the logits of `banned` token ids to −inf; logits (..., V)."""
    if not banned:
        return logits
    logits = logits.clone()
    logits[..., list(banned)] = float("-inf")
    return logits


# ---------------------------------------------------------------------------- drawing a token

def draw_tokens(logits: torch.Tensor, u: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0,
                top_k: int = 0) -> torch.Tensor:
    """One token per row by inverse CDF (module docstring): logits (B, V), u (B,) in [0, 1) -> (B,) int64.

    Greedy (argmax) when temperature == 0. `top_k` > 0 keeps the k most probable tokens first
    and `top_p` then applies to their renormalised mass (the order of transformers' warpers).
    Row b's token depends on logits[b] and u[b] only.
    """
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    V = logits.shape[-1]
    p = torch.softmax(logits.float() / temperature, dim=-1)                       # (B, V)
    u = u.to(device=p.device, dtype=p.dtype).unsqueeze(-1)                         # (B, 1)
    if 0 < top_k < V:
        vals, ix = torch.topk(p, top_k, dim=-1)                                    # (B, k) decreasing
        cdf = torch.cumsum(vals, dim=-1)
        total = cdf[:, -1:]                                                        # (B, 1) top-k mass
        keep = torch.searchsorted(cdf, top_p * total, right=False).clamp(max=top_k - 1)
        j = torch.minimum(torch.searchsorted(cdf, u * cdf.gather(-1, keep), right=True), keep).squeeze(-1)
        return ix.gather(-1, j.unsqueeze(-1)).squeeze(-1)
    if top_p >= 1.0:
        cdf = torch.cumsum(p, dim=-1)                                              # (B, V)
        idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(-1)
        # Never return a token past the last one, even at the float edge of the CDF.
        return idx.clamp(max=V - 1)
    k = min(V, 64)
    while True:  # the smallest k whose top-k mass reaches top_p in every row (no full sort)
        vals, ix = torch.topk(p, k, dim=-1)                                        # (B, k) decreasing
        cdf = torch.cumsum(vals, dim=-1)
        if k == V or bool((cdf[:, -1] >= top_p).all()):
            break
        k = min(V, k * 8)
    target = torch.full_like(cdf[:, :1], top_p)
    keep = torch.searchsorted(cdf, target, right=False).clamp(max=k - 1)           # (B, 1) last kept index
    Z = cdf.gather(-1, keep)                                                       # (B, 1) kept mass
    j = torch.searchsorted(cdf, u * Z, right=True)
    j = torch.minimum(j, keep).squeeze(-1)
    return ix.gather(-1, j.unsqueeze(-1)).squeeze(-1)


# ---------------------------------------------------------------------------- the sampling loop

@dataclass(frozen=True)
class Generation:
    """Sampled responses, right-padded."""

    tokens: torch.Tensor
    """(B, T) int64 response token ids, pad after the last one."""
    mask: torch.Tensor
    """(B, T) int64, 1 on response tokens (the end-of-sequence token included), 0 on padding."""


NextLogits = Callable[..., "torch.Tensor"]
"""(ids (B, L), mask (B, L), new tokens) -> next-token logits or log-probs (B, V)."""


def sample(next_logits: NextLogits, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, uniforms: torch.Tensor,
           stop_ids: Sequence[int], pad_id: int, temperature: float | Sequence[float] = 1.0, top_p: float = 1.0,
           top_k: int = 0, banned: tuple[int, ...] = (), stop: Sequence[str] = (),
           decode: Callable[[list[int]], str] | None = None, first: torch.Tensor | None = None) -> Generation:
    """Sample responses to left-padded prompts token by token.

    input_ids, attention_mask: (B, L). uniforms: (B, T), T = maximum new tokens; row b's
    step t uses uniforms[b, t] only. A row ends at a token in `stop_ids` (kept, mask 1), or
    at the token after which `decode(row tokens)` contains a stop string (kept; the caller
    truncates the text with `truncate_at_stop`). `banned` ids get probability 0. `first`
    (B,), if given, is every row's first token instead of a draw (the rest is sampled).
    `temperature`: one for every token, or one per new token (step t uses temperature[t], the
    last one for the steps after it).
    """
    if input_ids.shape != attention_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} differ")
    if uniforms.dim() != 2 or uniforms.shape[0] != input_ids.shape[0]:
        raise ValueError(f"uniforms must be (B, max_new_tokens) with B = {input_ids.shape[0]}; got {tuple(uniforms.shape)}")
    if stop and decode is None:
        raise ValueError("stop strings need `decode` (token ids -> text)")
    if first is not None and tuple(first.shape) != (input_ids.shape[0],):
        raise ValueError(f"first must be (B,) with B = {input_ids.shape[0]}; got {tuple(first.shape)}")
    temperatures = tuple(temperature) if isinstance(temperature, Sequence) else (temperature,)
    if not temperatures:
        raise ValueError("temperature must be a number or a non-empty sequence of numbers")
    import torch

    with torch.no_grad():
        return _sample(next_logits, input_ids, attention_mask, uniforms=uniforms, stop_ids=stop_ids, pad_id=pad_id,
                       temperatures=temperatures, top_p=top_p, top_k=top_k, banned=banned, stop=stop, decode=decode,
                       first=first)


def _sample(next_logits, input_ids, attention_mask, *, uniforms, stop_ids, pad_id, temperatures, top_p, top_k, banned,
            stop, decode, first=None) -> Generation:
    import torch

    B, T = uniforms.shape
    device = input_ids.device
    uniforms = uniforms.to(device)
    stops = torch.tensor(sorted({int(s) for s in stop_ids}), dtype=torch.long, device=device)
    ids, mask = input_ids, attention_mask.long()
    tokens = torch.full((B, T), pad_id, dtype=torch.long, device=device)
    out_mask = torch.zeros((B, T), dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    new = ids.shape[1]
    for t in range(T):
        logits = mask_logits(next_logits(ids, mask, new), banned)                    # (B, V)
        tau = temperatures[min(t, len(temperatures) - 1)]
        nxt = draw_tokens(logits, uniforms[:, t], temperature=tau, top_p=top_p, top_k=top_k) \
            if t or first is None else first.to(device)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        tokens[:, t] = nxt
        out_mask[:, t] = (~done).long()
        ended = torch.isin(nxt, stops) if len(stops) else torch.zeros_like(done)
        if stop:
            for b in (~done & ~ended).nonzero().flatten().tolist():
                text = decode(tokens[b, : t + 1].tolist())
                ended[b] = any(s in text for s in stop)
        done = done | ended
        if bool(done.all()):
            return Generation(tokens=tokens[:, : t + 1], mask=out_mask[:, : t + 1])
        mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=1)
        ids = torch.cat([ids, nxt.unsqueeze(-1)], dim=1)
        new = 1
    return Generation(tokens=tokens, mask=out_mask)


# ---------------------------------------------------------------------------- shared prompt prefixes

def shared_prefix_length(token_lists: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all `token_lists` share, leaving each at least one token of its own."""
    first = token_lists[0]
    n = min(len(t) for t in token_lists) - 1
    for toks in token_lists[1:]:
        j = 0
        while j < n and toks[j] == first[j]:
            j += 1
        n = j
    return max(n, 0)


def sliding_window(model) -> int | None:
    """The model's sliding attention window (Gemma, Mistral), None when it attends to all tokens."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    value = getattr(config, "sliding_window", None)
    return value if isinstance(value, int) and value > 0 else None


def tree_attention_supported(model) -> bool:
    """Whether `tree_logits` may pass `model` a 4-D attention mask (eager and SDPA attention do)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) in ("eager", "sdpa")


def tree_logits(model, trees: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]], pad_id: int,
                device=None) -> torch.Tensor:
    """Next-token logits (N, V) after `prefix + suffix`, for every suffix of every tree, in order.

    Each tree (a prefix and its suffixes, e.g. the two orders of one comparison: the judge
    template and question, then each order's responses) is packed into one row as
    `prefix, suffix_1, suffix_2, ...` and run in ONE forward: a 4-D attention mask lets each
    suffix see the prefix and itself but no other suffix, and its positions continue from
    the prefix's, so every suffix's logits are those of its whole sequence alone (up to
    floating-point summation order). The prefix's tokens run once per tree. Rows are right-
    padded; only the suffixes' last positions go through the output head. Needs eager or
    SDPA attention (`tree_attention_supported`); every prefix and suffix non-empty.
    """
    import torch

    if any(len(p) == 0 or not s or any(len(x) == 0 for x in s) for p, s in trees):
        raise ValueError("tree_logits needs a non-empty prefix and non-empty suffixes per tree")
    rows, lasts = [], []
    for prefix, suffixes in trees:
        ids, pos, seg, last = list(prefix), list(range(len(prefix))), [-1] * len(prefix), []
        for j, s in enumerate(suffixes):
            ids += s
            pos += range(len(prefix), len(prefix) + len(s))
            seg += [j] * len(s)
            last.append(len(ids) - 1)
        rows.append((ids, pos, seg))
        lasts.append(last)
    R, L = len(rows), max(len(r[0]) for r in rows)
    ids = torch.full((R, L), pad_id, dtype=torch.long)
    pos = torch.zeros((R, L), dtype=torch.long)
    seg = torch.full((R, L), -2, dtype=torch.long)   # -1 prefix, j suffix j, -2 padding
    for r, (i, p, s) in enumerate(rows):
        ids[r, :len(i)], pos[r, :len(p)], seg[r, :len(s)] = torch.tensor(i), torch.tensor(p), torch.tensor(s)
    causal = torch.ones((L, L), dtype=torch.bool).tril()
    visible = causal & ((seg[:, None, :] == -1) | (seg[:, None, :] == seg[:, :, None]))   # (R, q, k)
    dtype = next(model.parameters()).dtype
    mask = torch.zeros((R, 1, L, L), dtype=dtype).masked_fill(~visible[:, None], torch.finfo(dtype).min)
    at = [(r, k) for r, last in enumerate(lasts) for k in last]
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:   # no output-head module to hook: every position through the head
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device)).logits
        return torch.stack([logits[r, k] for r, k in at]).float()
    # Only the suffixes' last positions go through the output head (a 262k vocabulary makes the
    # head cost as much as several layers): a pre-hook hands it those hidden states alone, as one
    # (1, N, H) batch, and whatever the model does after the head (softcapping) applies unchanged.
    where = (torch.tensor([r for r, _ in at], device=device), torch.tensor([k for _, k in at], device=device))
    handle = head.register_forward_pre_hook(lambda _module, args: (args[0][where].unsqueeze(0), *args[1:]))
    try:
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device)).logits
    finally:
        handle.remove()
    return logits[0].float()
