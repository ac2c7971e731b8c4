"""`arena train ... --use-vllm`: vLLM draws the policy's samples, synced after every update.

The check that matters: after a sync, the tokens vLLM drew have, under the training model,
the log-probabilities vLLM reported for them (logprobs_mode=processed_logprobs), for full
fine-tuning and for LoRA (merged W + BA); before the sync they do not (the test can fail).
"""

import json
from dataclasses import replace

import pytest
import torch
from vllm_helpers import LLM_OPTIONS, arena_cli

from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world
from trainers.lm import TrainConfig
from trainers.lm import common as C

LOGPROB_TOL = 1e-4   # fp32 on both sides; a stale weight moves them by > 1e-2
OPTIONS = tuple((k, v) for k, v in LLM_OPTIONS.items() if k != "distributed_executor_backend")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_lowrank_world(tmp_path_factory.mktemp("w") / "lowrank", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))


def _config(world, out, **kw):
    return TrainConfig(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                       out=str(out), steps=2, batch_size=4, max_new_tokens=6, eval_every=0, save_every=0,
                       use_vllm=True, vllm_options=OPTIONS, **kw)


def _gap(policy, ids, mask, draw) -> float:
    """max |log π_train(y_t) − log π_vLLM(y_t)| over the drawn tokens."""
    gen = draw.generation
    lp = C.token_logprobs(policy.model, ids, mask, gen, policy.banned)           # (B, T, V)
    mine = lp.gather(-1, gen.tokens.unsqueeze(-1)).squeeze(-1)                   # (B, T)
    return float((mine - draw.logprobs)[gen.mask.bool()].abs().max())


@torch.no_grad()
def _update(policy, seed):
    """A stand-in optimiser step: asymmetric noise on every trainable tensor."""
    g = torch.Generator().manual_seed(seed)
    for p in policy.trainable().values():
        p.add_(0.2 * torch.randn(p.shape, generator=g))


def test_vllm_samples_have_the_training_models_logprobs_after_each_sync(world, tmp_path):
    config = _config(world, tmp_path / "unused")
    lora = C.load_policy(replace(config, lora=True, lora_r=4))
    sampler = C.make_sampler(config, lora)
    prompts = C.read_prompts(config.prompts) * 4                                  # 16 rows, 4 per context
    ids, mask = C.encode(lora.tokenizer, prompts, "cpu", lora.prompt_format)
    u = torch.rand((len(prompts), config.max_new_tokens), generator=torch.Generator().manual_seed(0))

    # LoRA first (the engine holds the base weights): lora_B starts at 0, so move the adapters.
    _update(lora, seed=1)
    assert _gap(lora, ids, mask, sampler.draw(ids, mask, u)) > 1e-2           # stale: the base model's samples
    sampler.sync(lora)
    draw = sampler.draw(ids, mask, u)
    assert _gap(lora, ids, mask, draw) < LOGPROB_TOL

    # Full fine-tuning: every trainable tensor is written.
    full = C.load_policy(config)
    _update(full, seed=2)
    sampler.sync(full)
    draw = sampler.draw(ids, mask, u)
    assert _gap(full, ids, mask, draw) < LOGPROB_TOL
    _update(full, seed=3)
    assert _gap(full, ids, mask, sampler.draw(ids, mask, u)) > 1e-2
    sampler.sync(full)
    again = sampler.draw(ids, mask, u)
    assert _gap(full, ids, mask, again) < LOGPROB_TOL

    # The hf sampler's conventions: a row ends with end-of-sequence (kept) or at the length
    # limit, padding after it, the pad token never drawn; the seeds come from the uniforms.
    tok, gen = full.tokenizer, again.generation
    for row, m in zip(gen.tokens.tolist(), gen.mask.tolist()):
        n = sum(m)
        assert m == [1] * n + [0] * (len(m) - n) and tok.pad_token_id not in row[:n]
        assert row[n - 1] == tok.eos_token_id or n == config.max_new_tokens
    assert torch.equal(sampler.draw(ids, mask, u).generation.tokens, gen.tokens)   # same uniforms, same draw
    texts = C.decode(tok, gen)
    assert len(set(texts[:4])) > 1 or len(set(texts)) > 4   # copies of a prompt get their own seeds


def test_arena_train_use_vllm_runs_and_prints_one_json_object(world, tmp_path):
    out = tmp_path / "odpo"
    options = [a for k, v in OPTIONS for a in ("--vllm-option", f"{k}={v}")]
    run = arena_cli("train", "online-dpo", "--policy", world / "ckpts" / "sft", "--judge", JUDGE_SPEC,
                    "--prompts", world / "prompts.jsonl", "--out", out, "--steps", "2", "--batch-size", "4",
                    "--max-new-tokens", "4", "--eval-every", "0", "--save-every", "0", "--use-vllm", *options, "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("\n") == 1 and "INFO" in run.stderr                 # vLLM's logs on stderr
    result = json.loads(run.stdout)
    assert result["metrics"]["step"] == 2 and result["metrics"]["judge_queries"] == 8
    card = json.loads((out / "arena_card.json").read_text())
    assert card["config"]["use_vllm"] is True and ["enforce_eager", "true"] in card["config"]["vllm_options"]
