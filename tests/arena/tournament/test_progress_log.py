"""`arena tournament` with stderr not a terminal (a log file) writes timestamped progress lines."""

import re

import tournament_helpers as h  # registered by conftest.py

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def test_tournament_writes_timestamped_lines_to_a_log(tmp_path, capsys):
    """`arena tournament` with stderr redirected: generation, judging and bootstrap lines."""
    from arena.cli import main

    h.make_ckpts(tmp_path / "ckpts", {"a": 1, "b": 2})
    h.write_prompts(tmp_path / "prompts.txt", 3)
    code = main(["tournament", str(tmp_path / "ckpts"), "--prompts", str(tmp_path / "prompts.txt"),
                 "--judge", "python:tournament_helpers:judge", "--out", str(tmp_path / "run"),
                 "--max-new-tokens", "4", "--rounds", "20", "--json"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if STAMP.match(line)]
    for what in ("generating b: 6/6 (100%)", "judging: 6/6 (100%)", "bootstrap: 20/20 (100%)"):
        assert any(what in line and "ETA" in line for line in lines), (what, err)
