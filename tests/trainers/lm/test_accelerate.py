"""Two CPU processes (Accelerate MULTI_CPU, gloo) give the one-process result.

The main check goes through `accelerate launch --multi_gpu --num_processes 2`, which on a
machine without GPUs starts two CPU processes that Accelerate joins with gloo (MULTI_CPU;
`accelerate launch --cpu` would start only one); `trainers.lm.train` builds the Accelerator
from the launcher's environment (WORLD_SIZE > 1). The failure test uses torchrun, the
launcher Accelerate wraps, to show the trainer does not depend on the launcher.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from arena.worlds.lowrank import JUDGE_SPEC
from trainers.lm import TrainConfig, train


def test_two_processes_match_one(tmp_path, tiny_lowrank_world):  # in the default run: ~15 s on 2 cores
    world = tiny_lowrank_world(20)
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                steps=2, batch_size=4, max_new_tokens=3, eval_every=0, save_every=0, lr=1e-2)
    one = train("nash-mp", TrainConfig(out=str(tmp_path / "one"), **base))
    launcher = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
           str(Path(__file__).with_name("ddp_train.py")), json.dumps({**base, "out": str(tmp_path / "two")}), "nash-mp"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(tmp_path / f"world-{r}.txt").read_text() for r in (0, 1)] == ["2", "2"]
    from safetensors.torch import load_file
    a, b = load_file(one / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    sft = load_file(world / "ckpts" / "sft" / "model.safetensors")
    assert any(not torch.allclose(a[k], sft[k]) for k in a)          # training moved the weights
    # Adam's first steps are ~lr·sign(g): float-level differences in the all-reduced gradient
    # move a weight by ~1e-5 where the update itself is ~lr = 1e-2, a little more (2.7e-4 seen)
    # where a gradient component is near 0 and Adam's normalisation amplifies the noise
    assert all(torch.allclose(a[k], b[k], atol=1e-3) for k in a)
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5
    moved = sum(float(((a[k] - sft[k]) ** 2).sum()) for k in a) ** 0.5
    assert diff < 1e-3 * moved
    rows_one = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    rows_two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert rows_two[0]["grad_norm"] == pytest.approx(rows_one[0]["grad_norm"], rel=1e-5)   # the global gradient
    assert [r["judge_queries"] for r in rows_two] == [r["judge_queries"] for r in rows_one] == [4, 8]


HOT_SECOND = dict(explore_second_temperature=2.0, explore_opponents=1)


@pytest.mark.slow  # two launcher processes: about a minute on 2 shared cores
@pytest.mark.parametrize("first, extra, port", [("policy", {}, 29519), ("reference-top", {}, 29520),
                                               ("reference-top", HOT_SECOND, 29521)])
def test_explorers_and_the_judge_cache_under_two_processes(tmp_path, tiny_lowrank_world, first, extra, port):
    """Nash-MP with --explore 2 and --judge-cache on two processes ends with the one-process
    weights, the explorers' openings drawn by the policy or from π_ref's top (each process draws
    its own rows' openings, from the whole batch's uniforms), also with a hotter second token
    and one opponent per explorer; the processes exchange what they bought, so rank 0's file
    holds every comparison either asked, those of the one-process run."""
    from trainers.lm import nash_mp

    world = tiny_lowrank_world(20)
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                steps=2, batch_size=4, max_new_tokens=3, eval_every=0, save_every=0, lr=1e-2, judge_cache=True)
    options = nash_mp.Options(explore=2, explore_first=first, **extra)
    one = train("nash-mp", TrainConfig(out=str(tmp_path / "one"), options=options, **base))
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
           str(Path(__file__).with_name("ddp_train.py")),
           json.dumps({**base, "out": str(tmp_path / "two"), "explore": 2, "explore_first": first, **extra}), "nash-mp"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file
    a, b = load_file(one / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-3) for k in a)
    rows_one = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    rows_two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert all("explore_loss" in r for r in rows_two)            # logged from rank 0's rows, as the other parts
    total = 2 * 4 * (1 + 2 * extra.get("explore_opponents", 2))     # steps × prompts × (pair + M·J), J = K = 2
    assert [r["judge_queries"] + r["judge_reused"] for r in rows_two][-1] == total
    assert rows_one[-1]["judge_queries"] + rows_one[-1]["judge_reused"] == total
    assert rows_two[-1]["judge_queries"] >= rows_one[-1]["judge_queries"]    # equal unless both ask one at once
    import sqlite3

    from trainers.lm.judgments import FILE

    def bought(out):
        return set(sqlite3.connect(out / FILE).execute("SELECT prompt, response_a, response_b FROM judgments"))

    assert bought(tmp_path / "two") == bought(one) and len(bought(one)) == rows_one[-1]["judge_queries"]


@pytest.mark.slow  # three two-process launches: about a minute on 2 shared cores
def test_two_processes_resume_with_every_answer_they_bought(tmp_path, tiny_lowrank_world):
    """--judge-cache on two processes, cut after step 3 (state saved at step 2) and resumed:
    rank 0's file held both processes' answers, and rank 1 loads it on resume, so step 3 is
    redone without a query and the run ends with the uninterrupted weights, having asked
    exactly step 3's queries fewer."""
    world = tiny_lowrank_world(20)
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                steps=4, batch_size=4, max_new_tokens=3, eval_every=0, save_every=2, lr=1e-2, judge_cache=True,
                samples_per_prompt=3)
    launcher = Path(sys.executable).parent / "accelerate"

    def launch(out, *how):
        cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29521",
               str(Path(__file__).with_name("ddp_train.py")), json.dumps({**base, "out": str(out)}), "nash-mp", *how]
        return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              timeout=300)

    full = launch(tmp_path / "full")
    assert full.returncode == 0, full.stderr[-3000:]
    assert launch(tmp_path / "cut", "stop-at=3").returncode != 0
    assert not (tmp_path / "cut").exists()                             # nothing half-written in OUT
    resumed = launch(tmp_path / "cut", "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    from safetensors.torch import load_file
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    f = [json.loads(x)["judge_queries"] for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    r = [json.loads(x)["judge_queries"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert f[2] > f[1] and r[-1] == f[-1] - (f[2] - f[1])


@pytest.mark.slow  # two launcher processes + a world build: about a minute on 2 shared cores
@pytest.mark.parametrize("algorithm", ["nash-mp", "nash-md"])
def test_a_process_whose_judgments_all_fail_still_steps_with_the_others(tmp_path, tiny_lowrank_world, algorithm):
    """Rank 1's judgments all fail, rank 0's do not: both processes must take the same step (a
    process that skipped the backward alone would hang the gradient all-reduce), and the
    failures of every process are counted."""
    world = tiny_lowrank_world(20)
    config = dict(policy=str(world / "ckpts" / "sft"), judge="python:ddp_train:rank1_fails",
                  prompts=str(world / "prompts.jsonl"), out=str(tmp_path / "two"), steps=2, batch_size=4,
                  max_new_tokens=3, eval_every=0, save_every=0, lr=1e-2)
    launcher = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(launcher), "--nproc_per_node", "2", "--master_port", "29518", str(Path(__file__).with_name("ddp_train.py")),
           json.dumps(config), algorithm]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["judge_queries"], r["judge_failures"]) for r in rows] == [(4, 2), (8, 4)]
    assert all("loss" in r for r in rows)
    from safetensors.torch import load_file
    a, sft = load_file(tmp_path / "two" / "model.safetensors"), load_file(world / "ckpts" / "sft" / "model.safetensors")
    assert any(not torch.allclose(a[k], sft[k]) for k in a)
