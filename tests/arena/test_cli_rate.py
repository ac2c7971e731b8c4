"""`arena rate` and `arena report` end to end: JSON, terminal, --out files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arena.examples import write_cyclic_example

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SOCCER = DATA / "openspiel" / "response_graph_ucb_soccer.txt"


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory):
    return write_cyclic_example(tmp_path_factory.mktemp("pairs") / "pairs.csv", n_prompts=200, seed=0)


def test_json_is_one_object_with_the_schema(run_cli, pairs_csv):
    rc, out, err = run_cli("rate", pairs_csv, "--json", "--rounds", "50")
    assert rc == 0, err
    result = json.loads(out)  # exactly one JSON object on stdout
    assert out.strip().count("\n") == 0
    assert result["models"] == ["alpha", "beta", "delta", "gamma"]
    assert result["cycles"]["condorcet_winner"] is None
    assert {tuple(sorted(t)) for t in result["cycles"]["triangles"]} == {("alpha", "beta", "gamma")}
    assert result["nash"]["weights"]["delta"] < 1e-6
    assert result["settings"]["rounds"] == 50 and result["settings"]["ci"] == "bootstrap (cluster)"
    assert result["settings"]["file"] == str(pairs_csv)


def test_json_matches_the_library(run_cli, pairs_csv):
    from arena.analysis import analyze_records
    from arena.io_pairs import read_pairs

    rc, out, _ = run_cli("rate", pairs_csv, "--json", "--ci", "analytic", "--level", "0.9")
    assert rc == 0
    result = json.loads(out)
    expected = analyze_records(read_pairs(pairs_csv), ci="analytic", level=0.9).to_json()
    expected["settings"]["file"] = str(pairs_csv)
    from arena.report import plain_reading

    assert result.pop("reading") == plain_reading(expected)  # --json carries the reading's text
    assert result == expected


def test_jsonl_input_gives_the_same_numbers(run_cli, pairs_csv, tmp_path):
    jsonl = write_cyclic_example(tmp_path / "pairs.jsonl", n_prompts=200, seed=0)
    _, out_csv, _ = run_cli("rate", pairs_csv, "--json", "--ci", "analytic")
    rc, out_jsonl, err = run_cli("rate", jsonl, "--json", "--ci", "analytic")
    assert rc == 0, err
    a, b = json.loads(out_csv), json.loads(out_jsonl)
    a["settings"].pop("file"), b["settings"].pop("file")
    assert a == b


def test_terminal_output(run_cli, pairs_csv):
    rc, out, _ = run_cli("rate", pairs_csv, "--ci", "analytic")
    assert rc == 0
    for needle in ("Bradley–Terry", "Preference matrix", "Condorcet winner", "Nash mixture", "≻"):
        assert needle in out, needle


def test_example_flag(run_cli):
    rc, out, err = run_cli("rate", "--example", "--json", "--ci", "analytic")
    assert rc == 0, err
    result = json.loads(out)
    assert result["cycles"]["condorcet_winner"] is None and len(result["cycles"]["triangles"]) == 1


def test_out_then_report_rerenders(run_cli, pairs_csv, tmp_path):
    out_dir = tmp_path / "run"
    rc, out, err = run_cli("rate", pairs_csv, "--out", out_dir, "--json", "--rounds", "30")
    assert rc == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted(["results.json", "matrix.csv", "heatmap.png", "nash.png", "ratings.png", "report.html"])
    stored = json.loads((out_dir / "results.json").read_text())
    assert stored == json.loads(out)

    rc, text, _ = run_cli("report", out_dir)
    assert rc == 0
    a, b, c = stored["cycles"]["triangles"][0]
    assert f"{a} ≻ {b} ≻ {c} ≻ {a}" in text
    rc, again, _ = run_cli("report", out_dir, "--json")
    assert rc == 0 and json.loads(again) == stored
    (out_dir / "report.html").unlink()
    rc, _, _ = run_cli("report", out_dir, "--html")
    assert rc == 0 and "data:image/png;base64," in (out_dir / "report.html").read_text()


def test_matrix_csv_round_trip(run_cli, pairs_csv, tmp_path):
    """The matrix.csv that --out writes is itself a valid `arena rate` input."""
    out_dir = tmp_path / "run"
    assert run_cli("rate", pairs_csv, "--out", out_dir, "--ci", "analytic")[0] == 0
    rc, out, err = run_cli("rate", out_dir / "matrix.csv", "--json")
    assert rc == 0, err
    result = json.loads(out)
    stored = json.loads((out_dir / "results.json").read_text())
    assert result["models"] == stored["models"]
    assert np.allclose(result["preference"]["P"], stored["preference"]["P"], atol=1e-9)
    assert result["settings"]["input"] == "matrix"
    assert result["cycles"]["triangles"] == stored["cycles"]["triangles"]


@pytest.mark.skipif(not SOCCER.exists(), reason=f"shared data not found at {SOCCER} (only in the project workspace)")
def test_matrix_file_soccer(run_cli, tmp_path):
    P = np.loadtxt(SOCCER)
    names = [f"agent{i}" for i in range(P.shape[0])]
    path = tmp_path / "soccer.csv"
    lines = ["," + ",".join(names)] + [f"{n}," + ",".join(repr(float(x)) for x in row) for n, row in zip(names, P)]
    path.write_text("\n".join(lines) + "\n")
    rc, out, err = run_cli("rate", path, "--format", "matrix", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["models"] == names and result["preference"]["n"] is None
    assert np.allclose(result["preference"]["P"], (P + 1 - P.T) / 2, atol=1e-8)
    assert all(v["bt_ci"] is None for v in result["ratings"].values())


def test_report_errors(run_cli, tmp_path):
    rc, out, err = run_cli("report", tmp_path / "nope")
    assert rc == 2 and out == "" and err.startswith("error:") and "results.json" in err
    (tmp_path / "results.json").write_text("[1, 2]")
    rc, _, err = run_cli("report", tmp_path)
    assert rc == 2 and "re-create it" in err


# --------------------------------------------------------------------------- bad input

GOOD_ROWS = "model_a,model_b,winner\na,b,model_a\nb,c,model_a\nc,a,model_a\n"
BAD_INPUTS = {
    "missing column": ("pairs.csv", "model_a,winner\na,model_a\n", [], "model_b"),
    "unknown winner label": ("pairs.csv", "model_a,model_b,winner\na,b,model_a\nb,a,A\n", [], "winner"),
    "self-match": ("pairs.csv", "model_a,model_b,winner\na,b,model_a\na,a,tie\n", [], "self"),
    "NaN score": ("pairs.csv", "model_a,model_b,score\na,b,0.7\nb,a,nan\n", [], "score"),
    "out-of-range score": ("pairs.csv", "model_a,model_b,score\na,b,0.7\nb,a,1.5\n", [], "score"),
    "empty file": ("pairs.csv", "", [], "empty"),
    "header only": ("pairs.csv", "model_a,model_b,winner\n", [], "no rows"),
    "non-square matrix": ("m.csv", ",a,b,c\na,0.5,0.6,0.7\nb,0.4,0.5,0.3\n", ["--format", "matrix"], "square"),
    "inconsistent matrix": ("m.csv", ",a,b\na,0.5,0.9\nb,0.9,0.5\n", ["--format", "matrix"], "1 −"),
    "disconnected without prior": ("pairs.csv", "model_a,model_b,winner\na,b,model_a\nb,c,model_a\n", [], "prior"),
    "missing file": (None, None, [], "not found"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exit_2_one_line_nothing_written(run_cli, tmp_path, case):
    name, content, extra, needle = BAD_INPUTS[case]
    path = tmp_path / (name or "missing.csv")
    if content is not None:
        path.write_text(content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "results.json").write_text("previous")
    new_dir = tmp_path / "new"
    for target in (out_dir, new_dir):
        rc, out, err = run_cli("rate", path, "--out", target, "--rounds", "20", *extra)
        assert rc == 2, (case, out, err)
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), err
        assert needle.lower() in lines[0].lower(), lines[0]
    assert sorted(p.name for p in out_dir.iterdir()) == ["results.json"]
    assert (out_dir / "results.json").read_text() == "previous"
    assert not new_dir.exists()
    expected = {"out"} | ({path.name} if content is not None else set())
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temporary or new directory left


def test_disconnected_graph_names_the_models_and_the_prior(run_cli, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("model_a,model_b,winner\nalpha,beta,model_a\nbeta,gamma,model_a\n")
    rc, _, err = run_cli("rate", path)
    assert rc == 2 and "gamma" in err and "alpha" in err and "--prior" in err
    rc, out, err = run_cli("rate", path, "--prior", "0.5", "--json", "--ci", "analytic")
    assert rc == 0, err
    r = json.loads(out)["ratings"]
    assert r["alpha"]["bt"] > r["beta"]["bt"] > r["gamma"]["bt"]


def test_matrix_with_certain_outcomes_needs_a_prior(run_cli, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(",a,b,c\na,0.5,1,1\nb,0,0.5,1\nc,0,0,0.5\n")
    assert run_cli("rate", path)[0] == 2
    rc, out, err = run_cli("rate", path, "--prior", "0.1", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["ratings"]["a"]["bt"] > r["ratings"]["b"]["bt"] > r["ratings"]["c"]["bt"]
    assert r["nash"]["weights"]["a"] == 1.0


def test_good_rows_pass(run_cli, tmp_path):
    """The bad-input cases differ from a valid file only in the fault they carry."""
    path = tmp_path / "pairs.csv"
    path.write_text(GOOD_ROWS)
    rc, out, err = run_cli("rate", path, "--json", "--ci", "analytic")
    assert rc == 0, err
    assert json.loads(out)["cycles"]["triangles"] == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "args",
    [["--level", "1.2"], ["--rounds", "0"], ["--prior", "-1"]],
)
def test_bad_options_exit_2(run_cli, pairs_csv, args):
    rc, out, err = run_cli("rate", pairs_csv, *args)
    assert rc == 2 and out == "" and err.startswith("error:")
