"""The trainers' sampler seam (`common.Sampler`): what every run asks of it, and the parts of
the vLLM sampler that need no vLLM (weights it writes, seeds, refusals). The vLLM sampler
itself is tested against real vLLM in tests/vllm/test_trainer.py (`make test-vllm`)."""

import importlib.util
import json
from dataclasses import replace

import pytest
import torch

from arena.errors import ArenaError, ConfigError
from arena.worlds.lowrank import JUDGE_SPEC
from trainers.lm import TrainConfig, train
from trainers.lm import common as C
from trainers.lm.vllm_sampler import lora_merged_weights, policy_weights, row_seed


@pytest.fixture(scope="module")
def world(tiny_lowrank_world):
    return tiny_lowrank_world(20)


def cfg(world, out, **kw):
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                out=str(out), steps=3, batch_size=2, max_new_tokens=4, eval_every=2, eval_batch=2, save_every=0)
    return TrainConfig(**{**base, **kw})


class Recording(C.HFSampler):
    """The hf sampler, counting what the run asks of it."""

    def __init__(self):
        self.calls: list[str] = []

    def sample(self, policy, ids, mask, uniforms):
        self.calls.append(f"sample{len(ids)}")
        return super().sample(policy, ids, mask, uniforms)

    def sync(self, policy):
        self.calls.append("sync")


@pytest.mark.parametrize("algorithm", ["online-dpo", "nash-md"])
def test_the_policys_samples_go_through_the_sampler_which_is_synced_after_every_update(world, tmp_path, monkeypatch,
                                                                                    algorithm):
    rec = Recording()
    monkeypatch.setattr(C, "make_sampler", lambda config, policy, world=1: rec)
    train(algorithm, cfg(world, tmp_path / "out"))
    # One sync before the first sample, then one after each of the 3 updates. online-dpo:
    # both responses of 2 prompts in one call; nash-md: only y (its mixture opponent stays
    # on hf). The win-rate evaluations after steps 2 and 3 sample the policy too (2 prompts).
    policy = "sample4" if algorithm == "online-dpo" else "sample2"
    assert rec.calls == ["sync", policy, "sync", policy, "sync", "sample2", policy, "sync", "sample2"]


def test_lora_merged_weights_are_peft_merge_and_unload(world):
    policy = C.load_policy(cfg(world, "unused", lora=True, lora_r=4))
    with torch.no_grad():
        for p in policy.trainable().values():   # lora_B starts at 0: move every adapter
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    got = lora_merged_weights(policy.model)
    merged = policy.model.merge_and_unload().state_dict()
    assert got and all(k.endswith(".weight") and "lora" not in k for k in got)
    assert all(torch.allclose(v, merged[k], atol=1e-6) for k, v in got.items())
    base = C.load_policy(cfg(world, "unused")).model.state_dict()
    assert all(not torch.allclose(v, base[k]) for k, v in got.items())   # the adapters moved every adapted layer


def test_the_weights_written_are_the_whole_checkpoint_under_its_names_tied_head_included(world):
    from safetensors.torch import load_file

    disk = load_file(str(world / "ckpts" / "sft" / "model.safetensors"))
    full = policy_weights(C.load_policy(cfg(world, "unused")))
    assert set(full) == set(disk) | {"lm_head.weight"} and all(torch.equal(full[k], disk[k]) for k in disk)
    # the tied head under its own name too (vLLM would keep a stale head otherwise)
    assert full["lm_head.weight"].data_ptr() == full["transformer.wte.weight"].data_ptr()
    lora = C.load_policy(cfg(world, "unused", lora=True, lora_r=4))
    with torch.no_grad():
        for p in lora.trainable().values():
            p.add_(0.1)
    got = policy_weights(lora)
    adapted = set(lora_merged_weights(lora.model))
    assert set(got) == set(disk) | {"lm_head.weight"} and adapted < set(disk)
    assert all(torch.equal(got[k], disk[k]) != (k in adapted) for k in disk)   # W + BA exactly where adapted


def test_row_seeds_are_a_function_of_the_rows_uniforms():
    u = torch.rand((64, 8), generator=torch.Generator().manual_seed(0))
    seeds = [row_seed(r) for r in u]
    assert len(set(seeds)) == 64 and seeds == [row_seed(r.clone()) for r in u]
    assert row_seed(u[0, :1]) != row_seed(u[1, :1]) and 0 <= min(seeds) and max(seeds) < 2**48


def test_vllm_options_need_use_vllm_and_round_trip(world, tmp_path):
    with pytest.raises(ConfigError, match="--use-vllm"):
        cfg(world, tmp_path / "x", vllm_options=(("enforce_eager", "true"),))
    config = cfg(world, tmp_path / "x", use_vllm=True, vllm_options=[["enforce_eager", "true"]])
    assert config.vllm_options == (("enforce_eager", "true"),)
    again = TrainConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config and replace(config, use_vllm=False, vllm_options=()) != config


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_use_vllm_without_vllm_names_both_installs_and_writes_nothing(world, tmp_path):
    with pytest.raises(ArenaError, match="setup_vllm_cpu.sh") as err:
        train("online-dpo", cfg(world, tmp_path / "out", use_vllm=True))
    assert "nash-arena[vllm]" in str(err.value)
    assert list(tmp_path.iterdir()) == []
