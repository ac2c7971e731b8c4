"""`arena train ... --use-vllm`: vLLM draws the policy's samples, synced after every update.

The check that matters: after a sync, the tokens vLLM drew have, under the training model,
the log-probabilities vLLM reported for them (logprobs_mode=processed_logprobs), for full
fine-tuning and for LoRA (merged W + BA); before the sync they do not (the test can fail).
"""

import json
import os
import subprocess
import sys

import pytest
from vllm_helpers import LLM_OPTIONS, arena_cli

from arena.worlds.lowrank import JUDGE_SPEC, LowrankWorld, build_lowrank_world
from trainers.lm import TrainConfig

LOGPROB_TOL = 1e-4   # fp32 on both sides; a stale weight moves them by > 1e-2
OPTIONS = tuple((k, v) for k, v in LLM_OPTIONS.items() if k != "distributed_executor_backend")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_lowrank_world(tmp_path_factory.mktemp("w") / "lowrank", LowrankWorld(n_contexts=4, n_actions=4, sft_steps=40))


def _config(world, out, **kw):
    return TrainConfig(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                       out=str(out), steps=2, batch_size=4, max_new_tokens=6, eval_every=0, save_every=0,
                       use_vllm=True, vllm_options=OPTIONS, **kw)


_CHECK = """
import json, sys, torch
from dataclasses import replace
from trainers.lm import TrainConfig
from trainers.lm import common as C

config = TrainConfig(**json.loads(sys.argv[1]))


def gap(policy, draw):
    # max |log pi_train(y_t) - log pi_vLLM(y_t)| over the drawn tokens
    gen = draw.generation
    with torch.no_grad():
        lp = C.token_logprobs(policy.model, ids, mask, gen, policy.banned)        # (B, T, V)
    mine = lp.gather(-1, gen.tokens.unsqueeze(-1)).squeeze(-1)                    # (B, T)
    return float((mine - draw.logprobs)[gen.mask.bool()].abs().max())


@torch.no_grad()
def update(policy, seed):
    # a stand-in optimiser step: asymmetric noise on every trainable tensor
    g = torch.Generator().manual_seed(seed)
    for p in policy.trainable().values():
        p.add_(0.2 * torch.randn(p.shape, generator=g))


out = {}
lora = C.load_policy(replace(config, lora=True, lora_r=4))
sampler = C.make_sampler(config, lora)
prompts = C.read_prompts(config.prompts) * 4                                      # 16 rows, 4 per context
ids, mask = C.encode(lora.tokenizer, prompts, "cpu", lora.prompt_format)
u = torch.rand((len(prompts), config.max_new_tokens), generator=torch.Generator().manual_seed(0))
# LoRA first (the engine holds the base weights): lora_B starts at 0, so move the adapters.
update(lora, 1)
out["lora_stale"] = gap(lora, sampler.draw(ids, mask, u))
sampler.sync(lora)
out["lora_synced"] = gap(lora, sampler.draw(ids, mask, u))
# Full fine-tuning: every weight is written.
full = C.load_policy(config)
update(full, 2)
sampler.sync(full)
out["full_synced"] = gap(full, sampler.draw(ids, mask, u))
update(full, 3)
out["full_stale"] = gap(full, sampler.draw(ids, mask, u))
sampler.sync(full)
again = sampler.draw(ids, mask, u)
out["full_resynced"] = gap(full, again)
gen = again.generation
out["tokens"], out["mask"] = gen.tokens.tolist(), gen.mask.tolist()
out["same_draw"] = torch.equal(sampler.draw(ids, mask, u).generation.tokens, gen.tokens)
out["texts"] = C.decode(full.tokenizer, gen)
out["eos"], out["pad"] = full.tokenizer.eos_token_id, full.tokenizer.pad_token_id
print(json.dumps(out))
"""


def test_vllm_samples_have_the_training_models_logprobs_after_each_sync(world, tmp_path):
    # In a fresh process: vLLM on CPU counts an earlier LLM of the same process (test_server's
    # offline judge) against this one's memory share (see conftest.py).
    config = _config(world, tmp_path / "unused")
    payload = {k: v for k, v in config.to_json().items() if k in ("policy", "judge", "prompts", "out",
                                                                   "max_new_tokens", "use_vllm", "vllm_options")}
    run = subprocess.run([sys.executable, "-c", _CHECK, json.dumps(payload)], capture_output=True, text=True,
                         timeout=1200, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["lora_stale"] > 1e-2                 # before the sync: the base model's samples
    assert out["lora_synced"] < LOGPROB_TOL
    assert out["full_synced"] < LOGPROB_TOL
    assert out["full_stale"] > 1e-2
    assert out["full_resynced"] < LOGPROB_TOL
    # The hf sampler's conventions: a row ends with end-of-sequence (kept) or at the length
    # limit, padding after it, the pad token never drawn; the seeds come from the uniforms.
    for row, m in zip(out["tokens"], out["mask"]):
        n = sum(m)
        assert m == [1] * n + [0] * (len(m) - n) and out["pad"] not in row[:n]
        assert row[n - 1] == out["eos"] or n == config.max_new_tokens
    assert out["same_draw"]                          # same uniforms, same draw
    texts = out["texts"]
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
