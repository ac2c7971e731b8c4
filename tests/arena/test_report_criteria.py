"""Files and `arena report` for multi-criteria results (`arena.report_criteria`): results.json,
matrix_<criterion>.csv, mixtures.png and report.html written all or nothing; the HTML carries the
numbers the terminal prints, escaped; `arena report` reads a criteria run, also one written before
the weighted mixture had intervals."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from arena import report_criteria as rc_mod
from arena.core.records import make_records
from arena.criteria import analyze_criteria
from arena.errors import InputError
from arena.report import _rgb
from arena.report_criteria import matrix_file, render_criteria_html, render_criteria_terminal, write_criteria_outputs

# rock-paper-scissors plus a dominated d, and its mirror (as tests/arena/test_criteria_intervals.py)
RPS = np.array([[0.5, 0.8, 0.2, 0.9], [0.2, 0.5, 0.8, 0.9], [0.8, 0.2, 0.5, 0.9], [0.1, 0.1, 0.1, 0.5]])
MIRROR = np.array([[0.5, 0.2, 0.8, 0.9], [0.8, 0.5, 0.2, 0.9], [0.2, 0.8, 0.5, 0.9], [0.1, 0.1, 0.1, 0.5]])
DATA = Path(__file__).resolve().parents[1] / "data" / "criteria"
MODELS = ("<b>x</b>", "b", "c", "d")  # a name that must be escaped
WEIGHTED_NEW = ("weights_interval", "criterion_values_interval", "rounds", "level", "ci")  # added by f077300


def _records(P, *, prompts, seed, models):
    """Records over every pair with Bernoulli(P[i, j]) outcomes, one cluster id per prompt."""
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(len(models)) for j in range(i + 1, len(models))]
    a, b, s, cl = [], [], [], []
    for p in range(prompts):
        for i, j in pairs:
            a.append(models[i]), b.append(models[j]), cl.append(p), s.append(float(rng.random() < P[i, j]))
    return make_records(a, b, s, cluster=cl, models=list(models))


@pytest.fixture(scope="module")
def result():
    """helpful (rock-paper-scissors) against harmless (its mirror): the criteria conflict."""
    return analyze_criteria({"helpful": _records(RPS, prompts=30, seed=1, models=MODELS),
                             "harmless": _records(MIRROR, prompts=30, seed=2, models=MODELS)},
                            weights={"helpful": 0.3, "harmless": 0.7}, rounds=30, seed=1)


def _older(result) -> dict:
    """The result as the version before weighted intervals wrote it."""
    old = copy.deepcopy(result)
    for key in WEIGHTED_NEW:
        del old["weighted"][key]
    return old


def _terminal(result) -> str:
    buf = io.StringIO()
    render_criteria_terminal(result, Console(file=buf, width=200))
    return buf.getvalue()


# --- files ---------------------------------------------------------------------------------


def test_write_criteria_outputs_writes_every_file(result, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "arena.sqlite").write_text("keep me")
    write_criteria_outputs(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["arena.sqlite", "matrix_harmless.csv", "matrix_helpful.csv",
                                                     "mixtures.png", "report.html", "results.json"]
    assert (out / "arena.sqlite").read_text() == "keep me"
    assert json.loads((out / "results.json").read_text()) == result
    assert (out / "mixtures.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each criterion's matrix in the scalar matrix.csv layout: header row of models, one row per model
    for c in ("helpful", "harmless"):
        rows = list(csv.reader((out / f"matrix_{c}.csv").read_text().splitlines()))
        assert rows[0] == ["", *MODELS] and [r[0] for r in rows[1:]] == list(MODELS)
        got = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
        np.testing.assert_array_equal(got, np.array(result["criteria"][c]["preference"]["P"]))
    # the two criteria's matrices are mirror images on the a-b-c cycle, so a swapped file would show
    helpful = np.array(result["criteria"]["helpful"]["preference"]["P"])
    harmless = np.array(result["criteria"]["harmless"]["preference"]["P"])
    assert helpful[0, 1] > 0.6 and harmless[0, 1] < 0.4


def test_nothing_is_left_when_writing_fails_midway(result, tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("old")
    (out / "arena.sqlite").write_text("keep me")

    def boom(*args, **kwargs):  # after results.json, the matrices and the plot were built
        raise RuntimeError("html failed")

    monkeypatch.setattr(rc_mod, "render_criteria_html", boom)
    with pytest.raises(RuntimeError, match="html failed"):
        write_criteria_outputs(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["arena.sqlite", "results.json"]
    assert (out / "results.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary directory left beside it


def test_write_refuses_a_malformed_result_before_writing(result, tmp_path):
    bad = copy.deepcopy(result)
    del bad["robust"]
    with pytest.raises(InputError, match="'robust'"):
        write_criteria_outputs(bad, tmp_path / "run")
    nan = copy.deepcopy(result)
    nan["robust"]["value"] = float("nan")
    with pytest.raises(InputError, match="strict JSON"):
        write_criteria_outputs(nan, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_matrix_file_names_stay_inside_and_apart():
    assert matrix_file("helpful") == "matrix_helpful.csv"
    odd = [matrix_file(c) for c in ("a b", "a_b", "a/b", "../x", "ünï")]
    assert len(set(odd)) == len(odd)
    assert all("/" not in f and not f.startswith("matrix_.") and f.endswith(".csv") for f in odd)


# --- the HTML ------------------------------------------------------------------------------


def test_html_has_the_numbers_of_the_result_and_escapes_names(result):
    page = render_criteria_html(result)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    # self-contained: no script, no external resource
    assert "<script" not in page and "http://" not in page and "https://" not in page and "<link" not in page
    r, w = result["robust"], result["weighted"]
    for m in MODELS:
        lo, hi = r["weights_interval"][m]
        assert f"<td>{r['weights'][m]:.3f}</td>" in page and f"[{lo:.3f}, {hi:.3f}]" in page
        lo, hi = w["weights_interval"][m]
        assert f"[{lo:.3f}, {hi:.3f}]" in page
    for c in ("helpful", "harmless"):
        lo, hi = w["criterion_values_interval"][c]
        assert f"[{lo:.3f}, {hi:.3f}]" in page
        for label, g in result["guarantees"].items():
            assert f"<td>{g[c]:.3f}</td>" in page, (label, c)
        # Elo with its interval, per criterion
        rating = result["criteria"][c]["ratings"]["b"]
        assert f"{rating['elo']:.0f} [{rating['elo_ci'][0]:.0f}, {rating['elo_ci'][1]:.0f}]" in page
        # the criterion's matrix, coloured by the scalar report's colouring
        p = result["criteria"][c]["preference"]["P"][0][1]
        red, green, blue = _rgb(p)
        assert f'<td style="background:rgb({red},{green},{blue})">{p:.2f}' in page
        assert f"Preference matrix on {c}" in page and matrix_file(c) in page
    lo, hi = r["value_interval"]
    assert f"robust value {r['value']:.4f}" in page and f"[{lo:.4f}, {hi:.4f}]" in page
    assert f"same in {100 * r['binding_stability']:.0f}%" in page
    assert "weights: helpful=0.3, harmless=0.7" in page
    assert "weighted 95% CI" in page and "robust 95% CI" in page
    # every line the terminal prints about the robust mixture is in the page, escaped
    for line in _terminal(result).splitlines():
        if line.startswith(("robust value", "weights:")):
            assert line.strip().replace("&", "&amp;").replace(">", "&gt;") in page, line


def test_html_of_an_older_result_has_no_weighted_intervals(result):
    page = render_criteria_html(_older(result))
    assert "robust 95% CI" in page and "weighted 95% CI" not in page
    assert f"<td>{result['weighted']['nash']['weights']['b']:.3f}</td>" in page


# --- arena rate --out and arena report -----------------------------------------------------


def test_rate_out_and_report_terminal_json_html(run_cli, tmp_path):
    out = tmp_path / "out"
    rc, _, err = run_cli("rate", DATA / "long.csv", "--rounds", "20", "--prior", "0.1",
                      "--weights", "helpful=0.5,safe=0.5", "--out", out)
    assert rc == 0, err
    assert {"results.json", "matrix_helpful.csv", "matrix_safe.csv", "mixtures.png", "report.html"} <= {
        p.name for p in out.iterdir()}
    stored = (out / "results.json").read_bytes()
    # terminal: the side-by-side table
    rc, text, err = run_cli("report", out)
    assert rc == 0, err
    for label in ("nash[helpful]", "nash[safe]", "weighted", "robust", "on safe", "binding", "Elo per criterion"):
        assert label in text, label
    assert f"robust value {json.loads(stored)['robust']['value']:.4f}" in text
    # --json: the stored object, one line
    rc, text, err = run_cli("report", out, "--json")
    assert rc == 0, err
    assert text.strip().count("\n") == 0 and json.loads(text) == json.loads(stored)
    # --html: the outputs come back from results.json alone; results.json itself is unchanged
    for name in ("report.html", "matrix_helpful.csv", "matrix_safe.csv", "mixtures.png"):
        (out / name).unlink()
    rc, _, err = run_cli("report", out, "--html")
    assert rc == 0, err
    assert "report.html" in err
    assert (out / "results.json").read_bytes() == stored
    assert {"report.html", "matrix_helpful.csv", "matrix_safe.csv", "mixtures.png"} <= {p.name for p in out.iterdir()}
    assert "nash[safe]" in (out / "report.html").read_text()
    # the reading comes from this version's rules, not from the file (as for scalar runs)
    old = json.loads(stored)
    (out / "results.json").write_text(json.dumps({**old, "reading": "an older version's words"}))
    rc, text, err = run_cli("report", out, "--json")
    assert rc == 0, err
    assert json.loads(text)["reading"] == old["reading"] != "an older version's words"


def test_report_reads_a_result_written_before_weighted_intervals(run_cli, result, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(_older(result)))
    rc, text, err = run_cli("report", out, "--html")
    assert rc == 0, err
    top = next(line for line in text.splitlines() if line.startswith("┏"))
    assert top.count("┳") == 5  # model, nash[helpful], nash[harmless], weighted, robust, robust CI: no weighted CI
    assert "weights: helpful=0.3, harmless=0.7" in text
    assert (out / "report.html").is_file() and (out / "matrix_helpful.csv").is_file()
    rc, text, err = run_cli("report", out, "--json")
    assert rc == 0, err
    assert "weights_interval" not in json.loads(text)["weighted"]


def test_report_refuses_a_broken_criteria_result(run_cli, result, tmp_path):
    out = tmp_path / "broken"
    out.mkdir()
    bad = copy.deepcopy(result)
    del bad["guarantees"]
    (out / "results.json").write_text(json.dumps(bad))
    rc, _, err = run_cli("report", out, "--html")
    assert rc == 2 and "guarantees" in err
    assert [p.name for p in out.iterdir()] == ["results.json"]


def test_html_of_a_tournament_shows_run_judge_and_checkpoints(result):
    """A vector tournament adds run, judge and checkpoints (arena.tournament_criteria): shown, escaped."""
    r = copy.deepcopy(result)
    r["run"] = {"generations": 24, "judgments": 96, "comparisons": 48, "failures": {"helpful": 0, "harmless": 3}}
    r["judge"] = {"spec": "python:j:<v>", "criteria": ["helpful", "harmless"],
                  "position_consistency": {"helpful": 0.875, "harmless": 0.625}}
    r["checkpoints"] = {"<b>x</b>": {"fingerprint": "abc123", "kind": "hf"}}
    page = render_criteria_html(r)
    assert "<h2>Run</h2>" in page and "<h2>Judge</h2>" in page and "<h2>Checkpoints</h2>" in page
    assert "helpful: 0, harmless: 3" in page and "helpful: 0.875, harmless: 0.625" in page
    assert "python:j:&lt;v&gt;" in page and "<v>" not in page and "fingerprint: abc123" in page
