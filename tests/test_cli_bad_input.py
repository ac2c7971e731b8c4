"""Every command refuses bad input before any long work: one line `error: ...` on stderr,
exit code 2, no traceback, and no half-written output (an existing directory is left
byte-identical, a new --out is not created).

Fast cases only: each command fails on a cheap check, so no model is trained or loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from arena.cli import main
from arena.errors import InputError

RATERS = "python:arena.worlds.raters:judge"


def run(capsys, *args) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def refused(rc: int, err: str, *needles: str) -> None:
    """The contract: exit 2, one non-empty stderr line starting with `error:`, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def snapshot(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `path` (and the set of names)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.csv").write_text("model_a,model_b,winner\na,b,model_a\nb,a,model_a\nb,c,tie\nc,a,model_b\n")
    (d / "empty.csv").write_text("")
    (d / "wrongcols.csv").write_text("x,y,z\n1,2,3\n")
    (d / "nan.csv").write_text("model_a,model_b,score\na,b,nan\nb,a,0.3\n")
    (d / "range.csv").write_text("model_a,model_b,score\na,b,1.5\nb,a,0.3\n")
    (d / "nonsquare.csv").write_text(",a,b,c\na,0.5,0.6\nb,0.4,0.5\n")
    (d / "latin1.jsonl").write_bytes(b'{"model_a": "\xe9", "model_b": "b", "winner": "model_a"}\n')
    (d / "latin1.csv").write_bytes(b"prompt,response_a,response_b\n\xe9,a,b\n")
    (d / "pairs.csv").write_text("prompt,response_a,response_b\nRepeat the number 3.\n,3.,The answer is 3.\n")
    (d / "afile").write_text("keep me\n")
    return d


# ---------------------------------------------------------------------------- arena rate

@pytest.mark.parametrize("name, needle", [
    ("missing.csv", "not found"),
    ("empty.csv", "empty file"),
    ("wrongcols.csv", "neither a pairs file"),
    ("nan.csv", "NaN"),
    ("range.csv", "outside [0, 1]"),
])
def test_rate_refuses_bad_files(capsys, files, name, needle):
    refused(*run(capsys, "rate", files / name, "--rounds", 5), needle)


def test_rate_refuses_a_non_square_matrix(capsys, files):
    refused(*run(capsys, "rate", files / "nonsquare.csv", "--format", "matrix"), "not square")


@pytest.mark.parametrize("option, value, needle", [
    ("--rounds", "0", "--rounds"),
    ("--level", "1.5", "--level"),
    ("--level", "nan", "--level"),
    ("--prior", "nan", "--prior"),
    ("--prior", "-1", "--prior"),
])
def test_rate_refuses_bad_numbers(capsys, files, option, value, needle):
    refused(*run(capsys, "rate", files / "good.csv", option, value), needle)


def test_rate_refuses_non_utf8_jsonl(capsys, files):
    refused(*run(capsys, "rate", files / "latin1.jsonl"), "UTF-8")


def test_rate_reads_a_json_array_and_a_byte_order_mark(capsys, files, tmp_path):
    rows = [{"model_a": "a", "model_b": "b", "winner": "model_a"}, {"model_a": "b", "model_b": "a", "winner": "tie"}]
    (tmp_path / "arr.json").write_text(json.dumps(rows))
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in rows).encode())
    for name in ("arr.json", "bom.jsonl"):
        rc = main(["rate", str(tmp_path / name), "--rounds", "5", "--json"])
        out = capsys.readouterr().out
        assert rc == 0
        assert json.loads(out)["models"] == ["a", "b"]
    (tmp_path / "bad.json").write_text('[{"model_a": "a"')
    refused(*run(capsys, "rate", tmp_path / "bad.json"), "not valid JSON")
    (tmp_path / "ints.json").write_text("[1, 2]")
    refused(*run(capsys, "rate", tmp_path / "ints.json"), "item 1")


def test_rate_bad_input_leaves_out_untouched(capsys, files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"old": true}')
    before = snapshot(out)
    refused(*run(capsys, "rate", files / "nan.csv", "--out", out))
    assert snapshot(out) == before
    new = tmp_path / "new-out"
    refused(*run(capsys, "rate", files / "range.csv", "--out", new))
    assert not new.exists()
    refused(*run(capsys, "rate", files / "good.csv", "--out", files / "afile"), "is a file")
    assert (files / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("option", ["--format", "--ci"])
def test_rate_unknown_choice_is_a_usage_error(capsys, files, option):
    rc, err = run(capsys, "rate", files / "good.csv", option, "bogus")
    assert rc == 2 and "Traceback" not in err and "bogus" in err


# ---------------------------------------------------------------------------- arena judge

@pytest.mark.parametrize("spec, needle", [
    ("nope:x", "unknown judge backend"),
    ("python:no.such.module:f", "no.such.module"),
    ("hf:/does/not/exist", "does not exist"),
])
def test_judge_refuses_bad_specs(capsys, files, spec, needle):
    refused(*run(capsys, "judge", files / "pairs.csv", "--judge", spec), needle)


def test_judge_refuses_bad_files(capsys, files):
    refused(*run(capsys, "judge", files / "missing.csv", "--judge", RATERS), "not found")
    refused(*run(capsys, "judge", files / "empty.csv", "--judge", RATERS), "no rows")
    refused(*run(capsys, "judge", files / "good.csv", "--judge", RATERS), "response_a")
    refused(*run(capsys, "judge", files / "latin1.csv", "--judge", RATERS), "UTF-8")


def test_judge_refuses_batch_size_zero(capsys, files):
    refused(*run(capsys, "judge", files / "pairs.csv", "--judge", RATERS, "--batch-size", 0), "--batch-size")


def test_judge_reads_a_json_array(capsys, tmp_path):
    rows = [{"prompt": "Repeat the number 3.\n", "response_a": "3.", "response_b": "The answer is 3."}]
    (tmp_path / "pairs.json").write_text(json.dumps(rows))
    assert main(["judge", str(tmp_path / "pairs.json"), "--judge", RATERS, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 1
    (tmp_path / "bad.json").write_text("[1]")
    refused(*run(capsys, "judge", tmp_path / "bad.json", "--judge", RATERS), "item 1")


def test_judge_reads_files_with_a_byte_order_mark(capsys, tmp_path):
    row = {"prompt": "Repeat the number 3.\n", "response_a": "3.", "response_b": "The answer is 3."}
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfprompt,response_a,response_b\nRepeat the number 3.,3.,The answer is 3.\n")
    for name in ("bom.jsonl", "bom.csv"):
        assert main(["judge", str(tmp_path / name), "--judge", RATERS, "--json"]) == 0, capsys.readouterr().err
        assert len(json.loads(capsys.readouterr().out)["rows"]) == 1


# ---------------------------------------------------------------------------- arena report

def test_report_refuses_missing_and_broken_runs(capsys, tmp_path):
    refused(*run(capsys, "report", tmp_path / "nope"), "not a directory")
    (tmp_path / "run").mkdir()
    refused(*run(capsys, "report", tmp_path / "run"), "results.json")
    (tmp_path / "run" / "results.json").write_text("{bad")
    before = snapshot(tmp_path / "run")
    refused(*run(capsys, "report", tmp_path / "run", "--html"), "not valid JSON")
    assert snapshot(tmp_path / "run") == before


# ---------------------------------------------------------------------------- arena tournament

@pytest.mark.parametrize("option, value, needle", [
    ("--rounds", "0", "--rounds"),
    ("--prior", "-1", "--prior"),
    ("--prior", "nan", "--prior"),
    ("--samples", "0", "samples"),
    ("--temperature", "nan", "--temperature"),
    ("--base-url", "localhost:8000/v1", "--base-url"),
])
def test_tournament_refuses_bad_numbers_before_any_work(capsys, tmp_path, option, value, needle):
    # --rounds and --prior used to be checked only after generating and judging.
    out = tmp_path / "run"
    rc, err = run(capsys, "tournament", tmp_path / "ckpts", "--judge", RATERS, "--out", out, option, value)
    refused(rc, err, needle)
    assert not out.exists()


def test_tournament_refuses_missing_checkpoints(capsys, tmp_path):
    refused(*run(capsys, "tournament", tmp_path / "nope", "--judge", RATERS, "--out", tmp_path / "run"),
            "does not exist")
    assert not (tmp_path / "run").exists()


def test_tournament_unknown_engine_is_a_usage_error(capsys, tmp_path):
    rc, err = run(capsys, "tournament", tmp_path, "--engine", "bogus")
    assert rc == 2 and "Traceback" not in err and "bogus" in err


# ---------------------------------------------------------------------------- prompt files

def test_prompt_files_that_are_not_utf8_or_not_json_are_input_errors(tmp_path):
    from arena.prompts import load_prompts

    cases = {
        "latin1.txt": (b"caf\xe9\n", "UTF-8"),
        "latin1.jsonl": (b'{"prompt": "caf\xe9"}\n', "UTF-8"),
        "latin1.csv": (b"prompt\ncaf\xe9\n", "UTF-8"),
        "broken.json": (b'[{"prompt": "a"', "not valid JSON"),
        "empty.csv": (b"", "is empty"),
        "empty.jsonl": (b"", "no prompts"),
    }
    for name, (data, needle) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=needle):
            load_prompts(tmp_path / name)


def test_prompt_files_with_a_byte_order_mark_and_line_separators(tmp_path):
    from arena.prompts import load_prompts

    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfprompt\nhello\n")
    assert [p.text for p in load_prompts(tmp_path / "bom.csv")] == ["hello"]
    # U+2028 inside a JSON string is not a line break of the JSONL file
    (tmp_path / "sep.jsonl").write_text(json.dumps({"prompt": "a\u2028b"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert [p.text for p in load_prompts(tmp_path / "sep.jsonl")] == ["a\u2028b"]


# ---------------------------------------------------------------------------- arena train

def _train(capsys, tmp_path, files, *extra):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Repeat the number 3.\\n"}\n')
    return run(capsys, "train", "nash-mp", "--policy", tmp_path / "no-model", "--judge", RATERS,
               "--prompts", prompts, "--out", tmp_path / "out", *extra)


@pytest.mark.parametrize("extra, needle", [
    (("--steps", "0"), "--steps"),
    (("--batch-size", "0"), "--batch-size"),
    (("--eval-every", "-1"), "--eval-every"),
    (("--save-every", "-1"), "--save-every"),
    (("--device", "bogus"), "--device"),
    (("--lr", "nan"), "--lr"),
    (("--kappa", "bogus"), "bad schedule"),
])
def test_train_refuses_bad_options(capsys, tmp_path, files, extra, needle):
    refused(*_train(capsys, tmp_path, files, *extra), needle)
    assert not (tmp_path / "out").exists()


def test_train_refuses_a_policy_that_is_not_a_model(capsys, tmp_path, files):
    # the progress bar starts only after the checks, so the error is the only line
    refused(*_train(capsys, tmp_path, files), "no-model")
    assert not (tmp_path / "out").exists()


def test_train_refuses_bad_prompts_and_outputs(capsys, tmp_path, files):
    base = ["train", "nash-mp", "--policy", tmp_path, "--judge", RATERS]
    refused(*run(capsys, *base, "--prompts", files / "latin1.csv", "--out", tmp_path / "o"), "UTF-8")
    refused(*run(capsys, *base, "--prompts", files, "--out", tmp_path / "o"), "is a directory")
    refused(*run(capsys, *base, "--prompts", files / "pairs.csv", "--out", files / "afile", "--overwrite"),
            "is a file")
    assert (files / "afile").read_text() == "keep me\n"
    (tmp_path / "nash.json").write_text("not json")
    refused(*run(capsys, *base, "--prompts", files / "pairs.csv", "--out", tmp_path / "o",
                 "--nash", tmp_path / "nash.json"), "--nash")
    assert not (tmp_path / "o").exists()


def test_train_refuses_an_existing_out_without_overwrite(capsys, tmp_path, files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"weights")
    before = snapshot(out)
    refused(*_train(capsys, tmp_path, files), "already exists")
    assert snapshot(out) == before


# ---------------------------------------------------------------------------- arena lab game

LAB = ("lab", "game", "--steps", "3", "--actions", "5", "--contexts", "2")


def test_lab_refuses_unreadable_matrices(capsys, files, tmp_path):
    (tmp_path / "ragged.csv").write_text("0.5,0.6,0.2\n0.4,0.5\n")
    refused(*run(capsys, *LAB, "--game", "matrix", "--matrix", tmp_path / "ragged.csv"), "cells")
    refused(*run(capsys, *LAB, "--game", "matrix", "--matrix", files / "latin1.csv"), "UTF-8")
    refused(*run(capsys, *LAB, "--game", "matrix", "--matrix", files), "is a directory")
    refused(*run(capsys, *LAB, "--game", "matrix", "--matrix", files / "empty.csv"), "empty")
    refused(*run(capsys, *LAB, "--game", "matrix"), "--matrix")


@pytest.mark.parametrize("extra, needle", [
    (("--lr", "nan", "--algorithms", "online-dpo"), "--lr"),
    (("--steps", "0"), "steps"),
    (("--beta", "0"), "beta"),
    (("--algorithms", "nope"), "unknown algorithm"),
])
def test_lab_refuses_bad_options(capsys, extra, needle):
    refused(*run(capsys, *LAB, *extra), needle)


def test_lab_refuses_an_out_that_is_a_file(capsys, files):
    refused(*run(capsys, *LAB, "--out", files / "afile"), "is a file")
    assert (files / "afile").read_text() == "keep me\n"


# ---------------------------------------------------------------------------- arena world, arena demo

@pytest.mark.parametrize("extra, needle", [
    (("--sft-steps", "0"), "--sft-steps"),
    (("--rank", "0"), "--rank"),
    (("--rank", "9"), "--rank"),
    (("--scale", "nan"), "--scale"),
    (("--actions", "1"), "n_actions"),
])
def test_world_lowrank_refuses_bad_options(capsys, tmp_path, extra, needle):
    refused(*run(capsys, "world", "lowrank", "--out", tmp_path / "w", *extra), needle)
    assert not (tmp_path / "w").exists()


def test_world_lowrank_refuses_existing_out(capsys, tmp_path, files):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "x").write_text("x")
    refused(*run(capsys, "world", "lowrank", "--out", tmp_path / "w"), "--overwrite")
    assert (tmp_path / "w" / "x").read_text() == "x"
    refused(*run(capsys, "world", "lowrank", "--out", files / "afile", "--overwrite"), "is a file")
    assert (files / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("extra, needle", [
    (("--steps", "0"), "--steps"),
    (("--prompts", "0"), "--prompts"),
    (("--prompts", "101"), "--prompts"),
])
def test_world_raters_refuses_bad_options(capsys, tmp_path, extra, needle):
    refused(*run(capsys, "world", "raters", "--out", tmp_path / "w", *extra), needle)
    assert not (tmp_path / "w").exists()


def test_world_raters_refuses_a_non_empty_out(capsys, files):
    refused(*run(capsys, "world", "raters", "--out", files), "not empty")


@pytest.mark.parametrize("extra, needle", [
    (("--steps", "0"), "--steps"),
    (("--rounds", "0"), "--rounds"),
])
def test_demo_refuses_bad_counts_before_building_anything(capsys, tmp_path, extra, needle):
    refused(*run(capsys, "demo", "--out", tmp_path / "demo", *extra), needle)
    assert not (tmp_path / "demo").exists()


def test_demo_refuses_an_out_that_is_a_file(capsys, files):
    refused(*run(capsys, "demo", "--out", files / "afile"), "is a file")
    assert (files / "afile").read_text() == "keep me\n"



@pytest.mark.parametrize("command", [
    ("rate", "{good}", "--out"),
    ("lab", "game", "--steps", "3", "--out"),
    ("tournament", "{tmp}/ckpts", "--judge", RATERS, "--out"),
    ("world", "raters", "--out"),
    ("world", "lowrank", "--out"),
    ("train", "nash-mp", "--policy", "{tmp}", "--judge", RATERS, "--prompts", "{good}", "--out"),
    ("demo", "--out"),
])
def test_an_out_below_a_file_is_refused(capsys, files, tmp_path, command):
    args = [a.format(good=files / "good.csv", tmp=tmp_path) for a in command]
    refused(*run(capsys, *args, files / "afile" / "sub"), "its parent", "is a file")
    assert (files / "afile").read_text() == "keep me\n"


def test_rate_refuses_a_jsonl_file_as_a_matrix(capsys, tmp_path):
    (tmp_path / "pairs.jsonl").write_text('{"model_a": "a", "model_b": "b", "winner": "model_a"}\n')
    refused(*run(capsys, "rate", tmp_path / "pairs.jsonl", "--format", "matrix"), "--format pairs")


def test_report_json_refuses_a_hand_edited_nan_before_writing(capsys, tmp_path):
    run_dir = tmp_path / "run"
    (tmp_path / "m.csv").write_text(",a,b,c\na,,0.7,0.2\nb,0.3,,0.6\nc,0.8,0.4,\n")
    assert main(["rate", str(tmp_path / "m.csv"), "--json", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    text = (run_dir / "results.json").read_text()
    result = json.loads(text)
    result["fit"]["grad_norm"] = float("nan")
    (run_dir / "results.json").write_text(json.dumps(result))
    before = snapshot(run_dir)
    refused(*run(capsys, "report", run_dir, "--json", "--html"), "NaN")
    assert snapshot(run_dir) == before


# --------------------------------------------------------------------------- library-level checks


def test_library_configs_refuse_nan_and_negative_values():
    from arena.engines import SamplingParams
    from arena.errors import ConfigError
    from arena.worlds.lowrank import LowrankWorld
    from trainers.lm import TrainConfig

    with pytest.raises(ConfigError, match="temperature"):
        SamplingParams(max_new_tokens=4, temperature=float("nan"))
    with pytest.raises(ConfigError, match="rank"):
        LowrankWorld(n_actions=4, rank=5)
    with pytest.raises(ConfigError, match="scale"):
        LowrankWorld(scale=float("nan"))
    with pytest.raises(ConfigError, match="--sft-steps"):
        LowrankWorld(sft_steps=0)
    with pytest.raises(ConfigError, match="--save-every"):
        TrainConfig(policy="p", judge="j", prompts="x", out="o", save_every=-1)


def test_rate_with_few_bootstrap_rounds_still_plots(tmp_path):
    from arena.cli import main

    assert main(["rate", "--example", "--rounds", "5", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "ratings.png").stat().st_size > 0
