"""FSDP launch recipe on this CPU machine: what Accelerate does with it, checked.

`accelerate launch --use_fsdp` is the documented FSDP recipe for GPUs (docs/scaling.md).
Accelerate (1.x) switches to FSDP only for GPU-type process groups; two CPU processes over
gloo stay plain data parallel (MULTI_CPU) with the FSDP flags accepted and ignored, so the
run must give the one-process result, like the DDP test in test_accelerate.py. torch's own
FSDP2 (`fully_shard`) does shard over gloo on CPU (checked by the second test), so the
limit is Accelerate's, not torch's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world
from trainers.lm import TrainConfig, train

pytestmark = pytest.mark.slow  # two launcher processes + a world build: about a minute on 2 shared cores


def test_accelerate_fsdp_flags_on_cpu_give_the_one_process_result(tmp_path):
    world = build_lowrank_world(tmp_path / "w", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=20))
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                steps=2, batch_size=4, max_new_tokens=3, eval_every=0, save_every=0, lr=1e-2)
    one = train("nash-mp", TrainConfig(out=str(tmp_path / "one"), **base))
    script = tmp_path / "fsdp_train.py"
    script.write_text(_TRAIN)
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher), "launch", "--use_fsdp", "--fsdp_version", "2", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29527",
           str(script), json.dumps({**base, "out": str(tmp_path / "two")})]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # two processes, and Accelerate kept them data parallel despite --use_fsdp
    assert [(tmp_path / f"type-{r}.txt").read_text() for r in (0, 1)] == ["2 MULTI_CPU"] * 2
    from safetensors.torch import load_file

    a, b = load_file(one / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    sft = load_file(world / "ckpts" / "sft" / "model.safetensors")
    moved = sum(float(((a[k] - sft[k]) ** 2).sum()) for k in a) ** 0.5
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5
    assert moved > 0 and diff < 1e-3 * moved  # the global gradient, as with DDP


_TRAIN = """
import json, os, sys
from pathlib import Path
from accelerate import Accelerator
from trainers.lm import TrainConfig, train
acc = Accelerator(cpu=True)
config = json.loads(sys.argv[1])
Path(config["out"]).parent.joinpath(f"type-{acc.process_index}.txt").write_text(
    f"{acc.num_processes} {acc.distributed_type.value}")
train("nash-mp", TrainConfig(**config), accelerator=acc)
"""

_FSDP2 = """
import gc, sys
import torch, torch.distributed as dist
from torch.distributed.fsdp import fully_shard
dist.init_process_group("gloo")
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
for layer in m:
    fully_shard(layer)
fully_shard(m)
m(torch.randn(4, 8) + dist.get_rank()).pow(2).mean().backward()
shapes = f"{tuple(m[0].weight.to_local().shape)} {tuple(m[0].weight.shape)}"
open(f"{sys.argv[1]}/shape-{dist.get_rank()}.txt", "w").write(shapes)   # not stdout: the ranks' prints interleave
# the sharded model goes before the group does: torn down the other way round, a rank sometimes
# aborted at exit ("terminate called without an active exception", 3–4 runs in 8)
dist.barrier()
del m
gc.collect()
dist.destroy_process_group()
"""


def test_torch_fsdp2_shards_over_gloo_on_cpu(tmp_path):
    script = tmp_path / "fsdp2.py"
    script.write_text(_FSDP2)
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port", "29528", str(script),
           str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each process holds half of the (16, 8) weight: sharded, not replicated
    assert [(tmp_path / f"shape-{r}.txt").read_text() for r in (0, 1)] == ["(8, 8) (16, 8)"] * 2
