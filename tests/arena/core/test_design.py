"""Adaptive design: schedulers, the uncertainty measure and the stopping rules (arena.core.design)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arena.core.design import (
    AdaptiveScheduler,
    RoundRobin,
    Target,
    design_state,
    parse_target,
    stop_reason,
    total_variation,
)
from arena.core.nash import nash_from_preferences
from arena.core.records import Records
from arena.errors import InputError

# Rock-paper-scissors with unequal edges on top, three dominated models below (true Nash on 0-2).
P_GAME = np.array([
    [0.50, 0.70, 0.35, 0.80, 0.85, 0.90],
    [0.30, 0.50, 0.75, 0.80, 0.85, 0.90],
    [0.65, 0.25, 0.50, 0.80, 0.85, 0.90],
    [0.20, 0.20, 0.20, 0.50, 0.55, 0.60],
    [0.15, 0.15, 0.15, 0.45, 0.50, 0.55],
    [0.10, 0.10, 0.10, 0.40, 0.45, 0.50],
])
MODELS = tuple(f"m{k}" for k in range(6))


def _empty(n=6) -> Records:
    return Records(tuple(f"m{k}" for k in range(n)), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


class _Sim:
    def __init__(self, P, seed):
        self.P, self.rng = P, np.random.default_rng(seed)
        self.a, self.b, self.s = [], [], []

    def judge(self, pairs):
        self.a.append(pairs[:, 0])
        self.b.append(pairs[:, 1])
        self.s.append((self.rng.random(len(pairs)) < self.P[pairs[:, 0], pairs[:, 1]]).astype(float))

    def records(self):
        if not self.a:
            return _empty(self.P.shape[0])
        return Records(tuple(f"m{k}" for k in range(self.P.shape[0])), np.concatenate(self.a),
                       np.concatenate(self.b), np.concatenate(self.s))


def _run(sched, target, seed, rounds=20):
    """Judge with `sched` until `target` stops; returns (calls, state)."""
    sim = _Sim(P_GAME, seed)
    n_pairs = 15
    while True:
        calls = sum(len(x) for x in sim.a)
        state = design_state(sim.records(), rounds=rounds if calls else 0, seed=seed)
        if calls and stop_reason(state, target):
            return calls, state
        k = max(n_pairs, calls // 2)
        if isinstance(sched, RoundRobin):
            k = n_pairs * max(1, k // n_pairs)
        sim.judge(sched.next_batch(state, k))


def test_round_robin_from_empty_is_combinations_order_and_even():
    state = design_state(_empty(5), rounds=0)
    pairs = RoundRobin().next_batch(state, 3 * 10)
    expected = list(itertools.combinations(range(5), 2)) * 3
    assert [tuple(p) for p in pairs] == expected


def test_round_robin_fills_the_least_played_pairs_first():
    # m0-m1 judged 3 times, m0-m2 once: the next picks are the unplayed pair, then m0-m2
    rec = Records(MODELS[:3], np.array([0, 0, 0, 0]), np.array([1, 1, 1, 2]), np.array([1.0, 0.0, 1.0, 1.0]))
    pairs = RoundRobin().next_batch(design_state(rec, rounds=0), 4)
    assert [tuple(p) for p in pairs] == [(1, 2), (0, 2), (1, 2), (0, 2)]


def test_adaptive_choices_are_a_function_of_data_and_seed():
    sim = _Sim(P_GAME, 3)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 15 * 6))
    rec = sim.records()
    sched = AdaptiveScheduler(target=parse_target("nash:0.05"), rounds=20)
    a = sched.next_batch(design_state(rec, rounds=20, seed=5), 40)
    b = sched.next_batch(design_state(rec, rounds=20, seed=5), 40)
    c = sched.next_batch(design_state(rec, rounds=20, seed=6), 40)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (40, 2) and np.all(a[:, 0] < a[:, 1])
    # a different seed resamples differently; the allocation may shift, the pairs stay valid
    assert c.shape == (40, 2)


def test_adaptive_burn_in_then_focus_on_the_cycle():
    sim = _Sim(P_GAME, 1)
    sched = AdaptiveScheduler(target=parse_target("nash:0.05"), rounds=20, min_games=2)
    first = sched.next_batch(design_state(sim.records(), rounds=0), 30)
    N = np.zeros((6, 6))
    np.add.at(N, (first[:, 0], first[:, 1]), 1)
    assert N[np.triu_indices(6, 1)].tolist() == [2] * 15  # burn-in: every pair twice
    sim.judge(first)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 15 * 20))
    batch = sched.next_batch(design_state(sim.records(), rounds=30, seed=0), 200)
    cycle = np.isin(batch[:, 0], [0, 1, 2]) & np.isin(batch[:, 1], [0, 1, 2])
    dominated = (batch[:, 0] >= 3) & (batch[:, 1] >= 3)
    assert cycle.mean() > 0.6  # most judgments go to the cells that set the mixture
    assert not dominated.any()  # pairs of two dominated models cannot move the Nash


def _counts_after(state, batch, n=6):
    N = state.N.copy()
    np.add.at(N, (batch[:, 0], batch[:, 1]), 1)
    return N[np.triu_indices(n, 1)]


def test_exploration_floor_keeps_every_pair_at_a_share_of_the_round_robin():
    sim = _Sim(P_GAME, 5)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 15 * 4))  # burn-in
    cycle = np.array([(0, 1), (0, 2), (1, 2)])
    sim.judge(np.repeat(cycle, [200, 120, 80], axis=0))  # 400 judgments on the cycle only
    state = design_state(sim.records(), rounds=20, seed=0)
    assert state.calls == 460
    k = 240  # T = 700 calls: a round robin gives 46.7 per pair; the floor at 0.5 is 23
    pure = _counts_after(state, AdaptiveScheduler(rounds=20, explore=0.0).next_batch(state, k))
    floored = _counts_after(state, AdaptiveScheduler(rounds=20, explore=0.5).next_batch(state, k))
    assert pure.min() == 4  # the pure allocation leaves the dominated pairs at their burn-in
    # 12 pairs × 19 = 228 judgments lift the short pairs to 23; the other 12 follow the influence
    assert floored.min() == 23 and floored.sum() == pure.sum() == 460 + k
    assert (floored[[0, 1, 5]] >= [204, 124, 84]).all() and (floored[[0, 1, 5]] - [204, 124, 84]).sum() < 12 + 1
    # a loose floor costs nothing: at 0.1 (floor 4) the batch equals the pure allocation
    loose = _counts_after(state, AdaptiveScheduler(rounds=20, explore=0.1).next_batch(state, k))
    np.testing.assert_array_equal(loose, pure)


def test_exploration_floor_one_is_the_round_robin():
    sim = _Sim(P_GAME, 6)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 15 * 5))
    state = design_state(sim.records(), rounds=20, seed=0)
    batch = AdaptiveScheduler(rounds=20, explore=1.0).next_batch(state, 15 * 3)
    np.testing.assert_array_equal(batch, RoundRobin().next_batch(state, 15 * 3))


def test_adaptive_reaches_the_tv_target_with_fewer_calls_than_round_robin():
    p_true = nash_from_preferences(P_GAME).p
    target = parse_target("nash:0.05", budget=200_000)
    calls_a, state_a = _run(AdaptiveScheduler(target=target, rounds=10), target, seed=0, rounds=10)
    calls_r, state_r = _run(RoundRobin(), target, seed=0, rounds=10)
    assert stop_reason(state_a, target) == "nash" and stop_reason(state_r, target) == "nash"
    assert total_variation(state_a.p_hat, p_true) <= 0.05
    assert calls_a < 0.6 * calls_r, (calls_a, calls_r)


def test_uncertainty_measure_is_the_tv_quantile_of_the_resampled_mixtures():
    sim = _Sim(P_GAME, 2)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 15 * 30))
    st = design_state(sim.records(), rounds=25, seed=0, level=0.9)
    s = st.spread
    assert s.weights.shape == (25, 6)
    np.testing.assert_allclose(s.tv, 0.5 * np.abs(s.weights - st.p_hat).sum(axis=1))
    assert s.tv_upper == pytest.approx(np.quantile(s.tv, 0.9))
    assert 0.0 < s.tv_upper < 1.0


def test_stop_rules():
    sim = _Sim(P_GAME, 4)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 15 * 3))
    st = design_state(sim.records(), rounds=10, seed=0)
    assert stop_reason(st, parse_target("nash:0.05", budget=45)) == "budget"
    assert stop_reason(st, parse_target("nash:0.05", budget=46)) is None
    # min_games: 3 judgments per pair are not enough for a target that needs 4
    assert stop_reason(st, Target("nash", 0.999, None, 4)) is None
    assert stop_reason(st, Target("nash", 0.999, None, 3)) == "nash"
    # top: certified only when every pair touching the top set is significant
    undecided = st.spread.undecided_top
    assert (stop_reason(st, Target("top", None, None, 3)) == "top") == (undecided == 0)
    assert stop_reason(st, parse_target(None, budget=10)) == "budget"


def test_top_target_certifies_a_dominant_model():
    P = np.array([[0.5, 0.9, 0.9], [0.1, 0.5, 0.6], [0.1, 0.4, 0.5]])
    sim = _Sim(P, 0)
    sim.judge(RoundRobin().next_batch(design_state(sim.records(), rounds=0), 3 * 60))
    st = design_state(sim.records(), rounds=50, seed=0)
    assert st.spread.top_set == [0]
    assert stop_reason(st, parse_target("top")) == "top"
    # the influence for `top` is zero everywhere then: the scheduler spreads evenly
    sched = AdaptiveScheduler(target=parse_target("top"), rounds=50)
    assert not sched.influence(st).any()


@pytest.mark.parametrize("text", ["nash:0", "nash:1.5", "nash:x", "best", "budget"])
def test_bad_targets(text):
    with pytest.raises(InputError):
        parse_target(text)


def test_bad_arguments():
    st = design_state(_empty(3), rounds=0)
    with pytest.raises(InputError, match="k must be >= 1"):
        RoundRobin().next_batch(st, 0)
    with pytest.raises(InputError, match="min_games"):
        AdaptiveScheduler(min_games=0)
    with pytest.raises(InputError, match="explore must be a share"):
        AdaptiveScheduler(explore=1.5)
    with pytest.raises(InputError, match="budget"):
        parse_target("nash:0.1", budget=0)
    # past the burn-in the adaptive scheduler needs resamples
    with pytest.raises(InputError, match="resamples"):
        AdaptiveScheduler(rounds=5, min_games=1).next_batch(st, 10)
