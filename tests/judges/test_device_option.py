"""A device the machine cannot use is a clear error before any model is loaded."""

import pytest

from arena.errors import ArenaError
from judges import load_judge


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
def test_unusable_device_is_refused(tiny_lm_dir, tiny_reward_dir, device):
    for spec in (f"hf:{tiny_lm_dir}", f"reward:{tiny_reward_dir}"):
        with pytest.raises(ArenaError, match="device"):
            load_judge(spec, device=device)


def test_cpu_device_loads(tiny_lm_dir):
    assert load_judge(f"hf:{tiny_lm_dir}", device="cpu").fingerprint
