"""`arena tournament CKPTS_DIR`: generate, judge round-robin, analyse; resumable and incremental.

Thin layer: parse the options into a `TournamentConfig`, call `run_tournament`, render the
result (`arena.report.render_terminal`) or print it as one JSON object (`--json`). Notes
and progress bars go to stderr. The run directory defaults to CKPTS_DIR/../arena-run.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import app, err, out
from arena.errors import InputError


class EngineName(str, Enum):
    hf = "hf"
    vllm = "vllm"
    openai = "openai"


@app.command("tournament")
def tournament(
    ckpts_dir: Path = typer.Argument(..., help="Directory of checkpoints: HF model dirs, PEFT adapters, .gguf files."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Prompts: JSONL/CSV/text file or a saved datasets dir (default: CKPTS_DIR/../prompts.jsonl, else a built-in set)."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Judge spec, e.g. python:mod:fn, hf:PATH, openai:URL#MODEL (default: CKPTS_DIR/../judge.txt)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory: store + reports (default: CKPTS_DIR/../arena-run)."),
    samples: int = typer.Option(1, "--samples", help="Responses per (checkpoint, prompt)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Generation length limit (default: each checkpoint's generation_config.json, else 64)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature, 0 = greedy (default: each checkpoint's generation_config.json, else 1.0)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling mass (default: each checkpoint's generation_config.json, else 1.0)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Keep the k most probable tokens, 0 = off (default: each checkpoint's generation_config.json, else off)."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling and the bootstrap."),
    engine: EngineName = typer.Option(EngineName.hf, "--engine", help="Generation engine."),
    base_url: Optional[list[str]] = typer.Option(None, "--base-url", help="Server for --engine openai (else OPENAI_BASE_URL); repeat it for several servers of the same checkpoints (load-balanced)."),
    engine_option: Optional[list[str]] = typer.Option(None, "--engine-option", help="NAME=VALUE passed to vllm.LLM for --engine vllm (repeatable): dtype, tensor_parallel_size, pipeline_parallel_size, max_model_len, gpu_memory_utilization, enable_prefix_caching."),
    batch_size: int = typer.Option(16, "--batch-size", help="Generation batch size (results do not depend on it)."),
    model_cache_mb: Optional[float] = typer.Option(None, "--model-cache-mb", help="hf engine: MiB of loaded checkpoints kept between calls, least recently used out first; 0 loads on every call (default: a quarter of the GPU's memory, else of RAM; responses do not depend on it)."),
    pairs: Optional[str] = typer.Option(None, "--pairs", help="Only these pairs: a:b,c:d (default: every pair)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, its cost and what is already done; write nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle weights (*.bin): they can run code."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with checkpoints."),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap rounds (clustered by prompt)."),
    prior: float = typer.Option(0.0, "--prior", help="Bradley–Terry prior (for a disconnected --pairs graph)."),
    judge_batch_size: int = typer.Option(32, "--judge-batch-size", help="Comparisons per judge call and per store transaction."),
    retry_failures: bool = typer.Option(False, "--retry-failures", help="Judge again the comparisons stored as failures."),
    stop: Optional[list[str]] = typer.Option(None, "--stop", help="Stop string (repeatable; escapes such as '\\n' allowed): responses end before it."),
    chat_template: str = typer.Option("auto", "--chat-template", help="auto (use a checkpoint's chat template when it has one), on, off."),
    prompt_template: Optional[str] = typer.Option(None, "--prompt-template", help="Text around each prompt with {prompt}, e.g. 'Question: {prompt}\\nAnswer:'."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System prompt for every checkpoint."),
    dtype: str = typer.Option("auto", "--dtype", help="Weights dtype of the hf engine: auto, bf16, fp16, fp32."),
    adaptive: bool = typer.Option(False, "--adaptive", help="Judge only what the verdict needs (docs/adaptive.md); steps of --judge-batch-size comparisons."),
    target: Optional[str] = typer.Option(None, "--target", help="With --adaptive: stop at nash:EPS (Nash uncertainty U_nash <= EPS; default nash:0.05) or top (top set certified)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="With --adaptive: at most this many judge calls (2 per comparison)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Vector judges: criterion weights NAME=W,... (sum 1) for the weighted Nash mixture."),
    style_control: bool = typer.Option(False, "--style-control", help="Also report ratings, preference matrix and Nash at equal style (length, headers, lists, bold of the stored responses)."),
) -> None:
    """Tournament between checkpoints (round robin, or --adaptive): preference matrix, cycles, Nash mixture, BT/Elo."""
    from arena.cli._checks import at_least, finite_positive, not_a_file
    from arena.lm import parse_stop
    from arena.tournament import TournamentConfig, parse_pairs, run_tournament

    # run_tournament checks these only when it analyses, after generating and judging.
    at_least("--rounds", rounds, 1, example=1000)
    finite_positive("--prior", prior, example=0.1, allow_zero=True)
    not_a_file("--out", out_dir)
    # A NaN temperature passes the library's `temperature >= 0` test and samples garbage.
    if temperature is not None:
        finite_positive("--temperature", temperature, example=1.0, allow_zero=True)
    if model_cache_mb is not None:
        finite_positive("--model-cache-mb", model_cache_mb, example=4096, allow_zero=True)
    for url in base_url or []:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--base-url {url!r} is not an http(s) URL: e.g. --base-url http://127.0.0.1:8000/v1")

    engine_options = []
    for item in engine_option or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise InputError(f"--engine-option {item!r} is not NAME=VALUE: e.g. --engine-option tensor_parallel_size=2")
        if any(name.strip() == seen for seen, _ in engine_options):
            raise InputError(f"--engine-option {name.strip()} is given twice; give it once")
        engine_options.append((name.strip(), value.strip()))

    config = TournamentConfig(
        ckpts_dir=ckpts_dir, prompts=prompts, judge=judge, out=out_dir, samples=samples,
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed,
        engine=engine.value, base_url=_one_or_tuple(base_url), engine_options=tuple(engine_options), batch_size=batch_size, model_cache_mb=model_cache_mb, pairs=parse_pairs(pairs),
        dry_run=dry_run, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, rounds=rounds,
        retry_failures=retry_failures, prior=prior, judge_batch_size=judge_batch_size,
        stop=parse_stop(stop), chat_template=chat_template, prompt_template=_unescape(prompt_template),
        system_prompt=system_prompt, dtype=dtype, adaptive=adaptive, target=target, budget=budget,
        weights=_weights(weights), style_control=style_control,
    )
    result = run_tournament(config, console=err)
    if json_out:  # a dry run's plan is a plain dict; a run's result is typed
        print(json.dumps(result if isinstance(result, dict) else result.to_json(), allow_nan=False))
    elif dry_run:
        _render_plan(result)
    elif isinstance(result, dict):  # a vector judge: per criterion, weighted and robust side by side
        from arena.report_criteria import render_criteria_terminal

        render_criteria_terminal(result, out)
    else:
        from arena.report import render_terminal

        render_terminal(result, out)
        if "style_control" in result.extra:
            from arena.cli.rate import _render_style

            _render_style(result, out)


def _weights(text: str | None) -> tuple[tuple[str, float], ...] | None:
    from arena.cli.lab import _parse_weights

    return None if text is None else tuple(_parse_weights(text).items())


def _one_or_tuple(urls: list[str] | None) -> str | tuple[str, ...] | None:
    """--base-url given once stays a string (the config as before); repeated, a tuple of servers."""
    if not urls:
        return None
    return urls[0] if len(urls) == 1 else tuple(urls)


def _unescape(text: str | None) -> str | None:
    """A template typed on the command line, with its escapes ("\\n") decoded as --stop does."""
    from arena.lm import parse_stop

    return parse_stop([text])[0] if text else text


def _render_plan(result: dict) -> None:
    from rich.table import Table

    plan = result["plan"]
    table = Table(title=f"Plan ({plan['checkpoints']} checkpoints, {plan['pairs']} pairs; run dir {result['out']})",
                  title_justify="left")
    for col in ("work", "total", "already done", "to do"):
        table.add_column(col, justify="right" if col != "work" else "left")
    for key, label in (("generations", "generations"), ("comparisons", "comparisons (pair × prompt × sample)"),
                       ("judgments", "judge calls (2 positions each)")):
        row = plan[key]
        table.add_row(label, str(row["total"]), str(row["done"]), str(row["todo"]))
    out.print(table)
    ck = Table(title="Checkpoints", title_justify="left")
    for col in ("checkpoint", "kind", "fingerprint", "generations to do"):
        ck.add_column(col)
    for name, c in result["checkpoints"].items():
        ck.add_row(name, c["kind"], c["fingerprint"], str(c["generations_todo"]))
    out.print(ck)
    for name, reason in result.get("skipped", {}).items():
        out.print(f"not a checkpoint: {name} ({reason})", markup=False)
    out.print(f"judge: {result['judge']['spec']} ({result['judge']['fingerprint']})", markup=False)
    if "adaptive" in result:
        from arena.report_adaptive import render_adaptive_plan

        render_adaptive_plan(result["adaptive"], out)
