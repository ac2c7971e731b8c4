"""Battle browser in the multi-criteria report.html (arena.report_browser on a vector judge's run):
every criterion's verdict per battle as stored, the weighted combination, matrix cells linked to
existing anchors, escaping, and `arena report --html` with and without the run store."""

from __future__ import annotations

import html as _html
import re
import shutil
import sqlite3

import pytest

from arena.report_browser import Battle, combine, pick_battles
from arena.store import Judgment, flip
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

WEIGHTS = {"helpful": 0.7, "brief": 0.3}
EVIL = "<script>alert(\"pwn\")</script> it's"




@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("critbrowser")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    (root / "prompts.txt").write_text("".join(f"Tell me <b>{w}</b> & 'more' \"now\"\n"
                                              for w in ("cats", "rain", "maps", "tea", "code")))
    result = run_tournament(TournamentConfig(ckpts_dir=ckpts, prompts=root / "prompts.txt",
                                             judge="python:criteria_helpers:vector_judge", out=root / "run",
                                             max_new_tokens=8, rounds=20, batch_size=4,
                                             weights=tuple(WEIGHTS.items())))
    return root / "run", result


def _sections(page):
    return dict(re.findall(r'<details id="(battles-\d+-\d+)">(.*?)</details>', page, re.S))


def _stored(out, result):
    """{(prompt text, sample, fp_a, fp_b): {criterion: Judgment oriented from fp_a}} from the store."""
    con = sqlite3.connect(out / "arena.sqlite")
    try:
        texts = dict(con.execute("SELECT hash, text FROM prompts"))
        rows = con.execute("SELECT prompt, sample, a, b, criterion, p, p_ab, p_ba, error FROM criterion_judgments "
                           "WHERE judge=?", (result["judge"]["fingerprint"],)).fetchall()
    finally:
        con.close()
    table: dict = {}
    for pr, s, a, b, c, *v in rows:
        table.setdefault((texts[pr], s, a, b), {})[c] = Judgment(*v)
        table.setdefault((texts[pr], s, b, a), {})[c] = flip(Judgment(*v))
    return table


def _num(x):
    return None if x == "—" else float(x)


def _verdict_rows(battle_html):
    """{row label: (a shown first, b shown first, mean) or the failure text} of one battle's verdict table."""
    table = re.search(r'<table class="verdicts">(.*?)</table>', battle_html, re.S).group(1)
    out = {}
    for label, cells in re.findall(r'<tr(?: class="dim")?><td class="name">([^<]*)</td>(.*?)</tr>', table, re.S):
        failed = re.fullmatch(r'<td colspan="3">failed: (.*)</td>', cells)
        if failed:
            out[_html.unescape(label)] = _html.unescape(failed.group(1))
        else:
            ab, ba, mean = re.fullmatch(r"<td>([^<]*)</td><td>([^<]*)</td><td><b>([^<]*)</b></td>", cells).groups()
            out[_html.unescape(label)] = (_num(ab), _num(ba), _num(mean))
    return out


def test_each_battle_shows_every_criterion_as_stored_and_the_weighted_verdict(run):
    out, result = run
    page = (out / "report.html").read_text(encoding="utf-8")
    sections = _sections(page)
    assert set(sections) == {"battles-0-1", "battles-0-2", "battles-1-2"}
    models = result["models"]
    fps = [result["checkpoints"][m]["fingerprint"] for m in models]
    stored = _stored(out, result)
    label = "weighted 0.7·helpful + 0.3·brief"
    checked = failures = 0
    for ident, body in sections.items():
        i, k = map(int, ident.split("-")[1:])
        assert f"<b>{models[i]}</b> vs <b>{models[k]}</b>" in body and "3 of 5 comparisons" in body
        for c in WEIGHTS:  # the pair's cell of each criterion's matrix heads the pair
            P = result["criteria"][c]["preference"]["P"][i][k]
            assert f"P_{c}({models[i]} ≻ {models[k]}) = {P:.2f}" in body
        battles = re.findall(r'<div class="battle">(.*?)</div>', body, re.S)
        assert len(battles) == 3
        combined = []
        for battle in battles:
            prompt = _html.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", battle, re.S).group(1))
            sample = int(re.search(r"prompt \(sample (\d+)\)", battle).group(1))
            per = stored[(prompt, sample, fps[i], fps[k])]       # oriented from models[i], as the page
            rows = _verdict_rows(battle)
            assert list(rows) == ["helpful", "brief", label]
            for c, j in per.items():
                if j.p is None:
                    assert rows[c] == j.error
                    failures += 1
                    continue
                assert rows[c] == pytest.approx((j.p_ab, j.p_ba, j.p), abs=0.005)
                checked += 1
            if any(j.p is None for j in per.values()):
                assert rows[label].startswith("brief: ")       # the combination fails with its criterion
                combined.append(None)
            else:
                w = {f: sum(WEIGHTS[c] * getattr(per[c], f) for c in WEIGHTS) for f in ("p_ab", "p_ba", "p")}
                assert rows[label] == pytest.approx((w["p_ab"], w["p_ba"], w["p"]), abs=0.005)
                combined.append(w["p"])
        # the first battle is models[i]'s clearest win on the weighted preference (over every comparison)
        all_w = [sum(WEIGHTS[c] * v[c].p for c in WEIGHTS) for (t, s, a, b), v in stored.items()
                 if (a, b) == (fps[i], fps[k]) and all(x.p is not None for x in v.values())]
        assert combined[0] == pytest.approx(max(all_w), abs=1e-12) and combined[1] == pytest.approx(min(all_w))
    assert checked >= 12 and failures >= 1  # a failed criterion is shown as such, not as a tie


def test_matrix_cells_link_to_existing_battles(run):
    out, result = run
    page = (out / "report.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'id="(battles-\d+-\d+)"', page))
    for c in WEIGHTS:  # each criterion's matrix: every off-diagonal cell links to its pair
        matrix = re.search(rf"Preference matrix on {c}: P\(row ≻ column\)</h2>(.*?)</table>", page, re.S).group(1)
        links = re.findall(r'<a href="#(battles-\d+-\d+)" title="sample battles">', matrix)
        assert len(links) == 6 and set(links) == ids == {"battles-0-1", "battles-0-2", "battles-1-2"}
    # the link of the row-alpha, column-gamma cell goes to that pair (the matrix rows are ordered by rating)
    models = result["models"]
    matrix = re.search(r"Preference matrix on helpful: P\(row ≻ column\)</h2>(.*?)</table>", page, re.S).group(1)
    order = re.findall(r'<td class="name">\d+ (\w+)</td>', matrix)
    row = re.findall(r"<tr><td class=\"name\">\d+ alpha</td>(.*?)</tr>", matrix, re.S)[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    g = order.index("gamma")
    want = f"battles-{min(models.index('alpha'), models.index('gamma'))}-{max(models.index('alpha'), models.index('gamma'))}"
    assert f'href="#{want}"' in cells[g]
    P = result["criteria"]["helpful"]["preference"]["P"][models.index("alpha")][models.index("gamma")]
    assert f">{P:.2f}" in cells[g]


def test_report_html_escapes_responses_and_prompts(run, tmp_path):
    from arena.cli import main

    out, result = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    con = sqlite3.connect(copy / "arena.sqlite")
    con.execute("UPDATE generations SET text=?", (EVIL,))   # every response, so the shown ones too
    con.commit()
    con.close()
    assert main(["report", str(copy), "--html"]) == 0
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<b>cats</b>" not in page
    assert _html.escape(EVIL) in page and "Tell me &lt;b&gt;cats&lt;/b&gt; &amp; &#x27;more&#x27; &quot;now&quot;" in page
    assert len(_sections(page)) == 3


def test_results_json_alone_renders_without_a_browser(run, tmp_path, capsys):
    from arena.cli import main

    out, _ = run
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "results.json", alone / "results.json")
    assert main(["report", str(alone), "--html"]) == 0
    assert "report.html" in capsys.readouterr().err
    page = (alone / "report.html").read_text(encoding="utf-8")
    assert "Sample battles" not in page and 'href="#battles' not in page and "<details" not in page
    assert page.count('<table class="matrix">') == 2 and "<h2>Generation settings</h2>" in page
    assert not (alone / "arena.sqlite").exists()  # nothing created on the way


def test_a_run_with_the_store_rerenders_the_same_browser(run, tmp_path):
    from arena.cli import main

    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy), "--html"]) == 0
    fresh, first = (copy / "report.html").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")
    assert _sections(fresh) == _sections(first)


def test_combine_known_answer():
    per = (("helpful", Judgment(0.9, 1.0, 0.8, None)), ("brief", Judgment(0.2, 0.3, 0.1, None)))
    j = combine(per, WEIGHTS)
    assert (j.p, j.p_ab, j.p_ba) == pytest.approx((0.69, 0.79, 0.59)) and j.error is None
    j = combine(per)  # the equal-weight mean: the store's scalar verdict (judges.base.combine_criteria)
    from judges.base import PairVerdict, combine_criteria

    ref = combine_criteria({c: PairVerdict(v.p, v.p_ab, v.p_ba, None) for c, v in per})
    assert (j.p, j.p_ab, j.p_ba) == pytest.approx((ref.p, ref.p_ab, ref.p_ba)) == (0.55, 0.65, 0.45)
    failed = combine((per[0], ("brief", Judgment(None, None, None, "nan"))), WEIGHTS)
    assert failed.p is None and failed.error == "brief: nan"


def test_pick_battles_takes_the_largest_criterion_disagreement_third():
    def b(prompt, helpful, brief):
        per = (("helpful", Judgment(helpful, helpful, helpful, None)), ("brief", Judgment(brief, brief, brief, None)))
        j = combine(per)
        return Battle(prompt, 0, j.p, j.p_ab, j.p_ba, None, per)

    battles = [b("p0", 0.9, 0.8), b("p1", 0.1, 0.2), b("p2", 0.6, 0.5), b("p3", 0.95, 0.05), b("p4", 0.5, 0.45)]
    # a's clearest win (0.85), b's (0.15), then p3 whose criteria disagree by 0.9 although its mean is ½
    assert pick_battles(battles) == [0, 1, 3]
    # the same verdicts without criteria: the judge orders agree everywhere, so the third is the next in order
    scalar = [Battle(x.prompt, 0, x.p, x.p_ab, x.p_ba) for x in battles]
    assert pick_battles(scalar) == [0, 1, 2]
