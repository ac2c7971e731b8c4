"""`arena tournament --style-control`: style features from the stored responses (arena.style_tournament).

The fast test checks the plumbing on tiny random checkpoints (whose responses differ in
length); the slow one trains the verbose world (arena.worlds.verbose) and checks that the raw
Nash mixture holds the verbose checkpoint and the style-controlled one does not.
"""

import json

import pytest

from arena.cli import main
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

JUDGE = "python:tournament_helpers:judge_other"  # prefers the longer response
FAST = dict(max_new_tokens=12, rounds=30, batch_size=4, judge_batch_size=8, samples=2)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("style")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(root / "prompts.txt", 6)
    return {"ckpts": ckpts, "prompts": prompts}


def _config(base, out, **kw):
    return TournamentConfig(ckpts_dir=base["ckpts"], prompts=base["prompts"], judge=JUDGE, out=out, **{**FAST, **kw})


def test_style_control_is_reported_beside_the_raw_analysis(base, tmp_path):
    out = tmp_path / "run"
    raw = run_tournament(_config(base, out)).to_json()
    assert "style_control" not in raw
    styled = run_tournament(_config(base, out, style_control=True)).to_json()
    # the raw part is unchanged; no new generation or judgment, only a new analysis
    assert styled["run"]["new"] == {"generations": 0, "judgments": 0}
    assert styled["ratings"] == raw["ratings"] and styled["nash"] == raw["nash"]
    sc = styled["style_control"]
    assert sc["feature_names"] == ["sum_assistant_tokens", "header_count", "list_count", "bold_count"]
    assert sc["source"].startswith("stored responses")
    assert set(sc["ratings"]) == set(sc["nash"]["weights"]) == {"alpha", "beta", "gamma"}
    assert sum(sc["nash"]["weights"].values()) == pytest.approx(1.0)
    # this judge rewards length: the length coefficient is positive
    assert sc["coefficients"]["sum_assistant_tokens"]["ratings"] > 0
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["style_control"] == sc
    assert "<h2>Style control</h2>" in (out / "report.html").read_text()
    # a rerun with the flag reuses the stored analysis, style control included
    again = run_tournament(_config(base, out, style_control=True)).to_json()
    assert again["style_control"] == sc


@pytest.mark.slow
def test_verbose_world_raw_nash_has_verbose_controlled_does_not(tmp_path, capsys):
    from arena.worlds.verbose import MAX_NEW_TOKENS, build_verbose_world

    world = build_verbose_world(tmp_path / "world", seed=0, n_prompts=32, steps=150)
    rc = main(["tournament", str(world / "ckpts"), "--samples", "4", "--max-new-tokens", str(MAX_NEW_TOKENS),
               "--rounds", "100", "--style-control", "--json", "--out", str(tmp_path / "run")])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert result["nash"]["weights"]["verbose"] > 0.5
    sc = result["style_control"]
    assert sc["nash"]["weights"]["verbose"] < 1e-6 and sc["nash"]["weights"]["solid"] > 0.5
    assert "verbose is in the equilibrium only through style" in result["reading"]
