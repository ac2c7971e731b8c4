"""Judge spec strings: one short string names a judge on the command line.

    hf:PATH                 local transformers causal LM, logprob judge      (judges.hf)
    openai:URL#MODEL        any OpenAI-compatible server                      (judges.openai_server)
    vllm:PATH               vLLM offline engine, logprob judge (GPU)          (judges.vllm_judge)
    reward:PATH             sequence-classification reward model, σ(r_a−r_b)  (judges.reward)
    pairmodel:PATH          sequence classification over the rendered pair   (judges.pairmodel)
    python:module:function  function(prompt, a, b) -> P(a ≻ b)                (judges.program)
    panel:W1*SPEC1|W2*SPEC2 weighted mixture of judges                        (judges.panel)
    panel:helpful=SPEC1|honest=SPEC2   a vector judge: one judge per criterion (judges.panel)

A python judge that returns a dict {criterion: p} is a vector judge too: declare its criteria
with `?criteria=helpful,honest` or a `criteria` attribute on the function (judges.program).
A labelled LLM member (hf, openai, vllm) without its own template asks its criterion's question
(`judges.templates.criterion_template`).

Options come as keyword arguments of `load_judge` or as a `?key=value&...` suffix of the
spec (percent-encoded); keyword arguments win. For a panel, each option goes to the members
that accept it (an option no member accepts is an error); a member's own `?` suffix wins.
Every check (syntax, options, paths, labels, server reachability) happens here, before any
judgment is made.
"""

from __future__ import annotations

import importlib
from typing import Any

from arena.errors import ConfigError
from judges.base import Judge
from judges.options import split_query

# backend -> (module, loader). Modules import torch/httpx/vllm inside functions only.
BACKENDS: dict[str, tuple[str, str]] = {
    "hf": ("judges.hf", "load_hf_judge"),
    "openai": ("judges.openai_server", "load_openai_judge"),
    "vllm": ("judges.vllm_judge", "load_vllm_judge"),
    "reward": ("judges.reward", "load_reward_judge"),
    "pairmodel": ("judges.pairmodel", "load_pairmodel_judge"),
    "python": ("judges.program", "load_program_judge"),
}

SPEC_HELP = (
    "hf:PATH, openai:URL#MODEL, vllm:PATH, reward:PATH, pairmodel:PATH, python:module:function, "
    "panel:W1*SPEC1|W2*SPEC2, panel:helpful=SPEC1|honest=SPEC2 (options as ?key=value&...)"
)


def load_judge(spec: str, **options: Any) -> Judge:
    """Build the judge a spec string names; raise ConfigError/CheckpointError before any work."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"bad judge spec {spec!r}; use one of: {SPEC_HELP}")
    backend, _, body = spec.strip().partition(":")
    if backend == "panel":
        return _load_panel(body, options)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown judge backend {backend!r} in {spec!r}; use one of: {SPEC_HELP}")
    body, query = split_query(body)
    if not body:
        raise ConfigError(f"judge spec {spec!r} names no model or target; e.g. {backend}:PATH")
    module_name, loader = BACKENDS[backend]
    module = importlib.import_module(module_name)
    return getattr(module, loader)(body, {**query, **options})


def backend_options(backend: str) -> dict:
    """The option schema of a backend (name -> judges.options.Option)."""
    module_name, _ = BACKENDS[backend]
    return dict(importlib.import_module(module_name).OPTIONS)


def _load_panel(body: str, options: dict) -> Judge:
    from judges.panel import CriteriaPanelJudge, PanelJudge, parse_labelled_panel
    from judges.templates import criterion_template

    members = parse_labelled_panel(body)
    used: set[str] = set()
    loaded = []
    for label, weight, member_spec in members:
        backend = member_spec.partition(":")[0]
        if backend not in BACKENDS:
            raise ConfigError(f"unknown judge backend {backend!r} in panel member {member_spec!r}; use one of: {SPEC_HELP}")
        accepted = backend_options(backend)
        mine = {k: v for k, v in options.items() if k in accepted}
        used |= set(mine)
        own = split_query(member_spec.partition(":")[2])[1]
        if label is not None and "template" in accepted and not ({"template", "template_file"} & (set(mine) | set(own))):
            mine["template"] = criterion_template(label)
        loaded.append((label, weight, member_spec, load_judge_with_own_options(member_spec, mine)))
    unused = sorted(set(options) - used)
    if unused:
        raise ConfigError(f"option(s) {', '.join(unused)} are accepted by no member of the panel; remove them")
    if members[0][0] is None:
        return PanelJudge([j for *_, j in loaded], [w for _, w, _, _ in loaded], [s for _, _, s, _ in loaded])
    by_criterion: dict[str, list] = {}
    for label, weight, member_spec, judge in loaded:
        by_criterion.setdefault(label, []).append((weight, member_spec, judge))
    return CriteriaPanelJudge({
        c: group[0][2] if len(group) == 1 else PanelJudge([j for *_, j in group], [w for w, _, _ in group],
                                                          [s for _, s, _ in group])
        for c, group in by_criterion.items()})


def load_judge_with_own_options(spec: str, options: dict) -> Judge:
    """Like load_judge, but the spec's own `?key=value` options win over `options`."""
    backend, _, body = spec.partition(":")
    body, query = split_query(body)
    module_name, loader = BACKENDS[backend]
    if not body:
        raise ConfigError(f"judge spec {spec!r} names no model or target; e.g. {backend}:PATH")
    return getattr(importlib.import_module(module_name), loader)(body, {**options, **query})
