"""Make `tournament_helpers`, `criteria_helpers` and `resume_helpers` importable by name for this directory's tests.

pytest runs with `--import-mode=importlib`, which does not put test directories on
`sys.path`; the tournament tests also name the module in judge specs
(`python:tournament_helpers:judge`), so they are registered once here, before collection.
"""

import importlib.util
import sys
from pathlib import Path

for _NAME in ("tournament_helpers", "criteria_helpers", "resume_helpers"):   # the last two import tournament_helpers
    if _NAME not in sys.modules:
        _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name(f"{_NAME}.py"))
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_NAME] = _module
        _spec.loader.exec_module(_module)
