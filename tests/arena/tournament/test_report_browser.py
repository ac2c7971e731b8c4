"""Battle browser in the HTML report (arena.report_browser): sample responses per pair, both
judge orders, generation settings; escaped, collapsed, long responses cut."""

from __future__ import annotations

import html as _html
import json
import re
import shutil

import pytest

import arena.report_browser as B
from arena.generation import GenerationKeys
from arena.report import load_result, write_outputs
from arena.report_browser import Battle, pick_battles
from arena.store import Store, lookup
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py


def test_pick_battles_known_answer():
    battles = [Battle("p3", 0, 0.50, 0.50, 0.50), Battle("p1", 0, 0.90, 0.95, 0.85),
               Battle("p2", 0, 0.10, 0.15, 0.05), Battle("p4", 0, 0.55, 0.95, 0.15),
               Battle("p0", 0, None, None, None, "timeout"), Battle("p5", 0, 0.90, 0.90, 0.90)]
    # a's clearest win (p1 before p5 on the tie), b's clearest win, the largest order disagreement.
    assert pick_battles(battles) == [1, 2, 3]
    assert pick_battles(battles, k=5) == [1, 2, 3, 0, 5]
    assert pick_battles(battles, k=6)[-1] == 4  # failures last
    assert pick_battles(list(reversed(battles)), k=3) == [4, 3, 2]  # the same battles, whatever the order
    assert pick_battles([Battle("p", 0, None, None, None, "x")]) == [0]
    with pytest.raises(ValueError, match="k must be"):
        pick_battles(battles, k=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    (root / "prompts.txt").write_text("".join(f"Tell me <b>{w}</b> & more\n" for w in ("cats", "rain", "maps", "tea")))
    gen = json.loads((ckpts / "gamma" / "generation_config.json").read_text())
    (ckpts / "gamma" / "generation_config.json").write_text(json.dumps({**gen, "temperature": 0.0}))
    result = run_tournament(TournamentConfig(ckpts_dir=ckpts, prompts=root / "prompts.txt",
                                             judge="python:tournament_helpers:judge", out=root / "run", samples=2,
                                             max_new_tokens=12, rounds=20, batch_size=4, stop=("\n",)))
    return root / "run", result


def _pair_sections(page):
    return dict(re.findall(r'<details id="(battles-\d+-\d+)">(.*?)</details>', page, re.S))


def test_each_pair_shows_a_handful_of_battles_with_both_orders(run):
    out, result = run
    page = (out / "report.html").read_text(encoding="utf-8")
    sections = _pair_sections(page)
    assert set(sections) == {"battles-0-1", "battles-0-2", "battles-1-2"}
    # Each off-diagonal matrix cell links to its pair's battles (both orders of the pair).
    links = re.findall(r'<a href="#(battles-\d+-\d+)" title="sample battles">', page)
    assert sorted(links) == sorted(2 * list(sections))
    models = result.models
    with Store.open_readonly(out) as store:
        prompts = dict(store.conn.execute("SELECT text, hash FROM prompts"))
        gens = store.conn.execute("SELECT checkpoint, prompt, sample, text FROM generations").fetchall()
        keys = GenerationKeys({c["fingerprint"]: c["generation_settings"]["key"] for c in result.checkpoints.values()})
        judged = keys.judgments(store, result.judge.fingerprint)
    fps = [result.checkpoints[m]["fingerprint"] for m in models]
    for (i, k), ident in (((0, 1), "battles-0-1"), ((0, 2), "battles-0-2"), ((1, 2), "battles-1-2")):
        html_ = sections[ident]
        assert f"<b>{models[i]}</b> vs <b>{models[k]}</b>" in html_ and "3 of 8 comparisons" in html_
        battles = re.findall(r'<div class="battle">(.*?)</div>', html_, re.S)
        assert len(battles) == 3
        # The first battle is models[i]'s clearest win: its mean is the pair's largest stored p.
        ps = [lookup(judged, prompts[t], s, fps[i], fps[k]).p for t in prompts for s in (0, 1)]
        first = battles[0]
        shown = re.search(r"P\((\w+) ≻ (\w+)\): ([\d.]+) with \w+ shown first, ([\d.]+) with \w+ shown first; "
                          r"mean <b>([\d.]+)</b>", first)
        assert shown.group(1, 2) == (models[i], models[k])
        assert float(shown.group(5)) == pytest.approx(max(ps), abs=0.005)
        assert (float(shown.group(3)) + float(shown.group(4))) / 2 == pytest.approx(max(ps), abs=0.01)
        # Prompts are escaped; the responses shown are the stored ones of the two checkpoints.
        assert "Tell me &lt;b&gt;" in first and "<b>cats</b>" not in html_
        cells = re.findall(r"<td[^>]*><pre[^>]*>(.*?)</pre></td>", first, re.S)
        assert len(cells) == 2
        texts = {(fp, t) for fp, _, _, t in gens}
        assert (fps[i], _html.unescape(cells[0])) in texts and (fps[k], _html.unescape(cells[1])) in texts


def test_generation_settings_are_shown(run):
    out, _ = run
    page = (out / "report.html").read_text(encoding="utf-8")
    table = re.search(r"<h2>Generation settings</h2><table>(.*?)</table>", page, re.S).group(1)
    row = dict((m, r) for m, r in re.findall(r'<tr><td class="name">(\w+)</td>(.*?)</tr>', table))
    cells = {m: re.findall(r"<td>([^<]*)</td>", r) for m, r in row.items()}
    # engine, temperature, top_p, top_k, max_new_tokens, stop, samples, prompts
    assert cells["gamma"][:7] == ["hf", "0.0*", "1.0", "off", "12", "&#x27;\\n&#x27;", "2"]
    assert cells["alpha"][1] == "1.0" and cells["alpha"][7].endswith("prompts.txt")


def test_long_responses_are_cut_and_old_results_still_browse(run, monkeypatch, tmp_path):
    out, _ = run
    monkeypatch.setattr(B, "MAX_CHARS", 5)
    data = json.loads((out / "results.json").read_text())
    for card in data["checkpoints"].values():  # a results.json written before generation keys were recorded
        card.pop("generation_settings")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "results.json").write_text(json.dumps(data))
    write_outputs(load_result(copy), copy)
    page = (copy / "report.html").read_text(encoding="utf-8")
    assert "<h2>Generation settings</h2>" not in page
    sections = _pair_sections(page)
    # Old runs had one key for every checkpoint: alpha-beta (both sampled) browse as before.
    assert "battles-0-1" in sections
    cut = re.findall(r"… \(cut; (\d+) characters in full\)", page)
    assert cut and all(int(n) > 5 for n in cut)


def test_a_rate_report_has_no_battles(tmp_path, capsys):
    import pandas as pd

    from arena.cli import main

    rows = [{"model_a": "A", "model_b": "B", "winner": "model_a" if k % 3 else "model_b"} for k in range(30)]
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)
    assert main(["rate", str(tmp_path / "pairs.csv"), "--rounds", "20", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Sample battles" not in page and "Generation settings" not in page
