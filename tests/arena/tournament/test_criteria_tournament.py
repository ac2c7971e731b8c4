"""Tournaments with a vector judge: per-criterion verdicts in the store, per-criterion failures,
the per-criterion / weighted / robust analysis in results.json, and scalar runs left unchanged."""

import json
import sqlite3

import pytest

from arena.errors import InputError
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

FAST = dict(max_new_tokens=6, rounds=50, batch_size=4, judge_batch_size=8)




@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("crit")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(root / "prompts.txt", 6)
    return {"ckpts": ckpts, "prompts": prompts}


def _config(base, out, judge, **kw):
    return TournamentConfig(ckpts_dir=base["ckpts"], prompts=base["prompts"], judge=judge, out=out, **{**FAST, **kw})


def test_vector_judge_tournament_layout_and_failures(base, tmp_path):
    out = tmp_path / "run"
    r = run_tournament(_config(base, out, "python:criteria_helpers:vector_judge", weights=(("helpful", 0.7), ("brief", 0.3))))
    assert r["kind"] == "criteria" and r["settings"]["criteria"] == ["helpful", "brief"]
    assert set(r["criteria"]) == {"helpful", "brief"}
    for c in ("helpful", "brief"):
        assert set(r["criteria"][c]) >= {"ratings", "preference", "cycles", "nash"}
    assert set(r["robust"]) >= {"weights", "value", "binding", "exploitability"}
    assert r["weighted"]["weights"] == {"helpful": 0.7, "brief": 0.3}
    # brief fails on some comparisons (NaN), helpful on none: failures are per criterion, never ties
    n = r["run"]["comparisons"]
    assert r["run"]["failures"]["helpful"] == 0 and 0 < r["run"]["failures"]["brief"] < n
    assert r["criteria"]["helpful"]["settings"]["records"] == n
    assert r["criteria"]["brief"]["settings"]["records"] == n - r["run"]["failures"]["brief"]
    # the store keeps each criterion's verdict; the judgments row is their mean, a failure when brief failed
    con = sqlite3.connect(out / "arena.sqlite")
    rows = con.execute("SELECT criterion, p, error FROM criterion_judgments").fetchall()
    assert len(rows) == 2 * n
    assert sum(1 for c, p, e in rows if c == "brief" and p is None and "nan" in e.lower()) == r["run"]["failures"]["brief"]
    assert con.execute("SELECT count(*) FROM judgments WHERE p IS NULL").fetchone()[0] == r["run"]["failures"]["brief"]
    # per-criterion records equal those of a scalar run of that criterion alone
    solo = run_tournament(_config(base, tmp_path / "solo", "python:criteria_helpers:helpful_judge")).to_json()
    assert solo["ratings"] == r["criteria"]["helpful"]["ratings"]
    assert json.loads((out / "results.json").read_text())["robust"] == r["robust"]
    # a rerun judges nothing again and gives the same analysis
    again = run_tournament(_config(base, out, "python:criteria_helpers:vector_judge", weights=(("helpful", 0.7), ("brief", 0.3))))
    assert again["run"]["new"]["judgments"] == 0 and again["robust"] == r["robust"]
    # ... by reusing the stored analysis (no bootstrap: analyze_criteria is not called), until a setting changes
    import arena.criteria

    calls = []
    real = arena.criteria.analyze_criteria
    arena.criteria.analyze_criteria = lambda *a, **kw: calls.append(1) or real(*a, **kw)
    try:
        third = run_tournament(_config(base, out, "python:criteria_helpers:vector_judge",
                                       weights=(("helpful", 0.7), ("brief", 0.3))))
        assert calls == [] and {k: v for k, v in third.items() if k != "run"} == {k: v for k, v in again.items()
                                                                                 if k != "run"}
        assert json.loads((out / "results.json").read_text()) == third
        other = run_tournament(_config(base, out, "python:criteria_helpers:vector_judge",
                                       weights=(("helpful", 0.5), ("brief", 0.5))))
        assert calls == [1] and other["weighted"]["weights"] == {"helpful": 0.5, "brief": 0.5}
    finally:
        arena.criteria.analyze_criteria = real


def test_criteria_panel_equals_python_vector_judge(base, tmp_path):
    spec = "panel:helpful=python:criteria_helpers:helpful_judge|brief=python:criteria_helpers:brief_judge"
    r = run_tournament(_config(base, tmp_path / "panel", spec))
    assert r["settings"]["criteria"] == ["helpful", "brief"] and r["run"]["failures"] == {"helpful": 0, "brief": 0}
    assert r["criteria"]["brief"]["ratings"]["alpha"]["elo"] != r["criteria"]["helpful"]["ratings"]["alpha"]["elo"]


def test_weights_need_a_vector_judge(base, tmp_path):
    with pytest.raises(InputError, match="vector judge"):
        run_tournament(_config(base, tmp_path / "x", "python:tournament_helpers:judge", weights=(("a", 1.0),)))
    with pytest.raises(Exception, match="honest"):
        run_tournament(_config(base, tmp_path / "y", "python:criteria_helpers:vector_judge", weights=(("honest", 1.0),)))
    assert not (tmp_path / "x" / "arena.sqlite").exists() and not (tmp_path / "y" / "arena.sqlite").exists()


def test_scalar_run_in_a_store_without_the_criterion_table_is_byte_identical(base, tmp_path):
    """A store written before the criterion table: the scalar analysis and results.json are unchanged."""
    out = tmp_path / "scalar"
    cfg = _config(base, out, "python:tournament_helpers:judge")
    run_tournament(cfg)
    before = (out / "results.json").read_bytes()
    con = sqlite3.connect(out / "arena.sqlite")
    assert con.execute("SELECT count(*) FROM criterion_judgments").fetchone()[0] == 0  # a scalar judge writes none
    con.execute("DROP TABLE criterion_judgments")
    con.execute("DELETE FROM analyses")  # recompute the analysis from the old store's verdicts
    con.commit()
    con.close()
    (out / "results.json").unlink()
    r = run_tournament(cfg).to_json()
    assert r["run"]["new"] == {"generations": 0, "judgments": 0}
    after = json.loads((out / "results.json").read_bytes())
    before = json.loads(before)
    for d in (before, after):  # what this invocation did (new vs reused work) is not part of the analysis
        d["run"].pop("new"), d["run"].pop("reused")
    assert json.dumps(after) == json.dumps(before)


def test_cli_prints_the_mixtures_side_by_side_and_json(base, tmp_path, capsys):
    from arena.cli import main

    args = ["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge",
            "python:criteria_helpers:vector_judge", "--out", str(tmp_path / "run"), "--max-new-tokens", "6",
            "--rounds", "30", "--weights", "helpful=0.5,brief=0.5"]
    assert main(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    for needle in ("nash[helpful]", "nash[brief]", "weighted", "robust", "95% CI", "robust value interval"):
        assert needle in text
    assert "report.html" in captured.err and (tmp_path / "run" / "report.html").is_file()
    assert main(args + ["--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["kind"] == "criteria" and obj["run"]["new"]["judgments"] == 0
    assert main(args[:-2] + ["--weights", "helpful=1,honest=0"]) == 2
    assert "honest" in capsys.readouterr().err


def test_criteria_analysis_key_includes_the_generation_settings():
    """As the scalar analysis key: other generation settings are another analysis, even with equal verdicts."""
    from types import SimpleNamespace

    from arena.tournament_criteria import criteria_analysis_key

    plan = SimpleNamespace(names=("a", "b"), pairs=((0, 1),), cmp_keys=(), gen_keys=())
    config = SimpleNamespace(weights=None, rounds=10, level=0.95, prior=0.1, seed=0)
    judge = SimpleNamespace(fingerprint="j", criteria=("helpful", "brief"))

    def key(token):
        return criteria_analysis_key([], [], plan, {}, [], [], config=config, spec="s", judge=judge,
                                     keys=SimpleNamespace(token=lambda: token))

    assert key("t=1") == key("t=1") != key("t=0.7")
