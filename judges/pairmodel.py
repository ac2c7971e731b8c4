"""Pairwise preference model: a sequence classifier reads the rendered pair and gives P(a ≻ b).

Unlike a reward model it sees both responses at once, so it can express non-transitive
preferences (the general preference model of Munos et al. 2023, "Nash learning from human
feedback", arXiv 2312.00886). Two output conventions:

    2 classes:  P(a ≻ b) = softmax(logits)[a_index]   (a_index=0 by default: class 0 = "A better")
    1 logit:    P(a ≻ b) = σ(logit)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj, fingerprint_path
from arena.lm import encode_text
from judges.base import Comparison, Failure
from judges.options import Option, check_template, coerce_options, dtype_key, read_template
from judges.seqcls import classify, load_sequence_classifier, max_length

DEFAULT_TEMPLATE = "[Prompt]\n{prompt}\n\n[Response A]\n{response_a}\n\n[Response B]\n{response_b}"

OPTIONS: dict[str, Option] = {
    "template": Option("str", DEFAULT_TEMPLATE, "pair text with {prompt} {response_a} {response_b}"),
    "template_file": Option("str", None, "read the template from this text file"),
    "a_index": Option("int", 0, "2-class models: the class meaning 'response A is better' (0 or 1)", minimum=0),
    "batch_size": Option("int", 16, "pairs per forward pass", minimum=1),
    "device": Option("str", None, "torch device (default: cuda when available, else cpu)"),
    "dtype": Option("str", None, "auto, bf16, fp16 or fp32 (default auto: the checkpoint's)"),
    "allow_pickle": Option("bool", False, "allow *.bin/*.pt weights (they can run code when loaded)"),
    "trust_remote_code": Option("bool", False, "run the checkpoint's own modelling code"),
}


class PairModelJudge:
    """P(a ≻ b) from a classifier over `template.format(prompt, response_a, response_b)`."""

    def __init__(self, model, tokenizer, *, fingerprint: str, template: str, a_index: int = 0, batch_size: int = 16):
        k = model.config.num_labels
        if k not in (1, 2):
            raise ConfigError(f"a pairwise model has 1 or 2 outputs; this one has {k}")
        if k == 2 and a_index not in (0, 1):
            raise ConfigError(f"a_index={a_index} must be 0 or 1 for a 2-class pairwise model")
        self.model, self.tokenizer = model, tokenizer
        self.fingerprint, self.template = fingerprint, template
        self.a_index, self.batch_size = a_index, batch_size
        self.max_length = max_length(model)

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        tokens = [encode_text(self.tokenizer, self.template.format(prompt=c.prompt, response_a=c.response_a,
                                                                   response_b=c.response_b), templated=False)
                  for c in comparisons]
        fits = [i for i, t in enumerate(tokens) if self.max_length is None or len(t) <= self.max_length]
        results: list[float | Failure] = [
            Failure(f"pair text is {len(t)} tokens, over the model's limit of {self.max_length}") for t in tokens
        ]
        if fits:
            logits = classify(self.model, self.tokenizer, [tokens[i] for i in fits], batch_size=self.batch_size)
            for i, row in zip(fits, logits):
                if not all(math.isfinite(x) for x in row):
                    results[i] = Failure(f"non-finite logits {list(row)}")
                elif len(row) == 1:
                    results[i] = 1.0 / (1.0 + math.exp(-row[0])) if row[0] >= 0 else math.exp(row[0]) / (1.0 + math.exp(row[0]))
                else:
                    # softmax over two classes = σ(l_a − l_other)
                    d = row[self.a_index] - row[1 - self.a_index]
                    results[i] = 1.0 / (1.0 + math.exp(-d)) if d >= 0 else math.exp(d) / (1.0 + math.exp(d))
        return results

    def __repr__(self) -> str:
        return f"PairModelJudge({self.fingerprint})"


def load_pairmodel_judge(body: str, options: dict) -> PairModelJudge:
    values = coerce_options("pairmodel", options, OPTIONS)
    read_template(values, "pairmodel")
    check_template(values["template"], ("prompt", "response_a", "response_b"), "pairmodel")
    model, tok = load_sequence_classifier(body, allow_pickle=values["allow_pickle"],
                                          trust_remote_code=values["trust_remote_code"], device=values["device"],
                                          dtype=values["dtype"])
    fp = "pairmodel:" + fingerprint_obj({"backend": "pairmodel", "model": fingerprint_path(body),
                                         "template": values["template"], "a_index": values["a_index"], **dtype_key(values)})
    return PairModelJudge(model, tok, fingerprint=fp, template=values["template"], a_index=values["a_index"],
                          batch_size=values["batch_size"])
