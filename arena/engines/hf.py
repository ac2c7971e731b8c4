"""The default engine: transformers in process, batched, left-padded, seeded per request.

Sampling is written out here rather than delegated to `model.generate`, because
`generate` draws from one global random stream, so a response would depend on its batch
neighbours and on how many requests came before it. Here each request owns a random
stream seeded with its own seed (`arena.engines.request_seed`), and a token is drawn by
inverting the CDF of the (temperature, top-p) distribution at a uniform from that stream:

    u ~ U[0, 1) from stream(seed),  y_t = min{ k : sum_{j <= k} p_sorted[j] > u * Z }

with p_sorted the probabilities sorted in decreasing order (stable), truncated to the
smallest prefix of mass >= top_p (Holtzman et al. 2019, arXiv 1904.09751), Z its mass.
Left padding with position ids counted from each row's first real token makes a row's
logits those it would have alone (up to floating-point summation order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from arena.engines import Request, SamplingParams
from arena.errors import CheckpointError, ConfigError, InputError, require


class HFEngine:
    name = "hf"
    OPTIONS = ("batch_size", "device", "trust_remote_code", "allow_pickle")

    def __init__(self, *, batch_size: int = 16, device: str | None = None,
                 trust_remote_code: bool = False, allow_pickle: bool = False):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        self.batch_size = batch_size
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle

    def load(self, ckpt):
        """(model, tokenizer) for a discovered checkpoint (hf, peft or gguf); on the GPU when there is one."""
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else None)
        return load_policy(ckpt, allow_pickle=self.allow_pickle, trust_remote_code=self.trust_remote_code,
                           device=device)

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        import torch

        if not requests:
            return
        model, tok = self.load(ckpt)
        texts = [format_prompt(tok, r.prompt) for r in requests]
        templated = bool(getattr(tok, "chat_template", None))
        lengths = [len(tok(t, add_special_tokens=not templated)["input_ids"]) for t in texts]
        # Batch by length (less padding); results do not depend on the batches.
        order = sorted(range(len(requests)), key=lambda i: (lengths[i], i))
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                outs = sample_batch(model, tok, [texts[i] for i in idx], [requests[i].seed for i in idx], params,
                                    add_special_tokens=not templated)
                yield list(zip(idx, outs))
        del model


def load_policy(ckpt, *, allow_pickle=False, trust_remote_code=False, device=None):
    from arena.loading import load_causal_lm, load_tokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is on stderr already

    if ckpt.kind == "hf":
        return load_causal_lm(ckpt.path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, device=device)
    if ckpt.kind == "peft":
        peft = require("peft", "peft")
        model, tok = load_causal_lm(ckpt.base, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                                    device=device)
        from arena.checkpoints import TOKENIZER_FILES

        if any((ckpt.path / f).exists() for f in TOKENIZER_FILES):
            tok = load_tokenizer(ckpt.path, trust_remote_code=trust_remote_code)
        try:
            model = peft.PeftModel.from_pretrained(model, str(ckpt.path))
        except Exception as error:
            raise CheckpointError(f"cannot load adapter {ckpt.path} over {ckpt.base}: {error}") from error
        model.eval()
        return model, tok
    if ckpt.kind == "gguf":
        require("gguf", "gguf")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(ckpt.path.parent), gguf_file=ckpt.path.name)
            model = AutoModelForCausalLM.from_pretrained(str(ckpt.path.parent), gguf_file=ckpt.path.name)
        except Exception as error:
            raise CheckpointError(f"cannot load GGUF file {ckpt.path}: {error}") from error
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        if device is not None:
            model.to(device)
        model.eval()
        return model, tok
    raise CheckpointError(f"unknown checkpoint kind {ckpt.kind!r} for {ckpt.path}")


def format_prompt(tok, prompt: str) -> str:
    """The prompt through the tokenizer's chat template when it has one, else unchanged."""
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    return prompt


def stop_ids(model, tok) -> set[int]:
    ids = set()
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in (eos if isinstance(eos, (list, tuple)) else [eos]) + [tok.eos_token_id]:
        if v is not None:
            ids.add(int(v))
    return ids


def _cache_argument(model) -> str:
    """'cache' (transformers >= 5.x) or 'past_key_values' (older), whichever forward() takes."""
    import inspect

    forward = model.get_base_model().forward if hasattr(model, "get_base_model") else model.forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def draw_token(logits: np.ndarray, u: float, *, temperature: float, top_p: float) -> int:
    """One token from (V,) float64 logits at uniform u (inverse CDF; greedy when temperature == 0)."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits / temperature
    z = z - z.max()
    p = np.exp(z)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    cdf = np.cumsum(ps)
    if top_p < 1.0:
        keep = int(np.searchsorted(cdf, top_p, side="left")) + 1  # smallest prefix with mass >= top_p
        ps, cdf = ps[:keep], cdf[:keep]
    k = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    return int(order[min(k, len(ps) - 1)])


def sample_batch(model, tok, texts: list[str], seeds: list[int], params: SamplingParams, *,
                 add_special_tokens: bool = True) -> list[str]:
    """Sample one response per text with a KV cache; row i uses only its own seed."""
    import torch

    device = next(model.parameters()).device
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens)
    ids = enc["input_ids"].to(device)                     # (B, T)
    attn = enc["attention_mask"].to(device)               # (B, T)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)              # (B, T) positions from each row's first token
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
    stops = stop_ids(model, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else next(iter(stops))
    B = len(texts)
    done = [False] * B
    tokens: list[list[int]] = [[] for _ in range(B)]
    cur, cur_pos, past = ids, pos, None
    cache_arg = _cache_argument(model)
    steps = params.max_new_tokens
    n_ctx = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if n_ctx:  # a response stops at the context window, as it would in any server
        longest = int(attn.sum(-1).max())
        if longest >= n_ctx:
            raise InputError(f"a prompt of {longest} tokens does not fit the {n_ctx}-token context of this "
                             "checkpoint; shorten the prompts")
        steps = min(steps, n_ctx - longest)
    for _ in range(steps):
        out = model(input_ids=cur, attention_mask=attn, position_ids=cur_pos, use_cache=True, **{cache_arg: past})
        past = getattr(out, cache_arg, None)
        logits = out.logits[:, -1, :].double().cpu().numpy()  # (B, V)
        nxt = []
        for i in range(B):
            u = rngs[i].random()  # drawn for every row at every step, so a row's stream is its own
            if done[i]:
                nxt.append(pad)
                continue
            t = draw_token(logits[i], u, temperature=params.temperature, top_p=params.top_p)
            if t in stops:
                done[i] = True
                nxt.append(pad)
            else:
                tokens[i].append(t)
                nxt.append(t)
        if all(done):
            break
        cur = torch.tensor(nxt, device=device).unsqueeze(1)   # (B, 1)
        attn = torch.cat([attn, torch.ones((B, 1), dtype=attn.dtype, device=device)], dim=1)
        cur_pos = cur_pos[:, -1:] + 1
    return [tok.decode(t, skip_special_tokens=True) for t in tokens]
