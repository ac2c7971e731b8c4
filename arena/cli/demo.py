"""`arena demo`: the embedded default, on a CPU, with no download.

1. build the raters world (three response styles, a panel of rater types whose tastes
   cycle, one checkpoint per style and a skewed SFT reference);
2. run the round-robin tournament: the style checkpoints come out in a cycle, the Nash
   mixture spreads over them, BT still prints a total order;
3. train Nash-MP, Nash-MD and Online DPO from the SFT checkpoint into the same `ckpts/`;
4. rerun the tournament: old generations and judgments are reused, only the new pairs are
   judged; show where Nash-MP stands against the Nash mixture of the others.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from arena.cli._app import app, err, out


@app.command("demo")
def demo(
    out_dir: Path = typer.Option(Path("demo-run"), "--out", help="Demo directory (reused by later runs)."),
    steps: int = typer.Option(300, "--steps", help="Training steps per algorithm."),
    seed: int = typer.Option(0, "--seed", help="Seed of the world, sampling, training and bootstrap."),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap rounds for the rating intervals."),
    no_train: bool = typer.Option(False, "--no-train", help="Only build the world and run the first tournament."),
    json_out: bool = typer.Option(False, "--json", help="Print the final result as one JSON object."),
) -> None:
    """Raters world -> tournament -> train Nash-MP, Nash-MD, Online DPO -> tournament again."""
    from arena.cli._checks import at_least, not_a_file

    # Checked here because the library would see them only after building the world and
    # running the first tournament.
    at_least("--steps", steps, 1, example=300)
    at_least("--rounds", rounds, 1, example=1000)
    not_a_file("--out", out_dir)

    from arena.demo import DEMO_ALGORITHMS, DEMO_PROMPTS, DEMO_SAMPLES, DEMO_TRAIN, nash_mp_summary
    from arena.report import render_terminal
    from arena.tournament import TournamentConfig, run_tournament
    from arena.worlds.raters import build_raters_world

    world, run_dir = out_dir / "world", out_dir / "run"
    ckpts, prompts = world / "ckpts", world / "prompts.jsonl"
    if not (world / "judge.txt").exists():
        err.rule("[bold]1. Building the raters world")
        build_raters_world(world, seed=seed, n_prompts=DEMO_PROMPTS, progress=lambda msg: err.print(f"  {msg}", markup=False))
    else:
        err.print(f"reusing the world in {world}", markup=False)
    spec = (world / "judge.txt").read_text().strip()

    def tournament(title: str):
        err.rule(f"[bold]{title}")
        config = TournamentConfig(ckpts_dir=ckpts, prompts=prompts, judge=spec, out=run_dir,
                                  samples=DEMO_SAMPLES, seed=seed, rounds=rounds)
        return run_tournament(config, console=err)

    result = tournament("2. Tournament between the world's checkpoints")
    if not json_out:
        render_terminal(result, out)
    if no_train:
        if json_out:
            print(json.dumps(result.to_json(), allow_nan=False))
        return

    from trainers.lm import TrainConfig, train
    from trainers.lm.common import saved_step

    err.rule("[bold]3. Training from ckpts/sft")
    for algorithm in DEMO_ALGORITHMS:
        target = ckpts / algorithm
        if target.exists():
            err.print(f"  {algorithm}: reusing {target}", markup=False)
            continue
        config = TrainConfig(policy=str(ckpts / "sft"), judge=spec, prompts=str(prompts),
                             out=str(target), seed=seed, **{**DEMO_TRAIN, "steps": steps})
        with _progress(err) as bar:
            task = bar.add_task(algorithm, total=steps)
            train(algorithm, config, resume=saved_step(target) is not None,   # an interrupted demo continues
                  progress=lambda step, row: bar.update(task, completed=step + 1))
    result = tournament("4. Tournament again: only the new checkpoints' work is new")
    summary = nash_mp_summary(result)
    if json_out:
        print(json.dumps({**result.to_json(), "demo": summary}, allow_nan=False))
        return
    render_terminal(result, out)
    if summary is not None:
        _render_summary(summary)


def _progress(console):
    from arena.progress import open_progress

    return open_progress(console)


def _render_summary(s: dict) -> None:
    from rich.table import Table

    weights = ", ".join(f"{m} {w:.2f}" for m, w in s["nash_of_others"].items() if w > 0)
    out.print(f"[bold]Against the Nash mixture of the checkpoints other than {s['model']}[/] ({weights}):"
              " P(c ≻ mixture) − ½", soft_wrap=True)
    table = Table()
    table.add_column("checkpoint")
    table.add_column("score", justify="right")
    for name, score in sorted(s["score_vs_nash_of_others"].items(), key=lambda kv: -kv[1]):
        shown = round(score, 3) + 0.0  # no "-0.000"
        table.add_row(f"[bold]{name}[/]" if name == s["model"] else name, f"{shown:+.3f}")
    out.print(table)
    ci = s["win_rate_vs_sft_ci"]
    ci_text = f" (95% interval {ci[0]:.2f}–{ci[1]:.2f})" if ci else ""
    score = s["score_vs_nash_of_others"][s["model"]]
    sci = s["score_ci"]
    sci_text = f", conservative 95% interval [{sci[0]:+.3f}, {sci[1]:+.3f}] from the cell intervals" if sci else ""
    best = ("the highest point estimate of all checkpoints" if s["best_vs_nash_of_others"]
            else "not the highest point estimate")
    out.print(f"nash-mp: score {round(score, 3) + 0.0:+.3f} against the others' Nash mixture ({best}{sci_text}): "
              f"{s['verdict']}; Nash-averaged score {round(s['nash_averaged_score'], 3) + 0.0:+.3f}; "
              f"win rate against sft {s['win_rate_vs_sft']:.2f}{ci_text}", soft_wrap=True)
