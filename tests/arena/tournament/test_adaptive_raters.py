"""The raters world run adaptively reaches the round robin's verdict (a cycle through the three
styles, a Nash mixture on the three styles and nothing on sft) with fewer judge calls and fewer
generations.

Slow (two tournaments of 2 samples per prompt on the world's 32 prompts, minutes on a small
machine): `pytest -m slow`. ARENA_TEST_RATERS_WORLD=DIR reuses a world built by
`arena world raters --out DIR` instead of building one.
"""

import json
import os
from pathlib import Path

import pytest

from arena.cli import main

import tournament_helpers as h  # registered by conftest.py

pytestmark = pytest.mark.slow
STYLES = ("list", "sentence", "terse")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    given = os.environ.get("ARENA_TEST_RATERS_WORLD")
    return Path(given) if given else h.raters_world(tmp_path_factory)


def _run(world, out, capsys, *flags):
    capsys.readouterr()
    rc = main(["tournament", str(world / "ckpts"), "--out", str(out), "--rounds", "200", "--samples", "2", "--json",
               *flags])
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def _support(r):
    return sorted(m for m, w in r["nash"]["weights"].items() if w > 1e-6)


def _triangles(r):
    return {tuple(sorted(t)) for t in r["cycles"]["triangles"]}


def test_adaptive_run_reaches_the_round_robin_verdict_with_less_work(world, tmp_path, capsys):
    rr = _run(world, tmp_path / "rr", capsys)
    # half the round robin's judge calls (768)
    ad = _run(world, tmp_path / "adaptive", capsys, "--adaptive", "--budget", "384")
    assert _support(rr) == list(STYLES) and STYLES in _triangles(rr) and rr["nash"]["weights"]["sft"] < 1e-6
    assert _support(ad) == _support(rr) and STYLES in _triangles(ad)
    a = ad["adaptive"]
    assert a["round_robin_calls"] == rr["run"]["judgments"] == 768  # 6 pairs x 32 prompts x 2 samples x 2
    assert a["calls"] == ad["run"]["judgments"] == 384 and a["stop"] == "budget"
    assert a["generations"] == ad["run"]["generations"] < rr["run"]["generations"] == 256
    # the design spent more on the pairs of the Nash support than on the pairs with sft
    calls, models = a["calls_per_pair"]["calls"], a["calls_per_pair"]["models"]
    sft = models.index("sft")
    on_sft = [calls[sft][j] for j in range(len(models)) if j != sft]
    among_styles = [calls[i][j] for i in range(len(models)) for j in range(i + 1, len(models)) if sft not in (i, j)]
    assert sum(among_styles) > sum(on_sft)
