"""DeepSpeed ZeRO on this CPU machine (`pip install deepspeed`, 0.19.8 here): what works, checked.

- DeepSpeed's own ZeRO-2 and ZeRO-3 train over gloo with two CPU processes (torchrun):
  ZeRO-3 holds half of each parameter per process (the second test).
- Accelerate (1.x) enters its DeepSpeed path only with an accelerator backend (CUDA, XPU,
  NPU, ...): under `accelerate launch --use_deepspeed` on a CPU-only machine each process
  reports one process (`num_processes=1`, `DistributedType.DEEPSPEED`) and the first
  collective of `accelerator.prepare` waits forever (the first test pins the state, without
  the hang). With `Accelerator(cpu=True)`, as the trainers build it for --device cpu, the
  launch is plain data parallel over gloo (MULTI_CPU), as with --use_fsdp (test_fsdp.py).
- The trainers refuse an Accelerate DeepSpeed run (the third test): Accelerate's DeepSpeed
  wrapper steps the optimiser inside `backward`, which breaks --grad-accum and the trainers'
  own clipping and step (`trainers.lm.run.Run.step`).
"""

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                     reason="needs deepspeed (pip install 'nash-arena[deepspeed]')")

_STATE = """
import os
from pathlib import Path
from accelerate import Accelerator
acc = Accelerator()
Path(f"state-{os.environ['RANK']}.txt").write_text(f"{acc.num_processes} {acc.distributed_type.value}")
"""

_ZERO = """
import sys, torch, deepspeed, torch.distributed as dist
stage = int(sys.argv[1])
deepspeed.init_distributed(dist_backend="gloo")
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
cfg = {"train_micro_batch_size_per_gpu": 4, "optimizer": {"type": "Adam", "params": {"lr": 1e-2, "torch_adam": True}},
       "zero_optimization": {"stage": stage}, "gradient_clipping": 1.0}
engine, _, _, _ = deepspeed.initialize(model=m, model_parameters=m.parameters(), config=cfg)
r = dist.get_rank()
for _ in range(3):
    loss = engine(torch.randn(4, 8) + r).pow(2).mean()   # asymmetric data per rank
    engine.backward(loss)
    engine.step()
w = m[0].weight
with deepspeed.zero.GatheredParameters([w], enabled=stage == 3):
    total = float(w.detach().double().sum())
local = tuple(getattr(w, "ds_tensor", w).shape)
print(f"stage={stage} rank={r} world={dist.get_world_size()} local={local} sum={total:.6f}", flush=True)
"""


def _run(cmd, tmp_path):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
@needs_deepspeed
def test_accelerate_deepspeed_on_cpu_sees_one_process_per_launch(tmp_path):
    script = tmp_path / "state.py"
    script.write_text(_STATE)
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--use_deepspeed", "--zero_stage", "2",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", "29541", str(script)]
    proc = _run(cmd, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # two processes launched (RANK 0 and 1), each of which believes it is alone
    assert [(tmp_path / f"state-{r}.txt").read_text() for r in (0, 1)] == ["1 DEEPSPEED"] * 2


@pytest.mark.slow
@needs_deepspeed
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_trains_over_gloo_on_two_cpu_processes(tmp_path, stage):
    script = tmp_path / "zero.py"
    script.write_text(_ZERO)
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port", str(29542 + stage),
           str(script), str(stage)]
    proc = _run(cmd, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = sorted(line for line in proc.stdout.splitlines() if line.startswith("stage="))
    assert len(rows) == 2 and all("world=2" in r for r in rows)
    # one model: the same (moved) weights on both ranks although their data differ
    sums = {r.split("sum=")[1] for r in rows}
    assert len(sums) == 1
    # ZeRO-3: each rank holds half of the (16, 8) weight; ZeRO-2 keeps whole parameters
    assert all(f"local={(64,) if stage == 3 else (16, 8)}" in r for r in rows)


def test_trainers_refuse_an_accelerate_deepspeed_run(tmp_path):
    from accelerate.utils import DistributedType

    from arena.errors import ConfigError
    from trainers.lm import TrainConfig, train

    acc = types.SimpleNamespace(distributed_type=DistributedType.DEEPSPEED, process_index=0, num_processes=2)
    config = TrainConfig(policy=str(tmp_path / "p"), judge="python:x:y", prompts=str(tmp_path / "p.jsonl"),
                         out=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="--use_fsdp"):
        train("online-dpo", config, accelerator=acc)
    assert list(tmp_path.iterdir()) == []
