"""The shared records reader: JSON Lines, .json arrays, CSV/TSV, and one-line errors with a fix."""

import json

import pytest

from arena.errors import InputError
from arena.records_io import JsonLineError, read_json_values, read_rows

ROWS = [{"prompt": "Say hi.", "id": "q1"}, {"prompt": "a\u2028b", "id": "q2"}]


def test_jsonl_skips_blank_lines_and_keeps_line_separators_inside_strings(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1], ensure_ascii=False) + "\n", encoding="utf-8")
    assert read_rows(path, what="prompt") == ROWS
    # Line numbers count the blank line: the second value is on line 3.
    assert [(v.unit, v.number) for v in read_json_values(path)] == [("line", 1), ("line", 3)]


def test_json_array_and_its_item_numbers(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(ROWS, indent=2))
    assert read_rows(path, what="prompt") == ROWS
    path.write_text(json.dumps([ROWS[0], "text", 3]))
    assert [(v.unit, v.number, v.value) for v in read_json_values(path)][1:] == [("item", 2, "text"), ("item", 3, 3)]
    with pytest.raises(InputError, match="item 2 is not a JSON object; give one object per prompt"):
        read_rows(path, what="prompt")
    path.write_text('[{"prompt": "a"')
    with pytest.raises(InputError, match="not valid JSON .* at line 1"):
        read_rows(path, what="prompt")


def test_csv_and_tsv_give_strings_with_empty_cells_as_empty_strings(tmp_path):
    (tmp_path / "r.csv").write_text('prompt,n\n"a, b",1\nshort\n')
    (tmp_path / "r.tsv").write_text("prompt\tn\na, b\t1\nshort\n")
    expected = [{"prompt": "a, b", "n": "1"}, {"prompt": "short", "n": ""}]
    assert read_rows(tmp_path / "r.csv", what="prompt") == expected
    assert read_rows(tmp_path / "r.tsv", what="prompt") == expected
    # An explicit format wins over the extension.
    (tmp_path / "r.txt").write_text('{"n": 1}\n')
    assert read_rows(tmp_path / "r.txt", what="row", format="json") == [{"n": 1}]


def test_byte_order_mark_is_skipped(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbfprompt\r\nhi\r\n")
    (tmp_path / "b.jsonl").write_bytes(b'\xef\xbb\xbf{"prompt": "hi"}\r\n')
    assert read_rows(tmp_path / "b.csv", what="prompt") == [{"prompt": "hi"}]
    assert read_rows(tmp_path / "b.jsonl", what="prompt") == [{"prompt": "hi"}]


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt\nok\ncaf\xe9\n")
    with pytest.raises(InputError, match=r"latin1.csv: line 3 is not UTF-8 text .*; re-save the file as UTF-8"):
        read_rows(path, what="prompt")


def test_broken_json_line_names_its_line_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok"}\n\n{oops\n')
    with pytest.raises(JsonLineError, match="bad.jsonl: line 3 is not valid JSON") as info:
        read_rows(path, what="prompt")
    assert info.value.line == 3 and "\n" not in str(info.value)
    (tmp_path / "list.jsonl").write_text("[1]\n")
    with pytest.raises(InputError, match="line 1 is not a JSON object; give one object per comparison"):
        read_rows(tmp_path / "list.jsonl", what="comparison")


def test_empty_files_give_no_rows_and_unknown_extensions_are_refused(tmp_path):
    for name in ("e.csv", "e.tsv", "e.jsonl", "e.json"):
        (tmp_path / name).write_text("")
        assert read_rows(tmp_path / name, what="prompt") == []
    (tmp_path / "header.csv").write_text("prompt\n")
    assert read_rows(tmp_path / "header.csv", what="prompt") == []
    (tmp_path / "r.xlsx").write_text("")
    with pytest.raises(InputError, match=r"unknown extension '.xlsx'; use .csv, .tsv, .jsonl or .json"):
        read_rows(tmp_path / "r.xlsx", what="prompt")


def test_unreadable_csv_names_the_line(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('prompt\nok\n"' + "x" * 200_000 + '\n')  # an unclosed quote: the rest is one huge field
    with pytest.raises(InputError, match=r"q.csv: line 3 is not readable CSV \(field larger .*; fix the file's"):
        read_rows(path, what="prompt")
