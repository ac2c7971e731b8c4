"""Per-algorithm options of the LM trainers, declared as frozen dataclasses (no torch import).

Each algorithm module `trainers/lm/<algo>.py` declares

    NAME = "nash-md"                       # the `arena train NAME` command
    HELP = "one line for --help"
    @dataclass(frozen=True, kw_only=True)
    class Options:                          # only what this algorithm reads
        mixture: Schedule = option(Schedule("constant", 0.125), help="...", why="...")
    def train(config, *, overwrite, resume, progress, accelerator) -> Path

and nothing else knows its options: the CLI builds the command's flags from the fields
(`--mixture`, type, default, help + the reason for the default), the docs table is generated
from them (`options_table`), and `TrainConfig.options` carries the instance into the run
(saved flat beside the shared fields in the card and the resume state). Adding an algorithm is
one module plus its loss, and one line in `trainers.lm.MODULES`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from arena.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    """A step-size-like coefficient as a function of the step k (0-based).

    constant: value; harmonic: value / (k + value) (e.g. κ_k = 10/(k + 10)).
    Text form: "0.1" or "harmonic:10".
    """

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "harmonic"):
            raise ConfigError(f"unknown schedule {self.kind!r}; use a number (constant) or harmonic:C")
        if not self.value > 0:
            raise ConfigError(f"schedule value must be > 0; got {self.value}")

    def __call__(self, k: int) -> float:
        return self.value if self.kind == "constant" else self.value / (k + self.value)

    def __str__(self) -> str:
        return f"{self.value:g}" if self.kind == "constant" else f"harmonic:{self.value:g}"

    @classmethod
    def parse(cls, text: str | float) -> "Schedule":
        if isinstance(text, Schedule):
            return text
        s = str(text).strip()
        try:
            if s.startswith("harmonic:"):
                return cls("harmonic", float(s.split(":", 1)[1]))
            return cls("constant", float(s))
        except ValueError:
            raise ConfigError(f"bad schedule {text!r}; write a number like 0.1 or harmonic:10") from None


def option(default: Any, *, help: str, why: str, shown: str | None = None):
    """A dataclass field of an algorithm's Options: its default, a one-line `help` and `why`
    the default is what it is (shown by `arena train ALGO --help` and docs/trainers.md);
    `shown`: how to print a default that is resolved later (e.g. "2β" for None)."""
    return field(default=default, metadata={"help": help, "why": why, "shown": shown})


def flag(name: str) -> str:
    """The command-line flag of an option field: samples_per_prompt -> --samples-per-prompt."""
    return "--" + name.replace("_", "-")


def option_fields(options_cls) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(options_cls)


def options_json(options) -> dict:
    """The options as flat JSON values (a Schedule as its text form)."""
    return {f.name: (str(v) if isinstance(v := getattr(options, f.name), Schedule) else v)
            for f in dataclasses.fields(options)}


def options_from_json(options_cls, data: dict):
    """Options of `options_cls` from a flat dict that may hold other keys (a saved config of
    any version: before per-algorithm options, every algorithm's fields were saved)."""
    names = {f.name for f in dataclasses.fields(options_cls)}
    return options_cls(**{k: v for k, v in data.items() if k in names})


def check_at_least(options, names: tuple[str, ...], low: int, why: str = "") -> None:
    """ConfigError naming the flag when an integer option is below `low`."""
    for name in names:
        value = getattr(options, name)
        if value < low:
            raise ConfigError(f"{flag(name)} must be >= {low}{why}; got {value}")


def check_rate(options, name: str) -> None:
    """A constant Schedule option must lie in (0, 1]."""
    value = getattr(options, name)
    if value.kind == "constant" and value.value > 1:
        raise ConfigError(f"{flag(name)} must be in (0, 1]; got {value}")


def parse_schedules(options, *names: str) -> None:
    """Turn text (e.g. from the CLI, "harmonic:10") into Schedule in a frozen __post_init__."""
    for name in names:
        object.__setattr__(options, name, Schedule.parse(getattr(options, name)))


def options_table(module) -> str:
    """The markdown table of an algorithm's options (flag, default, meaning, why the default)."""
    fields = dataclasses.fields(module.Options)
    if not fields:
        return f"`{module.NAME}` has no options of its own (only the shared ones).\n"
    rows = ["| flag | default | meaning | why this default |", "|---|---|---|---|"]
    for f in fields:
        default = f.metadata["shown"] or f.default
        rows.append(f"| `{flag(f.name)}` | {default} | {f.metadata['help']} | {f.metadata['why']} |")
    return "\n".join(rows) + "\n"


__all__ = ["Schedule", "option", "flag", "option_fields", "options_json", "options_from_json", "options_table",
           "check_at_least", "check_rate", "parse_schedules", "dataclass"]
