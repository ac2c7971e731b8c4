"""The default `arena tournament` (no --adaptive) is byte-identical to the tournament before the
phase split: results.json and the printed output of a small run are pinned as files.

The fixtures were written by this test (ARENA_WRITE_GOLDEN=1) from the code before
`run_tournament` was split into plan / generate / judge / collect / analyse; a change to them
is a change of the default tournament's output and needs a schema bump or a reason.
Rewritten once since, when results.json gained `checkpoints[*].generation_settings` (an added
field; with it removed the file equals the one before, and the printed output is unchanged).
"""

import os
from pathlib import Path

from arena.cli import main

import tournament_helpers as h  # registered by conftest.py

GOLDEN = Path(__file__).resolve().parent / "adaptive_golden"
JUDGE = "python:tournament_helpers:judge"


def _run(tmp_path, capsys) -> tuple[str, str]:
    ckpts = h.make_ckpts(tmp_path / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 4)
    capsys.readouterr()
    rc = main(["tournament", str(ckpts), "--prompts", str(prompts), "--judge", JUDGE, "--out", str(tmp_path / "run"),
               "--max-new-tokens", "6", "--rounds", "50", "--samples", "2", "--seed", "3"])
    assert rc == 0
    printed = capsys.readouterr().out
    results = (tmp_path / "run" / "results.json").read_text(encoding="utf-8")
    return results.replace(str(tmp_path), "TMP"), printed   # generation_settings name the prompts file


def test_round_robin_tournament_is_byte_identical_to_before_the_split(tmp_path, capsys):
    results, printed = _run(tmp_path, capsys)
    if os.environ.get("ARENA_WRITE_GOLDEN"):
        (GOLDEN / "results.json").write_text(results, encoding="utf-8")
        (GOLDEN / "stdout.txt").write_text(printed, encoding="utf-8")
    assert results == (GOLDEN / "results.json").read_text(encoding="utf-8")
    assert printed == (GOLDEN / "stdout.txt").read_text(encoding="utf-8")
    assert '"adaptive"' not in results  # the adaptive key appears only in adaptive runs
