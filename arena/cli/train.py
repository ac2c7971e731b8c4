"""`arena train ALGO --policy DIR --judge SPEC --prompts FILE --out ckpts/NAME`.

One command per algorithm (nash-mp, nash-md, online-dpo, online-ipo, self-play, rlhf, mpo), all
with the same options; each builds a `trainers.lm.TrainConfig` and calls
`trainers.lm.train`. The output is a normal `save_pretrained` directory with
`arena_card.json` and `metrics.jsonl`; an interrupted run continues from its last
`checkpoint-N` when started again with the same options and `--resume`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import err, out, train_app
from arena.errors import InputError

HELP = {
    "nash-mp": "Nash-MP (Mirror Prox, practical): EMA target, KL to reference and target, symmetrised PG.",
    "nash-md": "Nash-MD-PG: opponent sampled from the geometric mixture of policy and reference (KV cache).",
    "online-dpo": "Online DPO: two policy samples, judge label, DPO loss (a Bradley–Terry surrogate).",
    "online-ipo": "Online IPO: two policy samples, judge label, IPO loss.",
    "self-play": "Regularised self-play: Nash-MP with κ = 1 (the target is the current policy).",
    "rlhf": "RLHF: Bradley–Terry reward fitted on in-group judgments, optimised by RLOO.",
    "mpo": "MPO (magnetic preference optimisation): self-play with a KL pull to a magnet refreshed to the policy.",
}


def _command(algorithm: str):
    def command(
        ctx: typer.Context,
        policy: Path = typer.Option(..., "--policy", help="Initial policy checkpoint (also the reference)."),
        judge: str = typer.Option(..., "--judge", help="Judge spec, e.g. python:arena.worlds.lowrank:judge."),
        prompts: Path = typer.Option(..., "--prompts", help="Prompts: JSONL (prompt field) or one per line."),
        out_dir: Path = typer.Option(..., "--out", help="Output checkpoint directory, e.g. ckpts/nash-mp."),
        steps: int = typer.Option(50, "--steps", help="Optimiser steps."),
        batch_size: int = typer.Option(8, "--batch-size", help="Prompts per micro-batch (two responses each)."),
        grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimiser step (gradients averaged): a step uses batch-size × grad-accum prompts."),
        lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
        lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant, or linear decay to 0."),
        kl_estimator: str = typer.Option("token", "--kl-estimator", help="token (exact per-token KL) or sequence (log-ratio)."),
        beta: float = typer.Option(0.1, "--beta", help="KL-to-reference regularisation β."),
        eta: Optional[float] = typer.Option(None, "--eta", help="Nash-MP step η: KL to the target has weight β/η (default 2β, the largest with a convergence guarantee)."),
        samples_per_prompt: int = typer.Option(2, "--samples-per-prompt", help="Nash-MP: K responses per prompt, all pairs judged, leave-one-out opponents."),
        kappa: str = typer.Option("0.1", "--kappa", help="Nash-MP target EMA rate: a number or harmonic:C (C/(k+C))."),
        mixture: str = typer.Option("0.125", "--mixture", help="Nash-MD mixture coefficient: a number or harmonic:C."),
        rloo_k: int = typer.Option(4, "--rloo-k", help="RLHF: responses per prompt."),
        magnet_every: int = typer.Option(20, "--magnet-every", help="MPO: steps between refreshes of the magnet to the current policy."),
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
        use_vllm: bool = typer.Option(False, "--use-vllm", help="Draw the policy's samples with vLLM in this process, weights synced after every update (Nash-MD's mixture opponent stays on hf)."),
        vllm_option: Optional[list[str]] = typer.Option(None, "--vllm-option", help="NAME=VALUE for the --use-vllm engine (repeatable), e.g. gpu_memory_utilization=0.3, enforce_eager=true."),
    ) -> None:
        from arena.lm import parse_stop
        from trainers.lm import TrainConfig, train

        v = _with_config_file(ctx, config_file)   # flags given on the command line win
        steps, nash = v["steps"], v["nash"]
        _check_inputs(prompts=prompts, out_dir=out_dir, eval_every=v["eval_every"],
                      save_every=v["save_every"], nash=nash, device=v["device"])
        from arena.cli._checks import at_least
        from arena.progress import open_progress

        at_least("--log-every", log_every, 0, example=10)
        config = TrainConfig(
            policy=str(policy), judge=judge, prompts=str(prompts), out=str(out_dir),
            **{k: v[k] for k in _CONFIG_FIELDS}, nash=str(nash) if nash else None,
            vllm_options=_name_values("--vllm-option", vllm_option, example="gpu_memory_utilization=0.3"),
            stop=parse_stop(stop), chat_template=chat_template, system_prompt=system_prompt, dtype=dtype, merge=merge,
            prompt_template=parse_stop([prompt_template])[0] if prompt_template else None,
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
        out.print(f"wrote {path} ({algorithm}, {last.get('step', steps)} steps, "
                  f"{last.get('judge_queries', 0)} judge queries)", markup=False)
        if "kl_to_nash" in last:
            out.print(f"exact KL(π*_β ‖ π_θ) = {last['kl_to_nash']:.4g}", markup=False)

    command.__doc__ = HELP[algorithm]
    return command


_CONFIG_FIELDS = ("steps", "batch_size", "grad_accum", "lr", "lr_schedule", "kl_estimator", "beta", "eta", "samples_per_prompt",
                  "kappa", "mixture", "rloo_k", "magnet_every", "labels", "max_new_tokens", "seed", "lora", "lora_r", "eval_every",
                  "save_every", "report_to", "device", "use_vllm")
"""TrainConfig fields set from options of the same name (a --config file may hold any of them, and nash)."""


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


def _with_config_file(ctx: typer.Context, path: Path | None) -> dict:
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
    allowed = {name: name for name in (*_CONFIG_FIELDS, "nash")}
    for key, value in data.items():
        name = allowed.get(str(key).lstrip("-").replace("-", "_"))
        if name is None:
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
        elif name == "eta" or isinstance(default, float):
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


for _name in HELP:
    train_app.command(_name, help=HELP[_name])(_command(_name))
