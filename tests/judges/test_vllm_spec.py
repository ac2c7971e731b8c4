"""vllm:PATH without vLLM: checks run first, then a clear missing-dependency error; the judge's
own logic against a stand-in engine."""

import importlib.util

import pytest

from arena.errors import CheckpointError, ConfigError, MissingDependencyError
from judges import load_judge

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")


def test_vllm_checks_before_import(tiny_lm_dir, tmp_path):
    with pytest.raises(ConfigError, match="not one"):
        load_judge(f"vllm:{tiny_lm_dir}", labels="Yes please,No")
    with pytest.raises(ConfigError, match="unknown option"):
        load_judge(f"vllm:{tiny_lm_dir}", device="cpu")
    with pytest.raises(CheckpointError):
        load_judge(f"vllm:{tmp_path / 'missing'}")
    with pytest.raises(MissingDependencyError, match=r"nash-arena\[vllm\]"):
        load_judge(f"vllm:{tiny_lm_dir}")


def _fake_vllm(model_dir):
    """A stand-in for vLLM's offline API (LLM, SamplingParams, prompt_logprobs) over transformers.

    It checks the judge's own logic (prompts, label tokens, reading the last prompt logprob,
    the probability) on CPU; vLLM itself is not exercised here.
    """
    import types

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    class Logprob:
        def __init__(self, logprob):
            self.logprob = logprob

    class SamplingParams:
        def __init__(self, **kwargs):
            assert kwargs["prompt_logprobs"] == 0 and kwargs["max_tokens"] == 1
            self.kwargs = kwargs

    class LLM:
        def __init__(self, model, **kwargs):
            self.tok = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model).eval()
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=256))

        def get_tokenizer(self):
            return self.tok

        def generate(self, prompts, params, use_tqdm=True):
            outs = []
            for p in prompts:
                ids = p["prompt_token_ids"]
                with torch.no_grad():
                    logp = torch.log_softmax(self.model(torch.tensor([ids])).logits[0].double(), -1)
                plp = [None] + [{ids[t]: Logprob(float(logp[t - 1, ids[t]]))} for t in range(1, len(ids))]
                outs.append(types.SimpleNamespace(prompt_logprobs=plp))
            return outs

    return types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams)


def test_vllm_judge_logic_matches_hf_with_a_stand_in_engine(tiny_lm_dir, comparisons, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm(tiny_lm_dir))
    judge = load_judge(f"vllm:{tiny_lm_dir}", batch_size=2)
    hf = load_judge(f"hf:{tiny_lm_dir}")
    assert judge.judge(comparisons) == pytest.approx(hf.judge(comparisons), abs=1e-5)
    assert judge.label_mass == pytest.approx(hf.label_mass, abs=1e-5)
    assert judge.fingerprint.startswith("vllm:") and judge.fingerprint[5:] != hf.fingerprint[3:]
    from judges import Comparison, Failure

    (long,) = judge.judge([Comparison("p", "word " * 300, "b")])
    assert isinstance(long, Failure)
