"""--grad-accum: N micro-batches of B prompts make the optimiser step of one batch of N·B."""

import json

import pytest
import torch

from arena.errors import ConfigError
from arena.worlds.lowrank import JUDGE_SPEC
from trainers.lm import TrainConfig, train
from trainers.lm import common as C
from trainers.lm import nash_mp, rlhf


@pytest.fixture(scope="module")
def world(tiny_lowrank_world):
    return tiny_lowrank_world(40)


def cfg(world, out, **kw):
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                out=str(out), steps=2, max_new_tokens=4, eval_every=0, save_every=0, lr=0.05)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("algorithm,extra", [("nash-mp", {}), ("nash-mp", {"options": nash_mp.Options(samples_per_prompt=3)}),
                                             ("nash-md", {}), ("online-dpo", {}), ("rlhf", {"options": rlhf.Options(rloo_k=3)})])
def test_grad_accum_2_at_batch_b_equals_batch_2b(world, tmp_path, monkeypatch, algorithm, extra):
    """The accumulated gradient of the first step (same weights) equals the one-batch gradient.
    (Later steps are compared through the logged metrics only: Adam divides by √v, which
    turns float rounding in near-zero gradients into visible weight differences.)"""
    grads: list[dict[str, torch.Tensor]] = []
    step = C.clip_and_step

    def recording(policy, opt, config, k):
        grads.append({n: p.grad.clone() for n, p in policy.trainable().items() if p.grad is not None})
        return step(policy, opt, config, k)

    monkeypatch.setattr(C, "clip_and_step", recording)
    whole = train(algorithm, cfg(world, tmp_path / "whole", batch_size=4, **extra))
    accum = train(algorithm, cfg(world, tmp_path / "accum", batch_size=2, grad_accum=2, **extra))
    g0, g1 = grads[0], grads[2]                                           # first step of each run
    assert g0.keys() == g1.keys() and max(float(g.abs().max()) for g in g0.values()) > 1e-3
    assert all(torch.allclose(g0[k], g1[k], rtol=1e-4, atol=1e-7) for k in g0)
    rows = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (whole, accum)]
    assert [r["judge_queries"] for r in rows[0]] == [r["judge_queries"] for r in rows[1]] == [rows[0][0]["judge_queries"], 2 * rows[0][0]["judge_queries"]]
    for r0, r1 in zip(*rows):   # the logged loss is the mean over the micro-batches
        assert r1["loss"] == pytest.approx(r0["loss"], rel=1e-3, abs=1e-5)
        assert r1["grad_norm"] == pytest.approx(r0["grad_norm"], rel=1e-3)


def test_half_the_batch_gives_another_gradient(world, tmp_path, monkeypatch):
    """The check above can fail: one micro-batch of 2 (no accumulation) is not the batch of 4."""
    grads = []
    monkeypatch.setattr(C, "clip_and_step", lambda policy, opt, config, k: grads.append(
        {n: p.grad.clone() for n, p in policy.trainable().items()}) or 0.0)
    train("nash-mp", cfg(world, tmp_path / "whole", batch_size=4, steps=1))
    train("nash-mp", cfg(world, tmp_path / "half", batch_size=2, steps=1))
    assert not all(torch.allclose(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-7) for k in grads[0])


def test_grad_accum_below_one_is_refused(world, tmp_path):
    with pytest.raises(ConfigError, match="--grad-accum must be >= 1"):
        cfg(world, tmp_path / "x", grad_accum=0)
