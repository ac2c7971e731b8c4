"""Reward-model (Bradley–Terry) and pairwise-model judges against direct computations."""

import math

import pytest

from arena.errors import CheckpointError, ConfigError
from judges import Comparison, judge_both_orders, load_judge, position_report


def _direct_logits(path, texts):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    for t in texts:
        with torch.no_grad():
            out.append(model(tok(t, return_tensors="pt").input_ids).logits[0].double().tolist())
    return out


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_reward_judge_is_sigmoid_of_reward_difference(tiny_reward_dir, comparisons):
    judge = load_judge(f"reward:{tiny_reward_dir}", batch_size=3)
    got = judge.judge(comparisons)
    r = lambda p, y: _direct_logits(tiny_reward_dir, [f"{p}\n{y}"])[0][0]  # noqa: E731
    want = [_sig(r(c.prompt, c.response_a) - r(c.prompt, c.response_b)) for c in comparisons]
    assert got == pytest.approx(want, abs=1e-5)
    assert max(abs(g - 0.5) for g in got) > 0.1  # the scores are spread: the test can fail
    assert got[3] == pytest.approx(0.5)  # identical responses


def test_reward_judge_has_no_position_bias_and_batching_is_invisible(tiny_reward_dir, comparisons):
    one = load_judge(f"reward:{tiny_reward_dir}", batch_size=1)
    many = load_judge(f"reward:{tiny_reward_dir}", batch_size=16)
    v1, v2 = judge_both_orders(one, comparisons), judge_both_orders(many, comparisons)
    for a, b in zip(v1, v2):
        assert a.p_ab == pytest.approx(a.p_ba, abs=1e-9)
        assert a.p == pytest.approx(b.p, abs=1e-5)
    assert position_report(v1)["consistency"] == 1.0


def test_pairmodel_two_classes_and_one_logit(tiny_pair2_dir, tiny_pair1_dir, comparisons):
    from judges.pairmodel import DEFAULT_TEMPLATE

    texts = [DEFAULT_TEMPLATE.format(prompt=c.prompt, response_a=c.response_a, response_b=c.response_b)
             for c in comparisons]
    logits2 = _direct_logits(tiny_pair2_dir, texts)
    got = load_judge(f"pairmodel:{tiny_pair2_dir}", batch_size=2).judge(comparisons)
    assert got == pytest.approx([math.exp(l[0]) / (math.exp(l[0]) + math.exp(l[1])) for l in logits2], abs=1e-5)
    flipped = load_judge(f"pairmodel:{tiny_pair2_dir}?a_index=1").judge(comparisons)
    assert flipped == pytest.approx([1 - g for g in got], abs=1e-5)
    logits1 = _direct_logits(tiny_pair1_dir, texts)
    got1 = load_judge(f"pairmodel:{tiny_pair1_dir}").judge(comparisons)
    assert got1 == pytest.approx([_sig(l[0]) for l in logits1], abs=1e-5)
    assert max(abs(g - 0.5) for g in got + got1) > 0.1


def test_seqcls_errors(tiny_pair2_dir, tiny_lm_dir, tmp_path):
    with pytest.raises(ConfigError, match="one output"):
        load_judge(f"reward:{tiny_pair2_dir}")
    with pytest.raises(ConfigError, match="a_index"):
        load_judge(f"pairmodel:{tiny_pair2_dir}", a_index=2)
    with pytest.raises(CheckpointError):
        load_judge(f"reward:{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="never uses"):
        load_judge(f"reward:{tiny_pair2_dir}", template="{prompt}")
    with pytest.raises(ConfigError, match="unknown option"):
        load_judge(f"pairmodel:{tiny_pair2_dir}", labels="A,B")


def test_fingerprints_differ_by_backend_and_options(tiny_pair1_dir):
    a = load_judge(f"reward:{tiny_pair1_dir}").fingerprint
    b = load_judge(f"pairmodel:{tiny_pair1_dir}").fingerprint
    c = load_judge(f"reward:{tiny_pair1_dir}?template=Q {{prompt}} R {{response}}").fingerprint
    assert len({a, b, c}) == 3 and a.startswith("reward:") and b.startswith("pairmodel:")
    assert Comparison("p", "a", "b").swapped() == Comparison("p", "b", "a")
