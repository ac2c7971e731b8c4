"""Rendering of analysis results: terminal tables, files, HTML, atomic writes.

These tests use hand-written results in their JSON form (`arena.result.Result.to_json`; the
renderers type them with `Result.from_json`), so they check the rendering alone;
`test_analysis.py` checks the numbers. `cyclic_result` has no `schema` key, so it reads as
schema 1 (no significance checks).
"""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest
from rich.console import Console

from arena.errors import InputError
from arena import report as report_mod
from arena.report import OUTPUT_FILES, load_result, plain_reading, render_terminal, validate_result, write_outputs
from arena.result import Result

MODELS = ["alpha", "beta", "gamma", "delta"]


def cyclic_result() -> dict:
    """alpha ≻ beta ≻ gamma ≻ alpha, delta beaten by all; BT puts alpha first."""
    P = [[0.5, 0.62, 0.42, 0.84], [0.38, 0.5, 0.7, 0.83], [0.58, 0.3, 0.5, 0.81], [0.16, 0.17, 0.19, 0.5]]
    lo = [[0.5, 0.57, 0.37, 0.8], [0.33, 0.5, 0.65, 0.79], [0.46, 0.25, 0.5, 0.77], [0.12, 0.13, 0.15, 0.5]]
    hi = [[0.5, 0.67, 0.54, 0.88], [0.43, 0.5, 0.75, 0.87], [0.63, 0.35, 0.5, 0.85], [0.16, 0.21, 0.23, 0.5]]
    return {
        "models": list(MODELS),
        "ratings": {
            "alpha": {"bt": 0.35, "elo": 1060.8, "bt_ci": [0.25, 0.45], "elo_ci": [1043.4, 1078.2], "win_rate": 0.627},
            "beta": {"bt": 0.30, "elo": 1052.1, "bt_ci": [0.2, 0.4], "elo_ci": [1034.7, 1069.5], "win_rate": 0.637},
            "gamma": {"bt": 0.27, "elo": 1046.9, "bt_ci": [0.17, 0.37], "elo_ci": [1029.5, 1064.3], "win_rate": 0.563},
            "delta": {"bt": -0.92, "elo": 840.2, "bt_ci": [-1.05, -0.8], "elo_ci": [817.6, 861.0], "win_rate": 0.173},
        },
        "preference": {"models": list(MODELS), "P": P, "n": [[0 if i == j else 400 for j in range(4)] for i in range(4)], "lo": lo, "hi": hi},
        "cycles": {
            "triangles": [["alpha", "beta", "gamma"]],
            "condorcet_winner": None,
            "cyclic_share": 0.21,
            "components": [["alpha", "beta", "gamma"], ["delta"]],
        },
        "nash": {
            "weights": {"alpha": 0.5, "beta": 0.2, "gamma": 0.3, "delta": 0.0},
            "scores": {"alpha": 0.0, "beta": 0.0, "gamma": 0.0, "delta": -0.33},
            "exploitability": 1e-12,
        },
        "settings": {"input": "pairs", "records": 2400, "rounds": 1000, "seed": 0, "level": 0.9,
                     "prior": 0.0, "ci": "bootstrap (cluster)", "significant": False},
    }


def transitive_result() -> dict:
    """beta beats everyone; no cycle; a matrix input (no counts) as schema 2 writes it, whose
    Condorcet winner is the point estimate."""
    r = cyclic_result()
    r["schema"] = 2
    P = [[0.5, 0.4, 0.6, 0.8], [0.6, 0.5, 0.7, 0.8], [0.4, 0.3, 0.5, 0.7], [0.2, 0.2, 0.3, 0.5]]
    r["preference"].update(P=P, lo=P, hi=P, n=None)
    r["cycles"] = {"triangles": [], "condorcet_winner": "beta", "cyclic_share": 0.0,
                   "components": [["beta"], ["alpha"], ["gamma"], ["delta"]]}
    r["nash"]["weights"] = {"alpha": 0.0, "beta": 1.0, "gamma": 0.0, "delta": 0.0}
    for m, bt in zip(MODELS, (0.2, 0.5, -0.1, -0.6)):
        r["ratings"][m]["bt"] = bt
        r["ratings"][m]["elo"] = 1000 + 173.7 * bt
        r["ratings"][m]["bt_ci"] = r["ratings"][m]["elo_ci"] = None
    r["settings"] = {"input": "matrix", "level": None, "ci": "none"}
    return r


def _text(result, width=120) -> str:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    render_terminal(result, console)
    return console.export_text()


# --------------------------------------------------------------------------- terminal


def test_terminal_shows_ratings_in_bt_order_with_intervals_and_nash():
    text = _text(cyclic_result())
    rows = [line for line in text.splitlines() if line.startswith("│ ") and "[" in line]
    assert [r.split("│")[2].strip() for r in rows] == ["alpha", "beta", "gamma", "delta"]
    assert "[1043, 1078]" in text and "90% interval" in text  # the level comes from settings
    assert "bootstrap (cluster)" in text


def test_terminal_cycles_and_no_condorcet_winner():
    text = _text(cyclic_result())
    assert "alpha ≻ beta ≻ gamma ≻ alpha" in text
    assert "(P = 0.62, 0.70, 0.58)" in text
    assert "none: the top component has 3 models (alpha, beta, gamma)" in text
    assert "21.0%" in text


def test_terminal_significance_marks_only_where_interval_excludes_half():
    text = _text(cyclic_result())
    row_gamma = next(line for line in text.splitlines() if "3 gamma" in line)
    # gamma over alpha: interval [0.46, 0.63] contains ½, so no mark; gamma over delta is marked.
    assert ".58 " in row_gamma and ".58*" not in row_gamma
    assert ".81*" in row_gamma
    # Matrix input has no counts: no marks at all.
    other = _text(transitive_result())
    matrix = other[other.index("Preference matrix"):other.index("P(row ≻ column)")]
    assert ".70" in matrix and "*" not in matrix


def test_matrix_fits_the_console_width():
    r = cyclic_result()
    wide, narrow = _text(r, width=120), _text(r, width=30)
    assert "top 4 of 4" not in wide and "top 2 of 4" in " ".join(narrow.split())
    assert all(len(line) <= 30 for line in narrow[narrow.index("Preference"):narrow.index("Cycles")].splitlines())


def test_never_compared_pairs_are_shown_as_such():
    r = cyclic_result()
    r["preference"]["n"][1][3] = r["preference"]["n"][3][1] = 0  # beta and delta never met
    r["preference"]["P"][1][3] = r["preference"]["P"][3][1] = 0.5
    assert "never compared" not in _text(cyclic_result())
    text = _text(r)
    row_beta = next(line for line in text.splitlines() if "2 beta" in line)
    assert row_beta.split()[-1] == "–" and "never compared" in text
    row_alpha = next(line for line in text.splitlines() if "1 alpha" in line)
    assert row_alpha.split()[-1] == ".84*"


def test_terminal_nash_bars_sorted_by_weight_and_zero_weight_listed():
    text = _text(cyclic_result())
    nash = text[text.index("Nash mixture"):]
    lines = [line.strip() for line in nash.splitlines()[1:4]]
    assert [line.split()[0] for line in lines] == ["alpha", "gamma", "beta"]
    assert lines[0].count("█") > lines[1].count("█") > lines[2].count("█")
    assert "no weight: delta" in nash


def test_terminal_condorcet_winner_and_transitive_reading():
    text = _text(transitive_result())
    assert "Condorcet winner: beta" in text
    assert "no cyclic triangles" in text
    reading = plain_reading(transitive_result())
    assert "transitive" in reading and "beta" in reading


def test_reading_names_the_model_that_beats_the_bt_leader():
    reading = plain_reading(cyclic_result())
    assert "Bradley–Terry ranks alpha top" in reading
    assert "gamma beats alpha head to head (P = 0.58)" in reading
    assert "delta" in reading and "alpha (50%)" in reading


def test_reading_says_whether_the_cycle_is_significant():
    r = cyclic_result()
    assert "None of the cycles is significant at the 90% level" in plain_reading(r)
    r["preference"]["lo"][2][0], r["preference"]["hi"][0][2] = 0.52, 0.48  # gamma ≻ alpha now significant
    assert "The cycle is significant at the 90% level" in plain_reading(r)
    r["preference"]["n"] = None  # matrix input: nothing to say about significance
    assert "significant" not in plain_reading(r)


def test_triangles_listed_strongest_first():
    r = cyclic_result()
    r["cycles"]["triangles"] = [["alpha", "delta", "gamma"], ["alpha", "beta", "gamma"]]  # first one is weak
    P = r["preference"]["P"]
    P[3][2], P[2][3] = 0.51, 0.49  # delta ≻ gamma barely
    P[0][3], P[3][0] = 0.505, 0.495  # alpha ≻ delta barely
    text = _text(r)
    assert text.index("alpha ≻ beta ≻ gamma ≻ alpha") < text.index("alpha ≻ delta ≻ gamma ≻ alpha")
    assert "strongest first" in text


def test_terminal_renders_optional_sections_only_when_present():
    plain = _text(cyclic_result())
    assert "Run" not in plain.split("Bradley–Terry")[0]
    r = cyclic_result()
    r["run"] = {"generations": 120, "judgments": 600, "reused": 48, "failures": {"timeout": 2, "parse": 1}}
    r["judge"] = {"spec": "python:pkg.mod:fn", "fingerprint": "abc123", "position_consistency": 0.931,
                  "first_position_rate": 0.52, "failures": 2}
    r["checkpoints"] = {"alpha": {"algorithm": "sft", "parent": None},
                        "beta": {"algorithm": "nash-mp", "parent": "alpha", "config": {"beta": 0.1}}}
    text = _text(r)
    head = text.split("Bradley–Terry")[0]
    for needle in ("generations", "600", "reused", "48", "timeout: 2, parse: 1", "python:pkg.mod:fn", "93.1%",
                   "52.0%", "nash-mp"):
        assert needle in head, needle


def test_terminal_prints_names_literally():
    r = cyclic_result()
    weird = "[red]x[/red]:smile:"
    r = json.loads(json.dumps(r).replace('"alpha"', json.dumps(weird)))
    assert weird in _text(r)


def test_large_matrix_is_truncated_in_terminal():
    n = 20
    models = [f"m{i:02d}" for i in range(n)]
    P = [[0.5 if i == j else (0.7 if i < j else 0.3) for j in range(n)] for i in range(n)]
    r = {
        "models": models,
        "ratings": {m: {"bt": -i / 10, "elo": 1000 - i, "bt_ci": None, "elo_ci": None, "win_rate": 0.5} for i, m in enumerate(models)},
        "preference": {"models": models, "P": P, "n": None, "lo": P, "hi": P},
        "cycles": {"triangles": [], "condorcet_winner": "m00", "cyclic_share": 0.0, "components": [[m] for m in models]},
        "nash": {"weights": {m: 1.0 if i == 0 else 0.0 for i, m in enumerate(models)}, "scores": {}, "exploitability": 0.0},
    }
    text = _text(r, width=200)
    assert f"top {report_mod.MAX_MATRIX} of {n}" in text
    assert "m19" in text  # still in the ratings table


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("nash"),
        lambda r: r.__setitem__("models", []),
        lambda r: r["preference"]["P"].pop(),
        lambda r: r["ratings"].pop("delta"),
        lambda r: r["nash"]["weights"].pop("beta"),
    ],
)
def test_validate_result_rejects_malformed(mutate):
    r = cyclic_result()
    mutate(r)
    with pytest.raises(InputError, match="re-create it"):
        validate_result(r)


# --------------------------------------------------------------------------- files


class _Balance(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.imgs, self.external = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(attrs[key])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def test_write_outputs_writes_every_file(tmp_path):
    out = tmp_path / "run"
    result = cyclic_result()
    assert write_outputs(result, out) == out
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    # the typed form: every field present (null when unknown), the schema-1 winner upgraded
    assert json.loads((out / "results.json").read_text()) == Result.from_json(result).to_json()
    rows = list(csv.reader((out / "matrix.csv").open()))
    assert rows[0] == ["", *MODELS]
    assert [r[0] for r in rows[1:]] == MODELS
    assert float(rows[3][1]) == pytest.approx(0.58)  # gamma over alpha: rows beat columns
    for name in ("heatmap.png", "nash.png", "ratings.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    parser = _Balance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    assert len(parser.imgs) == 3 and all(s.startswith("data:image/png;base64,") for s in parser.imgs)
    assert parser.external == []
    assert "<style>" in page and "alpha ≻ beta ≻ gamma ≻ alpha" in page
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary left behind


def test_write_outputs_escapes_html(tmp_path):
    r = json.loads(json.dumps(cyclic_result()).replace('"alpha"', '"<script>x</script>"'))
    write_outputs(r, tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_write_outputs_keeps_existing_content_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("old")
    (out / "store.sqlite").write_text("keep me")

    def boom(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report_mod, "_ratings_png", boom)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_outputs(cyclic_result(), out)
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "store.sqlite"]
    assert (out / "results.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_write_outputs_replaces_files_and_keeps_others(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("old")
    (out / "store.sqlite").write_text("keep me")
    write_outputs(cyclic_result(), out)
    assert (out / "store.sqlite").read_text() == "keep me"
    assert json.loads((out / "results.json").read_text())["models"] == MODELS


def test_write_outputs_refuses_non_strict_json(tmp_path):
    r = cyclic_result()
    r["cycles"]["cyclic_share"] = float("nan")
    with pytest.raises(InputError, match="strict JSON"):
        write_outputs(r, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_load_result_round_trip_and_errors(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        load_result(tmp_path / "missing")
    with pytest.raises(InputError, match="results.json not found"):
        load_result(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_result(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"models": ["a"]}))
    with pytest.raises(InputError, match="lacks"):
        load_result(tmp_path)
    write_outputs({**transitive_result(), "schema": 1}, tmp_path / "run")
    loaded = load_result(tmp_path / "run")
    # an old-form (schema 1) result is upgraded: its unchecked winner is only the point-estimate one
    assert loaded.schema == 1 and loaded.cycles.majority_winner == "beta"
    assert loaded.cycles.condorcet_winner is None and loaded.cycles.top_set is None
    assert loaded.ratings["beta"].rank_interval is None and loaded.nash.intervals is None
    assert loaded.preference.P == transitive_result()["preference"]["P"]
    assert load_result(tmp_path / "run") == loaded


def test_cyclic_share_says_how_unanimous_pairs_were_read():
    r = cyclic_result()
    assert "unanimous" not in _text(r) and "unanimous" not in plain_reading(r)
    P = r["preference"]["P"]
    P[0][3], P[3][0] = 1.0, 0.0  # alpha won every game against delta
    P[1][3], P[3][1] = 1.0, 0.0
    text = " ".join(_text(r).split())
    assert "cyclic share of the log-odds flow (HodgeRank): 21.0%" in text
    assert "2 unanimous pairs (P = 0 or 1) enter as log-odds of at least 13.8" in text
    assert "2 unanimous pairs" in plain_reading(r)
    r["preference"]["n"][0][3] = r["preference"]["n"][3][0] = 0  # never compared: not unanimous
    assert "1 unanimous pair (P = 0 or 1) enters" in " ".join(_text(r).split())


def test_arena_report_reads_an_old_form_results_file(tmp_path, capsys):
    """A results.json as schema 1 wrote it (no schema-2 fields, an unchecked Condorcet winner)."""
    from arena.cli import main

    old = cyclic_result()
    old["schema"] = 1
    old["cycles"]["condorcet_winner"] = "gamma"  # what schema 1 printed from point estimates
    run = tmp_path / "old"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(old))
    assert main(["report", str(run)]) == 0
    text = capsys.readouterr().out
    assert "Condorcet winner: none" in text and "older arena without significance checks" in text
    assert main(["report", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == 1 and out["cycles"]["majority_winner"] == "gamma"
    assert "On the point estimates (this result was written by an older arena" in out["reading"]
    with pytest.raises(InputError, match="schema 7"):
        validate_result({**old, "schema": 7})


def test_result_type_round_trips_the_analysis_output():
    from arena.analysis import analyze_records
    from arena.core.records import make_records
    from arena.result import SCHEMA_VERSION, Result

    records = make_records(["a", "b", "c"] * 20, ["b", "c", "a"] * 20, [1.0, 1.0, 1.0] * 15 + [0.0, 0.0, 0.0] * 5,
                           cluster=list(range(60)))
    r = analyze_records(records, rounds=50, seed=0).to_json()
    typed = Result.from_json(r)
    assert typed.schema == SCHEMA_VERSION == 2 and typed.ratings["a"].rank_interval is not None
    assert typed.to_json() == r
    with pytest.raises(AttributeError):
        typed.schema = 1  # frozen
