"""Benchmark: in the multi-criteria world, a max–min policy against single-criterion policies.

End to end as a user runs it (`arena` processes): builds the multi-criteria world
(`arena.worlds.multicriteria.build_multicriteria_world`: helpful, brief and safe raters with conflicting orders), trains
Nash-MP from its `sft` checkpoint once per single criterion (`--judge ...:judge_<c>`), once with
`--criteria-weights maxmin` on the vector judge (with `--equal`, once with equal weights too), per seed, then runs
ONE `arena tournament` with the vector judge over the world's checkpoints and the trained
policies (every trained policy against every world checkpoint, `--pairs`) and prints its
side-by-side table (per-criterion Nash, weighted, robust). From results.json it reads each
policy's win rate per criterion against the world's checkpoints, P_c(policy ≻ checkpoint), and
reports the worst criterion's mean win rate (min_c mean_j) and the worst cell (min_c min_j), with
the max–min policy's margin over the best single-criterion policy per seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_criteria.py [--steps 150] [--seeds 0 1] [--equal] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CRITERIA = ("helpful", "brief", "safe")
WORLD_CKPTS = ("terse", "sentence", "hedged", "careful", "sft")


def arena(*args: str, quiet: bool = True) -> float:
    env = {**os.environ, "PYTHONPATH": str(HERE), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    exe = Path(sys.executable).with_name("arena")
    t = time.perf_counter()
    r = subprocess.run([str(exe), *args], env=env, capture_output=quiet, text=True)
    if r.returncode != 0:
        raise SystemExit(f"arena {' '.join(args)} failed ({r.returncode}):\n{r.stderr if quiet else ''}")
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150, help="Nash-MP steps per policy")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--beta", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--prompts", type=int, default=64, help="world prompts")
    parser.add_argument("--samples", type=int, default=2, help="tournament samples per (checkpoint, prompt)")
    parser.add_argument("--equal", action="store_true", help="also train with equal criterion weights")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it (a rerun reuses the world)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-criteria-"))
    world = root / "world"
    if not (world / "judge.txt").is_file():  # no `arena world` command for it: the library function
        from arena.worlds.multicriteria import build_multicriteria_world

        t = time.perf_counter()
        build_multicriteria_world(world, seed=0, n_prompts=args.prompts)
        print(f"world built in {time.perf_counter() - t:.0f} s ({world})")
    ckpts = root / "ckpts"
    ckpts.mkdir(parents=True, exist_ok=True)
    for name in WORLD_CKPTS:
        if not (ckpts / name).exists():
            (ckpts / name).symlink_to(world / "ckpts" / name)
    vector = (world / "judge.txt").read_text().strip()
    policies = {}
    common = ["--policy", str(world / "ckpts" / "sft"), "--prompts", str(world / "prompts.jsonl"),
              "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--beta", str(args.beta),
              "--lr", str(args.lr), "--max-new-tokens", "24", "--eval-every", "0", "--save-every", "0",
              "--log-every", "0"]
    variants = {f"only-{c}": ["--judge", f"{vector}_{c}"] for c in CRITERIA}
    if args.equal:
        variants["equal"] = ["--judge", vector, "--criteria-weights", ",".join(f"{c}={1 / 3:.12f}" for c in CRITERIA[:2])
                             + f",{CRITERIA[2]}={1 - 2 * float(f'{1 / 3:.12f}'):.12f}"]
    variants["maxmin"] = ["--judge", vector, "--criteria-weights", "maxmin"]
    for seed in args.seeds:
        for variant, flags in variants.items():
            name = f"{variant}-s{seed}"
            out = ckpts / name
            if not out.exists():
                t = arena("train", "nash-mp", *common, *flags, "--seed", str(seed), "--out", str(out))
                print(f"trained {name} in {t:.0f} s")
            policies[name] = variant
    pairs = ",".join(f"{p}:{c}" for p in policies for c in WORLD_CKPTS)
    run = root / "run"
    cmd = ["tournament", str(ckpts), "--prompts", str(world / "prompts.jsonl"), "--judge", vector, "--out", str(run),
           "--samples", str(args.samples), "--max-new-tokens", "24", "--rounds", "200", "--pairs", pairs,
           "--weights", "helpful=0.3333333333,brief=0.3333333333,safe=0.3333333334", "--prior", "0.1"]
    t = arena(*cmd, quiet=False)
    print(f"tournament in {t:.0f} s: arena {' '.join(cmd[:2])} ... (see the table above)")
    result = json.loads((run / "results.json").read_text())
    models = result["models"]

    def P(c, a, b):
        return result["criteria"][c]["preference"]["P"][models.index(a)][models.index(b)]

    print("\nwin rate P_c(policy ≻ world checkpoint), mean over the 5 checkpoints, per criterion:")
    print(f"{'policy':<18}" + "".join(f"{c:>9}" for c in CRITERIA) + f"{'worst':>9}{'worst cell':>12}")
    rows = {}
    for name in policies:
        means = {c: sum(P(c, name, j) for j in WORLD_CKPTS) / len(WORLD_CKPTS) for c in CRITERIA}
        cell = min(P(c, name, j) for c in CRITERIA for j in WORLD_CKPTS)
        rows[name] = (min(means.values()), cell)
        print(f"{name:<18}" + "".join(f"{means[c]:9.3f}" for c in CRITERIA) + f"{rows[name][0]:9.3f}{cell:12.3f}")
    print("\nmax–min margin over the best single-criterion policy (worst-criterion mean win rate):")
    for seed in args.seeds:
        best = max(rows[f"only-{c}-s{seed}"][0] for c in CRITERIA)
        mm = rows[f"maxmin-s{seed}"][0]
        print(f"seed {seed}: maxmin {mm:.3f}, best single {best:.3f}, margin {mm - best:+.3f} "
              f"({'met' if mm >= best else 'NOT met'})")
    print(f"\nwork dir: {root}")


if __name__ == "__main__":
    main()
