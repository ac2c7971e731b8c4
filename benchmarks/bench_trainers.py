"""Benchmarks of the LM trainers (CPU by default; prints a table, writes nothing else).

    .venv/bin/python benchmarks/bench_trainers.py mixture   # geometric-mixture sampling, KV cache vs none
    .venv/bin/python benchmarks/bench_trainers.py memory    # peak memory of Nash-MP, LoRA vs full fine-tuning
    .venv/bin/python benchmarks/bench_trainers.py curves    # exact KL(π*_β‖π_θ) on the lowrank world, per algorithm
    .venv/bin/python benchmarks/bench_trainers.py trl       # steps/s vs trl 1.13.0 NashMDTrainer (separate venv)
    .venv/bin/python benchmarks/bench_trainers.py compare   # MPO and EGPO vs Nash-MP and Nash-MD, same judge queries
    .venv/bin/python benchmarks/bench_trainers.py raters-prompts --runs R...   # per-prompt classes of raters runs
    .venv/bin/python benchmarks/bench_trainers.py raters-opening --runs R... --prompt-id 11 --token " 11"

trl: installs trl==1.13.0 (no dependencies: it reuses this environment's torch/transformers
through a .pth file) into .bench-envs/trl113 (gitignored), then runs its NashMDTrainer and
our nash-md on the same tiny GPT-2 policy, the same tiny GPT-2 reward model (ours judges
with σ(r_a − r_b) through a python judge), batch, learning rate, β and mixture coefficient;
wall time of the training loop (ours includes loading and saving the checkpoint).

curves: builds the lowrank world (`arena world lowrank` defaults), trains Nash-MP, Nash-MD
and Online DPO from its SFT checkpoint with the same steps, batch and judge (so the same
number of judge queries), and plots the exact KL(π*_β ‖ π_θ) of the transformer's class
distribution against judge queries (docs/img/trainers_lowrank.png; --out to change).

compare: the same lowrank world; Nash-MP, Nash-MD, MPO and EGPO with their default options,
the same batch, learning rate and schedule and the same judge queries (EGPO judges two pairs
per prompt per step, so it runs half the steps); exact KL(π*_β ‖ π_θ) and TV per step, the
final KL and the seconds as ratios to Nash-MP (docs/img/trainers_compare.png).

mixture: the same tiny GPT-2 policy and reference, the same uniforms, 128 and 512 new tokens
(end-of-sequence banned so every row runs to the full length); `trainers.mixture.generate`
with both models' key-value caches against the same loop re-encoding the whole prefix at
every token (`use_cache=False`, what a cache-less implementation does). The table shows
seconds, the ratio, and how many rows came out token-for-token identical: in float32 a row
can split where a uniform falls within rounding distance (~1e-7) of a CDF boundary, after
which it continues differently; in float64 all rows agree (checked by hand, and the default
tests check cache = no cache on short responses).

raters-prompts: the per-prompt view of finished raters-world runs (`arena train` output
directories). Each run's final policy has its class distribution enumerated prompt by prompt
(`trainers.lm.exact.enumerate_classes`, prefixes below 1e-4 pruned, as the run's own
evaluation); π*_β is the world's nash.json solved at the run's β. Per run: TV to π*_β (mean,
median, 90th percentile over prompts) and the share of prompts where a correct style is below
1 %, beside the same shares for π*_β and π_ref, and the share of prompts where a style that
π*_β keeps (≥ 5 %) is below 1 % in the policy: a collapsed style, and which prompts those are.

raters-opening: π_θ(token | prompt) of one opening, its probability and rank, at each
`checkpoint-N/` of finished runs and at the end: how a needle's opening rises or sinks.

memory: each configuration runs in a fresh subprocess (peak resident set size, ru_maxrss)
for 3 Nash-MP steps on a wider GPT-2 (about 19M parameters, so the weights dominate the
interpreter's own footprint); a process that only loads the model is the baseline, and the
table shows the peak above it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_mixture(tokens=(128, 512), batch: int = 8, repeats: int = 2) -> list[dict]:
    import torch

    from trainers.mixture import generate
    from trainers.tiny import build_model, build_tokenizer

    torch.set_num_threads(1)
    tok = build_tokenizer(["the quick brown fox jumps over the lazy dog"] * 4, vocab_size=300)
    pol = build_model(tok, n_embd=64, n_layer=2, n_positions=1024, seed=1).eval()
    ref = build_model(tok, n_embd=64, n_layer=2, n_positions=1024, seed=2).eval()
    enc = tok(["the quick brown fox"] * batch, return_tensors="pt")
    rows = []
    for T in tokens:
        u = torch.rand(batch, T, generator=torch.Generator().manual_seed(T))
        times, outs = {}, {}
        for use_cache in (True, False):
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                g = generate(pol, enc["input_ids"], enc["attention_mask"], ref=ref, m=0.125, uniforms=u,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                             banned=(tok.eos_token_id, tok.pad_token_id), use_cache=use_cache)
                best = min(best, time.perf_counter() - t0)
            times[use_cache], outs[use_cache] = best, g.tokens
        rows.append({"new_tokens": T, "batch": batch, "cache_s": round(times[True], 3),
                     "no_cache_s": round(times[False], 3), "speedup": round(times[False] / times[True], 2),
                     "rows_identical": f"{int((outs[True] == outs[False]).all(1).sum())}/{batch}"})
    return rows


_MEMORY_CHILD = r"""
import json, resource, sys, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(1)
mode, world = sys.argv[2], sys.argv[3]
if mode == "load":
    from arena.loading import load_causal_lm
    load_causal_lm(world + "/ckpts/sft")
else:
    from trainers.lm import TrainConfig, train
    train("nash-mp", TrainConfig(policy=world + "/ckpts/sft", judge="python:arena.worlds.lowrank:judge",
          prompts=world + "/prompts.jsonl", out=world + "/out-" + mode, steps=3, batch_size=4,
          max_new_tokens=4, eval_every=0, save_every=0, lora=(mode == "lora")), overwrite=True)
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def bench_memory() -> list[dict]:
    from arena.worlds.lowrank import LowrankWorld, build_lowrank_world
    from trainers.tiny import build_model, save_checkpoint
    from arena.loading import load_causal_lm

    with tempfile.TemporaryDirectory() as tmp:
        world = build_lowrank_world(Path(tmp) / "w", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=5))
        _, tok = load_causal_lm(world / "ckpts" / "sft")
        big = build_model(tok, n_embd=512, n_layer=6, n_head=8, seed=0)       # a wider policy, same tokenizer
        n_params = sum(p.numel() for p in big.parameters())
        save_checkpoint(big, tok, world / "ckpts" / "sft")
        rss = {}
        for mode in ("load", "full", "lora"):
            proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(ROOT), mode, str(world)],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            rss[mode] = json.loads(proc.stdout.strip().splitlines()[-1])["maxrss_kb"] / 1024
    full, lora = rss["full"] - rss["load"], rss["lora"] - rss["load"]
    return [{"params_M": round(n_params / 1e6, 1), "load_only_MiB": round(rss["load"]),
             "full_above_load_MiB": round(full), "lora_above_load_MiB": round(lora),
             "full_over_lora": round(full / max(lora, 1e-9), 2)}]


TRL_VERSION = "1.13.0"
TRL_ENV = ROOT / ".bench-envs" / "trl113"

_TRL_CHILD = r"""
import json, sys, time, os, tempfile
os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
import torch
torch.set_num_threads(1)
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from trl.experimental.nash_md import NashMDConfig, NashMDTrainer
ckpt, rm, steps, batch, T = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
prompts = json.loads(sys.argv[6])
tok = AutoTokenizer.from_pretrained(ckpt)
model = AutoModelForCausalLM.from_pretrained(ckpt)
ref = AutoModelForCausalLM.from_pretrained(ckpt)
reward = AutoModelForSequenceClassification.from_pretrained(rm)
with tempfile.TemporaryDirectory() as out:
    args = NashMDConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-3,
                        max_new_tokens=T, beta=[0.1], mixture_coef=[0.125], missing_eos_penalty=None,
                        report_to=[], save_strategy="no", logging_steps=10**6, use_cpu=True,
                        dataloader_num_workers=0, seed=0, temperature=1.0)
    trainer = NashMDTrainer(model=model, ref_model=ref, reward_funcs=reward, args=args,
                            train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def reward_judge(prompt: str, response_a: str, response_b: str) -> float:
    """P(a ≻ b) = σ(r(x, a) − r(x, b)) with the benchmark's reward model (BENCH_REWARD_MODEL)."""
    import torch

    global _REWARD
    if "_REWARD" not in globals():
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = os.environ["BENCH_REWARD_MODEL"]
        _REWARD = (AutoModelForSequenceClassification.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path))
    model, tok = _REWARD
    with torch.no_grad():
        enc = tok([prompt + response_a, prompt + response_b], return_tensors="pt", padding=True)
        r = model(**enc).logits[:, 0]
    return float(torch.sigmoid(r[0] - r[1]))


def ensure_trl_env() -> Path:
    """A separate venv with trl==1.13.0 (no deps) on top of this project's environment."""
    py = TRL_ENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TRL_ENV)], check=True)
        site = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        child_site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                                    capture_output=True, text=True, check=True).stdout.strip()
        Path(child_site, "_project_env.pth").write_text(site + "\n")   # torch, transformers, ... shared
    probe = subprocess.run([str(py), "-c", "import trl; print(trl.__version__)"], capture_output=True, text=True)
    if probe.stdout.strip() != TRL_VERSION:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", f"trl=={TRL_VERSION}"], check=True)
    return py


def bench_trl(*, steps: int = 20, batch: int = 8, new_tokens: int = 16) -> list[dict]:
    """Steps/second: trl 1.13.0 NashMDTrainer vs `trainers.lm` nash-md, same tiny model, reward, batch."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from trainers.lm import TrainConfig, train
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    py = ensure_trl_env()
    prompts = [f"Write about topic {i}: " for i in range(64)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok = build_tokenizer(prompts + ["the quick brown fox jumps over the lazy dog"], vocab_size=320)
        save_checkpoint(build_model(tok, seed=0), tok, tmp / "policy")
        torch.manual_seed(1)
        rm = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_embd=64, n_layer=2, n_head=2,
                                                      n_positions=256, num_labels=1, pad_token_id=tok.pad_token_id,
                                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
        save_checkpoint(rm, tok, tmp / "reward")
        (tmp / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_REWARD_MODEL": str(tmp / "reward")}
        proc = subprocess.run([str(py), "-c", _TRL_CHILD, str(tmp / "policy"), str(tmp / "reward"), str(steps),
                               str(batch), str(new_tokens), json.dumps(prompts)], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError("trl run failed:\n" + proc.stderr[-3000:])
        trl_s = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
        os.environ["BENCH_REWARD_MODEL"] = str(tmp / "reward")
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        config = TrainConfig(policy=str(tmp / "policy"), judge="python:bench_trainers:reward_judge",
                             prompts=str(tmp / "prompts.jsonl"), out=str(tmp / "ours"), steps=steps,
                             batch_size=batch, lr=1e-3, beta=0.1, max_new_tokens=new_tokens,
                             eval_every=0, save_every=0)
        t0 = time.perf_counter()
        train("nash-md", config)
        ours_s = time.perf_counter() - t0
    rows.append({"trainer": f"trl {TRL_VERSION} NashMDTrainer", "steps": steps, "batch": batch,
                 "new_tokens": new_tokens, "seconds": round(trl_s, 2), "steps_per_s": round(steps / trl_s, 2)})
    rows.append({"trainer": "trainers.lm nash-md", "steps": steps, "batch": batch, "new_tokens": new_tokens,
                 "seconds": round(ours_s, 2), "steps_per_s": round(steps / ours_s, 2)})
    return rows


CURVE_ALGOS = ("nash-mp", "nash-md", "online-dpo")


CURVE_ETA = 1.0
"""Nash-MP η of the documented lowrank curves (measured before η defaulted to 2β)."""


@contextlib.contextmanager
def _lowrank_world(work: Path | None, seed: int):
    """Yields (root, world, nash): the lowrank world (`arena world lowrank` defaults, this seed) in
    root / "lowrank", built once under `work` and reused, or in a temporary folder removed afterwards."""
    import torch

    from arena.worlds.lowrank import LowrankWorld, build_lowrank_world

    torch.set_num_threads(1)
    with contextlib.ExitStack() as stack:
        root = Path(work) if work is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        world = root / "lowrank"
        if not (world / "nash.json").is_file():
            build_lowrank_world(world, LowrankWorld(seed=seed), overwrite=True)
        yield root, world, json.loads((world / "nash.json").read_text())


def _train_lowrank(algo: str, root: Path, world: Path, nash: dict, **config) -> tuple[list[dict], float]:
    """Trains the world's SFT checkpoint with its judge into root / "runs" / algo; (metrics rows, seconds)."""
    from arena.worlds.lowrank import JUDGE_SPEC
    from trainers.lm import TrainConfig, train

    t0 = time.perf_counter()
    out = train(algo, TrainConfig(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC,
                                  prompts=str(world / "prompts.jsonl"), out=str(root / "runs" / algo),
                                  beta=nash["beta"], max_new_tokens=4, save_every=0, **config), overwrite=True)
    seconds = time.perf_counter() - t0
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()], seconds


def _plot_kl_curves(curves: dict[str, list[dict]], nash: dict, png: Path, *, batch: int, lr: float,
                    lr_schedule: str, seed: int) -> None:
    """The exact KL(π*_β ‖ π_θ) of each algorithm's metrics against judge queries, SFT for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for algo, m in curves.items():
        ax.plot([r["judge_queries"] for r in m], [r["kl_to_nash"] for r in m], label=algo)
    ax.axhline(nash["kl_star_ref"], color="grey", ls=":", label="SFT reference")
    ax.set(yscale="log", xlabel="judge queries", ylabel="exact KL(π*_β ‖ π_θ)")
    ax.set_title(f"lowrank world: β = {nash['beta']:g}, batch {batch}, lr {lr:g} ({lr_schedule}), seed {seed}",
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def bench_curves(*, steps: int = 300, batch: int = 64, lr: float = 1e-3, lr_schedule: str = "linear", seed: int = 0,
                 png: Path = ROOT / "docs" / "img" / "trainers_lowrank.png", work: Path | None = None) -> list[dict]:
    from trainers.lm import nash_mp

    curves, rows = {}, []
    with _lowrank_world(work, seed) as (root, world, nash):
        for algo in CURVE_ALGOS:
            m, seconds = _train_lowrank(algo, root, world, nash, steps=steps, batch_size=batch, lr=lr,
                                        lr_schedule=lr_schedule, seed=seed, eval_every=50,
                                        options=nash_mp.Options(eta=CURVE_ETA) if algo == "nash-mp" else None)
            curves[algo] = m
            tail = [r["kl_to_nash"] for r in m[-max(1, steps // 10):]]
            rows.append({"algorithm": algo, "steps": steps, "judge_queries": m[-1]["judge_queries"],
                         "kl_to_nash_start": round(m[0]["kl_to_nash"], 4), "kl_to_nash_end": round(m[-1]["kl_to_nash"], 4),
                         "kl_to_nash_last10pct_mean": round(sum(tail) / len(tail), 4),
                         "kl_to_nash_min": round(min(r["kl_to_nash"] for r in m), 4), "seconds": round(seconds, 1)})
        _plot_kl_curves(curves, nash, png, batch=batch, lr=lr, lr_schedule=lr_schedule, seed=seed)
    return rows


COMPARE_ALGOS = ("nash-mp", "nash-md", "mpo", "egpo")


def bench_compare(*, steps: int = 200, batch: int = 32, lr: float = 1e-3, lr_schedule: str = "linear", seed: int = 0,
                  work: Path | None = None, png: Path | None = None, algorithms: tuple[str, ...] = COMPARE_ALGOS,
                  egpo_steps: int | None = None) -> list[dict]:
    """MPO and EGPO against Nash-MP and Nash-MD in the lowrank world at the same judge-query budget.

    Each algorithm trains the world's SFT checkpoint with the same batch, learning rate and
    schedule, every one with its default options (Nash-MP η = 2β, κ = 0.1; Nash-MD m = 0.125;
    MPO magnet refreshed every 20 steps). EGPO judges two pairs per prompt per step (one per
    phase), so it gets half the steps: every run ends at steps × batch judge queries. The exact
    KL(π*_β‖π_θ) and TV of the policy's class distribution are logged every step.
    `egpo_steps`: give EGPO another number of steps (e.g. `steps`: equal steps, twice the queries)."""
    curves, rows = {}, []
    with _lowrank_world(work, seed) as (root, world, nash):
        for algo in algorithms:
            n = (egpo_steps or steps // 2) if algo == "egpo" else steps        # default: same judge queries
            m, seconds = _train_lowrank(algo, root, world, nash, steps=n, batch_size=batch, lr=lr,
                                        lr_schedule=lr_schedule, seed=seed, eval_every=0)
            curves[algo] = m
            tail = [r["kl_to_nash"] for r in m[-max(1, n // 10):]]
            rows.append({"algorithm": algo, "steps": n, "batch": batch, "judge_queries": m[-1]["judge_queries"],
                         "kl_start": round(m[0]["kl_to_nash"], 4), "kl_end": round(m[-1]["kl_to_nash"], 4),
                         "kl_last10pct_mean": round(sum(tail) / len(tail), 4),
                         "kl_min": round(min(r["kl_to_nash"] for r in m), 4), "tv_end": round(m[-1]["tv_to_nash"], 4),
                         "seconds": round(seconds, 1)})
        ref = next((r for r in rows if r["algorithm"] == "nash-mp"), None)
        for r in rows if ref else ():
            r["kl_end_vs_nash_mp"] = f"{r['kl_end'] / ref['kl_end']:.2f}×"
            r["seconds_vs_nash_mp"] = f"{r['seconds'] / ref['seconds']:.2f}×"
        if png is not None:
            _plot_kl_curves(curves, nash, png, batch=batch, lr=lr, lr_schedule=lr_schedule, seed=seed)
    return rows


def raters_plot(runs: list[Path], png: Path) -> list[dict]:
    """TV and KL(π*_β‖π_θ) of finished `arena train` runs in the raters world (their metrics.jsonl),
    plotted against judge queries; one row per run with the final figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_tv, ax_kl) = plt.subplots(1, 2, figsize=(11, 4 + 0.15 * len(runs)))
    rows = []
    for run in runs:
        m = [r for r in (json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()) if "tv_to_nash" in r]
        card = json.loads((Path(run) / "arena_card.json").read_text())["config"]
        extra = "".join([f", K {card['samples_per_prompt']}" if card.get("samples_per_prompt", 2) != 2 else "",
                         ", judge cache" if card.get("judge_cache") else "",
                         f", explore {card['explore']} at τ {card['explore_temperature']:g}" if card.get("explore") else "",
                         f" from {card['explore_first']}" if card.get("explore_first", "policy") != "policy" else "",
                         f", pool {card['explore_first_pool']}" if card.get("explore_first") == "reference-top" else "",
                         f", 2nd τ {card['explore_second_temperature']:g}"
                         if card.get("explore") and card.get("explore_second_temperature") is not None else "",
                         f", floor {card['explore_floor']:g}" if card.get("explore_floor") is not None else ""])
        label = (f"{Path(run).name} (β {card['beta']:g}, batch {card['batch_size']}, lr {card['lr']:g} "
                 f"{card['lr_schedule']}{extra})")
        q = [r["judge_queries"] for r in m]
        ax_tv.plot(q, [r["tv_to_nash"] for r in m], marker="o", label=label)
        ax_kl.plot(q, [r["kl_to_nash"] for r in m], marker="o", label=label)
        last = m[-1]
        rows.append({"run": Path(run).name, "beta": card["beta"], "eta": card.get("eta"), "seed": card["seed"],
                     "steps": last["step"], "judge_queries": last["judge_queries"],
                     "judge_reused": last.get("judge_reused", 0),
                     "tv_to_nash": round(last["tv_to_nash"], 3), "kl_to_nash": round(last["kl_to_nash"], 3),
                     "classes (terse, sentence, list, wrong, malformed)": ", ".join(
                         f"{v:.3f}" for v in [*last["class_probs"][:3], sum(last["class_probs"][3:6]), last["class_probs"][6]])})
    ax_tv.axhline(0.03, color="grey", ls="--", lw=1)
    for ax in (ax_tv, ax_kl):          # 3× the demo's judge budget
        ax.axvline(14_400, color="grey", ls=":", lw=1)
    ax_tv.set(xlabel="judge queries", ylabel="TV(π*_β, π_θ) over classes", title="raters world", xscale="log")
    ax_kl.set(xlabel="judge queries", ylabel="KL(π*_β ‖ π_θ)", xscale="log", yscale="log")
    fig.tight_layout()
    handles, labels = ax_tv.get_legend_handles_labels()       # below the plots: the labels are long
    fig.subplots_adjust(bottom=0.12 + 0.035 * len(labels))
    fig.legend(handles, labels, loc="lower center", fontsize=6, frameon=False)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    return rows


def raters_prompts(runs: list[Path], floor: float = 0.01, kept: float = 0.05) -> list[dict]:
    """Per-prompt class distributions of finished raters-world runs against π*_β and π_ref (see
    the module docstring): one row per run, then one for π*_β and π_ref of each β seen.
    "collapsed": the share of prompts where a style π*_β keeps (≥ `kept`) is below `floor`."""
    import numpy as np

    from arena.lm import banned_ids
    from arena.loading import load_causal_lm
    from arena.worlds import raters
    from trainers.lab.games import Game
    from trainers.lab.nash import regularized_nash
    from trainers.lm.common import ENUMERATION_MIN_PROB
    from trainers.lm.exact import enumerate_classes

    def shares(pi: np.ndarray) -> dict:
        return {f"{s} < {floor:.0%}": f"{np.mean(pi[:, i] < floor):.0%}" for i, s in enumerate(raters.STYLES)}

    rows, solved = [], {}
    col = f"collapsed (π*_β ≥ {kept:.0%}, π < {floor:.0%})"
    for run in runs:
        card = json.loads((Path(run) / "arena_card.json").read_text())["config"]
        nash = json.loads((Path(card.get("nash") or Path(card["prompts"]).parent / "nash.json")).read_text())
        key = (card["prompts"], card["beta"])
        if key not in solved:
            game = Game(P=np.asarray(nash["P"]), pi_ref=np.asarray(nash["pi_ref"]), weights=np.asarray(nash["weights"]))
            solved[key] = (regularized_nash(game, card["beta"]).pi, game.pi_ref)
        pi_star, pi_ref = solved[key]
        model, tok = load_causal_lm(Path(run))
        model.eval()
        banned = banned_ids(tok)
        pi = enumerate_classes(model, tok, nash["contexts"], raters.class_of, len(raters.CLASSES),
                               max_new_tokens=card["max_new_tokens"], min_prob=ENUMERATION_MIN_PROB,
                               banned=banned).normalized().numpy()
        tv = 0.5 * np.abs(pi - pi_star).sum(1)
        styles = slice(0, len(raters.STYLES))
        collapsed = ((pi_star[:, styles] >= kept) & (pi[:, styles] < floor)).any(1)
        rows.append({"run": Path(run).name, "beta": card["beta"], "seed": card["seed"],
                     "TV mean": f"{tv.mean():.3f}", "TV median": f"{np.median(tv):.3f}",
                     "TV 90th pct": f"{np.quantile(tv, 0.9):.3f}", **shares(pi),
                     col: f"{collapsed.mean():.0%}",
                     "collapsed prompts": " ".join(map(str, np.flatnonzero(collapsed).tolist()))})
    for (_, beta), (pi_star, pi_ref) in solved.items():
        blank = {"TV mean": "", "TV median": "", "TV 90th pct": ""}
        none = {col: "", "collapsed prompts": ""}
        rows.append({"run": "π*_β", "beta": beta, "seed": "", **blank, **shares(pi_star), **none})
        rows.append({"run": "π_ref", "beta": "", "seed": "", **blank, **shares(pi_ref), **none})
    return rows


def raters_opening(runs: list[Path], prompt_id: str, token: str) -> list[dict]:
    """π(token | prompt) as the first token of the answer, for each run and each of its
    `checkpoint-N/` directories in step order: how an opening rises or sinks along a run (the
    opening " 11" of "Repeat the number 11." in docs/trainers.md)."""
    import torch

    from arena.lm import encode_prompt
    from arena.loading import load_causal_lm
    from arena.prompts import load_prompts
    from trainers.lm.common import TrainConfig

    rows = []
    for run in runs:
        config = TrainConfig.from_json(json.loads((Path(run) / "arena_card.json").read_text())["config"])
        prompt = next((p.text for p in load_prompts(config.prompts) if p.id == prompt_id), None)
        if prompt is None:
            raise SystemExit(f"no prompt with id {prompt_id!r} in {config.prompts}")
        steps = sorted(Path(run).glob("checkpoint-*"), key=lambda d: int(d.name.split("-")[1]))
        for ckpt in [*steps, Path(run)]:
            model, tok = load_causal_lm(ckpt)
            model.eval()
            ids = tok(token, add_special_tokens=False).input_ids
            if len(ids) != 1:
                raise SystemExit(f"{token!r} is {len(ids)} tokens for this tokenizer; give one token")
            with torch.no_grad():       # the prompt encoded as the run encoded it (its chat/template settings)
                logits = model(input_ids=torch.tensor([encode_prompt(tok, prompt, config.prompt_format())])).logits[0, -1]
            logp = torch.log_softmax(logits.float(), -1)
            rank = int((logp > logp[ids[0]]).sum()) + 1
            rows.append({"run": Path(run).name, "checkpoint": ckpt.name if ckpt != Path(run) else "final",
                         f"π({token!r})": f"{float(logp[ids[0]].exp()):.2e}", "rank": rank})
    return rows


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", default=["mixture", "memory"], choices=["mixture", "memory", "curves", "trl", "raters-plot", "raters-prompts", "raters-opening", "compare"])
    ap.add_argument("--runs", type=Path, nargs="*", default=[],
                    help="raters-plot, raters-prompts, raters-opening: finished arena train output dirs")
    ap.add_argument("--prompt-id", default="11", help="raters-opening: the prompt's id in the run's prompts file")
    ap.add_argument("--token", default=" 11", help="raters-opening: the opening token's text")
    ap.add_argument("--steps", type=int, default=None, help="curves, compare: training steps per algorithm (300, 200)")
    ap.add_argument("--batch", type=int, default=None, help="curves, compare: prompts per step (64, 32)")
    ap.add_argument("--lr", type=float, default=1e-3, help="curves: learning rate")
    ap.add_argument("--seed", type=int, default=0, help="curves: world and training seed")
    ap.add_argument("--work", type=Path, default=None, help="curves, compare: keep the world and runs here")
    ap.add_argument("--algorithms", default=",".join(COMPARE_ALGOS), help="compare: comma list of algorithms")
    ap.add_argument("--egpo-steps", type=int, default=None, help="compare: EGPO's steps (default: half, equal queries)")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "trainers_lowrank.png")
    args = ap.parse_args(argv)
    for which in args.which:
        if which == "raters-plot":
            rows = raters_plot(args.runs, args.png)
        elif which == "raters-prompts":
            rows = raters_prompts(args.runs)
        elif which == "raters-opening":
            rows = raters_opening(args.runs, args.prompt_id, args.token)
        elif which == "trl":
            rows = bench_trl(new_tokens=16) + bench_trl(new_tokens=64)
        elif which == "curves":
            rows = bench_curves(steps=args.steps or 300, batch=args.batch or 64, lr=args.lr, seed=args.seed,
                                png=args.png, work=args.work)
        elif which == "compare":
            full = args.algorithms == ",".join(COMPARE_ALGOS) and args.egpo_steps is None
            rows = bench_compare(steps=args.steps or 200, batch=args.batch or 32, lr=args.lr, seed=args.seed,
                                 work=args.work, algorithms=tuple(args.algorithms.split(",")), egpo_steps=args.egpo_steps,
                                 png=ROOT / "docs" / "img" / "trainers_compare.png" if full else None)
        else:
            rows = bench_mixture() if which == "mixture" else bench_memory()
        print(f"## {which}\n\n{_table(rows)}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
