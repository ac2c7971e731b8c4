"""`arena judge`: per-row JSON in input order, position report, errors before work."""

import json

import pytest

from arena.cli import main

JUDGE_SOURCE = '''
def by_length(prompt, a, b):
    if "FAIL" in a + b:
        raise RuntimeError("refused")
    return 0.8 if len(a) > len(b) else 0.1
'''

ROWS = [
    {"prompt": "p1", "response_a": "long answer", "response_b": "x"},
    {"prompt": "p2", "response_a": "y", "response_b": "a longer one"},
    {"prompt": "p3", "response_a": "FAIL", "response_b": "z"},
]


@pytest.fixture
def judge_module(tmp_path, monkeypatch):
    (tmp_path / "clijudges.py").write_text(JUDGE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "python:clijudges:by_length"


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_json_rows_in_order_with_failures(tmp_path, judge_module, capsys):
    f = _write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    assert main(["judge", str(f), "--judge", judge_module, "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    rows = obj["rows"]
    assert [set(r) for r in rows] == [{"p", "p_ab", "p_ba", "error"}] * 3
    # row 1: a longer -> p_ab 0.8; swapped (b, a): b shorter -> 0.1 -> p_ba 0.9
    assert rows[0]["p_ab"] == 0.8 and rows[0]["p_ba"] == pytest.approx(0.9) and rows[0]["p"] == pytest.approx(0.85)
    assert rows[1]["p_ab"] == 0.1 and rows[1]["p_ba"] == pytest.approx(0.2) and rows[1]["error"] is None
    assert rows[2]["p"] is None and "refused" in rows[2]["error"]
    assert set(obj["position"]) == {"consistency", "first_position_rate"}
    assert obj["position"]["consistency"] == 1.0
    assert obj["position"]["first_position_rate"] == pytest.approx((0.8 + 0.1 + 0.1 + 0.8) / 4)
    assert obj["failures"] == 1


def test_csv_and_table_output(tmp_path, judge_module, capsys):
    f = tmp_path / "pairs.csv"
    f.write_text('prompt,response_a,response_b\n"p, with comma",long answer,x\np2,,b\n')
    assert main(["judge", str(f), "--judge", judge_module]) == 0
    text = capsys.readouterr().out
    assert "position consistency" in text and "0.850" in text


def test_hf_judge_through_cli(tmp_path, tiny_lm_dir, capsys):
    f = _write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    assert main(["judge", str(f), "--judge", f"hf:{tiny_lm_dir}", "--json", "--batch-size", "2"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert all(r["error"] is None and 0 <= r["p"] <= 1 for r in obj["rows"])
    assert 0 < obj["judge"]["label_mass_mean"] <= 1
    assert obj["judge"]["fingerprint"].startswith("hf:")


@pytest.mark.parametrize("content, name", [
    ("", "empty.jsonl"),
    ('{"prompt": "p", "response_a": "a"}\n', "missing.jsonl"),
    ("not json\n", "bad.jsonl"),
    ("prompt,response_a\np,a\n", "missing.csv"),
    ('{"prompt": "p", "response_a": 1, "response_b": "b"}\n', "number.jsonl"),
    ("x", "pairs.txt"),
])
def test_bad_input_files_exit_2(tmp_path, judge_module, capsys, content, name):
    f = tmp_path / name
    f.write_text(content)
    assert main(["judge", str(f), "--judge", judge_module, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "error:" in captured.err


def test_bad_spec_and_option_exit_2_before_work(tmp_path, judge_module, capsys):
    f = _write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    assert main(["judge", str(f), "--judge", "nope:x"]) == 2
    assert main(["judge", str(f), "--judge", judge_module, "--batch-size", "4"]) == 2  # python takes no batch size
    assert main(["judge", str(tmp_path / "missing.jsonl"), "--judge", judge_module]) == 2
    assert capsys.readouterr().out == ""


EXITING_SOURCE = '''
import sys

class Odd(BaseException):
    pass

def exits(prompt, a, b):
    sys.exit(3)

def odd(prompt, a, b):
    if "x" in a + b:
        raise Odd("not an Exception")
    return 0.7
'''


def test_sys_exit_and_base_exceptions_in_a_python_judge_are_failures(tmp_path, monkeypatch, capsys):
    (tmp_path / "exitjudges.py").write_text(EXITING_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    f = _write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    assert main(["judge", str(f), "--judge", "python:exitjudges:exits", "--json"]) == 2  # nothing could be judged
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["rows"]
    assert all(r["p"] is None and "SystemExit (3)" in r["error"] for r in rows)
    assert "no row could be judged" in captured.err
    assert main(["judge", str(f), "--judge", "python:exitjudges:odd", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["p"] is None and "Odd: not an Exception" in rows[0]["error"]  # "x" in row 1
    assert rows[1]["p"] == pytest.approx(0.5)  # 0.7 both ways: p_ab 0.7, p_ba 0.3
def test_out_file_is_read_by_arena_rate(tmp_path, judge_module, capsys):
    """`arena judge --out` writes battles with model_a/model_b that `arena rate` reads as they are."""
    from arena.io_pairs import read_pairs

    rows = [{**r, "model_a": ma, "model_b": mb, "prompt_id": f"q{i}"}
            for i, (r, ma, mb) in enumerate(zip(ROWS, ["big", "small", "big"], ["small", "big", "small"]))]
    f = _write_jsonl(tmp_path / "pairs.jsonl", rows)
    for name in ("battles.jsonl", "battles.csv"):
        out = tmp_path / name
        assert main(["judge", str(f), "--judge", judge_module, "--json", "--out", str(out)]) == 0
        capsys.readouterr()
        rec = read_pairs(out)
        assert rec.models == ("big", "small") and len(rec) == 2  # the failed row 3 is left out
        # row 1: big (a) longer -> p = 0.85; row 2: small (a) shorter -> p = 0.15
        assert rec.score.tolist() == pytest.approx([0.85, 0.15])
        assert rec.a.tolist() == [0, 1] and rec.cluster.tolist() == [0, 1]


def test_out_needs_model_names_before_any_work(tmp_path, judge_module, capsys):
    f = _write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    assert main(["judge", str(f), "--judge", judge_module, "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "lacks model_a, model_b" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
    assert main(["judge", str(f), "--judge", judge_module, "--out", str(tmp_path / "o.txt")]) == 2
