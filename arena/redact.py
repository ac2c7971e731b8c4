"""One redaction step for every string that leaves the process: store, results, logs, terminal.

A secret must never reach disk or a screen, even when a server echoes it back (some proxies
put the request's `Authorization` header into their 401 body). `redact(text)` replaces

- every registered secret (`register_secret`: each API key, as soon as it is read), and
- Authorization-like material: `Authorization: <scheme> <credentials>`, `Bearer <token>`,
  `x-api-key: <key>`, `api_key=<key>` / `"api_key": "<key>"`, and `sk-…` style keys,

with `[REDACTED]`. It is applied by `judges.base.Failure` (every failure reason), by the
run store (`arena.store.Store`, every string column), by the output writer
(`arena.outputs`), and by the command line, which wraps stdout and stderr for the whole
command (`arena.cli.main`).
"""

from __future__ import annotations

import io
import re
import threading

MASK = "[REDACTED]"
# Shorter values would mask ordinary words; no real API key is this short.
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: set[str] = set()

_PATTERNS = [
    # "Authorization: Bearer abc", "authorization=Basic xyz", JSON "Authorization": "Bearer abc"
    re.compile(r'(?i)((?:proxy-)?authorization(?:\\?["\'])?\s*[:=]\s*(?:\\?["\'])?)(?:[A-Za-z]+\s+)?[^\s"\',;&}\\]+'),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r'(?i)((?:x-api-key|api[_-]?key|access[_-]?token)(?:\\?["\'])?\s*[:=]\s*(?:\\?["\'])?)[^\s"\',;&}\\]+'),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{16,}"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret (an API key) so that `redact` removes it everywhere from now on."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret and Authorization-like credential replaced by [REDACTED]."""
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact_obj(obj):
    """The same structure (dicts, lists, tuples) with every string passed through `redact`."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


class RedactingStream(io.TextIOBase):
    """A text stream that redacts each write before passing it to `target()` (looked up per
    write, so pytest's and click's stream swaps keep working)."""

    def __init__(self, target):
        self._target = target

    def write(self, s: str) -> int:
        self._target().write(redact(s))
        return len(s)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    def fileno(self) -> int:
        return self._target().fileno()

    @property
    def encoding(self):  # rich asks for it
        return getattr(self._target(), "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def __getattr__(self, name):  # anything else (buffer, errors, reconfigure, ...) from the target
        return getattr(self._target(), name)
