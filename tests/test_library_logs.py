"""Libraries that log to stdout (DeepSpeed, imported by transformers when installed) never
reach stdout under the CLI, where `--json` prints exactly one object."""

import logging
import sys

from arena.cli import library_logs_to_stderr, main


def test_a_stdout_handler_attached_later_prints_to_stderr(capsys):
    library_logs_to_stderr()
    library_logs_to_stderr()                      # idempotent: one filter
    logger = logging.getLogger("DeepSpeed")
    assert len(logger.filters) == 1
    handler = logging.StreamHandler(stream=sys.stdout)   # what DeepSpeed's create_logger does on import
    logger.addHandler(handler)
    try:
        logger.warning("Setting accelerator to CPU.")
    finally:
        logger.removeHandler(handler)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "[DeepSpeed] WARNING: Setting accelerator to CPU." in captured.err


def test_main_installs_it(capsys):
    logger = logging.getLogger("DeepSpeed")
    for f in list(logger.filters):
        logger.removeFilter(f)
    assert main(["--help"]) == 0
    assert logger.filters
