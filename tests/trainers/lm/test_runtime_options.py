"""Trainer options that come from the one LM runtime: stop strings, dtype, LoRA outputs as
adapters (loadable by the tournament) unless --merge."""

import json

import pytest

from arena.worlds.lowrank import JUDGE_SPEC
from trainers.lm import TrainConfig, train


@pytest.fixture(scope="module")
def world(tiny_lowrank_world):
    return tiny_lowrank_world(20)


def cfg(world, out, **kw):
    base = dict(policy=str(world / "ckpts" / "sft"), judge=JUDGE_SPEC, prompts=str(world / "prompts.jsonl"),
                out=str(out), steps=1, batch_size=2, max_new_tokens=4, eval_every=0, eval_batch=2, save_every=0)
    return TrainConfig(**{**base, **kw})


def test_lora_output_is_an_adapter_the_tournament_loads_and_merge_gives_a_full_model(world, tmp_path):
    from arena.checkpoints import discover_checkpoints
    from arena.engines import Request, SamplingParams
    from arena.engines.hf import HFEngine

    ckpts = tmp_path / "ckpts"
    adapter = train("nash-mp", cfg(world, ckpts / "adapter", lora=True, stop=("\n",), dtype="fp32"))
    merged = train("nash-mp", cfg(world, ckpts / "merged", lora=True, merge=True))
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "config.json").exists()
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    card = json.loads((adapter / "arena_card.json").read_text())
    assert card["config"]["stop"] == ["\n"] and card["config"]["merge"] is False
    kinds = {c.name: c.kind for c in discover_checkpoints(ckpts).checkpoints}
    assert kinds == {"adapter": "peft", "merged": "hf"}
    ckpt = next(c for c in discover_checkpoints(ckpts).checkpoints if c.name == "adapter")
    params = SamplingParams(max_new_tokens=4, seed=0)
    texts = [t for batch in HFEngine(batch_size=2).generate(ckpt, [Request("lowrank 0 4x4 r2 s3 context 1", 1)], params)
             for _, t in batch]
    assert len(texts) == 1


def test_bad_dtype_and_template_are_refused_before_work(world, tmp_path):
    from arena.errors import ConfigError

    with pytest.raises(ConfigError, match="auto, bf16, fp16, fp32"):
        cfg(world, tmp_path / "x", dtype="fp8")
    with pytest.raises(ConfigError, match="\\{prompt\\}"):
        cfg(world, tmp_path / "x", prompt_template="Question:")
