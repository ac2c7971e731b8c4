"""Both-order judging, failures, position report, python judges, panels and spec parsing."""

import pytest

from arena.errors import ConfigError
from judges import Comparison, Failure, PairVerdict, judge_both_orders, load_judge, position_report
from judges.base import as_verdict

JUDGE_SOURCE = '''
def first_longer(prompt, a, b):
    return 0.9 if len(a) > len(b) else 0.2

def always_first(prompt, a, b):
    return 1.0

def picky(prompt, a, b):
    if "boom" in a or "boom" in b:
        raise ValueError("cannot judge boom")
    if "nan" in a:
        return float("nan")
    if "minus" in a:
        return -1
    if "text" in a:
        return "A"
    return 0.7

def constant_03(prompt, a, b):
    return 0.3

not_callable = 3
'''


@pytest.fixture
def judge_module(tmp_path, monkeypatch):
    (tmp_path / "myjudges.py").write_text(JUDGE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "myjudges"


class Recorder:
    """A judge returning preset values per (a, b) so orders can be told apart."""

    fingerprint = "recorder"

    def __init__(self, table):
        self.table = table
        self.calls = []

    def judge(self, comparisons):
        self.calls.append(list(comparisons))
        return [self.table[(c.response_a, c.response_b)] for c in comparisons]


def test_both_orders_unswaps_and_averages_asymmetric_values():
    judge = Recorder({("x", "y"): 0.8, ("y", "x"): 0.3, ("u", "v"): 0.1, ("v", "u"): 0.6})
    out = judge_both_orders(judge, [Comparison("p", "x", "y"), Comparison("q", "u", "v")])
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 4  # one batched call, both orders
    assert out[0] == PairVerdict(p=pytest.approx(0.75), p_ab=0.8, p_ba=pytest.approx(0.7), error=None)
    assert out[1].p_ab == 0.1 and out[1].p_ba == pytest.approx(0.4) and out[1].p == pytest.approx(0.25)


def test_failure_is_never_unswapped_into_a_win():
    # The historical bug: an unparseable verdict encoded as -1 became 1 - (-1) = 2 -> "win".
    judge = Recorder({("x", "y"): 0.9, ("y", "x"): -1, ("u", "v"): Failure("unparseable"), ("v", "u"): 0.0})
    out = judge_both_orders(judge, [Comparison("p", "x", "y"), Comparison("q", "u", "v")])
    assert out[0].p is None and out[0].p_ab == 0.9 and out[0].p_ba is None
    assert "b first" in out[0].error and "-1" in out[0].error
    assert out[1].p is None and out[1].p_ab is None and out[1].p_ba == 1.0
    assert "a first: unparseable" == out[1].error
    report = position_report(out)
    assert report["failures"] == 2 and report["consistency"] is None and report["first_position_rate"] is None


def test_position_report_counts_only_successes_and_detects_first_position_bias():
    verdicts = [
        PairVerdict(p=0.5, p_ab=1.0, p_ba=0.0, error=None),   # always "first": inconsistent
        PairVerdict(p=0.8, p_ab=0.9, p_ba=0.7, error=None),   # consistent, a preferred
        PairVerdict(p=None, p_ab=0.9, p_ba=None, error="b first: x"),
    ]
    r = position_report(verdicts)
    assert r["n"] == 3 and r["failures"] == 1
    assert r["consistency"] == pytest.approx(0.5)
    # first-shown preferred: pair 1 -> (1 + 1)/2, pair 2 -> (0.9 + 0.3)/2; mean over pairs.
    assert r["first_position_rate"] == pytest.approx((2.0 + 1.2) / 4)


@pytest.mark.parametrize("bad", [-1, 2, float("nan"), float("inf"), True, "A", None, [0.5]])
def test_bad_values_become_failures(bad):
    assert isinstance(as_verdict(bad), Failure)


def test_failure_needs_a_reason():
    with pytest.raises(TypeError):
        Failure("")


def test_python_judge_values_and_failures(judge_module):
    judge = load_judge(f"python:{judge_module}:picky")
    out = judge.judge([
        Comparison("p", "ok", "fine"), Comparison("p", "boom", "x"), Comparison("p", "nan", "x"),
        Comparison("p", "minus", "x"), Comparison("p", "text", "x"),
    ])
    assert out[0] == 0.7
    assert isinstance(out[1], Failure) and "ValueError: cannot judge boom" in out[1].reason
    assert all(isinstance(v, Failure) for v in out[2:])


def test_python_judge_both_orders_mirrors(judge_module):
    judge = load_judge(f"python:{judge_module}:first_longer")
    (v,) = judge_both_orders(judge, [Comparison("p", "long answer", "short")])
    assert v.p_ab == 0.9 and v.p_ba == pytest.approx(0.8) and v.p == pytest.approx(0.85)
    biased = load_judge(f"python:{judge_module}:always_first")
    r = position_report(judge_both_orders(biased, [Comparison("p", "a", "b"), Comparison("p", "c", "d")]))
    assert r["first_position_rate"] == 1.0 and r["consistency"] == 0.0


def test_python_fingerprint_stable_and_source_sensitive(judge_module, tmp_path):
    a = load_judge(f"python:{judge_module}:first_longer").fingerprint
    assert a == load_judge(f"python:{judge_module}:first_longer").fingerprint
    assert a != load_judge(f"python:{judge_module}:always_first").fingerprint
    (tmp_path / "otherjudges.py").write_text(JUDGE_SOURCE + "\n# edited\n")
    assert a != load_judge("python:otherjudges:first_longer").fingerprint


def test_panel_is_weighted_mixture_and_fails_with_member(judge_module):
    m = judge_module
    panel = load_judge(f"panel:3*python:{m}:first_longer|1*python:{m}:constant_03")
    out = panel.judge([Comparison("p", "long answer", "b"), Comparison("p", "a", "long answer")])
    assert out[0] == pytest.approx(0.75 * 0.9 + 0.25 * 0.3)
    assert out[1] == pytest.approx(0.75 * 0.2 + 0.25 * 0.3)
    swapped = load_judge(f"panel:1*python:{m}:first_longer|3*python:{m}:constant_03")
    assert swapped.fingerprint != panel.fingerprint
    assert swapped.judge([Comparison("p", "long answer", "b")])[0] == pytest.approx(0.25 * 0.9 + 0.75 * 0.3)
    failing = load_judge(f"panel:1*python:{m}:constant_03|1*python:{m}:picky")
    res = failing.judge([Comparison("p", "boom", "b")])
    assert isinstance(res[0], Failure) and "picky" in res[0].reason


@pytest.mark.parametrize("spec", [
    "nonsense", "", "foo:bar", "python:", "python:nomodule_xyz_123:f", "python:math",
    "python:math:no_such_function", "panel:", "panel:0*python:math:cos", "panel:-1*python:math:cos",
    "panel:1*panel:python:math:cos", "panel:python:math:cos||python:math:sin",
    "hf:", "python:math:cos?bogus=1",
])
def test_bad_specs_raise_config_error(spec):
    with pytest.raises(ConfigError):
        load_judge(spec)


def test_not_callable_and_unknown_option(judge_module):
    with pytest.raises(ConfigError, match="not callable"):
        load_judge(f"python:{judge_module}:not_callable")
    with pytest.raises(ConfigError, match="unknown option"):
        load_judge(f"python:{judge_module}:constant_03", batch_size=4)
    with pytest.raises(ConfigError, match="no member"):
        load_judge(f"panel:python:{judge_module}:constant_03", batch_size=4)



from hypothesis import given, settings, strategies as st  # noqa: E402

_value = st.one_of(st.floats(0, 1), st.floats(allow_nan=True), st.sampled_from([-1, 2, None, "A", True]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_value, _value), min_size=1, max_size=6))
def test_both_orders_properties(values):
    """For any raw answers: p in [0, 1] exactly when both orders are valid probabilities;
    judging the swapped comparisons mirrors every field; failures are never numbers."""
    table, comparisons = {}, []
    for i, (first, second) in enumerate(values):
        table[(f"a{i}", f"b{i}")] = first
        table[(f"b{i}", f"a{i}")] = second
        comparisons.append(Comparison("p", f"a{i}", f"b{i}"))
    judge = Recorder(table)
    straight = judge_both_orders(judge, comparisons)
    swapped = judge_both_orders(judge, [c.swapped() for c in comparisons])
    for (first, second), s, w in zip(values, straight, swapped):
        ok1, ok2 = not isinstance(as_verdict(first), Failure), not isinstance(as_verdict(second), Failure)
        assert (s.p is not None) == (ok1 and ok2) == (s.error is None)
        if s.p is not None:
            assert 0.0 <= s.p <= 1.0 and w.p == pytest.approx(1 - s.p)
        assert (s.p_ab is None) == (not ok1) and (s.p_ba is None) == (not ok2)
        assert (w.p_ab is None) == (s.p_ba is None) and (w.p_ba is None) == (s.p_ab is None)
    r = position_report(straight)
    assert r["failures"] == sum(v.p is None for v in straight)
    assert r["first_position_rate"] is None or 0.0 <= r["first_position_rate"] <= 1.0
