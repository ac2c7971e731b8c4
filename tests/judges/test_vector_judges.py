"""Vector judges: one preference per criterion, debiased per criterion, failures per criterion."""

import pytest

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj, fingerprint_path
from judges import Comparison, Failure, load_judge
from judges.base import combine_criteria, is_vector, judge_vector_both_orders
from judges.panel import parse_labelled_panel, parse_panel

SOURCE = '''
def vec(prompt, a, b):
    if "boom" in a + b:
        raise ValueError("cannot judge boom")
    out = {"helpful": 0.9 if len(a) > len(b) else 0.2, "brief": 0.8 if len(a) < len(b) else 0.3}
    if "nohonest" in a + b:
        out["brief"] = float("nan")
    return out

def vec_declared(prompt, a, b):
    return vec(prompt, a, b)
vec_declared.criteria = ("helpful", "brief")

def undeclared(prompt, a, b):
    return {"helpful": 0.5}

def first_longer(prompt, a, b):
    return 0.9 if len(a) > len(b) else 0.2

def constant_03(prompt, a, b):
    return 0.3
'''


@pytest.fixture
def mod(tmp_path, monkeypatch):
    (tmp_path / "vecjudges.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "vecjudges"


def test_python_vector_judge_debiases_each_criterion(mod):
    j = load_judge(f"python:{mod}:vec?criteria=helpful,brief")
    assert is_vector(j) and j.criteria == ("helpful", "brief")
    (v,) = judge_vector_both_orders(j, [Comparison("p", "long answer", "short")])
    # helpful: a first 0.9; b first judge(short, long) = 0.2 -> p_ba = 0.8; brief: 0.3 and 1 - 0.8 = 0.2
    assert v["helpful"].p_ab == 0.9 and v["helpful"].p_ba == pytest.approx(0.8) and v["helpful"].p == pytest.approx(0.85)
    assert v["brief"].p_ab == 0.3 and v["brief"].p_ba == pytest.approx(0.2) and v["brief"].p == pytest.approx(0.25)
    both = combine_criteria(v)
    assert both.p == pytest.approx((0.85 + 0.25) / 2)
    assert j.judge([Comparison("p", "long answer", "short")]) == [pytest.approx((0.9 + 0.3) / 2)]


def test_a_failed_criterion_fails_alone_and_an_exception_fails_all(mod):
    j = load_judge(f"python:{mod}:vec_declared")
    v1, v2 = judge_vector_both_orders(j, [Comparison("p", "nohonest a", "b"), Comparison("p", "boom", "b")])
    assert v1["helpful"].ok and not v1["brief"].ok and "nan" in v1["brief"].error
    assert v1["brief"].p_ab is None and v1["brief"].p_ba is None  # never a tie, never un-swapped
    assert not v2["helpful"].ok and not v2["brief"].ok and "cannot judge boom" in v2["helpful"].error
    assert not combine_criteria(v1).ok and "brief" in combine_criteria(v1).error
    (scalar,) = j.judge([Comparison("p", "nohonest a", "b")])
    assert isinstance(scalar, Failure) and "brief" in scalar.reason


def test_missing_criterion_is_a_failure_and_undeclared_dict_says_how(mod):
    j = load_judge(f"python:{mod}:undeclared?criteria=helpful,honest")
    (v,) = judge_vector_both_orders(j, [Comparison("p", "a", "b")])
    assert v["helpful"].p == pytest.approx(0.5) and not v["honest"].ok and "honest" in v["honest"].error
    scalar = load_judge(f"python:{mod}:undeclared")
    assert not is_vector(scalar)
    (out,) = scalar.judge([Comparison("p", "a", "b")])
    assert isinstance(out, Failure) and "criteria=helpful" in out.reason


def test_scalar_python_fingerprint_unchanged(mod, tmp_path):
    """A scalar judge keeps the fingerprint of the code before vector judges: its stored verdicts stay valid."""
    j = load_judge(f"python:{mod}:first_longer")
    expected = "python:" + fingerprint_obj({"backend": "python", "target": f"{mod}:first_longer",
                                           "source": fingerprint_path(str(tmp_path / "vecjudges.py"))})
    assert j.fingerprint == expected
    assert load_judge(f"python:{mod}:vec?criteria=helpful,brief").fingerprint != \
        load_judge(f"python:{mod}:vec?criteria=brief,helpful").fingerprint


def test_criteria_panel_members_and_weights(mod):
    m = mod
    j = load_judge(f"panel:helpful=python:{m}:first_longer|brief=3*python:{m}:constant_03|brief=1*python:{m}:first_longer")
    assert is_vector(j) and j.criteria == ("helpful", "brief")
    (v,) = j.judge_vector([Comparison("p", "long answer", "b")])
    assert v["helpful"] == pytest.approx(0.9) and v["brief"] == pytest.approx(0.75 * 0.3 + 0.25 * 0.9)
    assert parse_labelled_panel(f"helpful=2*python:{m}:f|honest=python:{m}:g?x=1") == [
        ("helpful", 2.0, f"python:{m}:f"), ("honest", 1.0, f"python:{m}:g?x=1")]


@pytest.mark.parametrize("body, match", [
    ("helpful=python:m:f|python:m:g", "no criterion label"),
    ("helpful=python:m:f|helpful=panel:python:m:g", "nested"),
    ("helpful=0*python:m:f", "positive"),
])
def test_bad_criteria_panels(body, match):
    with pytest.raises(ConfigError, match=match):
        parse_labelled_panel(body)


def test_scalar_parse_panel_refuses_labels():
    with pytest.raises(ConfigError, match="criterion labels"):
        parse_panel("helpful=python:m:f|honest=python:m:g")


def test_bad_criterion_names(mod):
    with pytest.raises(ConfigError, match="plain name"):
        load_judge(f"python:{mod}:vec?criteria=helpful,has space")
    with pytest.raises(ConfigError, match="distinct"):
        load_judge(f"python:{mod}:vec?criteria=helpful,helpful")


def test_llm_member_asks_its_criterion(tiny_lm_dir):
    from judges.templates import DEFAULT_TEMPLATE, criterion_template

    j = load_judge(f"panel:honest=hf:{tiny_lm_dir}|harmless=hf:{tiny_lm_dir}")
    assert j.members["honest"].template == criterion_template("honest") != DEFAULT_TEMPLATE
    assert j.members["harmless"].template == criterion_template("harmless")
    assert "more honest" in j.members["honest"].template and "{response_a}" in j.members["honest"].template


def test_llm_member_own_template_wins(tiny_lm_dir, tmp_path):
    from judges.templates import criterion_template

    t = tmp_path / "t.txt"
    t.write_text("Mine: {prompt} {response_a} {response_b} [[A]] or [[B]]?")
    j = load_judge(f"panel:honest=hf:{tiny_lm_dir}?template_file={t}|helpful=hf:{tiny_lm_dir}")
    assert j.members["honest"].template.startswith("Mine:")
    assert j.members["helpful"].template == criterion_template("helpful")
    (v,) = judge_vector_both_orders(j, [Comparison("What is two plus two?", "Four.", "Five.")])
    assert set(v) == {"honest", "helpful"} and all(x.ok for x in v.values())
