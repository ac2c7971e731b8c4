"""`arena world raters|multicriteria --out DIR`: write a synthetic world (prompts, checkpoints, judge spec)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from arena.cli._app import err, out, world_app


OUT = typer.Option(..., "--out", help="New directory for the world (must not exist or be empty).")
SEED = typer.Option(0, "--seed", help="Seed for data, initialisation and training.")
STEPS = typer.Option(300, "--steps", help="SFT steps per checkpoint.")
JSON_OUT = typer.Option(False, "--json", help="Print the world's layout as one JSON object.")


def _build(build, out_dir: Path, *, seed: int, prompts: int, steps: int) -> tuple[Path, dict]:
    """Check the shared options, build the world with `build` (progress on stderr); (path, layout)."""
    from arena.cli._checks import at_least, not_a_file
    from arena.errors import InputError
    from arena.worlds.raters import N_NUMBERS

    if not 1 <= prompts <= N_NUMBERS:
        raise InputError(f"--prompts must be in 1..{N_NUMBERS} (one question per number); got {prompts}")
    at_least("--steps", steps, 1, example=300)
    not_a_file("--out", out_dir)
    path = build(out_dir, seed=seed, n_prompts=prompts, steps=steps, progress=lambda msg: err.print(msg, markup=False))
    return path, {"dir": str(path), "ckpts": str(path / "ckpts"), "prompts": str(path / "prompts.jsonl"),
                  "judge": (path / "judge.txt").read_text().strip(),
                  "checkpoints": sorted(p.name for p in (path / "ckpts").iterdir())}


def _run_line(path: Path) -> None:
    out.print(f"run:  arena tournament {path}/ckpts --prompts {path}/prompts.jsonl --judge \"$(cat {path}/judge.txt)\"",
              markup=False, soft_wrap=True)


@world_app.command("raters")
def raters(
    out_dir: Path = OUT,
    seed: int = SEED,
    prompts: int = typer.Option(100, "--prompts", help="Questions written to prompts.jsonl (1..100; 100 makes the cycle significant)."),
    steps: int = STEPS,
    json_out: bool = JSON_OUT,
) -> None:
    """Three rater types with cycling tastes: style checkpoints that beat each other in a cycle."""
    from arena.worlds.raters import build_raters_world

    path, layout = _build(build_raters_world, out_dir, seed=seed, prompts=prompts, steps=steps)
    layout["nash"] = str(path / "nash.json")
    if json_out:
        print(json.dumps(layout))
        return
    out.print(f"wrote the raters world to {path}", markup=False, soft_wrap=True)
    nash = json.loads((path / "nash.json").read_text())
    mean = [sum(row[c] for row in nash["pi_star"]) / len(nash["pi_star"]) for c in range(len(nash["classes"]))]
    shown = ", ".join(f"{name} {v:.3f}" for name, v in zip(nash["classes"], mean) if v >= 0.0005)
    out.print(f"regularised Nash π*_β (β = {nash['beta']:g}, mean over prompts): {shown}", markup=False, soft_wrap=True)
    _run_line(path)


@world_app.command("multicriteria")
def multicriteria(
    out_dir: Path = OUT,
    seed: int = SEED,
    prompts: int = typer.Option(100, "--prompts", help="Questions written to prompts.jsonl (1..100)."),
    steps: int = STEPS,
    json_out: bool = JSON_OUT,
) -> None:
    """Helpful, brief and safe raters who disagree: style checkpoints and a vector judge (docs/criteria.md)."""
    from arena.worlds.multicriteria import CRITERIA, build_multicriteria_world

    path, layout = _build(build_multicriteria_world, out_dir, seed=seed, prompts=prompts, steps=steps)
    layout["criterion_judges"] = {c: (path / f"judge_{c}.txt").read_text().strip() for c in CRITERIA}
    if json_out:
        print(json.dumps(layout))
        return
    out.print(f"wrote the multi-criteria world to {path} (criteria: {', '.join(CRITERIA)})", markup=False,
              soft_wrap=True)
    _run_line(path)
