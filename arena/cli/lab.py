"""`arena lab game`: exact tabular/contextual NLHF dynamics, side by side.

Parse, build a game and a `LabConfig`, call `trainers.lab.run.run_comparison`, render a table
(and JSON / plots). The math lives in `trainers.lab`.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from arena.cli._app import err, lab_app, out
from arena.cli._checks import finite_positive, not_a_file
from arena.errors import InputError


class GameKind(str, Enum):
    random = "random"
    lowrank = "lowrank"
    matrix = "matrix"


class Reference(str, Enum):
    uniform = "uniform"
    random = "random"


def _read_matrix_csv(path: Path):
    """A square CSV of P(i ≻ j), with or without a header row / a first column of names."""
    import csv

    import numpy as np

    if not path.exists():
        raise InputError(f"{path} not found: give a CSV file with the square matrix P[i, j] = P(i beats j)")
    if path.is_dir():
        raise InputError(f"{path} is a directory: give a CSV file with the square matrix P(i beats j)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: not a readable UTF-8 CSV ({e}); write one comma-separated row of numbers per model") from None
    if not rows:
        raise InputError(f"{path} is empty: write one row of P(i beats j) per model")

    def numeric(c: str) -> bool:
        try:
            float(c)
            return True
        except ValueError:
            return False

    if not all(numeric(c) for c in rows[0][1:]):
        rows = rows[1:]  # header row of names
    if rows and not numeric(rows[0][0]):
        rows = [r[1:] for r in rows]  # first column of names
    ragged = [i for i, r in enumerate(rows, start=1) if len(r) != len(rows[0])]
    if ragged:
        raise InputError(f"{path}: data row {ragged[0]} has {len(rows[ragged[0] - 1])} cells but the first has "
                         f"{len(rows[0])}; give every row one cell per model")
    try:
        P = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise InputError(f"{path}: every cell must be a number in [0, 1] ({e})") from None
    return P


def _build_game(game, matrix, actions, contexts, rank, scale, reference, seed):
    from trainers.lab.games import lowrank_game, matrix_game, random_game

    if game == GameKind.matrix:
        if matrix is None:
            raise InputError("--game matrix needs --matrix FILE (a square CSV of P(i beats j))")
        P = _read_matrix_csv(matrix)
        return matrix_game(P), {"kind": "matrix", "file": str(matrix), "actions": int(P.shape[0]), "contexts": 1}
    if matrix is not None:
        raise InputError("--matrix is only used with --game matrix; add --game matrix or drop --matrix")
    if game == GameKind.random:
        g = random_game(contexts, actions, seed=seed, reference=reference.value)
        return g, {"kind": "random", "actions": actions, "contexts": contexts, "reference": reference.value, "seed": seed}
    g = lowrank_game(contexts, actions, rank, scale, seed, reference=reference.value)
    return g, {"kind": "lowrank", "actions": actions, "contexts": contexts, "rank": rank, "scale": scale,
               "reference": reference.value, "seed": seed}


def _write_outputs(out_dir: Path, comp, result: dict, title: str) -> None:
    """results.json + convergence.png through the one atomic writer (`arena.outputs`, merge)."""
    from arena.outputs import atomic_output
    from trainers.lab.plots import plot_convergence

    with atomic_output(out_dir, mode="merge") as tmp:
        (tmp / "results.json").write_text(json.dumps(result, indent=2))
        plot_convergence(comp, tmp / "convergence.png", title=title)


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.2e}" if isinstance(v, float) else str(v))


@lab_app.command("game")
def game_cmd(
    game: GameKind = typer.Option(GameKind.lowrank, "--game", help="random | lowrank | matrix (with --matrix FILE)."),
    matrix: Optional[Path] = typer.Option(None, "--matrix", help="CSV of P(i beats j) for --game matrix."),
    actions: int = typer.Option(20, "--actions", help="Responses per context."),
    contexts: int = typer.Option(10, "--contexts", help="Number of contexts (prompts)."),
    rank: int = typer.Option(4, "--rank", help="lowrank: rank of U Θ_x Vᵀ."),
    scale: float = typer.Option(1.0, "--scale", help="lowrank: scale of A_x (larger = sharper preferences)."),
    reference: Reference = typer.Option(Reference.uniform, "--reference", help="π_ref: uniform or random softmax (seeded)."),
    beta: float = typer.Option(0.1, "--beta", help="KL-regularisation β."),
    eta: Optional[float] = typer.Option(None, "--eta", help="Nash-MP step η (default 2β)."),
    steps: int = typer.Option(100, "--steps", help="Iterations per algorithm."),
    algorithms: str = typer.Option(
        "nash-mp,nash-md,nash-md-decay,md,mpo,egpo", "--algorithms",
        help="Comma list, or 'all', or 'sampled'. Exact: nash-mp, nash-md, nash-md-decay, md, mpo, egpo; "
             "sampled: online-ipo, online-dpo, self-play, nash-mp-ema, nash-mp-ema-const, nash-md-pg."),
    seed: int = typer.Option(0, "--seed", help="Seed of the game and of the sampled pairs."),
    batch: int = typer.Option(16, "--batch", help="Sampled algorithms: judged pairs per context per step."),
    lr: float = typer.Option(1.0, "--lr", help="Sampled algorithms: SGD learning rate on the logits."),
    kappa: float = typer.Option(0.1, "--kappa", help="nash-mp-ema-const: constant EMA weight."),
    refresh: int = typer.Option(20, "--refresh", help="mpo: refresh the magnet every this many steps."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write results.json and convergence.png here."),
) -> None:
    """Run NLHF algorithms on a tabular/contextual preference game against the exact π*_β."""
    from trainers.lab.run import ALGORITHMS, EXACT, SAMPLED, LabConfig, comparison_to_json, run_comparison

    names = [a.strip() for a in algorithms.split(",") if a.strip()]
    names = list(ALGORITHMS) if names == ["all"] else list(SAMPLED) if names == ["sampled"] else names
    unknown = [a for a in names if a not in ALGORITHMS]
    if unknown or not names:
        raise InputError(f"unknown algorithm(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ALGORITHMS)}, or all")
    # The library does not check lr (a NaN would run to the end and print NaN), and an --out
    # that is a file would fail only after the run.
    finite_positive("--lr", lr, example=1.0)
    not_a_file("--out", out_dir)
    g, info = _build_game(game, matrix, actions, contexts, rank, scale, reference, seed)
    cfg = LabConfig(beta=beta, eta=eta, steps=steps, algorithms=tuple(names), seed=seed, batch=batch, lr=lr,
                    kappa=kappa, refresh=refresh)
    comp = run_comparison(g, cfg)
    result = comparison_to_json(comp, game_info=info)
    title = f"{info['kind']} game, {g.n_contexts} contexts × {g.n_actions} actions, β = {beta}, η = {comp.eta:g}"
    if out_dir is not None:
        _write_outputs(out_dir, comp, result, title)
        err.print(f"wrote {out_dir}/results.json and {out_dir}/convergence.png")
    if as_json:
        print(json.dumps(result))
        return
    from rich.table import Table

    out.print(f"[bold]{title}[/]")
    out.print(f"π*_β: duality gap {comp.nash.gap:.1e}, fixed-point residual {comp.nash.residual:.1e}; "
              f"Nash-MP bound (1+2β)^-T/(2β) < 1e-6 at T = {result['bound_steps_1e-6']}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("algorithm", no_wrap=True)  # headers wrap; names do not
    for col in ("iters KL<1e-3", "iters KL<1e-6", "queries KL<1e-6", "final KL", "final gap", "queries"):
        table.add_column(col, justify="right")
    for name, r in result["algorithms"].items():
        kind = "" if name in EXACT else " (sampled)"
        table.add_row(name + kind, _fmt(r["steps_to_1e-3"]), _fmt(r["steps_to_1e-6"]), _fmt(r["queries_to_1e-6"]),
                      _fmt(r["final_kl"]), _fmt(r["final_gap"]), str(r["queries"]))
    out.print(table)


def _parse_weights(text: str) -> dict[str, float]:
    """'helpful=0.5,harmless=0.5' -> {'helpful': 0.5, 'harmless': 0.5} (the library checks the values)."""
    weights = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, eq, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            raise InputError(f"--weights item {item!r} is not NAME=NUMBER; e.g. --weights a=0.5,b=0.5")
    return weights


@lab_app.command("criteria")
def criteria_cmd(
    game: GameKind = typer.Option(GameKind.random, "--game", help="random | lowrank (one independent game per criterion)."),
    criteria: str = typer.Option("a,b,c", "--criteria", help="Comma list of criterion names."),
    actions: int = typer.Option(5, "--actions", help="Responses per context."),
    contexts: int = typer.Option(1, "--contexts", help="Contexts (the exact LP is printed for 1)."),
    rank: int = typer.Option(2, "--rank", help="lowrank: rank of U Θ_x Vᵀ."),
    scale: float = typer.Option(1.0, "--scale", help="lowrank: scale of A_x."),
    weights: Optional[str] = typer.Option(None, "--weights", help="NAME=W,... for weighted Nash-MP (default: equal)."),
    beta: float = typer.Option(0.1, "--beta", help="KL-regularisation β of weighted Nash-MP."),
    steps: int = typer.Option(1000, "--steps", help="Iterations of both dynamics."),
    eta: float = typer.Option(4.0, "--eta", help="Mirror-prox step of the max–min dynamics."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first criterion's game (then seed+1, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Multi-criteria game: weighted Nash-MP and max–min dynamics against the robust LP."""
    from arena.cli._checks import at_least
    from trainers.lab.multicriteria import multi_lowrank_game, multi_random_game, run_max_min, run_weighted

    names = tuple(c.strip() for c in criteria.split(",") if c.strip())
    if not names:
        raise InputError("--criteria needs at least one name; e.g. --criteria helpful,harmless")
    if game == GameKind.matrix:
        raise InputError("--game matrix is not supported by `arena lab criteria`; use random or lowrank")
    at_least("--steps", steps, 1, example=1000)
    finite_positive("--eta", eta, example=4.0)
    g = (multi_random_game(names, contexts, actions, seed=seed) if game == GameKind.random
         else multi_lowrank_game(names, contexts, actions, rank, scale, seed))
    w = {c: 1.0 / len(names) for c in names} if weights is None else _parse_weights(weights)
    weighted = run_weighted(g, w, beta=beta, steps=steps)
    mm = run_max_min(g, steps=steps, eta=eta)
    result = {
        "game": {"kind": game.value, "criteria": list(names), "actions": actions, "contexts": contexts, "seed": seed},
        "weighted": {"weights": dict(zip(names, weighted.weights.tolist())), "beta": beta,
                     "final_kl": float(weighted.kl[-1])},
        "max_min": {"value": mm.value, "upper_bound": mm.upper_bound, "gap": mm.gap,
                    "criterion_weights": dict(zip(names, mm.criterion_weights.tolist())),
                    "criterion_values": dict(zip(names, mm.criterion_values.tolist()))},
        "steps": steps,
    }
    if contexts == 1:
        from arena.core.robust import robust_mixture

        r = robust_mixture(g.P[:, 0], criteria=names)
        result["robust"] = {"weights": r.weights.tolist(), "value": r.value, "binding": list(r.binding),
                            "exploitability": dict(zip(names, r.exploitability.tolist())), "gap": r.gap,
                            "criterion_weights": dict(zip(names, r.criterion_weights.tolist()))}
    if as_json:
        print(json.dumps(result))
        return
    out.print(f"[bold]{game.value} game, criteria {', '.join(names)}: {contexts} contexts × {actions} actions[/]")
    out.print(f"weighted Nash-MP ({', '.join(f'{c}={v:g}' for c, v in result['weighted']['weights'].items())}, "
              f"β = {beta}): KL(π*_β ‖ π_T) = {weighted.kl[-1]:.2e} after {steps} steps")
    out.print(f"max–min dynamics: value {mm.value:.4f} ≤ v* ≤ {mm.upper_bound:.4f} (gap {mm.gap:.1e}); "
              f"criterion weights {', '.join(f'{c}={v:.3f}' for c, v in zip(names, mm.criterion_weights))}")
    if "robust" in result:
        out.print(f"robust LP: value {r.value:.4f}, binding {', '.join(r.binding)}, "
                  f"criterion weights {', '.join(f'{c}={v:.3f}' for c, v in zip(names, r.criterion_weights))}")
