"""Small shared pieces of the LM preference trainers: config, schedules, sampling with
log-probabilities, judging, the reference/target views of the policy, metrics, checkpoints.

Each trainer (`trainers/lm/<algo>.py`) is one loop that calls these functions; there is no
base class. Randomness is a pure function of (seed, step, purpose): the prompts of step k and
the uniforms that drive sampling are drawn from generators seeded by those numbers, so an
interrupted run resumed from its last saved state retraces exactly the same steps, and
every process of a data-parallel run draws the same global batch and keeps its own rows.

Views of one policy network (no second or third full model with LoRA):
- policy: the trainable weights θ;
- reference: with LoRA the base model with adapters disabled; otherwise a frozen copy of
  the initial trainable tensors, used through `torch.func.functional_call`;
- target / anchor: a detached copy of the *trainable* tensors only (the adapter weights with
  LoRA), also used through `functional_call`; Nash-MP moves it by EMA.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import torch

from arena.errors import ConfigError, InputError
from trainers.lm.options import Schedule, options_from_json, options_json  # noqa: F401  (Schedule: re-exported)
from trainers.mixture import Generation, generate

LABELS = ("soft", "sample")
LR_SCHEDULES = ("constant", "linear", "cosine")
REPORT_TO = ("none", "tensorboard")


# ---------------------------------------------------------------------------- config

@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything a training run depends on (saved in the card and the resume state): the
    fields every algorithm shares, and `options`, the algorithm's own (`trainers/lm/<algo>.py`)."""

    policy: str
    """Initial policy checkpoint directory (also the reference π_ref)."""
    judge: str
    """Judge spec (judges.load_judge), e.g. python:arena.worlds.lowrank:judge."""
    prompts: str
    """Prompt file: JSONL with a `prompt` (or `text`) field, or one prompt per line."""
    out: str
    """Output checkpoint directory (written atomically at the end)."""
    steps: int = 50
    """Optimiser steps."""
    batch_size: int = 8
    """Prompts per micro-batch (global, over all processes); each prompt gets two responses.
    An optimiser step uses batch_size × grad_accum prompts."""
    grad_accum: int = 1
    """Micro-batches whose gradients are averaged into one optimiser step (memory: only one
    micro-batch is in flight). grad_accum N at batch_size B is the step of batch_size N·B."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_schedule: str = "constant"
    """constant; linear: decay from lr to 0 over the run (lower noise floor at the end); cosine:
    half a cosine from lr to 0 (transformers' `get_*_schedule_with_warmup` formulas)."""
    warmup_steps: int = 0
    """Steps of linear warm-up from 0 to lr before the schedule (0: none)."""
    beta: float = 0.1
    """KL(π‖π_ref) regularisation β (DPO/IPO: their β)."""
    kl_estimator: str = "token"
    """token: exact per-token KL along the samples (low variance); sequence: score-function log-ratio."""
    labels: str = "soft"
    """soft: use P(y ≻ y') as given; sample: draw a 0/1 label with that probability."""
    max_new_tokens: int = 16
    """Longest sampled response (tokens, end-of-sequence included)."""
    seed: int = 0
    """Seed of prompt batches, sampling and label draws."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights."""
    lora_r: int = 8
    """LoRA rank."""
    grad_clip: float = 1.0
    """Gradient-norm clip (0: none)."""
    eval_every: int = 10
    """Every this many steps, judge the policy against the previous target (extra queries)."""
    eval_batch: int = 8
    """Prompts in each win-rate evaluation."""
    save_every: int = 25
    """Save the resume state every this many steps (0: never)."""
    report_to: str = "none"
    """Experiment tracker: none, or tensorboard (event files in OUT/runs/, through Accelerate's
    TensorBoardTracker; needs the `tensorboard` extra). metrics.jsonl is always written."""
    nash: str | None = None
    """nash.json of a world with a known solution (default: next to the prompts file, if any)."""
    device: str = "cpu"
    """Torch device of the policy."""
    stop: tuple[str, ...] = ()
    """Stop strings: a response ends with the token that completes one; its text is cut before it."""
    chat_template: str = "auto"
    """auto: the tokenizer's chat template when it has one (as the tournament); on; off."""
    prompt_template: str | None = None
    """Text around each prompt with "{prompt}" (as `arena tournament --prompt-template`)."""
    system_prompt: str | None = None
    """System prompt (as `arena tournament --system-prompt`)."""
    dtype: str = "auto"
    """Weights dtype of the policy: auto (the checkpoint's), bf16, fp16, fp32."""
    merge: bool = False
    """With LoRA: save the merged full model instead of the adapter (a PEFT checkpoint over --policy)."""
    gradient_checkpointing: bool = False
    """Recompute the policy's layer activations in the backward pass instead of storing them
    (less memory, about one more forward); the gradients are the same (`checkpointing`)."""
    options: object = None
    """The algorithm's own options (`trainers.lm.<algo>.Options`); None: its defaults, filled in
    by `trainers.lm.train`."""
    criteria_weights: str | None = None
    """Vector judges: NAME=W,... (the weighted preference) or maxmin (adversarial criterion weights);
    see trainers.lm.criteria. None: the judge as it is."""
    use_vllm: bool = False
    """Draw the policy's samples with a vLLM engine in this process (`trainers.lm.vllm_sampler`),
    its weights synced after every update; the loss's log-probs still come from the policy."""
    vllm_options: tuple[tuple[str, str], ...] = ()
    """(name, value) options of that engine (`arena.engines.vllm.LLM_OPTIONS`), e.g. gpu_memory_utilization."""
    judge_cache: bool = False
    """Ask the judge each comparison once (`trainers.lm.judgments`): a response against itself
    is a tie, a repeated comparison gets its stored answer (OUT/judgments.sqlite). Exact for a
    deterministic judge that gives ½ to identical responses; off by default because a sampling
    judge's one draw would be reused."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "vllm_options", tuple((str(k), str(v)) for k, v in self.vllm_options))
        if self.vllm_options and not self.use_vllm:
            raise ConfigError("--vllm-option configures the --use-vllm sampler; add --use-vllm or drop it")
        self.prompt_format()  # checks chat_template and prompt_template
        from arena.lm import torch_dtype

        torch_dtype(self.dtype)
        for name in ("steps", "batch_size", "grad_accum", "max_new_tokens", "eval_batch", "lora_r"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(self, name)}")
        for name in ("eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0 (0: never); got {getattr(self, name)}")
        for name in ("lr", "beta"):
            if getattr(self, name) is None or not getattr(self, name) > 0:
                raise ConfigError(f"--{name} must be > 0; got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}; got {self.lr_schedule!r}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ConfigError(f"--warmup-steps must be >= 0 and below --steps {self.steps}; got {self.warmup_steps}")
        if self.kl_estimator not in ("token", "sequence"):
            raise ConfigError(f"--kl-estimator must be token or sequence; got {self.kl_estimator!r}")
        if self.report_to not in REPORT_TO:
            raise ConfigError(f"--report-to must be one of {', '.join(REPORT_TO)}; got {self.report_to!r}")
        if self.labels not in LABELS:
            raise ConfigError(f"--labels must be one of {', '.join(LABELS)}; got {self.labels!r}")
        if self.judge_cache and self.criteria_weights == "maxmin":
            raise ConfigError("--judge-cache cannot be used with --criteria-weights maxmin: the adversary's weights "
                              "change during the run, so a stored answer goes stale; drop one of them")
        if hasattr(self.options, "resolve"):   # a default that depends on shared fields (Nash-MP's η = 2β)
            object.__setattr__(self, "options", self.options.resolve(beta=self.beta))

    def prompt_format(self):
        """The prompt encoding shared with the tournament (`arena.lm.PromptFormat`)."""
        from arena.lm import PromptFormat

        return PromptFormat(chat=self.chat_template, template=self.prompt_template, system=self.system_prompt)

    def to_json(self) -> dict:
        """The shared fields and the algorithm's options in one flat object (the card's and the
        resume state's `config`; the option keys are those of the old single config)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        d["stop"] = list(self.stop)
        if self.options is not None:
            d.update(options_json(self.options))
        if d["criteria_weights"] is None:  # absent as before the option: older resume states still match
            del d["criteria_weights"]
        if not d["judge_cache"]:  # absent unless set, as before the option: older resume states still match
            del d["judge_cache"]
        if not d["use_vllm"]:  # absent unless set, as before the option: older resume states still match
            del d["use_vllm"], d["vllm_options"]
        else:
            d["vllm_options"] = [list(kv) for kv in self.vllm_options]
        return d

    @classmethod
    def from_json(cls, d: dict, options_cls=None) -> "TrainConfig":
        """The config of `to_json` (or of a card written before per-algorithm options, whose
        flat config held every algorithm's fields); `options_cls`: the algorithm's Options."""
        names = {f.name for f in fields(cls)} - {"options"}
        options = None if options_cls is None else options_from_json(options_cls, d)
        return cls(**{k: v for k, v in d.items() if k in names}, options=options)


def eta_warning(config: TrainConfig) -> str | None:
    """Why a Nash-MP step η > 2β is risky, or None when η ≤ 2β.

    Mirror Prox on the β-regularised game converges linearly, KL(π*_β‖π_k) ≤ (1 + η)^{−k}
    KL(π*_β‖π_0), only for η ≤ 2β (arXiv 2505.19731; `trainers.lab.algorithms`).
    The KL to the target then weighs β/η ≥ ½; a larger η leaves a weak anchor that does not
    damp the rotation of a preference cycle (in the raters world at β = 0.01, η = 1 ended with
    one style gone entirely).
    """
    eta = config.options.eta
    if eta <= 2.0 * config.beta * (1 + 1e-9):
        return None
    return (f"--eta {eta:g} is above 2·beta = {2 * config.beta:g}: Nash-MP's convergence "
            f"guarantee needs eta <= 2*beta (the KL to the target weighs beta/eta = {config.beta / eta:.3g} "
            f"< 0.5, too weak to damp a preference cycle); omit --eta for 2*beta")


# ---------------------------------------------------------------------------- randomness, prompts

def generator(seed: int, step: int, purpose: int) -> torch.Generator:
    """A torch generator that depends only on (seed, step, purpose)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 101 + purpose)


def read_prompts(path: str | Path) -> list[str]:
    """Prompt texts, read like the tournament's (`arena.prompts.load_prompts`): JSONL/JSON,
    CSV, a saved `datasets` directory or one prompt per line; duplicates kept once."""
    from arena.prompts import load_prompts

    return [p.text for p in load_prompts(Path(path))]


def prompt_batch(prompts: Sequence[str], batch_size: int, *, seed: int, step: int) -> list[str]:
    """`batch_size` prompts drawn with replacement, a pure function of (seed, step)."""
    idx = torch.randint(len(prompts), (batch_size,), generator=generator(seed, step, 0))
    return [prompts[i] for i in idx.tolist()]


def shard(n: int, rank: int, world: int) -> slice | list[int]:
    """Rows of a global batch of n owned by process `rank` of `world` (contiguous blocks)."""
    if n % world:
        raise ConfigError(f"--batch-size {n} must be divisible by the number of processes ({world})")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


# ---------------------------------------------------------------------------- policy views

class AdaptersOff:
    """Calls a peft model with its adapters disabled: the reference model of a LoRA run."""

    def __init__(self, model):
        self.model = model

    def __call__(self, **kwargs):
        with self.model.disable_adapter():
            return self.model(**kwargs)


class WithParams:
    """Calls `model` with some of its parameters replaced by `params` (functional_call)."""

    def __init__(self, model, params: dict[str, torch.Tensor]):
        self.model = model
        self.params = params

    def __call__(self, **kwargs):
        return torch.func.functional_call(self.model, self.params, args=(), kwargs=kwargs, strict=False)


@dataclass
class Policy:
    """The trainable model plus its reference and target/anchor views."""

    model: torch.nn.Module
    tokenizer: object
    lora: bool
    ref_params: dict[str, torch.Tensor] | None
    """Initial trainable tensors (full fine-tuning only; None with LoRA)."""
    banned: tuple[int, ...] = ()
    prompt_format: object = None
    """`arena.lm.PromptFormat` of the prompts (None: the default, as in the tournament)."""
    stop: tuple[str, ...] = ()
    """Stop strings (TrainConfig.stop)."""

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def copy_trainable(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.trainable().items()}

    def reference(self):
        return AdaptersOff(self.model) if self.lora else WithParams(self.model, self.ref_params)

    def view(self, params: dict[str, torch.Tensor]):
        return WithParams(self.model, params)


def load_policy(config: TrainConfig) -> Policy:
    """Load the policy (safetensors only), freeze dropout, optionally wrap with LoRA."""
    from arena.lm import torch_dtype
    from arena.loading import load_causal_lm

    model, tok = load_causal_lm(config.policy, device=config.device, dtype=torch_dtype(config.dtype))
    if config.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ConfigError(f"--gradient-checkpointing: {type(model).__name__} does not support gradient "
                              f"checkpointing; drop the flag")
        # non-reentrant: no need for inputs that require grad (LoRA freezes the embeddings);
        # transformers >= 5.x calls it activation checkpointing (the old name warns)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.eval()  # no dropout: the log-probs we differentiate are those we sampled from
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=0.0,
                          target_modules="all-linear", init_lora_weights=True)
        from arena.loading import quiet_peft

        torch.manual_seed(config.seed)
        with quiet_peft():
            model = get_peft_model(model, lcfg)
        model.eval()
    if tok.eos_token_id is None:
        raise ConfigError(f"the tokenizer of {config.policy} has no end-of-sequence token; set eos_token")
    from arena.lm import banned_ids

    # The pad token is never sampled, so a response's text is a function of its tokens.
    banned = banned_ids(tok)
    policy = Policy(model=model, tokenizer=tok, lora=config.lora, ref_params=None, banned=banned,
                    prompt_format=config.prompt_format(), stop=config.stop)
    if not config.lora:
        policy.ref_params = policy.copy_trainable()
    return policy


# ---------------------------------------------------------------------------- sampling and scoring

def encode(tokenizer, prompts: Sequence[str], device: str = "cpu", fmt=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask, (B, L) each: the tournament's encoding
    (`arena.lm.encode_prompts`: chat template when there is one, BOS as the tokenizer adds it)."""
    from arena.lm import PromptFormat, encode_prompts

    return encode_prompts(tokenizer, prompts, fmt or PromptFormat(), device)


def sample(model, policy: Policy, ids: torch.Tensor, mask: torch.Tensor, uniforms: torch.Tensor, *,
           ref=None, m: float = 0.0, temperature: float | Sequence[float] = 1.0,
           first: torch.Tensor | None = None) -> Generation:
    """Responses sampled from `model` (or the mixture with `ref`), pad token banned, ended at a
    stop string; `temperature` divides the next-token logits (one per new token if a sequence, the
    last for the rest: `arena.lm.sample`); `first` (B,) forces the first tokens."""
    from arena.lm import pad_id

    tok = policy.tokenizer
    return generate(model, ids, mask, uniforms=uniforms, eos_token_id=tok.eos_token_id, pad_token_id=pad_id(tok),
                    ref=ref, m=m, banned=policy.banned, stop=policy.stop, temperature=temperature, first=first,
                    decode=lambda t: tok.decode(t, skip_special_tokens=True))


class Sampler(Protocol):
    """Where the current policy's responses come from (`Run.sample`): `HFSampler`, or
    `trainers.lm.vllm_sampler.VLLMSampler` with --use-vllm. Either way the loss recomputes
    the log-probabilities with the training model (`token_logprobs`)."""

    def sample(self, policy: Policy, ids: torch.Tensor, mask: torch.Tensor, uniforms: torch.Tensor) -> Generation:
        """Responses to left-padded prompts ids, mask (B, L); uniforms (B, T), T = max new tokens."""

    def sync(self, policy: Policy) -> None:
        """Called after every update of the policy's weights (and once before the first sample)."""


class HFSampler:
    """The policy model itself samples (`sample`): always in sync."""

    def sample(self, policy: Policy, ids: torch.Tensor, mask: torch.Tensor, uniforms: torch.Tensor) -> Generation:
        return sample(policy.model, policy, ids, mask, uniforms)

    def sync(self, policy: Policy) -> None:
        pass


def make_sampler(config: TrainConfig, policy: Policy, *, world: int = 1) -> Sampler:
    """The run's sampler: vLLM with --use-vllm, else hf (the caller syncs it before sampling)."""
    if not config.use_vllm:
        return HFSampler()
    from trainers.lm.vllm_sampler import VLLMSampler

    return VLLMSampler(config.policy, policy, options=config.vllm_options, seed=config.seed, world=world)


def token_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, gen: Generation,
                   banned: tuple[int, ...] = ()) -> torch.Tensor:
    """Next-token log-probabilities along the sampled responses: (B, T, V).

    ids, mask: (B, L) left-padded prompts; gen.tokens, gen.mask: (B, T). Entry [b, t] is
    log π(· | x_b, y_b,<t), banned tokens at −inf (as when sampling).
    """
    from trainers.mixture import mask_logits

    from arena.lm import forward_arguments, positions

    full = torch.cat([ids, gen.tokens.to(ids.device)], dim=1)                 # (B, L+T)
    attn = torch.cat([mask, gen.mask.to(mask.device)], dim=1)
    pos = positions(attn)
    T = gen.tokens.shape[1]
    # Only the positions that predict a response token go through the output head (with a
    # 262k vocabulary the head over the prompt positions costs more than the layers).
    keep = {"logits_to_keep": T + 1} if forward_arguments(model)[1] else {}
    logits = model(input_ids=full, attention_mask=attn, position_ids=pos, use_cache=False, **keep).logits
    return torch.log_softmax(mask_logits(logits[:, -T - 1:-1, :].float(), banned), dim=-1)   # (B, T, V)


@contextlib.contextmanager
def checkpointing(model, enabled: bool):
    """Gradient checkpointing for one forward with gradients: Hugging Face layers recompute their
    activations in the backward pass only in train mode (`self.training`), so the modules that
    carry the `gradient_checkpointing` flag (the decoder layers and their stack) are put in train
    mode for the call and back in eval mode after it; every other module (dropout, attention)
    stays in eval mode, so no dropout is drawn and the gradients are those without checkpointing
    (`tests/trainers/lm/test_gradient_checkpointing.py`). Sampling and no-grad forwards keep
    eval mode, hence their key-value cache."""
    if not enabled or not torch.is_grad_enabled():
        yield
        return
    flagged = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]
    for m in flagged:
        m.training = True
    try:
        yield
    finally:
        for m in flagged:
            m.training = False


def sequence_logprob(logprobs: torch.Tensor, gen: Generation) -> torch.Tensor:
    """log π(y | x) summed over the response tokens (end-of-sequence included): (B,)."""
    tokens = gen.tokens.to(logprobs.device)
    logp = logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)               # (B, T)
    # Padding after the end of sequence is a banned token (log-prob −inf): select, never multiply.
    return torch.where(gen.mask.to(logp.device).bool(), logp, torch.zeros_like(logp)).sum(-1)


def tempered_logprobs(logprobs: torch.Tensor, temperature: float | Sequence[float]) -> torch.Tensor:
    """Next-token log-probs (B, T, V) of what `sample(temperature=...)` draws from: position t at
    temperature[t] (the last one for the positions after it), or at one temperature throughout."""
    taus = list(temperature) if isinstance(temperature, Sequence) else [temperature]
    T = logprobs.shape[1]
    taus = (taus + taus[-1:] * T)[:T]
    return torch.log_softmax(logprobs / torch.tensor(taus, dtype=logprobs.dtype, device=logprobs.device)[:, None], -1)


def sequence_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, gen: Generation,
                      banned: tuple[int, ...] = ()) -> torch.Tensor:
    """log π(y | x) of sampled responses: (B,)."""
    return sequence_logprob(token_logprobs(model, ids, mask, gen, banned), gen)


def kl_term(logprobs: torch.Tensor, logprobs0: torch.Tensor, gen: Generation, estimator: str):
    """The KL(π_θ‖π_0) term of the loss for these samples (trainers.losses.token_kl / sequence_kl)."""
    from trainers.losses import sequence_kl, token_kl

    if estimator == "token":
        return token_kl(logprobs, logprobs0, gen.tokens.to(logprobs.device), gen.mask.to(logprobs.device))
    return sequence_kl(sequence_logprob(logprobs, gen), sequence_logprob(logprobs0, gen))


def decode(tokenizer, gen: Generation, stop: Sequence[str] = ()) -> list[str]:
    """Response texts, each cut before its first stop string (as every tournament engine cuts it)."""
    from arena.lm import truncate_at_stop

    return [truncate_at_stop(t, stop) for t in tokenizer.batch_decode(gen.tokens, skip_special_tokens=True)]


def judge_pairs(judge, prompts: Sequence[str], a: Sequence[str], b: Sequence[str], *, labels: str,
                gen: torch.Generator, cache=None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """P(a ≻ b | prompt) per row as a (B,) tensor, a (B,) bool mask of rows that were judged, and
    the number of comparisons sent to the judge (all B, or with a `trainers.lm.judgments`
    cache only those it could not answer).

    Failed judgments (judges.Failure) are masked out (and counted by the caller), never
    turned into ties. With labels="sample", each probability becomes a 0/1 label drawn with it.
    """
    from judges import Comparison, Failure
    from trainers.lm.judgments import judge_with_cache

    results, asked = judge_with_cache(judge, [Comparison(prompt=p, response_a=x, response_b=y)
                                              for p, x, y in zip(prompts, a, b)], cache)
    ok = torch.tensor([not isinstance(r, Failure) for r in results], dtype=torch.bool)
    pref = torch.tensor([0.5 if isinstance(r, Failure) else float(r) for r in results], dtype=torch.float32)
    if labels == "sample":
        pref = (torch.rand(len(results), generator=gen) < pref).float()
    return pref, ok, asked


# ---------------------------------------------------------------------------- exact KL to the known Nash

@dataclass(frozen=True)
class KnownNash:
    """The exact π*_β of a world whose response classes are a function of the text."""

    contexts: list[str]
    """Prompt text of each context (row of pi_star)."""
    pi_star: torch.Tensor
    """(X, Y) π*_β over the response classes."""
    weights: torch.Tensor
    """(X,) context distribution."""
    token_class: torch.Tensor | None
    """(V,) class of a response whose first token is v; None when the class needs the whole text."""
    beta: float
    classify: Callable[[str, str], int] | None = None
    """class_of(prompt, text) of a world whose class needs the whole response (raters world):
    the class distribution is then enumerated over the response tree (slower: evaluated only
    every --eval-every steps and at the end)."""
    max_new_tokens: int = 0
    """Response length limit of the enumeration (the run's --max-new-tokens)."""

    @property
    def every_step(self) -> bool:
        """Cheap enough to report after every step (first-token classes)."""
        return self.token_class is not None


ENUMERATION_MIN_PROB = 1e-4
"""Prefixes below this probability are not expanded when a run reports its class distribution
(the dropped mass is logged as `nash_pruned`, a bound on the error of every class probability)."""


def load_known_nash(config: TrainConfig, tokenizer) -> KnownNash | None:
    """nash.json from `config.nash`, else next to the prompts file; None when there is none.

    When the world was solved for another β than the run's, π*_β is recomputed for the
    run's β from the game stored in the file (trainers.lab.nash.regularized_nash).
    """
    path = Path(config.nash) if config.nash else Path(config.prompts).parent / "nash.json"
    if not path.is_file():
        if config.nash:
            raise InputError(f"--nash {path} does not exist; pass the nash.json written by `arena world lowrank`")
        return None
    d = json.loads(path.read_text())
    import numpy as np

    pi_star = np.asarray(d["pi_star"], dtype=np.float64)
    if abs(float(d["beta"]) - config.beta) > 1e-12:
        from trainers.lab.games import Game
        from trainers.lab.nash import regularized_nash

        game = Game(P=np.asarray(d["P"]), pi_ref=np.asarray(d["pi_ref"]), weights=np.asarray(d["weights"]))
        pi_star = regularized_nash(game, config.beta).pi
    common = dict(contexts=list(d["contexts"]), pi_star=torch.tensor(pi_star),
                  weights=torch.tensor(np.asarray(d["weights"], dtype=np.float64)), beta=config.beta)
    if "class_of" in d:   # the class needs the whole response (raters world): "module:function"
        import importlib

        module, _, name = str(d["class_of"]).partition(":")
        classify = getattr(importlib.import_module(module), name)
        return KnownNash(token_class=None, classify=classify, max_new_tokens=config.max_new_tokens, **common)
    from trainers.lm.exact import token_classes

    return KnownNash(token_class=token_classes(tokenizer, d["classes"]), **common)


@torch.no_grad()
def class_distribution(model, policy: Policy, contexts: Sequence[str], token_class: torch.Tensor,
                       n_classes: int, device: str = "cpu") -> torch.Tensor:
    """Exact distribution of the class of a sampled response, per context: (X, Y).

    The class is a function of the first token, so it is the next-token distribution after
    the prompt (banned tokens removed, as when sampling) summed within each class.
    """
    from arena.lm import positions
    from trainers.mixture import mask_logits

    ids, mask = encode(policy.tokenizer, contexts, device, policy.prompt_format)
    pos = positions(mask)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits[:, -1, :]
    probs = torch.softmax(mask_logits(logits.double(), policy.banned), dim=-1).cpu()   # (X, V)
    out = torch.zeros((len(contexts), n_classes), dtype=torch.float64)
    out.index_add_(1, token_class, probs)
    return out


def policy_classes(model, policy: Policy, known: KnownNash, device: str = "cpu") -> tuple[torch.Tensor, float]:
    """(X, Y) class distribution of the policy's responses per context, and the mass left
    unresolved (0 for first-token classes; the enumeration's pruned mass otherwise)."""
    if known.token_class is not None:
        return class_distribution(model, policy, known.contexts, known.token_class, known.pi_star.shape[1], device), 0.0
    from trainers.lm.exact import enumerate_classes

    dist = enumerate_classes(model, policy.tokenizer, known.contexts, known.classify, known.pi_star.shape[1],
                             max_new_tokens=known.max_new_tokens, min_prob=ENUMERATION_MIN_PROB,
                             banned=policy.banned, device=device)
    return dist.normalized(), float((known.weights * dist.pruned).sum())


def nash_metrics(pi: torch.Tensor, known: KnownNash) -> dict:
    """ρ-weighted KL(π*_β ‖ π) and total variation ½Σ|π*_β − π| over the response classes, and
    the ρ-weighted class distribution of π (to see a collapsed class).

    Exact where π is (first-token classes). Where π is enumerated (`policy_classes`), a class
    whose responses all fell below the enumeration's resolution has π = 0 there though its true
    probability is positive; the KL counts it at ENUMERATION_MIN_PROB rather than at 0 (which
    would add about π*_β(c)·690 for each such class, an artefact of the pruning, not a property
    of the policy)."""
    p = known.pi_star
    floor = ENUMERATION_MIN_PROB if known.token_class is None else 1e-300   # enumerated, or exact
    kl = (p * (torch.log(p.clamp_min(1e-300)) - torch.log(pi.clamp_min(floor)))).sum(-1)
    tv = 0.5 * (p - pi).abs().sum(-1)
    return {"kl_to_nash": float((known.weights * kl).sum()), "tv_to_nash": float((known.weights * tv).sum()),
            "class_probs": [round(float(v), 6) for v in known.weights @ pi]}


def kl_to_nash(model, policy: Policy, known: KnownNash, device: str = "cpu") -> float:
    """ρ-weighted exact KL(π*_β ‖ π_θ) over the response classes."""
    return nash_metrics(policy_classes(model, policy, known, device)[0], known)["kl_to_nash"]


# ---------------------------------------------------------------------------- run directory

def partial_dir(out: Path) -> Path:
    """Work directory next to the output; renamed onto it when the run completes."""
    return out.with_name(f".{out.name}.partial")


def optimizer(policy: Policy, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(list(policy.trainable().values()), lr=config.lr)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of step `step` (0-based): a pure function of the step, so resume is exact.

    The formulas of transformers' `get_constant_schedule_with_warmup`,
    `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup` (one half-cycle),
    so a run can be matched with a TRL one: lr·step/W during the W warm-up steps, then, with
    progress q = (step − W)/(steps − W), lr (constant), lr·(1 − q) (linear) or
    lr·½(1 + cos πq) (cosine).
    """
    warm = config.warmup_steps
    if step < warm:
        return config.lr * step / warm
    if config.lr_schedule == "constant":
        return config.lr
    q = (step - warm) / (config.steps - warm)          # warm < steps (checked by TrainConfig)
    if config.lr_schedule == "linear":
        return config.lr * max(0.0, 1.0 - q)
    return config.lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * q)))


def clip_and_step(policy: Policy, opt: torch.optim.Optimizer, config: TrainConfig, step: int) -> float:
    for group in opt.param_groups:
        group["lr"] = learning_rate(config, step)
    params = list(policy.trainable().values())
    norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else float("inf"))
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(norm)


@torch.no_grad()
def ema_(target: dict[str, torch.Tensor], policy: Policy, kappa: float) -> None:
    """θ_target ← κ θ + (1 − κ) θ_target, in place, trainable tensors only."""
    for name, p in policy.trainable().items():
        target[name].mul_(1.0 - kappa).add_(p.detach(), alpha=kappa)


def save_state(work: Path, step: int, policy: Policy, opt, extra: dict[str, dict[str, torch.Tensor]],
               counters: dict, config: TrainConfig, *, judge_state: str | None = None) -> None:
    """Resume state after `step` completed steps (atomic: written then renamed). `judge_state`:
    a stateful judge wrapper's state (the max–min adversary's `state_json`), when there is one."""
    state = {
        "step": step,
        "config": json.dumps(config.to_json(), sort_keys=True),
        "trainable": policy.copy_trainable(),
        "ref_params": policy.ref_params,
        "optimizer": opt.state_dict(),
        "extra": extra,
        "counters": json.dumps(counters),
    }
    if judge_state is not None:
        state["judge"] = judge_state
    (work / ".resume").mkdir(parents=True, exist_ok=True)
    tmp = work / ".resume" / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, work / ".resume" / "state.pt")


def _defaults(config: TrainConfig) -> dict:
    """The JSON values of the defaults of `config`'s shared fields and algorithm options."""
    shared = {f.name: f.default for f in fields(config) if f.name != "options" and f.default is not MISSING}
    options = {} if config.options is None else options_json(type(config.options)())
    return json.loads(json.dumps({**shared, **options}))


def load_state(work: Path, config: TrainConfig) -> dict:
    """The saved resume state of the interrupted run in `work` (`prepare_out` checked that
    there is one); refused when its config is not `config`."""
    state = torch.load(work / ".resume" / "state.pt", weights_only=True)
    saved, now = json.loads(state["config"]), json.loads(json.dumps(config.to_json()))
    for name, default in _defaults(config).items():   # a field added since the state was written: that run
        if name in now:                               # had its default
            saved.setdefault(name, default)
    if saved != now:
        diff = ", ".join(f"{k} {saved.get(k)!r} → {now.get(k)!r}" for k in sorted(set(saved) | set(now))
                         if saved.get(k) != now.get(k))
        raise ConfigError(
            f"{work} holds an interrupted run with a different config ({diff}); rerun with the same options "
            f"and --resume to continue it, or pass --overwrite to start over"
        )
    state["counters"] = json.loads(state["counters"])
    return state


def restore(policy: Policy, opt, state: dict) -> None:
    with torch.no_grad():
        for name, p in policy.trainable().items():
            p.copy_(state["trainable"][name])
    if state["ref_params"] is not None:
        policy.ref_params = state["ref_params"]
    opt.load_state_dict(state["optimizer"])


def tracker(config: TrainConfig, work: Path, algorithm: str):
    """The experiment tracker of `--report-to` (None for none): Accelerate's TensorBoardTracker
    writing event files to WORK/runs/ALGORITHM/ (moved into OUT with the rest)."""
    if config.report_to == "none":
        return None
    try:
        import tensorboard  # noqa: F401  (Accelerate's tracker needs it)
    except ImportError:
        raise ConfigError("--report-to tensorboard needs tensorboard; pip install 'nash-arena[tensorboard]'") from None
    from accelerate.tracking import TensorBoardTracker

    t = TensorBoardTracker(algorithm, work / "runs")
    t.start()
    # hparams take scalars only: a list (e.g. the stop strings) goes in as its JSON text.
    t.store_init_configuration({k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
                                for k, v in config.to_json().items() if v is not None})
    return t


class Metrics:
    """OUT/metrics.jsonl, one object per logged step; on resume, lines past the state are dropped."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        kept = []
        if resume_step > 0 and path.is_file():
            kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= resume_step]
        path.write_text("".join(ln + "\n" for ln in kept))

    def log(self, row: dict) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def finish(policy: Policy, work: Path, out: Path, algorithm: str, config: TrainConfig, summary: dict) -> Path:
    """Write the final save_pretrained directory + arena_card.json, then rename it onto `out`."""
    model = policy.model
    if policy.lora and config.merge:
        model = model.merge_and_unload()  # a normal full checkpoint
    elif policy.lora:
        # The adapter alone (adapter_config.json + safetensors), over the policy's absolute path:
        # the tournament loads it as a PEFT checkpoint over that base.
        model.peft_config["default"].base_model_name_or_path = str(Path(config.policy).resolve())
    model.save_pretrained(work, safe_serialization=True)
    policy.tokenizer.save_pretrained(work)
    from arena.fingerprint import fingerprint_path

    card = {
        "algorithm": algorithm,
        "config": config.to_json(),
        "parent": str(config.policy),
        "seed": config.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # scalar extras (the tournament's checkpoint table shows scalar card fields)
        "parent_fingerprint": fingerprint_path(config.policy),
        **summary,
    }
    (work / "arena_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (work / "README.md").write_text(model_card(card, merged=True))
    shutil.rmtree(work / ".resume", ignore_errors=True)
    from arena.outputs import replace_dir, sweep

    # --overwrite: the old output stays in place until the new one is complete (arena.outputs)
    sweep(out)
    replace_dir(work, out)
    return out


def save_checkpoint(policy: Policy, work: Path, step: int, algorithm: str, config: TrainConfig, summary: dict) -> Path:
    """WORK/checkpoint-STEP/: a loadable checkpoint of the policy after `step` steps (full
    weights, or the LoRA adapters over `config.policy`), with its card and README.md; the
    tournament scores them all with `arena tournament OUT`. Written then renamed (atomic)."""
    final = work / f"checkpoint-{step}"
    tmp = work / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.model.save_pretrained(tmp, safe_serialization=True)
    policy.tokenizer.save_pretrained(tmp)
    card = {"algorithm": algorithm, "config": config.to_json(), "parent": str(config.policy), "seed": config.seed,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "steps_done": step, **summary}
    (tmp / "arena_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (tmp / "README.md").write_text(model_card(card, merged=not policy.lora))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def model_card(card: dict, *, merged: bool) -> str:
    """README.md of a trained checkpoint: what produced it and how to load it (from arena_card.json)."""
    cfg = card["config"]
    metrics = {k: card[k] for k in ("steps_done", "judge_queries", "kl_to_nash", "tv_to_nash") if k in card}
    algo = card["algorithm"]
    lines = [
        "---", "library_name: transformers", "tags: [nash-arena, " + algo + "]", "---", "",
        f"# {algo} fine-tune of `{card['parent']}`", "",
        f"Trained with `arena train {algo}` (nash-arena). Full record: `arena_card.json`; per-step metrics: `metrics.jsonl`.", "",
        "| | |", "|---|---|",
        f"| algorithm | {algo} |",
        f"| parent (reference π_ref) | `{card['parent']}` |",
        f"| judge | `{cfg['judge']}` |",
        f"| β (KL to π_ref) | {cfg['beta']:g} |",
    ]
    if algo == "nash-mp":
        lines.append(f"| η (step; KL to target weighs β/η) | {cfg['eta']:g} |")
        if "kappa" in cfg:
            lines.append(f"| κ (target EMA) | {cfg['kappa']} |")
    if algo == "mpo":
        lines.append(f"| magnet refreshed every | {cfg['magnet_every']} steps |")
    warm = cfg.get("warmup_steps", 0)
    schedule = cfg["lr_schedule"] + (f", {warm} warm-up step{'s' if warm != 1 else ''}" if warm else "")
    lines += [f"| steps | {card.get('steps_done', cfg['steps'])} of {cfg['steps']} |",
              f"| batch (prompts per step) | {cfg['batch_size'] * cfg.get('grad_accum', 1)} "
              f"({cfg.get('grad_accum', 1)} × {cfg['batch_size']}) |",
              f"| learning rate | {cfg['lr']:g} ({schedule}) |",
              f"| LoRA | {'r = ' + str(cfg['lora_r']) if cfg['lora'] else 'no'} |",
              f"| seed | {card['seed']} |", ""]
    if metrics:
        lines += ["## Final metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
        lines.append("")
    if merged:
        load = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n"
                "model = AutoModelForCausalLM.from_pretrained(PATH)\ntokenizer = AutoTokenizer.from_pretrained(PATH)")
    else:
        load = ("from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n"
                f"model = AutoPeftModelForCausalLM.from_pretrained(PATH)  # adapters over {card['parent']}\n"
                "tokenizer = AutoTokenizer.from_pretrained(PATH)")
    lines += ["## How to load", "", "```python", load, "```", "",
              "Score it against other checkpoints: `arena tournament DIR --prompts PROMPTS --judge JUDGE` with this "
              "directory inside DIR.", ""]
    return "\n".join(lines)


def saved_step(out: str | Path) -> int | None:
    """Steps done by the interrupted run of `out` (its last resume state, the step of its last
    `checkpoint-N/`), or None when there is none."""
    path = partial_dir(Path(out)) / ".resume" / "state.pt"
    if not path.is_file():
        return None
    return int(torch.load(path, weights_only=True, map_location="cpu")["step"])


def prepare_out(config: TrainConfig, *, overwrite: bool = False, resume: bool = False,
                create: bool = True) -> tuple[Path, Path]:
    """(output dir, work dir), checked against what is already there:

    - a finished output is refused unless `overwrite`;
    - an interrupted run (resume state in the work dir) is continued with `resume`, replaced
      with `overwrite`, and refused without either (no silent reuse of old state);
    - `resume` without an interrupted run to continue is refused.
    """
    out = Path(config.out)
    work = partial_dir(out)
    if overwrite and resume:
        raise ConfigError("--resume continues an interrupted run and --overwrite starts over; pass one of them")
    step = saved_step(out)
    if resume:
        if out.exists():
            raise ConfigError(f"{out} is a finished run, there is nothing to resume; choose another --out, "
                              f"or pass --overwrite instead of --resume to train it again")
        if step is None:
            raise ConfigError(f"--resume: {out} has no interrupted run to continue (no resume state in {work}); "
                              f"drop --resume to start the run")
    elif out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite")
    elif step is not None and not overwrite:
        raise ConfigError(f"{out} has an interrupted run (saved after step {step} in {work}); pass --resume to "
                          f"continue it from checkpoint-{step}, or --overwrite to start over")
    if create:
        work.mkdir(parents=True, exist_ok=True)
    return out, work


@dataclass
class Counters:
    """Running totals written into every metrics row."""

    judge_queries: int = 0
    """Comparisons sent to the judge (with --judge-cache, only those it could not answer)."""
    judge_failures: int = 0
    eval_judge_queries: int = 0
    judge_reused: int | None = None
    """--judge-cache: comparisons answered without asking (a response against itself, or asked
    before); None without the cache (then absent from the metrics)."""
    started: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "started" and v is not None}


Progress = Callable[[int, dict], None]


@contextlib.contextmanager
def no_grad_eval():
    with torch.no_grad():
        yield
