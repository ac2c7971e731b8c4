"""--lr-schedule and --warmup-steps: transformers' schedules, step for step (a second implementation)."""

import pytest
import torch

from arena.errors import ConfigError
from trainers.lm.common import TrainConfig, learning_rate


def _config(**kw):
    return TrainConfig(policy="p", judge="j", prompts="x", out="o", **kw)


@pytest.mark.parametrize("schedule, factory", [("constant", "get_constant_schedule_with_warmup"),
                                                ("linear", "get_linear_schedule_with_warmup"),
                                                ("cosine", "get_cosine_schedule_with_warmup")])
@pytest.mark.parametrize("warmup", [0, 7])
def test_learning_rates_equal_the_transformers_schedules(schedule, factory, warmup):
    import transformers

    steps, lr = 40, 3e-4
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    kw = {} if schedule == "constant" else {"num_training_steps": steps}
    sched = getattr(transformers, factory)(opt, num_warmup_steps=warmup, **kw)
    theirs = []
    for _ in range(steps):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [learning_rate(_config(steps=steps, lr=lr, lr_schedule=schedule, warmup_steps=warmup), k)
            for k in range(steps)]
    assert ours == pytest.approx(theirs, abs=1e-15)
    assert ours[warmup] == lr and (warmup == 0 or ours[0] == 0.0)      # warm-up from 0 reaches lr at step W


def test_cosine_is_not_linear_and_bad_values_are_refused():
    lin, cos = (_config(steps=10, lr=1.0, lr_schedule=s) for s in ("linear", "cosine"))
    assert learning_rate(lin, 5) == pytest.approx(0.5) and learning_rate(cos, 5) == pytest.approx(0.5)
    assert learning_rate(cos, 2) == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(0.2 * torch.pi)).item()))
    assert learning_rate(cos, 2) > learning_rate(lin, 2)
    with pytest.raises(ConfigError, match="constant, linear, cosine"):
        _config(lr_schedule="step")
    with pytest.raises(ConfigError, match="--warmup-steps"):
        _config(steps=10, warmup_steps=10)
    with pytest.raises(ConfigError, match="--warmup-steps"):
        _config(warmup_steps=-1)


def test_an_old_card_without_warmup_reads_as_none():
    d = _config(steps=5, lr_schedule="linear").to_json()
    d.pop("warmup_steps")
    assert TrainConfig.from_json(d).warmup_steps == 0
