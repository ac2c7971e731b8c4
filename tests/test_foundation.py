"""The package skeleton: CLI entry point, error handling in one place, import hygiene."""

import subprocess
import sys

from arena.cli import main


def test_cli_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("rate", "tournament", "judge", "train", "lab", "world", "demo", "report"):
        assert command in text, command


def test_library_error_is_one_line_and_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    assert main(["rate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_arena_core_imports_no_torch_rich_judges_trainers():
    code = (
        "import sys, arena.core, pkgutil, importlib\n"
        "for m in pkgutil.iter_modules(arena.core.__path__): importlib.import_module('arena.core.' + m.name)\n"
        "bad = [m for m in ('torch', 'rich', 'judges', 'trainers', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_usage_errors_are_one_line(capsys):
    assert main(["rate", "x.csv", "--format", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--format" in err[0]


def test_error_text_keeps_square_brackets(tmp_path, capsys):
    bad = tmp_path / "pairs.csv"
    bad.write_text("model_a,model_b,winner\na,b,x[y]\n")
    assert main(["rate", str(bad)]) == 2
    assert "x[y]" in capsys.readouterr().err
