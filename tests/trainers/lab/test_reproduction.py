"""The Nash-MP paper's claims on contextual low-rank games, as measured here (see docs/lab.md).

Cheap versions run by default; the larger instances documented in docs/lab.md are marked slow.
"""

import numpy as np
import pytest

from trainers.lab.games import lowrank_game
from trainers.lab.run import LabConfig, run_comparison, theoretical_steps


def _exact(X, Y, rank, scale, beta, steps, seed=0, reference="uniform"):
    g = lowrank_game(X, Y, rank, scale, seed, reference=reference)
    return run_comparison(g, LabConfig(beta=beta, steps=steps, algorithms=("nash-mp", "md", "egpo", "nash-md")))


def test_theoretical_count():
    # (1 + 2β)^{−T} / (2β) < 1e-6
    for beta in (0.1, 0.01):
        T = theoretical_steps(beta, 1e-6)
        assert (1 + 2 * beta) ** (-T) / (2 * beta) < 1e-6 <= (1 + 2 * beta) ** (-(T - 1)) / (2 * beta)
    assert theoretical_steps(0.01, 1e-6) == 896


@pytest.mark.parametrize("reference", ["uniform", "random"])
def test_beta_0_1_nash_mp_within_40_iterations_and_md_nash_md_behaviour(reference):
    c = _exact(10, 20, 4, 1.0, 0.1, 100, reference=reference)
    mp, md, eg, nmd = (c.traces[k] for k in ("nash-mp", "md", "egpo", "nash-md"))
    assert mp.steps_to(1e-6) <= 40
    assert mp.queries[mp.steps_to(1e-6)] == 2 * mp.steps_to(1e-6)
    # EGPO tracks Nash-MP (within 30% in iterations to 1e-6)
    assert abs(eg.steps_to(1e-6) - mp.steps_to(1e-6)) <= 0.3 * mp.steps_to(1e-6)
    # Nash-MD with a constant step stalls at a bias floor: flat over the last half, far above Nash-MP
    assert nmd.kl[-1] > 1e-4 and abs(np.log(nmd.kl[-1] / nmd.kl[50])) < 0.05
    assert mp.kl[-1] < 1e-15


def test_beta_0_01_nash_mp_within_bound_md_does_not_converge():
    c = _exact(10, 20, 4, 3.0, 0.01, 1000)
    mp, md, eg = (c.traces[k] for k in ("nash-mp", "md", "egpo"))
    assert mp.steps_to(1e-6) <= theoretical_steps(0.01, 1e-6)
    assert abs(eg.steps_to(1e-6) - mp.steps_to(1e-6)) <= 0.3 * mp.steps_to(1e-6)
    # single-step mirror descent with Nash-MP's step: never below 1e-3, ends far above its start
    assert md.steps_to(1e-3) is None and md.kl[-1] > md.kl[0]


def test_sampled_kappa_schedule_beats_constant_and_self_play():
    g = lowrank_game(10, 20, 4, 1.0, 0)
    c = run_comparison(g, LabConfig(beta=0.1, steps=1500, batch=16, lr=1.0, seed=0,
                                    algorithms=("self-play", "nash-mp-ema", "nash-mp-ema-const")))
    tail = {k: tr.kl[-150:].mean() for k, tr in c.traces.items()}
    assert tail["nash-mp-ema"] < tail["nash-mp-ema-const"] and tail["nash-mp-ema"] < tail["self-play"], tail


@pytest.mark.slow
@pytest.mark.parametrize("X,Y,rank,scale", [(100, 50, 4, 1.0), (100, 50, 4, 10.0), (100, 100, 8, 3.0)])
@pytest.mark.parametrize("reference", ["uniform", "random"])
def test_documented_instances(X, Y, rank, scale, reference):
    c1 = _exact(X, Y, rank, scale, 0.1, 100, reference=reference)
    assert c1.traces["nash-mp"].steps_to(1e-6) <= 40
    assert c1.traces["nash-md"].steps_to(1e-6) is None
    c2 = _exact(X, Y, rank, scale, 0.01, 1000, reference=reference)
    assert c2.traces["nash-mp"].steps_to(1e-6) <= theoretical_steps(0.01, 1e-6)
    assert c2.traces["md"].steps_to(1e-3) is None


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_documented_sampled_runs(seed):
    g = lowrank_game(10, 20, 4, 1.0, seed)
    c = run_comparison(g, LabConfig(beta=0.1, steps=2000, batch=16, lr=1.0, seed=seed,
                                    algorithms=("self-play", "nash-mp-ema", "nash-mp-ema-const")))
    final = {k: tr.kl[-1] for k, tr in c.traces.items()}
    assert final["nash-mp-ema"] < min(final["nash-mp-ema-const"], final["self-play"]), final
