"""Fixtures shared by the tests under tests/arena."""

import pytest

from arena.cli import main


@pytest.fixture
def run_cli(capsys):
    """`run_cli(*args)` runs `arena ARGS` in this process (arguments turned into str) and returns
    (exit code, stdout, stderr) of that call alone."""

    def run(*args):
        rc = main([str(a) for a in args])
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return run
