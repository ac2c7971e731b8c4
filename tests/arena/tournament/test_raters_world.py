"""The raters world: the panel's tastes cycle, and a tournament on the world's checkpoints
shows the cycle, a Nash mixture spread over the style checkpoints, and a BT total order."""

import json

import pytest

from arena.cli import main
from arena.errors import InputError
from arena.worlds import raters


import tournament_helpers as h  # registered by conftest.py
Q = raters.question(47)
TERSE, SENTENCE, LIST = (raters.render(47, s) for s in range(3))


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return h.raters_world(tmp_path_factory)


def test_styles_are_a_fixed_function_of_the_text():
    assert [raters.style_of(t) for t in (TERSE, SENTENCE, LIST)] == [0, 1, 2]
    assert raters.style_of("forty-seven") is None and raters.answer_of("- answer: 12") == 12
    assert raters.is_correct(Q, LIST) and not raters.is_correct(Q, raters.render(46, 2))


def test_panel_prefers_in_a_cycle_between_correct_answers():
    assert raters.judge(Q, TERSE, SENTENCE) == pytest.approx(2 / 3)
    assert raters.judge(Q, SENTENCE, LIST) == pytest.approx(2 / 3)
    assert raters.judge(Q, LIST, TERSE) == pytest.approx(2 / 3)
    # Reversed order: the complement (the panel has no position bias).
    assert raters.judge(Q, SENTENCE, TERSE) == pytest.approx(1 / 3)
    assert raters.judge(Q, LIST, LIST) == 0.5


def test_correctness_comes_first_for_every_rater():
    wrong_terse = raters.render(48, 0)
    for style in range(3):
        assert raters.judge(Q, raters.render(47, style), wrong_terse) == 1.0
    assert raters.judge(Q, "garbage", raters.render(3, 2)) == 0.0  # malformed and wrong loses to well-formed wrong
    with pytest.raises(ValueError):
        raters.judge("What is love?", TERSE, LIST)


def test_world_layout(world):
    assert (world / "judge.txt").read_text().strip() == "python:arena.worlds.raters:judge"
    assert sorted(p.name for p in (world / "ckpts").iterdir()) == ["list", "sentence", "sft", "terse"]
    rows = [json.loads(line) for line in (world / "prompts.jsonl").read_text().splitlines()]
    assert len(rows) == 32 and all(raters._QUESTION.fullmatch(r["prompt"].strip()) for r in rows)
    card = json.loads((world / "ckpts" / "sft" / "arena_card.json").read_text())
    assert card["algorithm"] == "sft" and "0.6" in card["config"]["data"] and "20%" in card["config"]["data"]


def test_tournament_on_the_world_shows_cycle_nash_and_bt_order(world, tmp_path, capsys):
    judge = (world / "judge.txt").read_text().strip()
    rc = main(["tournament", str(world / "ckpts"), "--prompts", str(world / "prompts.jsonl"), "--judge", judge,
               "--out", str(tmp_path / "run"), "--rounds", "200", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    styles = {"terse", "sentence", "list"}
    # The cycle terse ≻ sentence ≻ list ≻ terse, as the panel's tastes imply, and the most robust
    # one under the bootstrap. (The skewed `sft` can close a weak second triangle with a style it
    # ties, e.g. P(sft ≻ sentence) = 0.52 over these 32 prompts; its survival is then lower.)
    triangles = [set(t) for t in r["cycles"]["triangles"]]
    survival = r["cycles"]["triangle_survival"]
    assert styles in triangles, r["cycles"]
    assert survival[triangles.index(styles)] == max(survival), r["cycles"]
    assert all(t == styles or "sft" in t for t in triangles), r["cycles"]
    idx = {m: i for i, m in enumerate(r["models"])}
    P = r["preference"]["P"]
    assert P[idx["terse"]][idx["sentence"]] > 0.5
    assert P[idx["sentence"]][idx["list"]] > 0.5
    assert P[idx["list"]][idx["terse"]] > 0.5
    assert r["cycles"]["condorcet_winner"] is None
    # Nash: spread over the three styles, nothing on the skewed, error-prone reference policy.
    w = r["nash"]["weights"]
    # In a three-cycle each weight is proportional to the margin of the opposite edge: known in
    # closed form from the estimated matrix, whatever the samples (these briefly trained
    # checkpoints' edges are uneven, so a weight can be as low as 0.1).
    margin = {"terse": P[idx["sentence"]][idx["list"]] - 0.5, "sentence": P[idx["list"]][idx["terse"]] - 0.5,
              "list": P[idx["terse"]][idx["sentence"]] - 0.5}
    total = sum(margin.values())
    assert all(w[s] == pytest.approx(margin[s] / total, abs=1e-6) for s in styles) and w["sft"] < 1e-6, (w, margin)
    assert all(r["nash"]["support_probability"][s] > 0.5 for s in styles)
    assert r["nash"]["exploitability"] < 1e-6
    # Bradley–Terry still prints a total order (distinct ratings) with sft last.
    elos = {m: r["ratings"][m]["elo"] for m in r["models"]}
    assert len(set(elos.values())) == 4 and min(elos, key=elos.get) == "sft"
    assert r["run"]["failures"] == 0 and r["judge"]["position_consistency"] == 1.0


def test_world_cli_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "keep.txt").write_text("mine")
    rc = main(["world", "raters", "--out", str(tmp_path / "w")])
    assert rc == 2 and "not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["keep.txt"]
    with pytest.raises(InputError, match="n_prompts"):
        raters.build_raters_world(tmp_path / "new", n_prompts=0)
    assert not (tmp_path / "new").exists()
