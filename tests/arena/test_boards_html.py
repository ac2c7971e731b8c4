"""The HTML report of `arena rate --by category`: a selector and every category's board (arena.boards)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from arena.cli import main


def test_report_html_has_a_selector_and_every_categorys_board(capsys, tmp_path):
    # A beats B on code, B beats A on writing: the two boards must show opposite cells, each
    # under its own option. 'math' cannot be fitted (A never loses): named, no board.
    rng = np.random.default_rng(3)
    rows = []
    for cat, n, p_ab in (("code", 150, 0.85), ("writing <b>", 120, 0.15)):
        for k in range(n):
            a, b, p = (("A", "B", p_ab), ("A", "C", 0.7), ("B", "C", 0.7))[k % 3]
            rows.append({"model_a": a, "model_b": b, "winner": "model_a" if rng.random() < p else "model_b",
                         "prompt_id": f"{cat}-{k // 3}", "category": cat})
    rows += [{"model_a": "A", "model_b": "B", "winner": "model_a", "prompt_id": f"m{k}", "category": "math"}
             for k in range(4)]
    path = tmp_path / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["rate", str(path), "--by", "category", "--rounds", "30", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")

    select = re.search(r'<select id="board-select">(.*?)</select>', page, re.S).group(1)
    options = re.findall(r'<option value="(board-\d+)">([^<]*)</option>', select)
    assert [label for _, label in options] == ["code (150 comparisons)", "writing &lt;b&gt; (120 comparisons)"]
    boards = dict(re.findall(r'<div class="board" id="(board-\d+)" data-value="([^"]*)"', page))
    assert boards == {"board-0": "code", "board-1": "writing &lt;b&gt;"}
    assert "<b>" not in select and "writing <b>" not in page  # escaped everywhere
    # Only the first board shows without script; the script switches on the select's value.
    assert re.search(r'<div class="board" id="board-0" data-value="code">', page)
    assert re.search(r'<div class="board" id="board-1" data-value="[^"]*" hidden>', page)
    assert "addEventListener('change'" in page and "<script src" not in page
    # Each board holds its own matrix: P(A ≻ B) high on code, low on writing.
    def p_ab(ident):
        div = re.search(rf'<div class="board" id="{ident}".*?</div>', page, re.S).group(0)
        matrix = re.search(r'<table class="matrix">(.*?)</table>', div, re.S).group(1)
        row_a = re.search(r'<tr><td class="name">A</td>(.*?)</tr>', matrix).group(1)
        header = re.findall(r"<th>([^<]*)</th>", matrix)[1:]
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row_a)
        return float(cells[header.index("B")])
    assert p_ab("board-0") > 0.7 and p_ab("board-1") < 0.3
    assert "math: no board" in page


def test_report_without_boards_has_no_selector(capsys, tmp_path):
    rows = [{"model_a": "A", "model_b": "B", "winner": "model_a" if k % 3 else "model_b"} for k in range(30)]
    path = tmp_path / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["rate", str(path), "--rounds", "20", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert "board-select" not in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
