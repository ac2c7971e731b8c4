"""Tournament schedulers: which comparisons a tournament judges next, from what its store holds.

A scheduler has one method, ``next_batch(run, judged) -> list[(a, b, prompt, sample)]``: the
comparisons to generate (lazily: only the responses they use) and judge next, given the run's
`arena.tournament.Setup` and the store's judgments (`Store.judgments`). An empty list ends the
run. A scheduler reads nothing but its arguments, so the store is the single source of truth:
a run killed at any point and started again asks the same question of the same store and gets
the same answer.

* `RoundRobinSchedule`: every comparison of the plan, all in one batch, in plan order (pair,
  prompt, sample): the tournament as it has always been.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoundRobinSchedule:
    """Every comparison of `plan` not yet in the store (and, with `retry_failures`, every stored
    failure), in plan order; `arena.tournament` judges a comparison at most once per invocation."""

    plan: object
    retry_failures: bool = False

    def next_batch(self, run, judged: dict) -> list[tuple[int, int, int, int]]:
        from arena.store import lookup

        fps, phash = run.fps, run.phash
        out = []
        for a, b, p, s in self.plan.cmp_keys:
            j = lookup(judged, phash[p], s, fps[a], fps[b])
            if j is None or (self.retry_failures and j.p is None):
                out.append((a, b, p, s))
        return out
