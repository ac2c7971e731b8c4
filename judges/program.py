"""Programmatic judges: any importable callable `module:function` as a judge.

`function(prompt, response_a, response_b) -> float` returns P(response_a ≻ response_b) in
[0, 1]. It is called once per comparison and order; an exception (any BaseException but
KeyboardInterrupt: `sys.exit()` inside the function too) or a value that is not a finite
probability becomes a `Failure` with the reason (never clipped, never a tie).
The fingerprint hashes the module's source file, so editing the judge invalidates caches.

A vector judge: a function that returns a dict {criterion: P_c(response_a ≻ response_b)}
declares its criteria, `python:module:function?criteria=helpful,honest` or a `criteria`
attribute (a tuple of names) on the function; a missing or bad criterion value is a Failure
of that criterion alone (`judges.base.as_criteria`).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence

from arena.errors import ConfigError
from arena.fingerprint import fingerprint_obj, fingerprint_path
from judges.base import Comparison, Failure, as_verdict
from judges.options import Option, coerce_options

OPTIONS: dict[str, Option] = {
    "criteria": Option("str", None, "the function returns a dict: its criterion names, comma-separated, "
                                    "e.g. criteria=helpful,honest"),
}


class ProgramJudge:
    """Wraps `function(prompt, response_a, response_b) -> float in [0, 1]`."""

    def __init__(self, function: Callable[[str, str, str], float], *, name: str, fingerprint: str):
        self.function = function
        self.name = name
        self.fingerprint = fingerprint

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        results: list[float | Failure] = []
        for value in self._call(comparisons):
            if isinstance(value, dict):
                results.append(Failure(f"{self.name} returned a dict; declare its criteria to use it as a vector "
                                       f"judge: python:{self.name}?criteria={','.join(map(str, value))}"))
                continue
            results.append(as_verdict(value))
        return results

    def _call(self, comparisons: Sequence[Comparison]) -> list:
        """The function's raw value per comparison, or a Failure when it raised."""
        results: list = []
        for c in comparisons:
            try:
                value = self.function(c.prompt, c.response_a, c.response_b)
            except KeyboardInterrupt:  # the user's Ctrl-C stops the command, as everywhere
                raise
            except BaseException as error:  # noqa: BLE001 - a user's function may raise anything,
                # even SystemExit (sys.exit) or another BaseException: a failed comparison with
                # the reason, never an exit of the whole command with nothing written.
                detail = f" ({error.code!r})" if isinstance(error, SystemExit) else (f": {error}" if str(error) else "")
                results.append(Failure(f"{self.name} raised {type(error).__name__}{detail}"))
                continue
            results.append(value)
        return results

    def __repr__(self) -> str:
        return f"ProgramJudge({self.name})"


class ProgramVectorJudge:
    """Wraps `function(prompt, response_a, response_b) -> {criterion: float in [0, 1]}`."""

    def __init__(self, function: Callable[[str, str, str], dict], *, name: str, fingerprint: str,
                 criteria: tuple[str, ...]):
        self.function = function
        self.name = name
        self.criteria = criteria
        self.fingerprint = fingerprint

    def judge_vector(self, comparisons: Sequence[Comparison]) -> list[dict | Failure]:
        # the scalar wrapper's error handling, one call per comparison; a dict passes through it
        return ProgramJudge(self.function, name=self.name, fingerprint=self.fingerprint)._call(comparisons)

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        from judges.base import mean_of_criteria

        return mean_of_criteria(self.judge_vector(comparisons), self.criteria)

    def __repr__(self) -> str:
        return f"ProgramVectorJudge({self.name}, criteria={','.join(self.criteria)})"


def load_program_judge(body: str, options: dict) -> ProgramJudge | ProgramVectorJudge:
    """`module.path:function` -> ProgramJudge (ProgramVectorJudge with criteria); the current directory is importable."""
    values = coerce_options("python", options, OPTIONS)
    module_name, sep, attr = body.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"python judge spec needs module:function; got {body!r} (e.g. python:mypkg.judges:length_judge)")
    module = _import(module_name)
    function = module
    for part in attr.split("."):
        try:
            function = getattr(function, part)
        except AttributeError:
            raise ConfigError(f"module {module_name} has no attribute {attr!r}; check the function name") from None
    if not callable(function):
        raise ConfigError(f"{module_name}:{attr} is not callable; point the spec at a function")
    source = inspect.getsourcefile(module) if hasattr(module, "__file__") else None
    content = fingerprint_path(source) if source and os.path.isfile(source) else "no-source"
    target = {"backend": "python", "target": f"{module_name}:{attr}", "source": content}
    criteria = values.get("criteria")
    if criteria is None and getattr(function, "criteria", None) is not None:
        criteria = function.criteria
    if criteria is None:  # the scalar judge's fingerprint as before: its stored verdicts stay valid
        return ProgramJudge(function, name=f"{module_name}:{attr}", fingerprint="python:" + fingerprint_obj(target))
    from judges.base import check_criterion_names

    names = criteria.split(",") if isinstance(criteria, str) else list(criteria)
    criteria = check_criterion_names(names, f"python:{module_name}:{attr}")
    fp = "python:" + fingerprint_obj({**target, "criteria": list(criteria)})
    return ProgramVectorJudge(function, name=f"{module_name}:{attr}", fingerprint=fp, criteria=criteria)


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        cwd = os.getcwd()
        if error.name and module_name.startswith(error.name) and cwd not in sys.path:
            # The console script does not put the working directory on sys.path; a user's
            # judge module next to their data is the common case, so try there once.
            sys.path.insert(0, cwd)
            try:
                return importlib.import_module(module_name)
            except ModuleNotFoundError:
                pass
            finally:
                sys.path.remove(cwd)
        raise ConfigError(
            f"cannot import module {module_name!r} for the python judge ({error}); "
            "run from the directory that contains it or install it"
        ) from error
