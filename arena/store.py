"""The run store: one SQLite database per run directory, keyed by content, written in small steps.

Tables (all keys are content hashes, never paths or run-local ids):

- `checkpoints(fingerprint)`: name, path, kind, card — for display; work is keyed by fingerprint.
- `prompts(hash)`: the text.
- `generations(checkpoint, prompt, sample, params)`: the response text and its seed;
  `params` is the checkpoint's generation key (`arena.generation`: engine, max new tokens,
  temperature, top-p, top-k, seed, stop, prompt format).
- `judgments(judge, params, prompt, sample, a, b)`: one row per (pair, prompt, sample) with
  both judge orders (`p_ab`, `p_ba`), their mean `p`, or the `error` of a failed judgment
  (p NULL: a failure is never a tie). `judge` is the judge's fingerprint; `a` < `b` are the
  checkpoint fingerprints in sorted order, so renaming a checkpoint never re-judges it.
  `params` is the pair's judgment key: the shared generation key, or the hash of both
  checkpoints' keys when they differ (`arena.generation.GenerationKeys.pair`).
- `criterion_judgments(judge, params, prompt, sample, a, b, criterion)`: a vector judge's
  verdict per criterion, as `judgments` (p, p_ab, p_ba, error; a failed criterion has p NULL
  and its reason). The `judgments` row of the same comparison holds the equal-weight mean (a
  failure when any criterion failed), so the plan and `--retry-failures` work unchanged.
  Scalar judges write nothing here: their stores and results are as before.
- `judgment_notes(judge, params, prompt, sample, a, b)`: a flag on a stored verdict, e.g.
  `text_fallback` (the openai judge's opt-in text verdict where logprobs were unusable).

Every string written passes `arena.redact.redact` (`Store._write`): no API key reaches disk,
even one a server echoed into an error.

One writer per run directory: `run_lock(run_dir)` holds an exclusive `flock` on
`arena.lock` (released by the kernel when the process dies, so a killed run never leaves a
stale lock); a second tournament on the same directory stops at once with a message naming
the running process. Readers (`arena report`, `--dry-run`) take no lock.
- `fingerprints(path)`: the stat signature and content fingerprint of a checkpoint path
  (`arena.fingerprint.FingerprintCache`), so an unchanged checkpoint is not hashed again.
- `analyses(key)`: a finished analysis (the results.json text) under the hash of everything
  it was computed from (`arena.tournament.analysis_key`), so a rerun that changed nothing
  reuses it instead of bootstrapping and plotting again.

Tables added after schema 1 are created by `CREATE TABLE IF NOT EXISTS` and read as empty
from an older store opened read-only, so they need no schema bump.

The database runs in WAL mode and each batch is one short transaction with
`INSERT OR IGNORE` on the content key: a process killed with SIGKILL loses at most the batch
in flight, and a rerun can neither lose nor duplicate a row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from arena.errors import InputError

DB_NAME = "arena.sqlite"
LOCK_NAME = "arena.lock"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, card TEXT);
CREATE TABLE IF NOT EXISTS prompts (hash TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    checkpoint TEXT NOT NULL, prompt TEXT NOT NULL, sample INTEGER NOT NULL, params TEXT NOT NULL,
    seed INTEGER NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (checkpoint, prompt, sample, params));
CREATE TABLE IF NOT EXISTS judgments (
    judge TEXT NOT NULL, params TEXT NOT NULL, prompt TEXT NOT NULL, sample INTEGER NOT NULL,
    a TEXT NOT NULL, b TEXT NOT NULL, p REAL, p_ab REAL, p_ba REAL, error TEXT,
    PRIMARY KEY (judge, params, prompt, sample, a, b));
CREATE TABLE IF NOT EXISTS judgment_notes (
    judge TEXT NOT NULL, params TEXT NOT NULL, prompt TEXT NOT NULL, sample INTEGER NOT NULL,
    a TEXT NOT NULL, b TEXT NOT NULL, note TEXT NOT NULL,
    PRIMARY KEY (judge, params, prompt, sample, a, b));
CREATE TABLE IF NOT EXISTS criterion_judgments (
    judge TEXT NOT NULL, params TEXT NOT NULL, prompt TEXT NOT NULL, sample INTEGER NOT NULL,
    a TEXT NOT NULL, b TEXT NOT NULL, criterion TEXT NOT NULL, p REAL, p_ab REAL, p_ba REAL, error TEXT,
    PRIMARY KEY (judge, params, prompt, sample, a, b, criterion));
CREATE TABLE IF NOT EXISTS fingerprints (path TEXT PRIMARY KEY, signature TEXT NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS analyses (key TEXT PRIMARY KEY, result TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Judgment:
    """A stored verdict oriented as asked: p = P(first model preferred), debiased over both orders."""

    p: float | None
    p_ab: float | None
    p_ba: float | None
    error: str | None


class Store:
    """A run directory's database. Use `Store.open(run_dir)` (creates) or `Store.open_readonly`."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, run_dir: str | Path) -> "Store":
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / DB_NAME
        try:
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as error:
            raise InputError(f"{path} is not a usable arena store ({error}); choose another --out directory") from error
        store = cls(conn, path)
        store._check_schema()
        return store

    @classmethod
    def open_readonly(cls, run_dir: str | Path) -> "Store | None":
        """The store if it exists (read-only; for --dry-run), else None. Writes nothing."""
        path = Path(run_dir) / DB_NAME
        if not path.exists():
            return None
        # A read-only connection to a WAL database creates -wal/-shm files. Without a -wal file
        # the database holds no pending transaction, and `immutable` reads it creating nothing;
        # with one (a run in progress, or a crash), read normally: those files already exist.
        wal = path.with_name(path.name + "-wal")
        uri = f"file:{path}?mode=ro" + ("" if wal.exists() else "&immutable=1")
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
            conn.execute("SELECT count(*) FROM judgments").fetchone()
        except sqlite3.DatabaseError as error:
            raise InputError(f"{path} is not a usable arena store ({error}); choose another --out directory") from error
        store = cls(conn, path)
        store._check_schema()
        return store

    def _check_schema(self):
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise InputError(f"{self.path} was written by another version of the store (schema {row and row[0]}); "
                             "use a fresh --out directory")

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- writes: one short transaction each ---------------------------------------------

    def _write(self, sql: str, rows: Iterable[tuple]):
        from arena.redact import redact

        rows = [tuple(redact(x) if isinstance(x, str) else x for x in row) for row in rows]
        if not rows:
            return
        with self.conn:  # BEGIN ... COMMIT (autocommit connection: explicit transaction here)
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(sql, rows)

    def put_checkpoints(self, ckpts) -> None:
        self._write("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                    [(c.fingerprint, c.name, str(c.path), c.kind, json.dumps(c.card) if c.card else None) for c in ckpts])

    def put_prompts(self, prompts) -> None:
        self._write("INSERT OR IGNORE INTO prompts VALUES (?, ?)", [(p.hash, p.text) for p in prompts])

    def put_generations(self, rows: Iterable[tuple[str, str, int, str, int, str]]) -> None:
        """rows of (checkpoint fp, prompt hash, sample, params key, seed, text)."""
        self._write("INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?, ?)", rows)

    def put_judgments(self, judge: str, params: str, rows: Iterable[tuple], *, replace: bool = False) -> None:
        """rows of (prompt hash, sample, fp_a, fp_b, Judgment as seen from fp_a).

        Stored with the fingerprints sorted; `replace` overwrites (used to retry failures).
        """
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        out = []
        for prompt, sample, fa, fb, j in rows:
            if fb < fa:
                fa, fb, j = fb, fa, flip(j)
            out.append((judge, params, prompt, sample, fa, fb, j.p, j.p_ab, j.p_ba, j.error))
        self._write(f"{verb} INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", out)

    def put_criterion_judgments(self, judge: str, params: str, rows: Iterable[tuple], *, replace: bool = False) -> None:
        """rows of (prompt hash, sample, fp_a, fp_b, criterion, Judgment as seen from fp_a); as `put_judgments`."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        out = []
        for prompt, sample, fa, fb, criterion, j in rows:
            if fb < fa:
                fa, fb, j = fb, fa, flip(j)
            out.append((judge, params, prompt, sample, fa, fb, criterion, j.p, j.p_ab, j.p_ba, j.error))
        self._write(f"{verb} INTO criterion_judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", out)

    def put_notes(self, judge: str, params: str, rows: Iterable[tuple[str, int, str, str, str | None]]) -> None:
        """rows of (prompt hash, sample, fp_a, fp_b, note or None); None removes a note (a retried verdict)."""
        rows = [(p, s, *sorted((fa, fb)), note) for p, s, fa, fb, note in rows]
        self._write("DELETE FROM judgment_notes WHERE judge=? AND params=? AND prompt=? AND sample=? AND a=? AND b=?",
                    [(judge, params, p, s, a, b) for p, s, a, b, note in rows if note is None])
        self._write("INSERT OR REPLACE INTO judgment_notes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(judge, params, p, s, a, b, note) for p, s, a, b, note in rows if note is not None])
    def put_fingerprints(self, entries: dict[str, tuple[str, str]]) -> None:
        """{resolved path: (stat signature, fingerprint)}; a path's newer entry replaces its older one."""
        self._write("INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?)",
                    [(path, sig, fp) for path, (sig, fp) in entries.items()])

    def put_analysis(self, key: str, result_text: str) -> None:
        """The results.json text of the analysis computed from everything `key` hashes."""
        self._write("INSERT OR REPLACE INTO analyses VALUES (?, ?)", [(key, result_text)])

    # --- reads ------------------------------------------------------------------------

    def fingerprints(self) -> dict[str, tuple[str, str]]:
        """{resolved path: (stat signature, fingerprint)}; empty for a store older than the table."""
        try:
            cur = self.conn.execute("SELECT path, signature, fingerprint FROM fingerprints")
        except sqlite3.OperationalError:  # no such table: read-only store written before it existed
            return {}
        return {path: (sig, fp) for path, sig, fp in cur}

    def analysis(self, key: str) -> str | None:
        """The stored results.json text for `key`, or None."""
        try:
            row = self.conn.execute("SELECT result FROM analyses WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no such table (older store, read-only)
            return None
        return None if row is None else row[0]

    def generations(self, params: str) -> dict[tuple[str, str, int], str]:
        """{(checkpoint fp, prompt hash, sample): text} for one sampling-params key."""
        cur = self.conn.execute("SELECT checkpoint, prompt, sample, text FROM generations WHERE params=?", (params,))
        return {(c, p, s): t for c, p, s, t in cur}

    def judgments(self, judge: str, params: str) -> dict[tuple[str, int, str, str], Judgment]:
        """{(prompt hash, sample, fp_lo, fp_hi): Judgment} with fp_lo < fp_hi (see `lookup`)."""
        cur = self.conn.execute("SELECT prompt, sample, a, b, p, p_ab, p_ba, error FROM judgments "
                                "WHERE judge=? AND params=?", (judge, params))
        return {(pr, s, a, b): Judgment(p, pab, pba, e) for pr, s, a, b, p, pab, pba, e in cur}

    def criterion_judgments(self, judge: str, params: str) -> dict[tuple[str, int, str, str], dict[str, Judgment]]:
        """{(prompt hash, sample, fp_lo, fp_hi): {criterion: Judgment}}; empty for a scalar judge or an older store."""
        try:
            cur = self.conn.execute("SELECT prompt, sample, a, b, criterion, p, p_ab, p_ba, error FROM criterion_judgments "
                                    "WHERE judge=? AND params=?", (judge, params))
        except sqlite3.OperationalError:  # a store from before the table (opened read-only)
            return {}
        out: dict = {}
        for pr, s, a, b, c, p, pab, pba, e in cur:
            out.setdefault((pr, s, a, b), {})[c] = Judgment(p, pab, pba, e)
        return out

    def notes(self, judge: str, params: str) -> dict[tuple[str, int, str, str], str]:
        """{(prompt hash, sample, fp_lo, fp_hi): note} for one judge and sampling-params key."""
        try:
            cur = self.conn.execute("SELECT prompt, sample, a, b, note FROM judgment_notes WHERE judge=? AND params=?",
                                    (judge, params))
        except sqlite3.OperationalError:  # a store from before the table (opened read-only)
            return {}
        return {(pr, s, a, b): note for pr, s, a, b, note in cur}

    def counts(self) -> dict[str, int]:
        return {t: self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("checkpoints", "prompts", "generations", "judgments")}


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run directory's writer lock (creating the directory); InputError when another
    live process holds it, naming that process."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield Path(run_dir)
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise InputError(f"run directory {run_dir} is in use by {holder}; wait for it to finish or pass "
                             "another --out (arena report can read the directory meanwhile)") from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4]))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({command}) since {stamp}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


def flip(j: Judgment) -> Judgment:
    """The same verdict seen from the other model: p -> 1 - p; p_ab' = 1 - p_ba, p_ba' = 1 - p_ab."""
    def c(x):
        return None if x is None else 1.0 - x

    return Judgment(c(j.p), c(j.p_ba), c(j.p_ab), j.error)


def lookup(table: dict, prompt: str, sample: int, fa: str, fb: str) -> Judgment | None:
    """The stored verdict for (fa, fb) oriented from fa, or None when not judged yet."""
    if fa <= fb:
        return table.get((prompt, sample, fa, fb))
    j = table.get((prompt, sample, fb, fa))
    return None if j is None else flip(j)
