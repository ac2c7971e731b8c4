"""Adaptive design: which pairs to judge next so that the verdict settles with few judge calls.

A round robin spends the same number of judgments on every pair. Most of them do not move the
verdict: pairs of two dominated models, or pairs whose outcome is already certain and that
cannot change the Nash support. This module chooses the next judgments where they reduce the
uncertainty of the verdict most, in the spirit of optimal design for evaluation (ResponseGraphUCB,
Rowland et al. 2019, arXiv 1909.09849, for α-Rank; LMArena's sampling for rating intervals,
Chiang et al. 2024, arXiv 2403.04132), here for the maximum-entropy Nash mixture.

State (`design_state`). The counts W, N of the records (`arena.core.records.pair_counts`), the
point matrix P̂ and its maximum-entropy Nash p̂, and the spread of the verdict over the shared
bootstrap resamples (`arena.core.bootstrap.bootstrap_bradley_terry(..., keep_pairs=True)` and
`arena.core.uncertainty`): the resampled Nash mixtures p_r, the matrix intervals [lo, hi] and the
significant top set. Each cell P_r[i, j] is estimated from that cell's own resampled comparisons.

Uncertainty of the Nash mixture. With TV(p, q) = ½ Σ_i |p_i − q_i| (total variation),

    U_nash = the `level` quantile over rounds r of TV(p_r, p̂)

(p_r the maximum-entropy Nash of the resampled game P_r, p̂ that of P̂). U_nash ≤ ε says: in all
but a (1 − level) share of resamples the equilibrium moves by at most ε of probability mass.
Uncertainty of the top set T (`arena.core.uncertainty.significant_top_set`): the number of
pairs touching T whose interval still contains ½; at 0, T is certified (a significant Condorcet
winner, or a top cycle whose every edge and every win over an outsider is significant).

Schedulers share one interface, ``next_batch(state, k) -> (k, 2)`` pairs (i < j), and are pure
functions of the state: the same records and seed give the same choices, so a run that is
stopped and resumed from its store chooses exactly what an uninterrupted one would.

* `RoundRobin`: the least-played pairs first, ties in the order of itertools.combinations;
  from empty data, k = m · n(n − 1)/2 picks give every pair exactly m judgments.
* `AdaptiveScheduler` (variance × influence): first every pair up to its floor

      F = max(min_games, ⌊explore · T / n_pairs⌋),   T = calls after this batch,

  (T / n_pairs is what a round robin of the same size gives each pair: the exploration floor
  keeps every pair at a share `explore`, default 0.25, of it), the short pairs round robin; then
  greedy allocation of the rest of the batch, one judgment at a time, to the pair with the
  largest gain

      g_ij(N) = I_ij² · v_ij · (1/N − 1/(N + 1)),   v_ij = P̃(1 − P̃),  P̃ = (W + ½)/(N + 1),

  the drop in the influence-weighted variance I_ij² v_ij / N of the cell when N grows by one
  (the greedy solution of min Σ I² v / N at fixed Σ N is Neyman's allocation N ∝ I √v). For the
  target `nash`, I_ij = q_i + q_j with q = mean_r p_r: a cell matters as much as its two models
  weigh in the resampled equilibria; a pair is eliminated (I = 0) when its interval excludes ½
  and one of its models is in no resampled support (more judgments cannot change the support).
  For `top`, I_ij = 1 for the undecided pairs touching T, 0 otherwise.

  Why the floor: the influence and the eliminations are read off the resamples of the data so
  far, and a pair left at a few judgments keeps a noisy cell that can put the point Nash on the
  wrong face of a near-degenerate equilibrium set (near-duplicate models, a model on the edge of
  the support: the soccer table in benchmarks/bench_adaptive.py). The floor bounds what the
  design can lose against a round robin of the same size (every cell has at least `explore` of
  its judgments) at a cost of at most `explore` of the calls, and costs nothing where the
  allocation already gives every pair that many. explore = 0 is the pure allocation, 1 the
  round robin.

Stopping (`stop_reason`): `nash:EPS` when U_nash ≤ EPS, `top` when the top set is certified,
each only once every pair has `min_games` judgments (a cell resampled from one judgment has no
spread); and a hard budget of calls, whichever comes first.

What adaptivity does to the bootstrap: the number of judgments of a pair now depends on earlier
outcomes. The estimate of a cell is still the mean of that cell's own judgments and its resample
is drawn from those judgments only, so the cell intervals keep their meaning given the counts;
the multinomial bootstrap additionally lets each pair's count vary, as if the design were fixed
(docs/adaptive.md; the coverage cost is measured in benchmarks/RESULTS.adaptive.md).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from arena.core.records import Records
from arena.errors import InputError

__all__ = [
    "Target",
    "parse_target",
    "NashSpread",
    "DesignState",
    "design_state",
    "total_variation",
    "stop_reason",
    "RoundRobin",
    "AdaptiveScheduler",
    "Suggestion",
    "suggest",
    "DESIGN_ROUNDS",
    "DESIGN_PRIOR",
    "MIN_GAMES",
    "EXPLORE",
]

#: resampled games per design step: each is one equilibrium solve (the cost of a step)
DESIGN_ROUNDS = 50
#: Bradley–Terry prior of the bootstrap fits; the design uses only the per-pair resamples, and
#: the prior keeps an early, not yet strongly connected comparison graph from stopping the bootstrap
DESIGN_PRIOR = 1e-3
#: judgments every pair gets before the adaptive allocation starts and before a target can be met
MIN_GAMES = 4
#: exploration floor of the adaptive scheduler: every pair keeps at least this share of the
#: judgments a round robin of the same size would give it (benchmarks/RESULTS.adaptive.md)
EXPLORE = 0.25


@dataclass(frozen=True)
class Target:
    """When to stop. kind: "nash" (U_nash ≤ eps), "top" (top set certified) or "budget" (only
    the budget); eps: the TV bound for "nash", else None; budget: hard limit on judge calls or
    None; min_games: judgments every pair needs before "nash" or "top" can count as met."""

    kind: str
    eps: float | None = None
    budget: int | None = None
    min_games: int = MIN_GAMES


def parse_target(text: str | None, *, budget: int | None = None, min_games: int = MIN_GAMES) -> Target:
    """`nash:EPS` (0 < EPS < 1), `top`, or None / "budget" (stop only at `budget`)."""
    if budget is not None and int(budget) < 1:
        raise InputError(f"budget must be >= 1 judge call; got {budget}")
    if int(min_games) < 1:
        raise InputError(f"min_games must be >= 1; got {min_games}")
    budget = None if budget is None else int(budget)
    spec = (text or "budget").strip().lower()
    if spec == "top":
        return Target("top", None, budget, int(min_games))
    if spec == "budget":
        if budget is None:
            raise InputError("target 'budget' needs a budget: give --budget CALLS or a target like nash:0.05")
        return Target("budget", None, budget, int(min_games))
    if spec.startswith("nash:"):
        try:
            eps = float(spec[5:])
        except ValueError:
            eps = float("nan")
        if not 0.0 < eps < 1.0:
            raise InputError(f"target {text!r}: the TV bound must lie in (0, 1), e.g. nash:0.05")
        return Target("nash", eps, budget, int(min_games))
    raise InputError(f"unknown target {text!r}: use nash:EPS (e.g. nash:0.05), top, or budget with a budget")


@dataclass(frozen=True)
class NashSpread:
    """The verdict over the resampled games (module docstring).

    weights: (rounds, n) resampled Nash mixtures p_r; tv: (rounds,) TV(p_r, p̂); tv_upper: its
    `level` quantile (U_nash); support_probability: (n,); lo, hi: (n, n) matrix intervals;
    top_set: sorted indices of the significant top set; undecided_top: pairs touching it whose
    interval contains ½; level: as given.
    """

    weights: np.ndarray
    tv: np.ndarray
    tv_upper: float
    support_probability: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    top_set: list[int]
    undecided_top: int
    level: float


@dataclass(frozen=True)
class DesignState:
    """What a scheduler sees. W, N: (n, n) soft wins and games (`pair_counts`); P: (n, n) point
    estimate (½ for unplayed pairs); p_hat: (n,) its maximum-entropy Nash; calls: judgments so far;
    spread: the resampled verdict, or None when the state was built with rounds = 0."""

    W: np.ndarray
    N: np.ndarray
    P: np.ndarray
    p_hat: np.ndarray
    calls: int
    spread: NashSpread | None = None

    @property
    def n(self) -> int:
        return int(self.N.shape[0])


def total_variation(p, q) -> np.ndarray:
    """TV(p, q) = ½ Σ_i |p_i − q_i| along the last axis (broadcasts)."""
    return 0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum(axis=-1)


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def design_state(records: Records, *, rounds: int = DESIGN_ROUNDS, seed: int = 0, level: float = 0.95,
                 prior: float = DESIGN_PRIOR) -> DesignState:
    """The design state of `records` (module docstring); rounds = 0 skips the resampling.

    The bootstrap seed is derived from (seed, number of records), so the resamples, and hence the
    choices, are a function of the data and the seed only.
    """
    from arena.core.bootstrap import bootstrap_bradley_terry
    from arena.core.matrix import preference_matrix_from_counts
    from arena.core.nash import nash_from_preferences
    from arena.core.records import pair_counts
    from arena.core.uncertainty import matrix_intervals, nash_uncertainty, significant_top_set

    if int(rounds) < 0:
        raise InputError(f"rounds must be >= 0 (0: no resampling); got {rounds}")
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    W, N = pair_counts(records)
    P = preference_matrix_from_counts(W, N).P
    p_hat = nash_from_preferences(P).p
    calls = len(records)
    if int(rounds) == 0 or calls == 0:
        return DesignState(W=W, N=N, P=P, p_hat=p_hat, calls=calls)
    boot_seed = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, calls]).generate_state(1)[0])
    bt = bootstrap_bradley_terry(records, rounds=int(rounds), seed=boot_seed, level=level, prior=prior,
                                 keep_pairs=True)
    nu = nash_uncertainty(bt.pair_samples, bt.cells, p_hat, level=level, max_rounds=int(rounds))
    tv = total_variation(nu.weights, p_hat)
    lo, hi = matrix_intervals(bt.pair_samples, bt.cells, P, level=level)
    top = significant_top_set(lo)
    i, j = _pairs(P.shape[0])
    in_top = np.isin(i, top) | np.isin(j, top)
    undecided = in_top & (lo[i, j] <= 0.5) & (hi[i, j] >= 0.5)
    spread = NashSpread(weights=nu.weights, tv=tv, tv_upper=float(np.quantile(tv, level)),
                        support_probability=nu.support_probability, lo=lo, hi=hi, top_set=top,
                        undecided_top=int(undecided.sum()), level=float(level))
    return DesignState(W=W, N=N, P=P, p_hat=p_hat, calls=calls, spread=spread)


def stop_reason(state: DesignState, target: Target) -> str | None:
    """Why to stop now ("budget", "nash", "top"), or None to go on."""
    if target.budget is not None and state.calls >= target.budget:
        return "budget"
    if target.kind == "budget":
        return None
    i, j = _pairs(state.n)
    if state.N[i, j].min(initial=np.inf) < target.min_games:
        return None
    if state.spread is None:
        raise InputError(f"target {target.kind!r} needs resamples: build the state with rounds >= 1")
    if target.kind == "nash" and state.spread.tv_upper <= target.eps:
        return "nash"
    if target.kind == "top" and state.spread.undecided_top == 0:
        return "top"
    return None


def _least_played(counts: np.ndarray, k: int, allowed: np.ndarray | None = None,
                  cap: np.ndarray | None = None) -> list[int]:
    """k picks of pair indices, each the least-played so far (ties: lowest index); fewer when
    the allowed pairs run out of `cap` (how many more picks each pair may take; None: no limit).

    Level by level: all allowed pairs at the lowest count in index order, then the next level.
    """
    c = np.asarray(counts, dtype=np.float64).copy()
    left = np.full(c.shape, np.inf) if cap is None else np.asarray(cap, dtype=np.float64).copy()
    if allowed is not None:
        c[~np.asarray(allowed, dtype=bool)] = np.inf
    c[left <= 0] = np.inf
    out: list[int] = []
    while len(out) < k and np.isfinite(c).any():
        m = c.min()
        level = np.flatnonzero(c <= m)  # exact counts: integers (or the same soft sums)
        if len(out) + level.size <= k and np.isfinite(c).sum() == level.size:
            # every pair is at one level: whole sweeps at once (as many as every pair's cap allows)
            sweeps = int(min((k - len(out)) // level.size, left[level].min()))
            out.extend(np.tile(level, sweeps).tolist())
            c[level] += sweeps
            left[level] -= sweeps
            c[left <= 0] = np.inf
            if len(out) == k:
                break
            continue
        take = level[: k - len(out)]
        out.extend(take.tolist())
        c[take] += 1.0
        left[take] -= 1.0
        c[left <= 0] = np.inf
    return out


def _check_k(state: DesignState, k: int) -> int:
    if int(k) < 1:
        raise InputError(f"k must be >= 1 judgments to choose; got {k}")
    if state.n < 2:
        raise InputError(f"a design needs at least 2 models; got {state.n}")
    return int(k)


def _as_pairs(state: DesignState, picks: list[int]) -> np.ndarray:
    i, j = _pairs(state.n)
    picks = np.asarray(picks, dtype=np.int64)
    return np.stack([i[picks], j[picks]], axis=1) if picks.size else np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class RoundRobin:
    """Every pair equally often: the least-played pairs first, ties in combinations order."""

    rounds: int = 0  # needs no resamples

    def next_batch(self, state: DesignState, k: int) -> np.ndarray:
        k = _check_k(state, k)
        i, j = _pairs(state.n)
        return _as_pairs(state, _least_played(state.N[i, j], k))


@dataclass(frozen=True)
class AdaptiveScheduler:
    """Variance × influence on the target's verdict (module docstring).

    target: what the influence measures ("nash" or "top"; "budget" uses "nash"); min_games:
    judgments per pair before the allocation starts; rounds: resamples the state needs;
    explore: the exploration floor, the share in [0, 1] of a round robin's count per pair that
    every pair keeps (0: none, 1: a round robin).
    """

    target: Target = Target("nash", 0.05)
    min_games: int = MIN_GAMES
    rounds: int = DESIGN_ROUNDS
    explore: float = EXPLORE

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.explore) <= 1.0:
            raise InputError(f"explore must be a share in [0, 1] of a round robin's count per pair, e.g. {EXPLORE}; "
                             f"got {self.explore}")
        if int(self.min_games) < 1:
            raise InputError(f"min_games must be >= 1 judgment per pair; got {self.min_games}")
        if int(self.rounds) < 1:
            raise InputError(f"rounds must be >= 1 resample for the adaptive scheduler; got {self.rounds}")

    def influence(self, state: DesignState) -> np.ndarray:
        """(pairs,) I_ij in combinations order (module docstring)."""
        s = state.spread
        if s is None:
            raise InputError("the adaptive scheduler needs resamples: build the state with rounds >= 1")
        i, j = _pairs(state.n)
        undecided = (s.lo[i, j] <= 0.5) & (s.hi[i, j] >= 0.5)
        if self.target.kind == "top":
            top = np.asarray(s.top_set)
            return ((np.isin(i, top) | np.isin(j, top)) & undecided).astype(np.float64)
        q = s.weights.mean(axis=0)
        never = s.support_probability <= 0.0
        settled = ~undecided & (never[i] | never[j])
        return np.where(settled, 0.0, q[i] + q[j])

    def next_batch(self, state: DesignState, k: int, *, capacity: np.ndarray | None = None) -> np.ndarray:
        """k pairs (fewer when `capacity`, (pairs,) in combinations order, the judgments each pair
        can still take, runs out: a tournament pair has P·S comparisons in all)."""
        k = _check_k(state, k)
        i, j = _pairs(state.n)
        N = state.N[i, j].astype(np.float64)
        cap = np.full(N.shape, np.inf) if capacity is None else np.asarray(capacity, dtype=np.float64).copy()
        if cap.shape != N.shape:
            raise InputError(f"capacity must have one entry per pair ({N.size}); got shape {cap.shape}")
        # burn-in, then the exploration floor: every pair up to max(min_games, ⌊explore · T / pairs⌋)
        # with T the calls after this batch (T / pairs: a round robin's count), round robin among
        # the short pairs; the influence-driven allocation gets what is left of the batch
        floor = max(float(self.min_games), np.floor(float(self.explore) * (state.calls + k) / N.size))
        deficit = np.maximum(floor - N, 0.0)
        if deficit.sum() > 0:
            burn = _least_played(N, int(min(k, deficit.sum())), allowed=deficit > 0, cap=np.minimum(cap, deficit))
            rest = k - len(burn)
            if rest == 0:
                return _as_pairs(state, burn)
            N = N.copy()
            np.add.at(N, burn, 1.0)
            np.add.at(cap, burn, -1.0)
        else:
            burn, rest = [], k
        if state.spread is None:
            raise InputError("the adaptive scheduler needs resamples: build the state with rounds >= 1")
        I = self.influence(state)
        if not np.any((I > 0) & (cap > 0)):  # nothing left to learn for the target: spread evenly
            return _as_pairs(state, burn + _least_played(N, rest, cap=cap))
        Pt = (state.W[i, j] + 0.5) / (state.N[i, j] + 1.0)
        v = Pt * (1.0 - Pt)
        w = I * I * v
        heap = [(-w[p] / (N[p] * (N[p] + 1.0)), int(p)) for p in np.flatnonzero((I > 0) & (cap > 0))]
        heapq.heapify(heap)
        picks = []
        while heap and len(picks) < rest:
            _, p = heapq.heappop(heap)
            picks.append(p)
            N[p] += 1.0
            cap[p] -= 1.0
            if cap[p] > 0:
                heapq.heappush(heap, (-w[p] / (N[p] * (N[p] + 1.0)), p))
        return _as_pairs(state, burn + picks)


@dataclass(frozen=True)
class Suggestion:
    """The next k judgments on existing records, pair by pair (`arena rate FILE --suggest K`).

    pairs: (m, 2) distinct pairs (i < j), most judgments first; judgments: (m,) how many of the k
    go to each; state: the design state they were chosen from; target: the target of the
    influence; reason: what `stop_reason` says already holds ("nash", "top"), or None.
    """

    pairs: np.ndarray
    judgments: np.ndarray
    state: DesignState
    target: Target
    reason: str | None


def suggest(records: Records, k: int, *, target: Target | None = None, rounds: int = DESIGN_ROUNDS,
            seed: int = 0, level: float = 0.95, prior: float = DESIGN_PRIOR) -> Suggestion:
    """The k judgments `AdaptiveScheduler` would make next on `records`, grouped by pair."""
    if int(k) < 1:
        raise InputError(f"k must be >= 1 judgments to suggest; got {k}")
    target = target or Target("nash", 0.05)
    state = design_state(records, rounds=rounds, seed=seed, level=level, prior=prior)
    batch = AdaptiveScheduler(target=target, min_games=target.min_games, rounds=max(1, int(rounds))).next_batch(state, k)
    n = state.n
    flat, count = np.unique(batch[:, 0] * n + batch[:, 1], return_counts=True)
    order = np.lexsort((flat, -count))  # most judgments first, then pair order
    pairs = np.stack(np.divmod(flat[order], n), axis=1)
    reason = stop_reason(state, Target(target.kind, target.eps, None, target.min_games))
    return Suggestion(pairs=pairs, judgments=count[order], state=state, target=target, reason=reason)
