"""`arena train ALGO --policy DIR --judge SPEC --prompts FILE --out ckpts/NAME`.

One command per algorithm module of `trainers.lm.MODULES`, built from its declarations: the
command's name and help are the module's NAME and HELP, its flags the options every algorithm
shares (below) plus one per field of the module's `Options` dataclass (type, default, help and
the reason for the default). A flag of another algorithm is refused with a message naming it.
Each command builds a `trainers.lm.TrainConfig` and calls `trainers.lm.train`. The output is a
normal `save_pretrained` directory with `arena_card.json` and `metrics.jsonl`; an interrupted
run continues from its last `checkpoint-N` when started again with the same options and `--resume`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import types
import typing
import warnings
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import err, out, train_app
from arena.errors import InputError


def _shared(
    ctx: typer.Context,
    policy: Path = typer.Option(..., "--policy", help="Initial policy checkpoint (also the reference)."),
    judge: str = typer.Option(..., "--judge", help="Judge spec, e.g. python:arena.worlds.lowrank:judge."),
    prompts: Path = typer.Option(..., "--prompts", help="Prompts: JSONL (prompt field) or one per line."),
    out_dir: Path = typer.Option(..., "--out", help="Output checkpoint directory, e.g. ckpts/nash-mp."),
    steps: int = typer.Option(50, "--steps", help="Optimiser steps."),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per micro-batch (two responses each)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimiser step (gradients averaged): a step uses batch-size × grad-accum prompts."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant, linear (decay to 0) or cosine (half a cosine to 0); transformers' formulas."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="Steps of linear warm-up from 0 to --lr before the schedule."),
    kl_estimator: str = typer.Option("token", "--kl-estimator", help="token (exact per-token KL) or sequence (log-ratio)."),
    beta: float = typer.Option(0.1, "--beta", help="KL-to-reference regularisation β."),
    labels: str = typer.Option("soft", "--labels", help="soft: use P(y ≻ y'); sample: 0/1 labels drawn from it."),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", help="Longest sampled response."),
    seed: int = typer.Option(0, "--seed", help="Seed of batches, sampling and labels."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (peft) instead of all weights."),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank."),
    eval_every: int = typer.Option(10, "--eval-every", help="Steps between win-rate evaluations against the previous target."),
    save_every: int = typer.Option(25, "--save-every", help="Steps between resume states (0: never)."),
    report_to: str = typer.Option("none", "--report-to", help="Experiment tracker: none or tensorboard (OUT/runs/)."),
    nash: Optional[Path] = typer.Option(None, "--nash", help="nash.json of a world with a known solution."),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    log_every: int = typer.Option(10, "--log-every", help="Print one progress line (step, ETA, metrics) every N steps (0: never)."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML file of options (keys as the flags, e.g. batch-size: 32); flags on the command line override it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out (or start an interrupted one over)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run of --out from its last checkpoint-N (same options)."),
    json_out: bool = typer.Option(False, "--json", help="Print the final metrics as one JSON object."),
    stop: Optional[list[str]] = typer.Option(None, "--stop", help="Stop string (repeatable; escapes such as '\\n' allowed), as in arena tournament."),
    chat_template: str = typer.Option("auto", "--chat-template", help="auto (the tokenizer's chat template when it has one), on, off; as in arena tournament."),
    prompt_template: Optional[str] = typer.Option(None, "--prompt-template", help="Text around each prompt with {prompt}, as in arena tournament."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System prompt, as in arena tournament."),
    dtype: str = typer.Option("auto", "--dtype", help="Weights dtype of the policy: auto, bf16, fp16, fp32."),
    merge: bool = typer.Option(False, "--merge", help="With --lora: save a merged full checkpoint instead of the adapter."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute layer activations in the backward pass (less memory, about one more forward; same gradients)."),
    criteria_weights: Optional[str] = typer.Option(None, "--criteria-weights", help="Vector judges: NAME=W,... (weighted preference, sum 1) or maxmin (adversarial criterion weights)."),
    use_vllm: bool = typer.Option(False, "--use-vllm", help="Draw the policy's samples with vLLM in this process, weights synced after every update (Nash-MD's mixture opponent stays on hf)."),
    judge_cache: bool = typer.Option(False, "--judge-cache", help="Ask the judge each comparison once: a response against itself is a tie, a repeated one gets its stored answer (OUT/judgments.sqlite). For deterministic judges."),
    vllm_option: Optional[list[str]] = typer.Option(None, "--vllm-option", help="NAME=VALUE for the --use-vllm engine (repeatable), e.g. gpu_memory_utilization=0.3, enforce_eager=true."),
) -> None:
    """The options every algorithm shares (the signature of each `arena train ALGO` command,
    followed by the algorithm's own options)."""


def _command(module):
    """The `arena train NAME` command of an algorithm module (NAME, HELP, Options, train)."""
    algorithm = module.NAME
    own = [f.name for f in dataclasses.fields(module.Options)]

    def command(**kw) -> None:
        from arena.lm import parse_stop
        from trainers.lm import TrainConfig, train

        ctx: typer.Context = kw["ctx"]
        _refuse_foreign_flags(algorithm, ctx.args)
        config_file = kw["config_file"]
        v = _with_config_file(ctx, config_file, module)   # flags given on the command line win
        policy, judge, prompts, out_dir = kw["policy"], kw["judge"], kw["prompts"], kw["out_dir"]
        log_every, json_out, overwrite, resume = kw["log_every"], kw["json_out"], kw["overwrite"], kw["resume"]
        stop, chat_template, prompt_template = kw["stop"], kw["chat_template"], kw["prompt_template"]
        system_prompt, dtype, merge = kw["system_prompt"], kw["dtype"], kw["merge"]
        steps, nash = v["steps"], v["nash"]
        _check_inputs(prompts=prompts, out_dir=out_dir, eval_every=v["eval_every"],
                      save_every=v["save_every"], nash=nash, device=v["device"])
        from arena.cli._checks import at_least
        from arena.progress import open_progress

        at_least("--log-every", log_every, 0, example=10)
        config = TrainConfig(
            policy=str(policy), judge=judge, prompts=str(prompts), out=str(out_dir),
            **{k: v[k] for k in _CONFIG_FIELDS}, nash=str(nash) if nash else None,
            vllm_options=_name_values("--vllm-option", kw["vllm_option"], example="gpu_memory_utilization=0.3"),
            stop=parse_stop(stop), chat_template=chat_template, system_prompt=system_prompt, dtype=dtype, merge=merge,
            prompt_template=parse_stop([prompt_template])[0] if prompt_template else None,
            options=module.Options(**{k: v[k] for k in own}),
        )
        last: dict = {}
        # The bar starts with the first step, after `train` has checked every input, so that
        # a refused input prints only its one-line error.
        # Under `accelerate launch` / torchrun every process runs this command; only the main
        # one (RANK 0, which writes the checkpoint) reports.
        main_process = os.environ.get("RANK", "0") == "0"
        # A bar on a terminal, timestamped lines otherwise; a line every --log-every steps either way.
        bar = open_progress(err, every=log_every or None, interval=None,
                            disable=json_out or not main_process)
        tasks: list = []

        def progress(step: int, row: dict) -> None:
            if not tasks:
                bar.start()
                tasks.append(bar.add_task(algorithm, total=steps, info=""))
            last.clear()
            last.update(row)
            info = " ".join(f"{k}={row[k]:.4f}" for k in ("loss", "kl_ref", "kl_to_nash", "win_rate_vs_target")
                            if isinstance(row.get(k), float))
            bar.update(tasks[0], completed=step, info=info)

        try:
            with warnings.catch_warnings():
                # a library warning (e.g. eta > 2·beta) as one line, not Python's file:line form
                warnings.showwarning = lambda message, *a, **k: err.print(f"warning: {message}", markup=False, soft_wrap=True)
                path = train(algorithm, config, overwrite=overwrite, resume=resume, progress=progress)
        finally:
            bar.stop()
        if not main_process:
            return
        if json_out:
            print(json.dumps({"out": str(path), "metrics": last}))
            return
        reused = f", {last['judge_reused']} more answered by --judge-cache" if "judge_reused" in last else ""
        out.print(f"wrote {path} ({algorithm}, {last.get('step', steps)} steps, "
                  f"{last.get('judge_queries', 0)} judge queries{reused})", markup=False, soft_wrap=True)
        if "kl_to_nash" in last:
            out.print(f"exact KL(π*_β ‖ π_θ) = {last['kl_to_nash']:.4g}", markup=False)

    command.__doc__ = module.HELP
    shared = list(inspect.signature(_shared, eval_str=True).parameters.values())
    command.__signature__ = inspect.Signature(shared + [_parameter(module.Options, f)
                                                        for f in dataclasses.fields(module.Options)])
    return command


def _parameter(options_cls, f: dataclasses.Field) -> inspect.Parameter:
    """The typer option of one field of an algorithm's Options: its flag, type, default, help + why."""
    from trainers.lm.options import Schedule, flag

    hint = typing.get_type_hints(options_cls)[f.name]
    if hint is Schedule:                      # text on the command line: "0.1" or "harmonic:10"
        hint, default = str, str(f.default)
    else:
        default = f.default
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if args and (typing.get_origin(hint) in (typing.Union, types.UnionType)):
            hint = Optional[args[0]]
    shown = f.metadata.get("shown")
    text = f"{f.metadata['help']} Default {shown or default}: {f.metadata['why']}"
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hint,
                             default=typer.Option(default, flag(f.name), help=text, show_default=False))


def _refuse_foreign_flags(algorithm: str, args: list[str]) -> None:
    """An option of another algorithm (or an unknown one) is one line and exit 2, naming its owner."""
    if not args:
        return
    from trainers.lm import algorithm_modules
    from trainers.lm.options import flag

    word = next((a for a in args if a.startswith("-")), args[0])
    name = word.split("=", 1)[0]
    owners = [m.NAME for m in algorithm_modules().values()
              if any(flag(f.name) == name for f in dataclasses.fields(m.Options))]
    if owners:
        raise InputError(f"{name} is an option of {' and '.join(owners)}, not of {algorithm}; drop it, or run "
                         f"`arena train {owners[0]}` (`arena train {algorithm} --help` lists {algorithm}'s options)")
    raise InputError(f"unexpected {word!r} for `arena train {algorithm}`; see `arena train {algorithm} --help`")


_CONFIG_FIELDS = ("steps", "batch_size", "grad_accum", "lr", "lr_schedule", "warmup_steps", "kl_estimator", "beta",
                  "labels", "max_new_tokens", "seed", "lora", "lora_r", "eval_every", "save_every", "report_to", "device",
                  "gradient_checkpointing", "criteria_weights", "use_vllm", "judge_cache")
"""Shared TrainConfig fields set from options of the same name (a --config file may hold any of
them, nash, and the algorithm's own options)."""


def _name_values(flag: str, items: list[str] | None, *, example: str) -> tuple[tuple[str, str], ...]:
    """NAME=VALUE flags as (name, value) pairs, each name once."""
    pairs: list[tuple[str, str]] = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"{flag} {item!r} is not NAME=VALUE: e.g. {flag} {example}")
        if any(name.strip() == seen for seen, _ in pairs):
            raise InputError(f"{flag} {name.strip()} is given twice; give it once")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _with_config_file(ctx: typer.Context, path: Path | None, module) -> dict:
    """The command's option values, with those not given on the command line taken from the
    YAML file `path` (keys spelled like the flags, with - or _)."""

    values = dict(ctx.params)
    if path is None:
        return values
    import yaml

    if not path.is_file():
        raise InputError(f"--config {path} does not exist; pass a YAML file of options, e.g. 'steps: 300'")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"--config {path} is not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    if data is None:
        return values
    if not isinstance(data, dict):
        raise InputError(f"--config {path} must be a mapping of option: value; got a {type(data).__name__}")
    own = {f.name: f for f in dataclasses.fields(module.Options)}
    allowed = {name: name for name in (*_CONFIG_FIELDS, "nash", *own)}
    for key, value in data.items():
        name = allowed.get(str(key).lstrip("-").replace("-", "_"))
        if name is None:
            if _foreign(key):
                _refuse_foreign_flags(module.NAME, ["--" + str(key).lstrip("-").replace("_", "-")])
            raise InputError(f"--config {path}: unknown option {key!r}; use one of "
                             f"{', '.join(sorted(k.replace('_', '-') for k in allowed))} (paths go on the command line)")
        # typer may bundle its own click: compare the source by name, not by enum identity
        if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE":
            continue
        default = values[name]
        if name == "nash":
            value = Path(str(value)) if value is not None else None
        elif isinstance(default, bool) or (name == "lora"):
            if not isinstance(value, bool):
                raise InputError(f"--config {path}: {key} must be true or false; got {value!r}")
        elif (name in own and own[name].default is None) or isinstance(default, float):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InputError(f"--config {path}: {key} must be a number; got {value!r}")
            value = None if value is None else float(value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"--config {path}: {key} must be a whole number; got {value!r}")
        else:
            value = str(value)
        values[name] = value
    return values


def _check_inputs(*, prompts: Path, out_dir: Path, eval_every: int, save_every: int,
                  nash: Path | None, device: str) -> None:
    """What `trainers.lm.train` does not check, or checks only with a traceback."""
    from arena.cli._checks import at_least, not_a_file
    from arena.loading import check_device

    if not prompts.is_file():
        what = "is a directory" if prompts.is_dir() else "does not exist"
        raise InputError(f"--prompts {prompts} {what}; pass a JSONL file (prompt field) or a text file, one prompt per line")
    try:
        prompts.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"--prompts {prompts} is not UTF-8 text ({error.reason} at byte {error.start}); re-save it as UTF-8") from None
    not_a_file("--out", out_dir)  # --overwrite replaces only a directory
    at_least("--eval-every", eval_every, 0, example=10)  # 0: never
    at_least("--save-every", save_every, 0, example=25)  # 0: never
    if nash is not None and nash.is_file():
        try:
            ok = isinstance(json.loads(nash.read_text(encoding="utf-8")), dict)
        except (UnicodeDecodeError, json.JSONDecodeError):
            ok = False
        if not ok:
            raise InputError(f"--nash {nash} is not a JSON object; pass the nash.json written by `arena world lowrank`")
    check_device(device)


def _foreign(key) -> bool:
    """Whether a --config key is an option of some algorithm (then refused naming its owner)."""
    from trainers.lm import algorithm_modules

    name = str(key).lstrip("-").replace("-", "_")
    return any(f.name == name for m in algorithm_modules().values() for f in dataclasses.fields(m.Options))


def _register() -> None:
    from trainers.lm import algorithm_modules

    for module in algorithm_modules().values():
        train_app.command(module.NAME, help=module.HELP,
                          context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_command(module))


_register()
