"""Content fingerprints: the same bytes give the same key, wherever they live.

Checkpoints, judges and prompts are keyed by what they contain, not by their path, so a
renamed directory reuses its work and a retrained one with new weights never does. A model
directory's run records (cards, metrics, tracker logs, intermediate checkpoints) are not part
of its content (`RECORD_FILES`, `RECORD_DIRS`).

Hashing a 7B checkpoint reads gigabytes, so a `FingerprintCache` remembers the fingerprint
of a path together with the `stat` signature of every file it covers (relative name, size,
mtime_ns, ctime_ns, inode, device). A later call whose signature is identical returns the
stored fingerprint without reading a byte; any changed, added or removed file changes the
signature and the content is hashed again. The ctime is part of the signature because it
cannot be set back: a tool that rewrites a file and restores its mtime (`cp -p`, `rsync -t`)
still changes it. A path with a file modified less than `RACY_SECONDS` before hashing is not
cached, since a second write within the same timestamp tick would not change its mtime (the
"racily clean" case of git, https://git-scm.com/docs/racy-git).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

_CHUNK = 1 << 20
#: Files modified this recently (seconds) are hashed but not cached (coarse mtime clocks).
RACY_SECONDS = 2.0


#: Files at the top of a model directory that describe a run but do not change what the model
#: generates: the model card, the trainers' provenance card and metrics log, Hugging Face
#: Trainer's state and results files, the judgments a `--judge-cache` run bought. They hold
#: wall-clock times and paths, so hashing them would give a retrained, bit-identical model a
#: new key, and editing a card would throw away its work.
RECORD_FILES = frozenset({"README.md", "arena_card.json", "metrics.jsonl", "trainer_state.json", "training_args.bin",
                          "all_results.json", "train_results.json", "eval_results.json", "judgments.sqlite"})
#: Folders at the top of a model directory that are not part of the model: tracker logs
#: (`runs/`, where TensorBoard writes) and the intermediate `checkpoint-N/` of a training run,
#: each a checkpoint of its own with its own fingerprint.
RECORD_DIRS = ("runs", "checkpoint-*")


def _covered(rel: Path) -> bool:
    """Whether the file at `rel` (relative to the model directory) is part of the fingerprint:
    not hidden, not a run record at the top, not inside a record folder at the top."""
    if any(part.startswith(".") for part in rel.parts):
        return False
    if len(rel.parts) == 1:
        return rel.name not in RECORD_FILES
    return not any(fnmatch.fnmatchcase(rel.parts[0], pattern) for pattern in RECORD_DIRS)


def _files(path: Path) -> list[Path]:
    """The files a fingerprint covers: the file itself, or a directory's files, sorted.

    Hidden files and folders (`.cache`, where tooling writes) are ignored, and so are the
    run records `RECORD_FILES` and `RECORD_DIRS` at the top of the directory: the key is the
    model's (weights, configs, tokenizer, templates), not the history of how it was made.
    """
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and _covered(p.relative_to(path)))


def _hash_files(path: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode())
        h.update(b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:16]


def stat_signature(path: str | Path) -> tuple[str, float]:
    """(signature of every file `path`'s fingerprint covers, newest mtime in seconds); see the module docstring."""
    path = Path(path)
    rows, newest = [], 0.0
    for f in _files(path):
        st = f.stat()
        rows.append([str(f.relative_to(path)) if f != path else f.name, st.st_size, st.st_mtime_ns,
                     st.st_ctime_ns, st.st_ino, st.st_dev])
        newest = max(newest, st.st_mtime_ns / 1e9, st.st_ctime_ns / 1e9)
    return fingerprint_obj(rows), newest


@dataclass
class FingerprintCache:
    """Fingerprints already known, by resolved path: {path: (signature, fingerprint)}.

    `known` comes from the run store (`Store.fingerprints()`); `fresh` collects the entries
    hashed during this run, for `Store.put_fingerprints` once the run is allowed to write.
    """

    known: dict[str, tuple[str, str]] = field(default_factory=dict)
    fresh: dict[str, tuple[str, str]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0


def fingerprint_path(path: str | Path, *, cache: FingerprintCache | None = None) -> str:
    """SHA-256 over a file's bytes, or over a directory's (relative name, bytes) pairs, sorted.

    Hidden files, the `.cache` folder (tooling writes there) and a model directory's run records
    (`RECORD_FILES`, `RECORD_DIRS`) are ignored; 16 hex digits.
    With `cache`, an unchanged path (same stat signature) is not read again.
    """
    path = Path(path)
    if cache is None:
        return _hash_files(path, _files(path))
    key = str(path.resolve())
    signature, newest = stat_signature(path)
    stored = cache.fresh.get(key) or cache.known.get(key)
    if stored is not None and stored[0] == signature:
        cache.hits += 1
        return stored[1]
    cache.misses += 1
    fp = _hash_files(path, _files(path))
    # A file changed while it was read, or too recently for its mtime to tell the next
    # write apart, is hashed again next time instead of cached.
    after, _ = stat_signature(path)
    if after == signature and time.time() - newest > RACY_SECONDS:
        cache.fresh[key] = (signature, fp)
    return fp


def fingerprint_obj(obj) -> str:
    """SHA-256 of a JSON-serialisable object (sorted keys); 16 hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
