"""Local transformers causal LM as a logprob judge: one forward pass per (comparison, order).

The judge prompt (template, then `answer_prefix` pre-filled, e.g. "Verdict: [[") is scored
once; with next-token log-probabilities ℓ_A, ℓ_B of the two single-token labels,

    P(a ≻ b | a first) = exp ℓ_A / (exp ℓ_A + exp ℓ_B) = σ(ℓ_A − ℓ_B),
    label mass         = exp ℓ_A + exp ℓ_B,

renormalised over the two labels (as G-Eval reads its score tokens' probabilities: Liu et
al. 2023, arXiv 2303.16634). A low label mass means the model is not answering the question
asked; it is reported (`diagnostics()`), and `min_label_mass` turns it into a Failure.

Batches are left-padded with explicit position ids (cumulative attention mask), so a
prompt's probabilities do not depend on what it is batched with. Prompts are sorted by
length before batching (less padding) and results returned in input order.

Shared prefixes: the prompts of one comparison question (both orders of a pair, and every
pair on the same prompt) share their tokens up to the first response. `shared_label_logprobs`
groups them by question and packs each group into one row, the shared tokens once and then
each prompt's own tokens, with a 4-D attention mask that keeps the prompts apart
(`arena.lm.tree_logits`): the same probabilities as scoring each prompt whole, for fewer
tokens, in one forward. `judge` does this for the comparisons of one call (`judge_both_orders`
sends both orders in one call).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj, fingerprint_path
from arena.lm import (PromptFormat, context_length, encode_text, format_prompt, left_pad, positions,
                     shared_prefix_length, sliding_window, tree_attention_supported, tree_logits, use_chat_template)
from judges.base import Comparison, Failure
from judges.options import Option, check_template, coerce_options, dtype_key
from judges.templates import (DEFAULT_ANSWER_PREFIX, DEFAULT_LABELS, DEFAULT_TEMPLATE, FIELDS, OPTIONAL_FIELDS,
                              TEMPLATE_OPTIONS, prepare_template, render)

OPTIONS: dict[str, Option] = {
    **TEMPLATE_OPTIONS,
    "chat_template": Option("str", "auto", "auto (use the tokenizer's chat template when it has one), on, off"),
    "batch_size": Option("int", 8, "prompts per forward pass", minimum=1),
    "device": Option("str", None, "torch device (default: cuda when available, else cpu)"),
    "dtype": Option("str", None, "auto, bf16, fp16 or fp32 (default auto: the checkpoint's)"),
    "min_label_mass": Option("float", 0.0, "a verdict whose label mass is below this is a Failure", minimum=0.0),
    "allow_pickle": Option("bool", False, "allow *.bin/*.pt weights (they can run code when loaded)"),
    "trust_remote_code": Option("bool", False, "run the checkpoint's own modelling code"),
}


def label_token_ids(tokenizer, labels: tuple[str, str]) -> tuple[int, int]:
    """The token ids of the two labels; each must be exactly one token in this tokenizer."""
    ids = []
    for label in labels:
        tokens = tokenizer.encode(label, add_special_tokens=False)
        if len(tokens) != 1:
            pieces = tokenizer.convert_ids_to_tokens(tokens)
            raise ConfigError(
                f"verdict label {label!r} is {len(tokens)} tokens {pieces} in this tokenizer, not one; "
                "choose labels that are single tokens (e.g. labels=A,B)"
            )
        ids.append(tokens[0])
    if ids[0] == ids[1]:
        raise ConfigError(f"verdict labels {labels} map to the same token; choose two different labels")
    return ids[0], ids[1]


def prompt_texts(tokenizer, comparisons: Sequence[Comparison], *, template: str, answer_prefix: str,
                 labels: tuple[str, str], chat: bool) -> list[str]:
    """The full text scored per comparison: the rendered template as the user message through
    the runtime's prompt rule (`arena.lm.format_prompt`), then the answer prefix."""
    fmt = PromptFormat(chat="auto" if chat else "off")
    return [format_prompt(tokenizer, render(template, c, labels), fmt, prefill=answer_prefix)[0] for c in comparisons]


def label_verdict(la: float, lb: float, *, min_label_mass: float, labels: Sequence[str]) -> tuple[float | Failure, float]:
    """(P(a ≻ b) = σ(ℓ_A − ℓ_B), or a Failure; label mass e^ℓ_A + e^ℓ_B) from the two label log-probabilities.

    Shared by every logprob judge (hf, vllm): non-finite log-probabilities and a label mass
    below `min_label_mass` (the judge is not answering the question) are failures.
    """
    mass = math.exp(la) + math.exp(lb)
    if not (math.isfinite(la) and math.isfinite(lb)):
        return Failure(f"non-finite label log-probabilities ({la}, {lb})"), mass
    if mass < min_label_mass:
        return Failure(f"label mass {mass:.3g} < min_label_mass {min_label_mass}: the judge is not "
                       f"answering {labels[0]}/{labels[1]}"), mass
    return 1.0 / (1.0 + math.exp(lb - la)), mass


def label_mass_summary(label_mass: Sequence[float | None]) -> dict:
    """Mean and minimum label mass over the judged comparisons of the last call (None where not judged)."""
    masses = [m for m in label_mass if m is not None]
    if not masses:
        return {"label_mass_mean": None, "label_mass_min": None}
    return {"label_mass_mean": sum(masses) / len(masses), "label_mass_min": min(masses)}

class HFJudge:
    """Logprob judge over a loaded causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, *, fingerprint: str, template: str = DEFAULT_TEMPLATE,
                 answer_prefix: str = DEFAULT_ANSWER_PREFIX, labels: tuple[str, str] = DEFAULT_LABELS,
                 chat: bool | None = None, batch_size: int = 8, min_label_mass: float = 0.0):
        """Wrap an in-memory model; `chat=None` uses the tokenizer's chat template when it has one."""
        if chat is None:
            chat = use_chat_template(tokenizer, "auto")
        check_template(template, FIELDS, "hf", optional=OPTIONAL_FIELDS)
        self.model = model
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.template = template
        self.answer_prefix = answer_prefix
        self.labels = tuple(labels)
        self.label_ids = label_token_ids(tokenizer, self.labels)
        self.chat = chat
        self.batch_size = batch_size
        self.min_label_mass = min_label_mass
        self.max_length = context_length(model)
        self.label_mass: list[float | None] = []  # of the last judge() call, per comparison

    def texts(self, comparisons: Sequence[Comparison]) -> list[str]:
        return prompt_texts(self.tokenizer, comparisons, template=self.template, answer_prefix=self.answer_prefix,
                            labels=self.labels, chat=self.chat)

    def encode(self, comparisons: Sequence[Comparison]) -> list[list[int]]:
        # A chat template writes its own special tokens (BOS); a plain prompt gets the tokenizer's.
        return [encode_text(self.tokenizer, t, templated=self.chat) for t in self.texts(comparisons)]

    def label_logprobs(self, token_lists: Sequence[Sequence[int]]):
        """(n, 2) next-token log-probabilities of the two labels, float64, in input order."""
        import numpy as np
        import torch

        n = len(token_lists)
        out = np.full((n, 2), np.nan)
        order = sorted(range(n), key=lambda i: len(token_lists[i]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        label_ids = torch.tensor(self.label_ids, device=device)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            ids, mask = left_pad([token_lists[i] for i in idx], pad, device)   # (B, T) each
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions(mask), logits_to_keep=1,
                ).logits[:, -1, :].float()  # (B, V)
                logp = torch.log_softmax(logits, dim=-1)[:, label_ids]  # (B, 2)
            out[idx] = logp.double().cpu().numpy()
        return out

    def shared_label_logprobs(self, token_lists: Sequence[Sequence[int]], keys: Sequence):
        """As `label_logprobs`, with the prompts of equal key sharing their common leading tokens.

        Per key, the tokens all its prompts share (`shared_prefix_length`) and then each
        prompt's own tokens are packed into one row (`arena.lm.tree_logits`): the shared
        tokens run once. A forward holds at most `batch_size` rows and no more token slots than
        `batch_size` whole prompts (the memory of the unshared path). A group with nothing
        shared, one longer than the model's sliding window, and models whose attention takes
        no 4-D mask go through `label_logprobs`.
        """
        import numpy as np
        import torch

        n = len(token_lists)
        out = np.full((n, 2), np.nan)
        groups: dict = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        window = sliding_window(self.model)
        trees, alone = [], []
        for members in groups.values():
            k = shared_prefix_length([token_lists[i] for i in members])
            longest = max(len(token_lists[i]) for i in members)
            if k == 0 or len(members) < 2 or not tree_attention_supported(self.model) or \
                    (window is not None and longest >= window):
                alone += members
                continue
            for s in range(0, len(members), self.batch_size):   # at most batch_size prompts per tree
                trees.append((k, members[s:s + self.batch_size]))
        # rows of similar packed length share a forward (less padding)
        trees.sort(key=lambda tree: tree[0] + sum(len(token_lists[i]) - tree[0] for i in tree[1]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        label_ids = torch.tensor(self.label_ids, device=device)
        def fits(rows) -> bool:   # at most batch_size rows, and no more token slots than batch_size whole prompts
            packed = max(k + sum(len(token_lists[i]) - k for i in m) for k, m in rows)
            longest = max(len(token_lists[i]) for _, m in rows for i in m)
            return len(rows) <= self.batch_size and len(rows) * packed <= self.batch_size * longest

        batch: list = []
        for j, tree in enumerate(trees):
            batch.append(tree)
            if j + 1 < len(trees) and fits(batch + [trees[j + 1]]):
                continue
            packed = [(token_lists[m[0]][:k], [token_lists[i][k:] for i in m]) for k, m in batch]
            idx = [i for _, m in batch for i in m]
            with torch.inference_mode():
                logits = tree_logits(self.model, packed, pad, device)   # (B, V)
                logp = torch.log_softmax(logits, dim=-1)[:, label_ids]  # (B, 2)
            out[idx] = logp.double().cpu().numpy()
            batch = []
        if alone:
            out[alone] = self.label_logprobs([token_lists[i] for i in alone])
        return out

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        token_lists = self.encode(comparisons)
        results: list[float | Failure] = [Failure("not judged")] * len(token_lists)
        self.label_mass = [None] * len(token_lists)
        fits = [i for i, t in enumerate(token_lists) if self.max_length is None or len(t) <= self.max_length]
        for i in set(range(len(token_lists))) - set(fits):
            results[i] = Failure(
                f"judge prompt is {len(token_lists[i])} tokens, over the model's limit of {self.max_length}; "
                "shorten the responses or the template"
            )
        if fits:
            # The prompts of one question (both orders of a comparison) share their leading tokens:
            # packed into one row, those run once (exact; benchmarks/RESULTS.runtime.md).
            lp = self.shared_label_logprobs([token_lists[i] for i in fits], [comparisons[i].prompt for i in fits])
            for i, (la, lb) in zip(fits, lp):
                results[i], self.label_mass[i] = label_verdict(la, lb, min_label_mass=self.min_label_mass,
                                                               labels=self.labels)
        return results

    def diagnostics(self) -> dict:
        """Label probability mass of the last call: how much the judge answers with the labels at all."""
        return label_mass_summary(self.label_mass)

    def __repr__(self) -> str:
        return f"HFJudge({self.fingerprint})"


def hf_fingerprint(path: str | Path, backend: str, values: dict, chat: bool) -> str:
    d = {
        "backend": backend,
        "model": fingerprint_path(path),
        "template": values["template"],
        "answer_prefix": values["answer_prefix"],
        "labels": list(values["labels"]),
        "chat": chat,
    }
    if backend == "hf":
        d.update(dtype_key(values))
    return f"{backend}:" + fingerprint_obj(d)


def load_hf_judge(body: str, options: dict) -> HFJudge:
    """`hf:PATH` -> HFJudge; options are checked and the labels validated before returning."""
    from arena.loading import check_checkpoint_dir, load_causal_lm, load_tokenizer

    values = coerce_options("hf", options, OPTIONS)
    prepare_template(values, "hf")
    path = check_checkpoint_dir(body, allow_pickle=values["allow_pickle"])
    # Tokenizer first: wrong labels or a missing chat template fail before the weights load.
    tok = load_tokenizer(path, trust_remote_code=values["trust_remote_code"])
    label_token_ids(tok, values["labels"])
    chat = use_chat_template(tok, values["chat_template"])
    dtype = _dtype(values["dtype"])
    device = values["device"] or _default_device()
    model, tok = load_causal_lm(path, allow_pickle=values["allow_pickle"],
                                trust_remote_code=values["trust_remote_code"], dtype=dtype, device=device)
    return HFJudge(model, tok, fingerprint=hf_fingerprint(path, "hf", values, chat), template=values["template"],
                   answer_prefix=values["answer_prefix"], labels=values["labels"], chat=chat,
                   batch_size=values["batch_size"], min_label_mass=values["min_label_mass"])


def _dtype(name: str | None):
    from arena.lm import torch_dtype

    return torch_dtype(name, option="dtype=")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
