"""A training run's judgment cache (`arena train ALGO --judge-cache`): each comparison is asked once.

A policy concentrates as it trains, so the same comparison comes back again and again. In the
raters world a 300-step Nash-MP run (the b04 command of benchmarks/RESULTS.trainers-convergence.md)
sends 14,448 comparisons to the judge; 8,990 of them compare a response with itself, and only
1,522 of the others are distinct. With the cache:

- a response compared with itself is a tie, P = ½, and the judge is not asked (identical texts:
  neither can be better; for Nash-MP's pair loss such a pair carries no gradient whatever P is);
- a comparison asked before in this run (same prompt, same two texts, same order) gets the
  answer the judge gave then;
- only the rest go to the judge, and its answers are stored in `OUT/judgments.sqlite` (rows
  prompt, response_a, response_b, p), so a resumed run does not pay for them again and the
  run leaves a record of every judgment it bought. A failed judgment is not stored: it is asked
  again the next time the comparison comes up.

Training is then exactly what it is without the cache for a judge that is deterministic and
gives ½ to two identical responses (a rule, a reward-model difference, a judge that averages
both orders at temperature 0). A judge with a position bias that scores one order gives
"y vs y" something else; the cache replaces that by ½, which is the truth but changes the
losses that use the value of such a pair (Nash-MD, EGPO, RLHF's rewards). A judge that samples
its answer would have its one draw reused for the whole run. So the cache is off by default.
`--labels sample` draws its 0/1 label afresh from the stored probability.

The file remembers the judge's fingerprint: a resumed run whose judge changed (its code, its
model) is refused rather than fed the old judge's answers. Under `accelerate launch` each
process asks the comparisons of its own rows, and after every call the processes exchange
what they bought (`trainers.lm.run.Run.judge_pairs`): every cache holds every answer, rank 0
writes them all to the file, and the other processes load it when the run resumes. Two
processes still both ask a comparison that comes up on both in the same call (a prompt drawn
twice into one batch).
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Sequence

from arena.errors import ConfigError

FILE = "judgments.sqlite"
"""The cache's file in the run's output directory (a run record: not part of the checkpoint's
fingerprint, `arena.fingerprint.RECORD_FILES`)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    prompt TEXT NOT NULL,
    response_a TEXT NOT NULL,
    response_b TEXT NOT NULL,
    p REAL NOT NULL,
    PRIMARY KEY (prompt, response_a, response_b)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class JudgmentCache:
    """The judge's answers of one run by (prompt, response_a, response_b), kept in memory and,
    with a `path`, in SQLite (loaded again when the run resumes)."""

    def __init__(self, path: Path | None = None, *, judge_fingerprint: str | None = None, exchange: bool = False):
        """`exchange`: one of several processes, which keeps its own answers for `take_asked`."""
        self.path = path
        self.exchange = exchange
        self._db = None
        self._p: dict[tuple[str, str, str], float] = {}
        self._asked: list[tuple[str, str, str, float]] = []     # this process's answers not yet exchanged
        if path is not None:
            self._db = sqlite3.connect(path)
            with self._db:
                self._db.executescript(_SCHEMA)
                row = _judge_row(self._db)
                if row is None and judge_fingerprint is not None:
                    self._db.execute("INSERT INTO meta VALUES ('judge', ?)", (judge_fingerprint,))
            try:
                _check_judge(path, row, judge_fingerprint)
            except ConfigError:
                self.close()
                raise
            self._p = _answers(self._db)

    @classmethod
    def replica(cls, path: Path, *, judge_fingerprint: str | None = None) -> "JudgmentCache":
        """The in-memory cache of a process other than the one that writes `path` (`exchange`
        on): what the file holds (a resumed run), read without writing to it; empty without it."""
        cache = cls(exchange=True)
        if path.exists():
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                _check_judge(path, _judge_row(db), judge_fingerprint)
                cache._p = _answers(db)
            finally:
                db.close()
        return cache

    def __len__(self) -> int:
        return len(self._p)

    def lookup(self, prompt: str, a: str, b: str) -> float | None:
        """P(a ≻ b | prompt) known without asking: ½ for identical texts, else the stored answer."""
        if a == b:
            return 0.5
        return self._p.get((prompt, a, b))

    def store(self, rows: Sequence[tuple[str, str, str, float]], *, others: bool = False) -> None:
        """Keep the judge's answers (prompt, a, b, p), committed before returning: answers to
        this process, or with `others` those another process bought (not passed on again)."""
        rows = list(rows)
        self._p.update({(x, a, b): p for x, a, b, p in rows})
        if self.exchange and not others:
            self._asked.extend(rows)
        if self._db is not None and rows:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?)", rows)

    def take_asked(self) -> list[tuple[str, str, str, float]]:
        """This process's own answers stored since the last call (with `exchange`)."""
        asked, self._asked = self._asked, []
        return asked

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _judge_row(db: sqlite3.Connection) -> tuple | None:
    """The cache file's meta row naming its judge's fingerprint, or None."""
    return db.execute("SELECT value FROM meta WHERE key = 'judge'").fetchone()


def _answers(db: sqlite3.Connection) -> dict[tuple[str, str, str], float]:
    """Every stored answer of the cache file, by (prompt, response_a, response_b)."""
    return {(x, a, b): p for x, a, b, p in db.execute("SELECT * FROM judgments")}


def _check_judge(path: Path, row: tuple | None, judge_fingerprint: str | None) -> None:
    """Refuse a cache file that holds another judge's answers (`row`: its meta row, or None)."""
    if row is not None and judge_fingerprint is not None and row[0] != judge_fingerprint:
        raise ConfigError(f"{path} holds the answers of another judge (fingerprint {row[0]}, now "
                          f"{judge_fingerprint}: its code or model changed since the run started); "
                          f"pass --overwrite to start the run over with this judge")


def judge_with_cache(judge, comparisons: list, cache: JudgmentCache | None) -> tuple[list, int]:
    """The judge's results for `comparisons` (judges.Comparison), in order, and how many were
    sent to the judge: with a cache, only those it cannot answer, their successes stored."""
    if cache is None:
        return judge.judge(comparisons), len(comparisons)
    from judges import Failure

    results: list = [cache.lookup(c.prompt, c.response_a, c.response_b) for c in comparisons]
    missing = [i for i, r in enumerate(results) if r is None]
    # a comparison that comes twice in one batch is asked once
    first = {}
    for i in missing:
        first.setdefault(_key(comparisons[i]), comparisons[i])
    unique = list(first)
    if unique:
        asked = dict(zip(unique, judge.judge(list(first.values()))))
        cache.store([(*key, float(r)) for key, r in asked.items()
                     if not isinstance(r, Failure) and math.isfinite(float(r))])
        for i in missing:
            results[i] = asked[_key(comparisons[i])]
    return results, len(unique)


def _key(c) -> tuple[str, str, str]:
    return c.prompt, c.response_a, c.response_b
