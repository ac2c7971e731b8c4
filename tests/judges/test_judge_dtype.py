"""dtype= for the hf, reward and pairmodel judges (and `arena judge --dtype`): the weights load in
that dtype; each judge's fingerprint changes only when a dtype is set."""

import pytest
import torch

from arena.errors import ConfigError
from judges import load_judge


def test_dtype_option_loads_the_weights_in_that_dtype(tiny_lm_dir, tiny_reward_dir, tiny_pair2_dir):
    plain = load_judge(f"hf:{tiny_lm_dir}")
    bf16 = load_judge(f"hf:{tiny_lm_dir}", dtype="bf16")
    assert next(plain.model.parameters()).dtype == torch.float32
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert load_judge(f"hf:{tiny_lm_dir}", dtype="auto").fingerprint == plain.fingerprint != bf16.fingerprint
    for spec in (f"reward:{tiny_reward_dir}", f"pairmodel:{tiny_pair2_dir}"):
        fp16 = load_judge(spec, dtype="fp16")
        assert next(fp16.model.parameters()).dtype == torch.float16
        # Verdicts in another dtype are other verdicts; the default keeps the key stored runs have.
        assert load_judge(spec, dtype="auto").fingerprint == load_judge(spec).fingerprint != fp16.fingerprint
    with pytest.raises(ConfigError, match="auto, bf16, fp16, fp32"):
        load_judge(f"reward:{tiny_reward_dir}", dtype="fp8")
