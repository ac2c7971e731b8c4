"""`arena rate --style-control` on the file `arena export` writes from a tournament gives the
tournament's own style control (arena.boards.style_control, arena.core.style.both_orientations).

The tournament puts the lower-index checkpoint on side a of every comparison; the exported file
keeps that layout, `arena rate` sees that its sides are not random and fits both orientations,
as the tournament does.
"""

import json

import numpy as np
import pytest

from arena.cli import main
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

JUDGE = "python:tournament_helpers:judge_other"  # prefers the longer response
TIGHT = 1e-6  # both sides run the same Newton fits to a gradient of 1e-10 on the same comparisons


def test_rate_on_an_exported_tournament_equals_its_style_control(tmp_path, capsys):
    ckpts = h.make_ckpts(tmp_path / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 6)
    out = tmp_path / "run"
    config = TournamentConfig(ckpts_dir=ckpts, prompts=prompts, judge=JUDGE, out=out, max_new_tokens=12, rounds=30,
                              batch_size=4, judge_batch_size=8, samples=2, style_control=True)
    tour = run_tournament(config).to_json()["style_control"]
    battles = tmp_path / "battles.jsonl"
    assert main(["export", str(out), "--out", str(battles), "--soft"]) == 0
    capsys.readouterr()
    assert main(["rate", str(battles), "--style-control", "--json", "--rounds", "30"]) == 0
    rate = json.loads(capsys.readouterr().out)["style_control"]

    assert tour["orientations"] == rate["orientations"] == "both"
    assert rate["random_sides_p"] < 1e-3  # the exported layout is recognised as fixed
    assert set(rate["ratings"]) == set(tour["ratings"]) == {"alpha", "beta", "gamma"}
    for m in tour["ratings"]:
        assert rate["ratings"][m]["bt"] == pytest.approx(tour["ratings"][m]["bt"], abs=TIGHT)
        assert rate["ratings"][m]["elo"] == pytest.approx(tour["ratings"][m]["elo"], abs=1e-3)
        assert rate["nash"]["weights"][m] == pytest.approx(tour["nash"]["weights"][m], abs=TIGHT)
    assert rate["feature_names"] == tour["feature_names"]
    for name, c in tour["coefficients"].items():
        assert rate["coefficients"][name]["ratings"] == pytest.approx(c["ratings"], abs=TIGHT)
        assert rate["coefficients"][name]["preference"] == pytest.approx(c["preference"], abs=TIGHT)
    # the preference matrix at equal style, in each run's model order
    order = [rate["preference"]["models"].index(m) for m in tour["preference"]["models"]]
    P_rate = np.asarray(rate["preference"]["P"])[np.ix_(order, order)]
    assert np.abs(P_rate - np.asarray(tour["preference"]["P"])).max() < TIGHT
    # this judge rewards length only: the length coefficient carries the effect
    assert tour["coefficients"]["sum_assistant_tokens"]["ratings"] > 0
