"""The typed result (`arena.result.Result`): the JSON the analysis wrote before it was typed,
byte for byte (golden files), and round trips that lose nothing: the example, a tournament
result, a schema-1 file, and keys this version does not know (a newer writer's)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from arena.cli import main
from arena.result import JudgeInfo, Result, RunInfo

DATA = Path(__file__).parent / "data"


def _dumps(obj) -> str:  # key order included
    return json.dumps(obj, allow_nan=False)


# --------------------------------------------------------------------------- golden JSON


@pytest.mark.parametrize("args, golden", [
    (["rate", "--example", "--rounds", "50", "--json"], "golden_rate_example_r50.json"),
    (["rate", "tests/arena/data/golden_matrix.csv", "--json"], "golden_matrix.json"),
])
def test_json_output_is_the_untyped_dicts(capsys, monkeypatch, args, golden):
    """The golden files were written by `arena rate` (from the repository root) when the
    analysis still returned a dict: the same text byte for byte with its floats masked (keys,
    their order, strings, integers, layout), and the floats equal up to the last bits a
    machine's arithmetic changes (another CPU wrote 6.9e-18 where the golden file has 0.0,
    both zero in exact arithmetic)."""
    monkeypatch.chdir(DATA.parents[2])  # settings.file holds the path as given
    assert main(args) == 0
    out, want = capsys.readouterr().out, (DATA / golden).read_text()
    assert _FLOAT.sub("#", out) == _FLOAT.sub("#", want)
    assert [float(x) for x in _FLOAT.findall(out)] == pytest.approx([float(x) for x in _FLOAT.findall(want)],
                                                                     rel=1e-7, abs=1e-12)


_FLOAT = re.compile(r"-?\d+(?:\.\d+(?:e[-+]?\d+)?|e[-+]?\d+)")
"""A JSON float as json.dumps writes it (an integer, with no point or exponent, is not one)."""


# --------------------------------------------------------------------------- round trips


def test_round_trip_of_the_example_is_identical():
    data = json.loads((DATA / "golden_rate_example_r50.json").read_text())
    typed = Result.from_json(data)
    assert _dumps(typed.to_json()) == _dumps(data)
    assert Result.from_json(typed.to_json()) == typed
    assert typed.settings.extra == {"file": None, "example": "arena.examples.cyclic_example_pairs(seed=0)"}
    assert typed.run is None and typed.judge is None and typed.checkpoints is None
    with pytest.raises(FrozenInstanceError):
        typed.reading = "x"


def test_round_trip_of_a_tournament_result_is_identical():
    """A tournament's results.json (with a duplicate checkpoint) reads into typed run/judge
    parts and writes back byte for byte, as a rerun that reloads it needs."""
    data = json.loads((DATA / "tournament_result_schema2.json").read_text())
    typed = Result.from_json(data)
    assert isinstance(typed.run, RunInfo) and isinstance(typed.judge, JudgeInfo)
    assert typed.run.comparisons == 15 and typed.run.new == {"generations": 15, "judgments": 30}
    assert typed.judge.spec == "python:tournament_helpers:judge" and typed.judge.calls is None
    assert typed.duplicates == {"alpha": ["alpha-copy"]}
    assert typed.checkpoints["alpha"]["duplicates"] == ["alpha-copy"]
    assert typed.extra == {} and typed.judge.extra == {}
    assert _dumps(typed.to_json()) == _dumps(data)
    # optional keys are written only when set
    assert "calls" not in typed.to_json()["judge"] and "new" not in RunInfo(comparisons=1).to_json()


def _schema1() -> dict:
    """A schema-1 results.json: no `schema` key, an unchecked Condorcet winner, none of the
    schema-2 fields."""
    data = json.loads((DATA / "golden_matrix.json").read_text())
    del data["schema"], data["reading"]
    for r in data["ratings"].values():
        del r["rank_interval"]
    for key in ("majority_winner", "top_set", "distinguishable", "triangle_survival", "n_triangles"):
        del data["cycles"][key]
    data["cycles"]["condorcet_winner"] = "beta"
    for key in ("estimator", "intervals", "support_probability", "resampled_exploitability", "method"):
        del data["nash"][key]
    return data


def test_schema_1_reads_upgraded_then_round_trips_identically():
    old = _schema1()
    typed = Result.from_json(old)
    assert typed.schema == 1 and typed.cycles.condorcet_winner is None and typed.cycles.majority_winner == "beta"
    once = typed.to_json()
    # nothing of the old file is lost; the new fields are there as null
    for key, value in old.items():
        if key in ("ratings", "cycles"):
            continue
        if isinstance(value, dict):
            assert {k: once[key][k] for k in value} == value, key
        else:
            assert once[key] == value, key
    for m, rating in old["ratings"].items():
        assert {k: once["ratings"][m][k] for k in rating} == rating
    assert {k: v for k, v in once["cycles"].items() if k in old["cycles"] and k != "condorcet_winner"} == \
        {k: v for k, v in old["cycles"].items() if k != "condorcet_winner"}
    assert once["ratings"]["alpha"]["rank_interval"] is None and once["nash"]["intervals"] is None
    # written back, it reads to the same object (the moved winner is not lost on the second read)
    again = Result.from_json(once)
    assert again == typed and _dumps(again.to_json()) == _dumps(once)


def test_unknown_keys_survive_in_every_part():
    data = json.loads((DATA / "tournament_result_schema2.json").read_text())
    newer = copy.deepcopy(data)
    newer["future_section"] = {"x": 1}
    newer["ratings"]["beta"]["future"] = [1, 2]
    newer["preference"]["future"] = "p"
    newer["cycles"]["future"] = None
    newer["nash"]["future"] = 0.5
    newer["fit"]["future"] = True
    newer["settings"]["future"] = "s"
    newer["run"]["future"] = 3
    newer["judge"]["future"] = {"a": 1}
    typed = Result.from_json(newer)
    assert typed.extra == {"future_section": {"x": 1}} and typed.ratings["beta"].extra == {"future": [1, 2]}
    assert typed.judge.extra == {"future": {"a": 1}} and typed.cycles.extra == {"future": None}
    assert typed.to_json() == newer


def test_arena_report_html_on_a_newer_file_keeps_its_unknown_keys(tmp_path, capsys):
    newer = json.loads((DATA / "tournament_result_schema2.json").read_text())
    newer["future_section"] = {"x": 1}
    newer["nash"]["future"] = 0.5
    newer["judge"]["future"] = "j"
    (tmp_path / "results.json").write_text(json.dumps(newer))
    assert main(["report", str(tmp_path), "--html"]) == 0
    written = json.loads((tmp_path / "results.json").read_text())
    assert written == newer  # same reading rules, so even the reading is unchanged
    assert "Judge" in capsys.readouterr().out


def test_arena_report_on_a_schema_1_file(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(_schema1()))
    assert main(["report", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == 1 and out["cycles"]["majority_winner"] == "beta"
    assert out["cycles"]["condorcet_winner"] is None
    assert "On the point estimates" in out["reading"]
    assert main(["report", str(tmp_path), "--html"]) == 0
    assert "Condorcet winner: none" in capsys.readouterr().out
    assert Result.from_json(json.loads((tmp_path / "results.json").read_text())).cycles.majority_winner == "beta"
