"""Judge options: one schema per backend, values from keyword arguments or a `?key=value` suffix.

Every option is checked before any model is loaded or any request is sent: an unknown name
or a value of the wrong type is a ConfigError that lists what is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from arena.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """One accepted option: its kind ("int", "float", "str", "bool", "labels"), default and doc."""

    kind: str
    default: Any
    doc: str
    minimum: float | None = None


def split_query(body: str) -> tuple[str, dict[str, str]]:
    """`"PATH?a=1&b=x"` -> ("PATH", {"a": "1", "b": "x"}); values are percent-decoded."""
    if "?" not in body:
        return body, {}
    head, _, query = body.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError as error:
        raise ConfigError(
            f"cannot parse the options {query!r}: {error}; write them as ?key=value&key2=value2 "
            "(percent-encode '&', '=' and '#' inside values)"
        ) from error
    opts: dict[str, str] = {}
    for key, value in pairs:
        if key in opts:
            raise ConfigError(f"option {key!r} is given twice in {body!r}; give it once")
        opts[key] = value
    return head, opts


def coerce_options(backend: str, given: Mapping[str, Any], schema: Mapping[str, Option], *,
                   role: str = "judge") -> dict[str, Any]:
    """Defaults overlaid with `given`, each value converted to its kind; unknown names fail.

    `role` names what the options configure in messages ("judge"; "engine" for the vllm
    engine, which shares its `vllm.LLM` options with the vllm judge)."""
    unknown = sorted(set(given) - set(schema))
    if unknown:
        allowed = ", ".join(sorted(schema)) or "(none)"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for the {backend} {role}; it accepts: {allowed}")
    values = {name: opt.default for name, opt in schema.items()}
    for name, raw in given.items():
        values[name] = _convert(f"{backend} {role}", name, raw, schema[name])
    return values


def _convert(owner: str, name: str, raw: Any, opt: Option) -> Any:
    where = f"option {name}={raw!r} of the {owner}"
    try:
        if opt.kind == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif opt.kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if value != value:  # NaN
                raise ValueError
        elif opt.kind == "bool":
            value = _to_bool(raw)
        elif opt.kind == "str":
            if not isinstance(raw, str):
                raise ValueError
            value = raw
        elif opt.kind == "labels":
            value = _to_labels(raw)
        else:  # pragma: no cover - schema bug
            raise AssertionError(opt.kind)
    except (TypeError, ValueError) as error:
        kinds = {
            "int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
            "labels": "two different non-empty strings, e.g. labels=A,B",
        }
        raise ConfigError(f"{where} is not {kinds[opt.kind]}; fix the value") from error
    if opt.minimum is not None and value < opt.minimum:
        raise ConfigError(f"{where} must be >= {opt.minimum}; fix the value")
    return value


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _to_labels(raw: Any) -> tuple[str, str]:
    labels = tuple(raw.split(",")) if isinstance(raw, str) else tuple(raw)
    if len(labels) != 2 or not all(isinstance(x, str) and x for x in labels) or labels[0] == labels[1]:
        raise ValueError(raw)
    return labels  # type: ignore[return-value]


def read_template(values: dict[str, Any], backend: str) -> None:
    """Replace `template` by the contents of `template_file` when that option is given."""
    path = values.get("template_file")
    if not path:
        return
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"template_file {path} of the {backend} judge does not exist; pass a text file")
    values["template"] = p.read_text(encoding="utf-8")


def check_template(template: str, fields: tuple[str, ...], backend: str, *, optional: tuple[str, ...] = ()) -> None:
    """The template must format with the named fields (each used at least once) and `optional` ones."""
    probe = {f: f"<{f}>" for f in fields + optional}
    try:
        rendered = template.format(**probe)
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            f"the {backend} judge's template cannot be filled ({error!r}); use only the fields "
            f"{', '.join('{' + f + '}' for f in fields + optional)} and double other braces ({{{{ }}}})"
        ) from error
    missing = [f for f in fields if f"<{f}>" not in rendered]
    if missing:
        raise ConfigError(
            f"the {backend} judge's template never uses {', '.join('{' + f + '}' for f in missing)}; add them"
        )


def dtype_key(values: Mapping[str, Any]) -> dict[str, str]:
    """The `dtype` entry of a model judge's fingerprint: present only when set, so verdicts
    stored before the option existed (and runs at the default) keep their key."""
    dtype = values.get("dtype")
    return {} if dtype in (None, "auto") else {"dtype": dtype}
