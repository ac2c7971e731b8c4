"""The default engine: transformers in process, batched, left-padded, seeded per request.

Sampling is the runtime's loop (`arena.lm.sample`) rather than `model.generate`, because
`generate` draws from one global random stream, so a response would depend on its batch
neighbours and on how many requests came before it. Here each request owns a random
stream seeded with its own seed (`arena.engines.request_seed`): step t of a request uses
the t-th uniform of that stream, and `arena.lm.draw_tokens` inverts the (temperature,
top-p) CDF at it. Prompts are encoded by `arena.lm.encode_prompt`, the rule the trainers
use too; a response ends at an end-of-sequence id of the checkpoint (tokenizer and
generation_config.json) or before its first stop string.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from arena.engines import Request, SamplingParams
from arena.errors import CheckpointError, ConfigError, InputError, require
from arena.lm import context_length, encode_prompt, truncate_at_stop

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

    def load(self, ckpt, dtype: str = "auto"):
        """(model, tokenizer) for a discovered checkpoint (hf, peft or gguf); on the GPU when there is one."""
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else None)
        return load_policy(ckpt, allow_pickle=self.allow_pickle, trust_remote_code=self.trust_remote_code,
                           device=device, dtype=dtype)

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        import torch

        if not requests:
            return
        model, tok = self.load(ckpt, params.dtype)
        token_lists = [encode_prompt(tok, r.prompt, params.prompt_format) for r in requests]
        # Batch by length (less padding); results do not depend on the batches.
        order = sorted(range(len(requests)), key=lambda i: (len(token_lists[i]), i))
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                outs = sample_batch(model, tok, [token_lists[i] for i in idx], [requests[i].seed for i in idx], params)
                yield list(zip(idx, outs))
        del model


def load_policy(ckpt, *, allow_pickle=False, trust_remote_code=False, device=None, dtype="auto"):
    """(model, tokenizer) of a discovered checkpoint; dtype auto|bf16|fp16|fp32 (auto: the checkpoint's)."""
    from arena.lm import torch_dtype
    from arena.loading import load_causal_lm, load_tokenizer
    from transformers.utils import logging as hf_logging

    dtype = torch_dtype(dtype)
    hf_logging.disable_progress_bar()  # our own progress bar is on stderr already

    if ckpt.kind == "hf":
        return load_causal_lm(ckpt.path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, device=device,
                              dtype=dtype)
    if ckpt.kind == "peft":
        peft = require("peft", "peft")
        model, tok = load_causal_lm(ckpt.base, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                                    device=device, dtype=dtype)
        from arena.checkpoints import TOKENIZER_FILES

        if any((ckpt.path / f).exists() for f in TOKENIZER_FILES):
            tok = load_tokenizer(ckpt.path, trust_remote_code=trust_remote_code)
        from arena.loading import quiet_peft

        try:
            with quiet_peft():
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
            model = AutoModelForCausalLM.from_pretrained(str(ckpt.path.parent), gguf_file=ckpt.path.name, dtype=dtype)
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


def stop_ids(model, tok) -> set[int]:
    """End-of-sequence ids: the tokenizer's and those of the checkpoint's generation_config.json."""
    ids = set()
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in (eos if isinstance(eos, (list, tuple)) else [eos]) + [tok.eos_token_id]:
        if v is not None:
            ids.add(int(v))
    return ids


def sample_batch(model, tok, token_lists: list[list[int]], seeds: list[int], params: SamplingParams) -> list[str]:
    """Sample one response per prompt (token ids) with a KV cache; row i uses only its own seed."""
    import torch

    from arena.lm import CachedLM, left_pad, pad_id, sample

    device = next(model.parameters()).device
    stops = stop_ids(model, tok)
    ids, attn = left_pad(token_lists, pad_id(tok), device)                     # (B, L) each
    steps = params.max_new_tokens
    n_ctx = context_length(model)
    if n_ctx:  # a response stops at the context window, as it would in any server
        longest = max(len(t) for t in token_lists)
        if longest >= n_ctx:
            raise InputError(f"a prompt of {longest} tokens does not fit the {n_ctx}-token context of this "
                             "checkpoint; shorten the prompts")
        steps = min(steps, n_ctx - longest)
    # The t-th uniform of a request's own stream drives its step t, whatever its batch.
    u = torch.tensor(np.stack([np.random.Generator(np.random.PCG64(s)).random(steps) for s in seeds]))  # (B, T)
    gen = sample(CachedLM(model), ids, attn, uniforms=u, stop_ids=stops, pad_id=pad_id(tok),
                 temperature=params.temperature, top_p=params.top_p, top_k=params.top_k, stop=params.stop,
                 decode=lambda t: tok.decode(t, skip_special_tokens=True))
    texts = []
    for row, m in zip(gen.tokens.tolist(), gen.mask.tolist()):
        kept = [t for t, keep in zip(row, m) if keep and t not in stops]
        texts.append(truncate_at_stop(tok.decode(kept, skip_special_tokens=True), params.stop))
    return texts
