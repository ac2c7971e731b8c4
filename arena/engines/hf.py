"""The default engine: transformers in process, batched, left-padded, seeded per request.

Sampling is the runtime's loop (`arena.lm.sample`) rather than `model.generate`, because
`generate` draws from one global random stream, so a response would depend on its batch
neighbours and on how many requests came before it. Here each request owns a random
stream seeded with its own seed (`arena.engines.request_seed`): step t of a request uses
the t-th uniform of that stream, and `arena.lm.draw_tokens` inverts the (temperature,
top-p) CDF at it. Prompts are encoded by `arena.lm.encode_prompt`, the rule the trainers
use too; a response ends at an end-of-sequence id of the checkpoint (tokenizer and
generation_config.json) or before its first stop string.

Loaded checkpoints are kept between calls (`ModelCache`): an adaptive tournament asks every
checkpoint for a few responses at each step, and reloading a real model costs seconds each
time. The cache is keyed by everything that decides the loaded weights (the checkpoint's
kind, paths, fingerprint and files' stat signature; dtype, device, trust_remote_code,
allow_pickle), so an edited checkpoint is loaded again and a cached model is the very model a
fresh load would give: responses do not depend on the cache. It keeps the least recently used
models out while their parameter bytes exceed a budget (`cache_mb`; by default `CACHE_SHARE`
of the memory the models run in), and `close()` releases everything.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path

import numpy as np

from arena.engines import Request, SamplingParams
from arena.errors import CheckpointError, ConfigError, InputError, require
from arena.lm import context_length, encode_prompt, truncate_at_stop

#: Share of the memory the models run in (the GPU's, else RAM) that loaded checkpoints may keep
#: between calls by default. A quarter leaves room for the judge, the activations and the KV
#: cache of the model in use; a run that needs more room sets `cache_mb`.
CACHE_SHARE = 0.25
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


class HFEngine:
    name = "hf"
    OPTIONS = ("batch_size", "device", "trust_remote_code", "allow_pickle", "cache_mb")

    def __init__(self, *, batch_size: int = 16, device: str | None = None,
                 trust_remote_code: bool = False, allow_pickle: bool = False, cache_mb: float | None = None):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        if cache_mb is not None and not (isinstance(cache_mb, (int, float)) and math.isfinite(cache_mb)
                                         and cache_mb >= 0):
            raise ConfigError(f"cache_mb must be a number >= 0 (0 = load each checkpoint on every call, "
                              f"None = {CACHE_SHARE:.0%} of memory); got {cache_mb!r}")
        self.batch_size = batch_size
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle
        self.cache_mb = cache_mb
        self._cache: ModelCache | None = None  # built at the first load, when the device is known

    def _device(self) -> str | None:
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else None)

    @property
    def cache(self) -> ModelCache:
        """The loaded checkpoints kept between calls (`ModelCache`); its budget is fixed at first use."""
        if self._cache is None:
            budget = (default_cache_bytes(self._device()) if self.cache_mb is None
                      else int(self.cache_mb * 2**20))
            self._cache = ModelCache(budget)
        return self._cache

    def load(self, ckpt, dtype: str = "auto"):
        """(model, tokenizer) for a discovered checkpoint (hf, peft or gguf); on the GPU when there is one.

        Served from the cache when the same checkpoint (same files) was loaded with the same
        settings and is still kept; loaded (and kept, budget allowing) otherwise.
        """
        device = self._device()
        key = (checkpoint_identity(ckpt), dtype, device, self.trust_remote_code, self.allow_pickle)
        return self.cache.get(key, lambda: load_policy(ckpt, allow_pickle=self.allow_pickle,
                                                       trust_remote_code=self.trust_remote_code,
                                                       device=device, dtype=dtype),
                              estimate=lambda: weight_file_bytes(ckpt))

    def close(self) -> None:
        """Release every kept model (the end of a tournament); the engine stays usable."""
        if self._cache is not None:
            self._cache.clear()

    def __enter__(self) -> HFEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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


class ModelCache:
    """Loaded (model, tokenizer) pairs by load key, least recently used first, within `budget` bytes.

    A model is kept only while the parameter and buffer bytes of the kept models stay within
    the budget: before a load, the least recently used are released until the new checkpoint's
    weight files would fit; after it, until its measured bytes fit. A model larger than the
    whole budget is used for its call and not kept (a budget of 0 keeps nothing: every call
    loads, as without a cache). `loads`, `hits` and `evictions` count what happened.
    """

    def __init__(self, budget: int):
        if budget < 0:
            raise ConfigError(f"cache budget must be >= 0 bytes; got {budget}")
        self.budget = int(budget)
        self._kept: OrderedDict[Hashable, tuple[object, object, int]] = OrderedDict()  # key -> (model, tok, bytes)
        self.loads = self.hits = self.evictions = 0

    @property
    def held(self) -> int:
        """Bytes of the kept models."""
        return sum(n for _, _, n in self._kept.values())

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable, load: Callable[[], tuple], *, estimate: Callable[[], int] = lambda: 0) -> tuple:
        """(model, tokenizer) under `key`: the kept one, or `load()` (`estimate()`: its expected bytes,
        asked only on a miss)."""
        if key in self._kept:
            self._kept.move_to_end(key)
            self.hits += 1
            model, tok, _ = self._kept[key]
            return model, tok
        self._shrink(self.budget - min(estimate(), self.budget))  # room first: peak memory stays near the budget
        model, tok = load()
        self.loads += 1
        nbytes = model_bytes(model)
        if nbytes <= self.budget:
            self._shrink(self.budget - nbytes)
            self._kept[key] = (model, tok, nbytes)
        return model, tok

    def clear(self) -> None:
        """Release every kept model."""
        self._shrink(0)

    def _shrink(self, target: int) -> None:
        """Release the least recently used models until at most `target` bytes are kept."""
        released = False
        while self._kept and self.held > target:
            self._kept.popitem(last=False)
            self.evictions += 1
            released = True
        if released:
            import torch

            if torch.cuda.is_available():  # hand the freed blocks back, for the judge and the next model
                torch.cuda.empty_cache()


def model_bytes(model) -> int:
    """Bytes of a model's parameters and buffers (tied weights counted once)."""
    seen, total = set(), 0
    for t in (*model.parameters(), *model.buffers()):
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def _paths(ckpt) -> list:
    """A checkpoint's paths: its own, and a PEFT adapter's base."""
    return [ckpt.path] + ([ckpt.base] if getattr(ckpt, "base", None) is not None else [])


def checkpoint_identity(ckpt) -> tuple:
    """What names a checkpoint's weights: kind, fingerprint, and each of its paths (a PEFT adapter's
    base too) with the stat signature of its files, so a checkpoint edited in place is not served
    from the cache even under the fingerprint it was discovered with."""
    from arena.fingerprint import stat_signature

    return (ckpt.kind, ckpt.fingerprint, *((str(Path(p).resolve()), stat_signature(p)[0]) for p in _paths(ckpt)))


def weight_file_bytes(ckpt) -> int:
    """Bytes of a checkpoint's weight files on disk (a PEFT adapter's base too): the estimate of its
    size in memory before it is loaded."""
    total = 0
    for p in map(Path, _paths(ckpt)):
        files = [p] if p.is_file() else [f for f in p.iterdir() if f.is_file()] if p.is_dir() else []
        total += sum(f.stat().st_size for f in files if f.suffix in _WEIGHT_SUFFIXES)
    return total


def default_cache_bytes(device: str | None) -> int:
    """`CACHE_SHARE` of the memory the models live in: the GPU's for a CUDA device, else RAM."""
    import torch

    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    else:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows): keep one small model's worth
            total = 4 * 2**30
    return int(CACHE_SHARE * total)


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
