"""The helpers of benchmarks/bench_pretrained.py and its judge (no model is loaded here)."""

import math

import pytest

from benchmarks import bench_pretrained as B
from benchmarks import pretrained_judge as J


def test_judge_prefers_the_right_sum_then_the_shorter_answer_never_the_empty_one():
    q = "What is 7 + 12?"
    assert J.answer(q) == 19
    assert J.judge(q, " 19", " 18") == pytest.approx(1 / (1 + math.exp(-3 * (1 - 0.0))), abs=1e-12)
    assert J.judge(q, " 19", " 19 apples") > 0.5 > J.judge(q, " 19 apples", " 19")
    assert J.judge(q, " 19", " 19") == 0.5
    assert J.judge(q, "", " 7") < 0.5        # empty loses even to a wrong non-empty answer
    assert J.judge(q, " 12 + 7 = 19", " 19") < 0.05   # the first integer is the answer
    assert J.correct("What is 30 + 2?", "32.") and not J.correct("What is 30 + 2?", "no idea")


def test_make_prompts_is_seeded_and_checked():
    assert J.make_prompts(5, seed=3) == J.make_prompts(5, seed=3) != J.make_prompts(5, seed=4)
    with pytest.raises(ValueError, match="n must be"):
        J.make_prompts(0, seed=0)
    with pytest.raises(ValueError, match="What is A \\+ B"):
        J.answer("Name a colour.")


def test_summarize_skips_the_warm_up_step_and_flags_divergence():
    rows = [{"step": i + 1, "judge_queries": 4 * (i + 1), "seconds": s, "loss": 0.1, "kl_ref": kl,
             "grad_norm": g, "response_tokens": 5.0 + i}
            for i, (s, kl, g) in enumerate([(30.0, 0.0, 2.0), (40.0, 0.5, 3.0), (52.0, 1.5, 9.0)])]
    s = B.summarize(rows, tail=2)
    assert s["s_per_step"] == pytest.approx(11.0)        # (52 − 30) / 2, not 52 / 3
    assert s["kl_ref"] == pytest.approx(1.0) and s["kl_ref_max"] == 1.5
    assert s["grad_norm"] == pytest.approx(6.0) and s["grad_norm_max"] == 9.0
    assert s["response_tokens_first"] == pytest.approx(5.5) and s["response_tokens"] == pytest.approx(6.5)
    assert B.diverged(s, {"empty": 0.1}) == ""
    blown = B.summarize(rows + [dict(rows[-1], step=4, seconds=60.0, kl_ref=25.0, loss=float("nan"))])
    assert B.diverged(blown, {"empty": 0.75}) == "NaN/inf, KL 25, 75% empty"
    with pytest.raises(ValueError, match="no rows"):
        B.summarize([])


def test_answer_stats_and_run_specs():
    stats = B.answer_stats([("What is 2 + 2?", " 4"), ("What is 2 + 3?", " 6 or so"), ("What is 1 + 1?", "")])
    assert stats["accuracy"] == pytest.approx(1 / 3) and stats["empty"] == pytest.approx(1 / 3)
    assert stats["chars"] == pytest.approx((2 + 8 + 0) / 3)
    assert B.parse_run("full:1e-5:0.05") == {"lora": False, "lr": 1e-5, "beta": 0.05, "name": "full-lr1e-5-b0.05"}
    with pytest.raises(SystemExit, match="MODE:LR:BETA"):
        B.parse_run("lora:1e-4")
