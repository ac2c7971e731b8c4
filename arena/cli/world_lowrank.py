"""`arena world lowrank --out DIR`: the contextual low-rank game as a sequence world with a known π*_β."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from arena.cli._app import err, out, world_app


@world_app.command("lowrank")
def lowrank(
    out_dir: Path = typer.Option(..., "--out", help="New directory for the world."),
    contexts: int = typer.Option(8, "--contexts", help="Contexts (prompts)."),
    actions: int = typer.Option(6, "--actions", help="Response classes (letters A, B, ...)."),
    rank: int = typer.Option(2, "--rank", help="Rank of the game's A_x."),
    scale: float = typer.Option(3.0, "--scale", help="Scale of A_x (sharper preferences when larger)."),
    beta: float = typer.Option(0.1, "--beta", help="β of the exact regularised Nash written to nash.json."),
    seed: int = typer.Option(0, "--seed", help="Seed of the game and the SFT data."),
    sft_steps: int = typer.Option(300, "--sft-steps", help="SFT steps of the reference checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    json_out: bool = typer.Option(False, "--json", help="Print the world's layout as one JSON object."),
) -> None:
    """Contextual low-rank preference game lifted to sequences, with the exact π*_β (nash.json)."""
    from arena.cli._checks import at_least, finite_positive, not_a_file
    from arena.errors import InputError
    from arena.worlds.lowrank import LowrankWorld, build_lowrank_world

    world = LowrankWorld(n_contexts=contexts, n_actions=actions, rank=rank, scale=scale, seed=seed, beta=beta,
                         sft_steps=sft_steps)
    # Checked here, before the note below and the SFT run: the library checks rank and scale
    # only when it builds the game, and sft_steps not at all.
    at_least("--sft-steps", sft_steps, 1, example=300)
    if not 1 <= rank <= actions:
        raise InputError(f"--rank must be in 1..--actions ({actions}); got {rank}")
    finite_positive("--scale", scale, example=3.0, allow_zero=True)
    not_a_file("--out", out_dir)  # --overwrite replaces only a directory
    if out_dir.exists() and not overwrite:
        raise InputError(f"{out_dir} already exists; choose another --out or pass --overwrite")
    if not json_out:
        err.print("building the lowrank world (SFT reference, exact regularised Nash) ...", markup=False)
    path = build_lowrank_world(out_dir, world, overwrite=overwrite)
    nash = json.loads((path / "nash.json").read_text())
    layout = {"dir": str(path), "ckpts": str(path / "ckpts"), "prompts": str(path / "prompts.jsonl"),
              "judge": (path / "judge.txt").read_text().strip(), "nash": str(path / "nash.json"),
              "beta": nash["beta"], "kl_star_ref": nash["kl_star_ref"], "gap": nash["gap"]}
    if json_out:
        print(json.dumps(layout))
        return
    out.print(f"wrote the lowrank world to {path}: KL(π*_β‖π_ref) = {nash['kl_star_ref']:.4g} at β = {nash['beta']:g} "
              f"(duality gap {nash['gap']:.2g})", markup=False)
    out.print(f"train: arena train nash-mp --policy {path}/ckpts/sft --judge \"{layout['judge']}\" "
              f"--prompts {path}/prompts.jsonl --out {path}/ckpts/nash-mp", markup=False)
