"""vLLM engine (optional extra `vllm`, CUDA GPU): same request seeds, same sampling knobs.

vLLM seeds each request separately (`SamplingParams(seed=...)`), so a response depends on
its own seed only, as with the `hf` engine. The two engines do not produce the same text
for the same seed (different kernels and samplers), which is why the engine name is part
of the sampling-params key in the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from arena.engines import Request, SamplingParams
from arena.errors import ConfigError, require


class VLLMEngine:
    name = "vllm"
    OPTIONS = ("batch_size", "trust_remote_code", "allow_pickle")

    def __init__(self, *, batch_size: int = 256, trust_remote_code: bool = False, allow_pickle: bool = False):
        self.batch_size = batch_size
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle

    def check(self) -> None:
        """Raise before any work when vLLM or a CUDA GPU is missing."""
        require("vllm", "vllm")
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--engine vllm needs a CUDA GPU; use --engine hf on this machine")

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        self.check()
        vllm = require("vllm", "vllm")
        if ckpt.kind != "hf":
            raise ConfigError(f"--engine vllm runs Hugging Face model directories only; {ckpt.name} is {ckpt.kind}: use --engine hf")
        llm = vllm.LLM(model=str(ckpt.path), trust_remote_code=self.trust_remote_code,
                       load_format="auto" if self.allow_pickle else "safetensors")
        tok = llm.get_tokenizer()
        from arena.lm import encode_prompt, truncate_at_stop

        for start in range(0, len(requests), self.batch_size):
            chunk = list(range(start, min(start + self.batch_size, len(requests))))
            sps = [vllm.SamplingParams(n=1, temperature=params.temperature, top_p=params.top_p,
                                       max_tokens=params.max_new_tokens, seed=requests[i].seed,
                                       stop=list(params.stop) or None) for i in chunk]
            # The prompt ids of the one encoding rule (arena.lm), as the hf engine and the trainers use.
            prompts = [{"prompt_token_ids": encode_prompt(tok, requests[i].prompt, params.prompt_format)} for i in chunk]
            outs = llm.generate(prompts, sps, use_tqdm=False)
            yield [(i, truncate_at_stop(o.outputs[0].text, params.stop)) for i, o in zip(chunk, outs)]
        del llm
