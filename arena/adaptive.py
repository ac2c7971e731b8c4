"""Tournament schedulers: which comparisons a tournament judges next, from what its store holds.

A scheduler has one method, ``next_batch(run, judged) -> Batch``: the comparisons
(a, b, prompt, sample) to generate (lazily: only the responses they use) and judge next, given
the run's `arena.tournament.Setup` and the store's judgments (`Store.judgments`), with the
design's trace entry and stop reason. An empty batch ends the run. A scheduler reads nothing
but its arguments, so the store is the single source of truth: a run killed at any point and
started again asks the same question of the same store and gets the same answer.

* `RoundRobinSchedule`: every comparison of the plan, all in one batch, in plan order (pair,
  prompt, sample): the tournament as it has always been.
* `AdaptiveSchedule`: one design step at a time (`arena.core.design`, variance × influence on
  the Nash mixture or on the top set). Each step builds the design state from the stored
  verdicts, stops when the target or the budget is met, else asks `AdaptiveScheduler` for
  `step` pairs and gives each pair its next unjudged (prompt, sample) cell in one fixed order
  shared by all pairs (samples first, prompts in a seeded permutation). The shared order makes
  the pairs of a model reuse its responses: a model answers only as many cells as its most
  judged pair needs. A step is judged in one judge call and stored in one transaction, so the
  store always holds whole steps, and the state, whose bootstrap seed is derived from the seed
  and the number of records, is the same after a kill and a restart.

Trace. Every step records the design state it chose from (judge calls so far, U_nash, the
undecided pairs of the top set): `trace_entry`. The trace is kept in the store (the analyses
table, under `trace_key`), written before the step's batch is judged, so a resumed run
rebuilds exactly the uninterrupted run's trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from arena.core.design import DESIGN_ROUNDS, AdaptiveScheduler, Target, design_state, stop_reason
from arena.errors import InputError

__all__ = ["Batch", "RoundRobinSchedule", "AdaptiveSchedule", "cell_order", "trace_key", "load_trace",
           "record_trace", "adaptive_summary", "dry_run_estimate", "target_text", "BENCHMARK_RATIO"]

#: The highest adaptive / round-robin ratio of judge calls measured on the benchmark worlds that
#: reached the target (benchmarks/RESULTS.adaptive.md: 0.06 on a 16-model cycle world, 0.24 on a
#: 32-model near-transitive BT world); the dry run's estimate, not a promise.
BENCHMARK_RATIO = 0.24
_CELL_SALT = 0xADA97


@dataclass(frozen=True)
class Batch:
    """The next comparisons (a, b, prompt, sample); trace: the design state's summary, or None
    (round robin); stop: why there is nothing more to judge ("nash", "top", "budget",
    "exhausted"), or None."""

    comparisons: tuple[tuple[int, int, int, int], ...]
    trace: dict | None = None
    stop: str | None = None


@dataclass(frozen=True)
class RoundRobinSchedule:
    """Every comparison of `plan` not yet in the store (and, with `retry_failures`, every stored
    failure), in plan order; `arena.tournament` judges a comparison at most once per invocation."""

    plan: object
    retry_failures: bool = False

    def next_batch(self, run, judged: dict) -> Batch:
        from arena.store import lookup

        fps, phash = run.fps, run.phash
        out = []
        for a, b, p, s in self.plan.cmp_keys:
            j = lookup(judged, phash[p], s, fps[a], fps[b])
            if j is None or (self.retry_failures and j.p is None):
                out.append((a, b, p, s))
        return Batch(tuple(out))


def cell_order(n_prompts: int, samples: int, *, seed: int) -> list[tuple[int, int]]:
    """The (prompt, sample) cells in the order every pair takes them: sample 0 of every prompt
    first, prompts in a permutation fixed by `seed` (so a short run spreads over the prompt set)."""
    if n_prompts < 1 or samples < 1:
        raise InputError(f"cell order needs >= 1 prompt and >= 1 sample; got {n_prompts}, {samples}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _CELL_SALT]))
    perm = rng.permutation(n_prompts)
    return [(int(p), s) for s in range(samples) for p in perm]


def target_text(target: Target) -> str:
    return f"nash:{target.eps:g}" if target.kind == "nash" else target.kind


@dataclass(frozen=True)
class AdaptiveSchedule:
    """One design step per batch (module docstring). target: `arena.core.design.Target` (its
    budget counts judge calls, two per comparison); seed: of the design's resamples and of the
    cell order; step: comparisons per step (one judge call, one store transaction)."""

    plan: object
    target: Target
    seed: int
    step: int
    rounds: int = DESIGN_ROUNDS
    level: float = 0.95

    def __post_init__(self) -> None:
        if int(self.step) < 1:
            raise InputError(f"the adaptive step must be >= 1 comparison; got {self.step}")

    def stored(self, run, judged: dict) -> dict:
        """{(a, b, p, s): Judgment} of the plan's comparisons in the store, in plan order."""
        from arena.store import lookup

        fps, phash = run.fps, run.phash
        out = {}
        for a, b, p, s in self.plan.cmp_keys:
            j = lookup(judged, phash[p], s, fps[a], fps[b])
            if j is not None:
                out[(a, b, p, s)] = j
        return out

    def state(self, run, stored: dict):
        """The design state of the stored verdicts (failures left out), over every checkpoint."""
        from arena.core.records import make_records

        names = run.names
        ok = [(k, j) for k, j in stored.items() if j.p is not None]
        if not ok:  # nothing judged yet: no counts, the uniform game
            from arena.core.design import DesignState
            from arena.core.matrix import preference_matrix_from_counts
            from arena.core.nash import nash_from_preferences

            W = np.zeros((len(names), len(names)))
            P = preference_matrix_from_counts(W, W).P
            return DesignState(W=W, N=W.copy(), P=P, p_hat=nash_from_preferences(P).p, calls=0)
        records = make_records([names[k[0]] for k, _ in ok], [names[k[1]] for k, _ in ok], [j.p for _, j in ok],
                               models=names)
        return design_state(records, rounds=self.rounds, seed=self.seed, level=self.level)

    def next_batch(self, run, judged: dict) -> Batch:
        stored = self.stored(run, judged)
        calls = 2 * len(stored)  # failures were judge calls too
        state = self.state(run, stored)
        entry = trace_entry(state, calls=calls, names=run.names)
        reason = None
        if state.spread is not None:
            reason = stop_reason(state, Target(self.target.kind, self.target.eps, None, self.target.min_games))
        budget_left = None if self.target.budget is None else (self.target.budget - calls) // 2
        if budget_left is not None and budget_left < 1:
            reason = "budget"
        if reason is not None:
            return Batch((), entry, reason)
        order = cell_order(len(run.prompts), run.config.samples, seed=self.seed)
        n = len(run.names)
        i, j = np.triu_indices(n, 1)
        index = {(int(a), int(b)): q for q, (a, b) in enumerate(zip(i, j))}
        taken = [set() for _ in range(i.size)]
        for a, b, p, s in stored:
            taken[index[(a, b)]].add((p, s))
        capacity = np.array([len(order) - len(t) for t in taken], dtype=np.float64)
        if not np.any(capacity > 0):
            return Batch((), entry, "exhausted")
        k = self.step if budget_left is None else min(self.step, budget_left)
        if state.spread is None:  # no verdict yet: only the burn-in, which needs no resamples
            k = min(k, int(np.minimum(capacity, self.target.min_games).sum()))
        pairs = AdaptiveScheduler(target=self.target, min_games=self.target.min_games,
                                  rounds=self.rounds).next_batch(state, k, capacity=capacity)
        out = []
        for a, b in pairs.tolist():
            t = taken[index[(a, b)]]
            cell = next(c for c in order if c not in t)  # capacity guarantees one
            t.add(cell)
            out.append((a, b, *cell))
        if not out:
            return Batch((), entry, "exhausted")
        return Batch(tuple(out), entry, None)


def trace_entry(state, *, calls: int, names: list[str]) -> dict:
    """One point of the uncertainty trace: judge calls so far and the verdict's uncertainty."""
    s = state.spread
    return {"calls": int(calls), "judgments": int(state.calls),
            "nash_tv_upper": None if s is None else round(float(s.tv_upper), 6),
            "undecided_top": None if s is None else int(s.undecided_top),
            "top_set": None if s is None else [names[t] for t in s.top_set]}


def trace_key(run, schedule: AdaptiveSchedule) -> str:
    """Store key of a run's trace: the checkpoints, prompts, samples, sampling key, judge, seed,
    target (not the budget: a larger budget continues the same trace) and step."""
    from arena.fingerprint import fingerprint_obj

    t = schedule.target
    return "adaptive-trace:" + fingerprint_obj({
        "fps": run.fps, "prompts": run.phash, "samples": run.config.samples, "params": run.keys.token(),
        "judge": run.judge.fingerprint, "seed": schedule.seed, "target": [t.kind, t.eps, t.min_games],
        "step": schedule.step, "rounds": schedule.rounds, "level": schedule.level})


def load_trace(store, key: str) -> list[dict]:
    text = store.analysis(key)
    return [] if text is None else json.loads(text)


def record_trace(store, key: str, entry: dict) -> list[dict]:
    """Append `entry`, replacing entries at or after its call count (a resumed step's, which are equal)."""
    trace = [e for e in load_trace(store, key) if e["calls"] < entry["calls"]] + [entry]
    store.put_analysis(key, json.dumps(trace, allow_nan=False))
    return trace


def adaptive_summary(run, schedule: AdaptiveSchedule, stored: dict, *, trace: list[dict], stop: str | None) -> dict:
    """The `adaptive` block of results.json: target, budget, calls spent (in all and per pair),
    the round robin's cost for comparison, why it stopped and the uncertainty trace."""
    names, n = run.names, len(run.names)
    per_pair = np.zeros((n, n), dtype=np.int64)
    for a, b, _, _ in stored:
        per_pair[a, b] += 2
        per_pair[b, a] += 2
    P, S = len(run.prompts), run.config.samples
    gens = {(c, p, s) for a, b, p, s in stored for c in (a, b)}
    return {
        "target": target_text(schedule.target), "budget": schedule.target.budget,
        "min_games": schedule.target.min_games, "step": schedule.step, "stop": stop,
        "calls": 2 * len(stored), "round_robin_calls": 2 * (n * (n - 1) // 2) * P * S,
        "generations": len(gens), "round_robin_generations": n * P * S,
        "calls_per_pair": {"models": list(names), "calls": per_pair.tolist()},
        "trace": trace,
    }


def dry_run_estimate(*, n: int, prompts: int, samples: int, target: Target, step: int) -> dict:
    """What an adaptive run will cost, estimated before any judgment (`arena tournament --dry-run`).

    Floor: the burn-in, `min_games` comparisons of every pair (2 judge calls each). Ceiling: the
    budget, or the round robin. Estimate: the benchmark's worst measured ratio
    (`BENCHMARK_RATIO` of the round robin), between floor and ceiling.
    """
    pairs = n * (n - 1) // 2
    rr = 2 * pairs * prompts * samples
    floor = 2 * pairs * min(target.min_games, prompts * samples)
    ceiling = rr if target.budget is None else min(rr, int(target.budget))
    expected = int(min(ceiling, max(floor, round(BENCHMARK_RATIO * rr))))
    return {
        "target": target_text(target), "budget": target.budget, "step": step, "round_robin_calls": rr,
        "floor_calls": min(floor, ceiling), "ceiling_calls": ceiling, "expected_calls": expected,
        "expected_saving": round(1.0 - expected / rr, 3) if rr else 0.0,
        "how": (f"floor: burn-in of {target.min_games} comparisons per pair (2 judge calls each); ceiling: "
                f"{'the budget' if target.budget is not None and target.budget < rr else 'the round robin'}; "
                f"expected: {BENCHMARK_RATIO:g} x the round robin's calls, the worst ratio measured on the "
                "benchmark worlds that reached nash:0.05 (benchmarks/RESULTS.adaptive.md), kept between floor "
                "and ceiling; the real cost depends on how separated the models are"),
    }
