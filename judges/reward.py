"""Reward-model judge: a scalar score per response, P(a ≻ b) = σ(r_a − r_b) (Bradley–Terry).

The reward model is a sequence classifier with one output (as trained in InstructGPT,
Ouyang et al. 2022, arXiv 2203.02155). Each (prompt, response) is scored once per call,
however many comparisons it appears in; the text is the tokenizer's chat template
([user: prompt, assistant: response]) when it has one, else `template`. A BT judge has no
position bias by construction: judge(b, a) = 1 − judge(a, b) exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj, fingerprint_path
from arena.lm import encode_text, use_chat_template
from judges.base import Comparison, Failure
from judges.options import Option, check_template, coerce_options, dtype_key, read_template
from judges.seqcls import classify, load_sequence_classifier, max_length

DEFAULT_TEMPLATE = "{prompt}\n{response}"

OPTIONS: dict[str, Option] = {
    "template": Option("str", DEFAULT_TEMPLATE, "text scored per response, with {prompt} and {response}"),
    "template_file": Option("str", None, "read the template from this text file"),
    "chat_template": Option("str", "auto", "auto (use the tokenizer's chat template when it has one), on, off"),
    "batch_size": Option("int", 16, "texts per forward pass", minimum=1),
    "device": Option("str", None, "torch device (default: cuda when available, else cpu)"),
    "dtype": Option("str", None, "auto, bf16, fp16 or fp32 (default auto: the checkpoint's)"),
    "allow_pickle": Option("bool", False, "allow *.bin/*.pt weights (they can run code when loaded)"),
    "trust_remote_code": Option("bool", False, "run the checkpoint's own modelling code"),
}


class RewardJudge:
    """σ(r(x, a) − r(x, b)) from a one-output sequence classifier."""

    def __init__(self, model, tokenizer, *, fingerprint: str, template: str, chat: bool, batch_size: int = 16):
        if model.config.num_labels != 1:
            raise ConfigError(
                f"a reward model has one output; this one has {model.config.num_labels}; "
                "use pairmodel:PATH for a pairwise classifier"
            )
        self.model, self.tokenizer = model, tokenizer
        self.fingerprint = fingerprint
        self.template, self.chat, self.batch_size = template, chat, batch_size
        self.max_length = max_length(model)

    def text(self, prompt: str, response: str) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
            )
        return self.template.format(prompt=prompt, response=response)

    def rewards(self, pairs: Sequence[tuple[str, str]]) -> list[float | Failure]:
        """r(prompt, response) per pair, or a Failure when the text is too long."""
        tokens = [encode_text(self.tokenizer, self.text(p, r), templated=self.chat) for p, r in pairs]
        fits = [i for i, t in enumerate(tokens) if self.max_length is None or len(t) <= self.max_length]
        out: list[float | Failure] = [
            Failure(f"reward text is {len(t)} tokens, over the model's limit of {self.max_length}") for t in tokens
        ]
        if fits:
            scores = classify(self.model, self.tokenizer, [tokens[i] for i in fits], batch_size=self.batch_size)
            for i, s in zip(fits, scores[:, 0]):
                out[i] = float(s) if math.isfinite(s) else Failure(f"non-finite reward {s}")
        return out

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        keys = list(dict.fromkeys(
            k for c in comparisons for k in ((c.prompt, c.response_a), (c.prompt, c.response_b))
        ))
        reward = dict(zip(keys, self.rewards(keys)))
        results: list[float | Failure] = []
        for c in comparisons:
            ra, rb = reward[(c.prompt, c.response_a)], reward[(c.prompt, c.response_b)]
            if isinstance(ra, Failure) or isinstance(rb, Failure):
                results.append(ra if isinstance(ra, Failure) else rb)
            else:
                results.append(_sigmoid(ra - rb))
        return results

    def __repr__(self) -> str:
        return f"RewardJudge({self.fingerprint})"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def load_reward_judge(body: str, options: dict) -> RewardJudge:
    values = coerce_options("reward", options, OPTIONS)
    read_template(values, "reward")
    check_template(values["template"], ("prompt", "response"), "reward")
    model, tok = load_sequence_classifier(body, allow_pickle=values["allow_pickle"],
                                          trust_remote_code=values["trust_remote_code"], device=values["device"],
                                          dtype=values["dtype"])
    chat = use_chat_template(tok, values["chat_template"])
    fp = "reward:" + fingerprint_obj({"backend": "reward", "model": fingerprint_path(body),
                                      "template": values["template"], "chat": chat, **dtype_key(values)})
    return RewardJudge(model, tok, fingerprint=fp, template=values["template"], chat=chat,
                       batch_size=values["batch_size"])
