"""The multi-criteria world: a vector judge whose criteria conflict, so that the per-criterion Nash
mixtures, the weighted Nash and the robust (max–min) mixture differ as designed."""

import importlib
import json

import numpy as np
import pytest

from arena.core.nash import nash_from_preferences
from arena.core.robust import criterion_values, robust_mixture, weighted_nash
from arena.errors import InputError
from arena.worlds import multicriteria as mc

Q = mc.question(47)
TERSE, SENTENCE, HEDGED, CAREFUL = (mc.render(47, s) for s in range(4))


def test_styles_and_markers_are_a_fixed_function_of_the_text():
    assert (TERSE, SENTENCE, HEDGED, CAREFUL) == (
        "47.", "The answer is 47.", "47. Please double-check.", "The answer is 47. Please double-check.")
    assert [mc.style_of(t) for t in (TERSE, SENTENCE, HEDGED, CAREFUL)] == [0, 1, 2, 3]
    assert mc.style_of("forty-seven") is None and mc.parse(" 12. ") == (12, False, False)
    assert mc.is_correct(Q, CAREFUL) and not mc.is_correct(Q, mc.render(46, 3))


def test_vector_judge_per_criterion():
    assert mc.judge(Q, SENTENCE, TERSE) == {"helpful": 1.0, "brief": 0.0, "safe": 0.25}
    assert mc.judge(Q, HEDGED, CAREFUL) == {"helpful": 0.0, "brief": 1.0, "safe": 0.75}
    assert mc.judge_helpful(Q, SENTENCE, CAREFUL) == 0.75  # h1 indifferent, h2 dislikes the caveat
    assert mc.judge_brief(Q, TERSE, HEDGED) == 1.0 and mc.judge_safe(Q, TERSE, HEDGED) == 0.0
    # no position bias: the reversed pair gives the complement on every criterion
    texts = (TERSE, SENTENCE, HEDGED, CAREFUL, mc.render(3, 1), "garbage")
    for a in texts:
        for b in texts:
            ab, ba = mc.judge(Q, a, b), mc.judge(Q, b, a)
            assert all(ab[c] + ba[c] == pytest.approx(1.0) for c in mc.CRITERIA)


def test_correctness_comes_first_for_every_rater():
    wrong_best = {"helpful": mc.render(48, 1), "brief": mc.render(48, 0), "safe": mc.render(48, 2)}
    for c, wrong in wrong_best.items():
        for style in range(4):
            assert mc.judge_criterion(c, Q, mc.render(47, style), wrong) == 1.0
        assert mc.judge_criterion(c, Q, "garbage", wrong) == 0.0  # malformed loses to well-formed wrong
    with pytest.raises(ValueError, match="not a multi-criteria-world question"):
        mc.judge("What is love?", TERSE, HEDGED)
    with pytest.raises(InputError, match="unknown criterion 'honest'"):
        mc.judge_criterion("honest", Q, TERSE, HEDGED)


def test_exact_preferences_are_complementary_and_match_the_judge():
    P = mc.exact_preferences()
    assert P.shape == (3, 5, 5)
    np.testing.assert_allclose(P + P.transpose(0, 2, 1), 1.0, atol=1e-12)
    i = {m: k for k, m in enumerate(mc.MODELS)}
    assert P[0, i["sentence"], i["careful"]] == 0.75
    assert P[1, i["careful"], i["hedged"]] == 0.0
    # sft: 20 % wrong answers; it beats a style checkpoint only with correct answers
    assert P[2, i["sft"], i["terse"]] == pytest.approx(0.8 * (0.4 * 0.5 + 0.3 * 0.25 + 0.3 * 1.0) + 0.0, abs=1e-12)


def test_single_weighted_and_robust_mixtures_differ_as_designed():
    P = mc.exact_preferences()
    idx = {m: k for k, m in enumerate(mc.MODELS)}
    robust = robust_mixture(P, criteria=mc.CRITERIA)
    # every criterion alone has a pure Nash that scores 0 on the other two criteria
    singles = {}
    for c, winner in zip(mc.CRITERIA, ("sentence", "terse", "hedged")):
        p = nash_from_preferences(P[mc.CRITERIA.index(c)]).p
        np.testing.assert_allclose(p, np.eye(5)[idx[winner]], atol=1e-9)
        singles[c] = p
        assert criterion_values(P, p).min() == pytest.approx(0.0, abs=1e-9)
    # equal weights: a mixture that neglects safety
    weighted = weighted_nash(P, {c: 1 / 3 for c in mc.CRITERIA}, criteria=mc.CRITERIA).p
    np.testing.assert_allclose(weighted, [0.25, 0.5, 0.0, 0.25, 0.0], atol=1e-7)
    np.testing.assert_allclose(criterion_values(P, weighted), [0.3125, 0.125, 0.0625], atol=1e-9)
    # robust: every style checkpoint, the terse one most; the same guarantee 1/6 on all criteria
    np.testing.assert_allclose(robust.weights, [1 / 3, 2 / 9, 2 / 9, 2 / 9, 0.0], atol=1e-7)
    assert robust.value == pytest.approx(1 / 6, abs=1e-9)
    assert set(robust.binding) == set(mc.CRITERIA)
    np.testing.assert_allclose(robust.criterion_weights, 1 / 3, atol=1e-7)
    for p in [*singles.values(), weighted]:
        assert np.abs(robust.weights - p).sum() > 0.4
        assert robust.value >= criterion_values(P, p).min() + 0.1


def test_lab_max_min_dynamics_find_the_worlds_robust_mixture():
    from trainers.lab.multicriteria import multi_matrix_game, run_max_min

    P = mc.exact_preferences()
    run = run_max_min(multi_matrix_game(P, criteria=mc.CRITERIA), steps=1000)
    assert run.value == pytest.approx(1 / 6, abs=2e-3)
    assert run.upper_bound >= 1 / 6 - 1e-12
    # the maximin set is not a point here (the LP reports its maximum-entropy member); the
    # dynamics end near another member: terse 1/3, sft almost never
    assert run.pi[0, 0] == pytest.approx(1 / 3, abs=1e-2) and run.pi[0, 4] < 1e-2


def test_build_refuses_bad_arguments(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(InputError, match="not empty"):
        mc.build_multicriteria_world(tmp_path / "full")
    with pytest.raises(InputError, match="n_prompts"):
        mc.build_multicriteria_world(tmp_path / "new", n_prompts=0)
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_world_layout(tmp_path):
    world = mc.build_multicriteria_world(tmp_path / "w", seed=0, n_prompts=8, steps=10)
    assert sorted(p.name for p in (world / "ckpts").iterdir()) == sorted(mc.MODELS)
    rows = [json.loads(line) for line in (world / "prompts.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(mc._QUESTION.fullmatch(r["prompt"].strip()) for r in rows)
    specs = {c: (world / f"judge_{c}.txt").read_text().strip() for c in mc.CRITERIA}
    assert (world / "judge.txt").read_text().strip() == mc.JUDGE_SPEC
    for c, spec in specs.items():  # each scalar spec resolves to the criterion's judge
        _, module, fn = spec.split(":")
        assert getattr(importlib.import_module(module), fn)(Q, TERSE, HEDGED) == mc.judge(Q, TERSE, HEDGED)[c]


def test_docs_example_runs_and_prints_what_the_page_shows(capsys):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "criteria.md").read_text()
    code, shown = re.search(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", page, re.S).groups()
    exec(compile(code, "docs/criteria.md", "exec"), {})
    assert capsys.readouterr().out == shown


def test_cli_builds_the_world_and_refuses_bad_arguments(tmp_path, capsys):
    from arena.cli import main

    assert main(["world", "multicriteria", "--out", str(tmp_path / "w"), "--prompts", "4", "--steps", "2",
                 "--json"]) == 0
    layout = json.loads(capsys.readouterr().out)
    assert layout["judge"] == mc.JUDGE_SPEC and sorted(layout["checkpoints"]) == sorted(mc.MODELS)
    assert set(layout["criterion_judges"]) == set(mc.CRITERIA)
    assert len((tmp_path / "w" / "prompts.jsonl").read_text().splitlines()) == 4
    assert main(["world", "multicriteria", "--out", str(tmp_path / "x"), "--prompts", "0"]) == 2
    assert "--prompts" in capsys.readouterr().err and not (tmp_path / "x").exists()
