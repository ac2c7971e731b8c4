"""--gradient-checkpointing: the layers recompute their activations in the backward pass (they
run twice), and the gradients are those without it, for a dropout-free model and for one whose
config has dropout (the dropout modules stay in eval mode)."""

import json

import pytest
import torch

from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world
from trainers.lm import TrainConfig, train
from trainers.lm import common as C


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("w")
    world = build_lowrank_world(root / "lowrank", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))
    from arena.loading import load_causal_lm
    from trainers.tiny import save_checkpoint

    model, tok = load_causal_lm(world / "ckpts" / "sft")
    assert model.config.resid_pdrop > 0                                    # GPT-2's default dropout 0.1
    for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
        setattr(model.config, name, 0.0)
    save_checkpoint(model, tok, world / "ckpts" / "no-dropout")
    return world


def cfg(world, policy, out, **kw):
    return TrainConfig(policy=str(world / "ckpts" / policy), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                       out=str(out), steps=2, batch_size=4, max_new_tokens=4, eval_every=0, save_every=0, lr=0.05, **kw)


@pytest.mark.parametrize("policy", ["no-dropout", "sft"])
def test_same_gradient_with_and_without_checkpointing_and_the_layers_run_twice(world, tmp_path, policy):
    grads, runs = [], []
    for on in (False, True):
        config = cfg(world, policy, tmp_path / "x", gradient_checkpointing=on)
        pol = C.load_policy(config)
        ids, mask = C.encode(pol.tokenizer, ["lowrank 0 4x4 r2 s3 context 1", "lowrank 0 4x4 r2 s3 context 3"])
        gen = C.sample(pol.model, pol, ids, mask, torch.rand(2, 4, generator=torch.Generator().manual_seed(0)))
        calls = []
        attn = pol.model.transformer.h[0].attn            # inside the first checkpointed layer
        attn.register_forward_pre_hook(lambda *_: calls.append(1))
        with C.checkpointing(pol.model, config.gradient_checkpointing):
            lp = C.token_logprobs(pol.model, ids, mask, gen, pol.banned)
        C.sequence_logprob(lp, gen).sum().backward()
        assert not pol.model.training and not any(m.training for m in pol.model.modules())   # back to eval
        grads.append({n: p.grad.clone() for n, p in pol.model.named_parameters()})
        runs.append(len(calls))
    assert runs == [1, 2]                                # recomputed in the backward pass only when on
    assert grads[0].keys() == grads[1].keys()
    assert max(float(g.abs().max()) for g in grads[0].values()) > 1e-3
    assert all(torch.allclose(grads[0][n], grads[1][n], rtol=1e-5, atol=1e-8) for n in grads[0])


def test_a_trainer_step_is_the_same_with_checkpointing(world, tmp_path, monkeypatch):
    """The first optimiser step's gradient of a Nash-MP run (sampling with the KV cache, the
    reference and target views, the KL terms) is unchanged by --gradient-checkpointing."""
    grads = []
    step = C.clip_and_step

    def recording(policy, opt, config, k):
        grads.append({n: p.grad.clone() for n, p in policy.trainable().items() if p.grad is not None})
        return step(policy, opt, config, k)

    monkeypatch.setattr(C, "clip_and_step", recording)
    plain = train("nash-mp", cfg(world, "sft", tmp_path / "plain"))
    ckpt = train("nash-mp", cfg(world, "sft", tmp_path / "ckpt", gradient_checkpointing=True))
    g0, g1 = grads[0], grads[2]
    assert g0.keys() == g1.keys() and all(torch.allclose(g0[k], g1[k], rtol=1e-5, atol=1e-8) for k in g0)
    rows = [[json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (plain, ckpt)]
    assert rows[0][0]["loss"] == pytest.approx(rows[1][0]["loss"], rel=1e-6)
    card = json.loads((ckpt / "arena_card.json").read_text())
    assert card["config"]["gradient_checkpointing"] is True


def test_lora_step_is_the_same_with_checkpointing(world, tmp_path, monkeypatch):
    """With LoRA (frozen embeddings; non-reentrant checkpointing needs no input gradients) the
    adapters' first-step gradient is the same, and it is not zero."""
    grads = []
    step = C.clip_and_step
    monkeypatch.setattr(C, "clip_and_step", lambda policy, opt, config, k: grads.append(
        {n: p.grad.clone() for n, p in policy.trainable().items()}) or step(policy, opt, config, k))
    train("nash-md", cfg(world, "sft", tmp_path / "plain", lora=True, lora_r=4))
    train("nash-md", cfg(world, "sft", tmp_path / "ckpt", lora=True, lora_r=4, gradient_checkpointing=True))
    g0, g1 = grads[0], grads[2]                                           # first step of each run
    assert g0.keys() == g1.keys() and any("lora_" in k for k in g0)
    assert max(float(g.abs().max()) for g in g0.values()) > 1e-6
    assert all(torch.allclose(g0[k], g1[k], rtol=1e-5, atol=1e-8) for k in g0)
