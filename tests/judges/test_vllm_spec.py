"""vllm:PATH on a machine without vLLM: checks run first, then a clear missing-dependency error."""

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
