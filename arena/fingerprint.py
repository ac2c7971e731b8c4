"""Content fingerprints: the same bytes give the same key, wherever they live.

Checkpoints, judges and prompts are keyed by what they contain, not by their path, so a
renamed directory reuses its work and a retrained one never does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_CHUNK = 1 << 20


def fingerprint_path(path: str | Path) -> str:
    """SHA-256 over a file's bytes, or over a directory's (relative name, bytes) pairs, sorted.

    Hidden files and the `.cache` folder are ignored (tooling writes there); 16 hex digits.
    """
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        h.update(b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:16]


def fingerprint_obj(obj) -> str:
    """SHA-256 of a JSON-serialisable object (sorted keys); 16 hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
