"""vllm:PATH and --engine vllm against stand-ins: checks run first, then a clear missing-dependency
error; the judge's own logic, the options handed to `vllm.LLM`, the platform check and the log
stream, all with a stand-in `vllm` module. These run whether or not vLLM is installed (each test
puts its own `vllm` into sys.modules); real vLLM is exercised by tests/vllm/ (`make test-vllm`)."""

import logging
import sys
import types

import pytest

from arena.errors import CheckpointError, ConfigError, MissingDependencyError
from judges import load_judge


def test_vllm_checks_before_import(tiny_lm_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed
    with pytest.raises(ConfigError, match="not one"):
        load_judge(f"vllm:{tiny_lm_dir}", labels="Yes please,No")
    with pytest.raises(ConfigError, match="unknown option"):
        load_judge(f"vllm:{tiny_lm_dir}", device="cpu")
    with pytest.raises(CheckpointError):
        load_judge(f"vllm:{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="dtype='fp8' of the vllm judge is not one of"):
        load_judge(f"vllm:{tiny_lm_dir}?dtype=fp8")
    with pytest.raises(ConfigError, match="distributed_executor_backend='slurm' of the vllm judge is not one of"):
        load_judge(f"vllm:{tiny_lm_dir}?distributed_executor_backend=slurm")
    with pytest.raises(ConfigError, match="tensor_parallel_size='0' of the vllm judge must be >= 1"):
        load_judge(f"vllm:{tiny_lm_dir}?tensor_parallel_size=0")
    with pytest.raises(MissingDependencyError, match=r"nash-arena\[vllm\].*setup_vllm_cpu\.sh"):
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
        made = []  # kwargs of every LLM built, for the tests to read

        def __init__(self, model, **kwargs):
            LLM.made.append({"model": model, **kwargs})
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


def test_llm_options_reach_vllm_for_the_judge(tiny_lm_dir, monkeypatch):
    fake = _fake_vllm(tiny_lm_dir)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    load_judge(f"vllm:{tiny_lm_dir}?tensor_parallel_size=2&pipeline_parallel_size=3&dtype=float32",
               max_model_len=128, enable_prefix_caching="off", gpu_memory_utilization=0.5)
    (kwargs,) = fake.LLM.made
    assert kwargs == {"model": str(tiny_lm_dir), "trust_remote_code": False, "load_format": "safetensors",
                      "dtype": "float32", "tensor_parallel_size": 2, "pipeline_parallel_size": 3,
                      "max_model_len": 128, "gpu_memory_utilization": 0.5, "enable_prefix_caching": False,
                      "enforce_eager": False}


def _generating_vllm(platform_unspecified=False):
    """A stand-in vLLM for the engine: records LLM kwargs, answers with the request seed."""

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        made = []

        def __init__(self, **kwargs):
            LLM.made.append(kwargs)

        def get_tokenizer(self):
            # characters as token ids: the engine sends ids, the stand-in answers with their text
            return types.SimpleNamespace(chat_template=None, encode=lambda text, add_special_tokens=True: [ord(c) for c in text])

        def generate(self, prompts, params, use_tqdm=True):
            text = ["".join(map(chr, p["prompt_token_ids"])) if isinstance(p, dict) else p for p in prompts]
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"{x}|{sp.kwargs['seed']}")])
                    for x, sp in zip(text, params)]

    platform = types.SimpleNamespace(is_unspecified=lambda: platform_unspecified)
    module = types.ModuleType("vllm")
    module.__path__ = []  # a package, so that `vllm.platforms` can be imported from it
    module.LLM, module.SamplingParams = LLM, SamplingParams
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = platform
    return module, platforms


def test_vllm_engine_checks_vllms_platform_not_cuda(monkeypatch):
    from arena.engines import get_engine

    for unspecified in (True, False):
        module, platforms = _generating_vllm(platform_unspecified=unspecified)
        monkeypatch.setitem(sys.modules, "vllm", module)
        monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
        engine = get_engine("vllm")
        if unspecified:
            with pytest.raises(ConfigError, match="no device vLLM supports"):
                engine.check()
        else:
            engine.check()  # a CPU machine (no CUDA here) passes when vLLM supports it
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingDependencyError, match="setup_vllm_cpu.sh"):
        get_engine("vllm").check()


def test_vllm_engine_passes_options_and_seeds(monkeypatch, tiny_lm_dir):
    from arena.engines import Request, SamplingParams, get_engine

    module, platforms = _generating_vllm()
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    with pytest.raises(ConfigError, match="unknown option.*tensor_paralel_size for the vllm engine"):
        get_engine("vllm", llm_options={"tensor_paralel_size": "2"})
    with pytest.raises(ConfigError, match="max_model_len='long' of the vllm engine is not an integer"):
        get_engine("vllm", llm_options={"max_model_len": "long"})
    engine = get_engine("vllm", batch_size=2, allow_pickle=True,
                        llm_options={"tensor_parallel_size": "4", "dtype": "bfloat16", "max_model_len": "512"})
    ckpt = types.SimpleNamespace(kind="hf", path=tiny_lm_dir, name="m")
    got = [b for b in engine.generate(ckpt, [Request(f"p{i}", 10 + i) for i in range(5)], SamplingParams())]
    assert [len(b) for b in got] == [2, 2, 1]
    assert dict(x for b in got for x in b) == {i: f"p{i}|{10 + i}" for i in range(5)}
    assert module.LLM.made == [{"model": str(tiny_lm_dir), "trust_remote_code": False, "load_format": "auto",
                                "dtype": "bfloat16", "tensor_parallel_size": 4, "pipeline_parallel_size": 1,
                                "max_model_len": 512, "gpu_memory_utilization": 0.85,
                                "enable_prefix_caching": True, "enforce_eager": False}]


def test_vllm_logs_are_sent_to_stderr(monkeypatch):
    from arena.engines.vllm import import_vllm

    monkeypatch.delenv("VLLM_LOGGING_STREAM", raising=False)
    module, _ = _generating_vllm()
    monkeypatch.setitem(sys.modules, "vllm", module)
    logger = logging.getLogger("vllm")
    handler = logging.StreamHandler(sys.stdout)  # what an already-imported vLLM configured
    logger.addHandler(handler)
    try:
        import_vllm()
        assert handler.stream is sys.stderr
    finally:
        logger.removeHandler(handler)
    import os

    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"  # read by vLLM (and its workers) at import
    monkeypatch.setenv("VLLM_LOGGING_STREAM", "ext://sys.stdout")
    import_vllm()
    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"
    monkeypatch.setenv("VLLM_LOGGING_STREAM", "ext://my.stream")  # the user's own choice stays
    import_vllm()
    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://my.stream"


def test_tournament_cli_engine_options(tmp_path, capsys):
    from arena.cli import main

    rc = main(["tournament", str(tmp_path), "--engine-option", "tensor_parallel_size"])
    assert rc == 2 and "not NAME=VALUE" in capsys.readouterr().err
    rc = main(["tournament", str(tmp_path), "--engine-option", "dtype=float32", "--engine-option", "dtype=bfloat16"])
    assert rc == 2 and "given twice" in capsys.readouterr().err
