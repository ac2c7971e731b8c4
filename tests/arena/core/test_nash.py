"""Maximum-entropy Nash: golden games with closed forms, certificates, a second algorithm
(cvxpy entropy maximisation / HiGHS LP), real data (OpenSpiel soccer) and properties."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import arena.core.nash as nash_mod
from arena.core.nash import NashEquilibrium, max_entropy_nash, nash_from_preferences
from arena.errors import InputError, SolverError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
SOCCER = DATA / "openspiel" / "response_graph_ucb_soccer.txt"
RRPS = DATA / "openspiel" / "pbe_rrps_bot_table_file.txt"


def weighted_rps(a=1.0, b=2.0, c=3.0):
    """Rock-paper-scissors with unequal stakes: unique equilibrium p ∝ (b, c, a)."""
    A = np.array([[0.0, a, -c], [-a, 0.0, b], [c, -b, 0.0]])
    return A, np.array([b, c, a]) / (a + b + c)


def certified(eq: NashEquilibrium, A, tol=1e-9):
    A = (np.asarray(A) - np.asarray(A).T) / 2
    assert np.all(eq.p >= 0)
    assert eq.p.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(eq.scores, A @ eq.p, atol=1e-14)
    assert eq.exploitability == pytest.approx((A @ eq.p).max(), abs=1e-15)
    assert eq.exploitability <= tol * max(np.abs(A).max(), 1e-300)
    q = eq.p[eq.p > 0]
    assert eq.entropy == pytest.approx(-(q * np.log(q)).sum(), abs=1e-12)


def cvxpy_max_entropy(A):
    cp = pytest.importorskip("cvxpy")
    n = A.shape[0]
    p = cp.Variable(n)
    prob = cp.Problem(cp.Maximize(cp.sum(cp.entr(p))), [A @ p <= 0, cp.sum(p) == 1, p >= 0])
    with warnings.catch_warnings():  # "solution may be inaccurate" at tight tolerances
        warnings.simplefilter("ignore")
        prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    assert prob.status in ("optimal", "optimal_inaccurate")
    return np.clip(p.value, 0, None) / np.clip(p.value, 0, None).sum()


def test_rock_paper_scissors_uniform():
    A = np.array([[0, 1, -1], [-1, 0, 1], [1, -1, 0]], dtype=float)
    eq = max_entropy_nash(A)
    np.testing.assert_allclose(eq.p, np.full(3, 1 / 3), atol=1e-12)
    np.testing.assert_allclose(eq.scores, 0, atol=1e-12)
    certified(eq, A)


def test_weighted_rps_closed_form_and_units():
    A, p_star = weighted_rps()
    eq = max_entropy_nash(A)
    np.testing.assert_allclose(eq.p, p_star, atol=1e-12)
    certified(eq, A)
    # (A - Aᵀ)/2 is used: a non-antisymmetric input gives the same game as its antisymmetric part
    eq2 = max_entropy_nash(A + np.ones((3, 3)) * 0.7 + np.diag([5.0, 1.0, 2.0]))
    np.testing.assert_allclose(eq2.p, p_star, atol=1e-12)


def test_transitive_top_model_takes_all():
    theta = np.array([0.3, 1.0, -0.5, 0.2, 0.9])
    P = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    eq = nash_from_preferences(P)
    np.testing.assert_allclose(eq.p, np.eye(5)[1], atol=1e-12)
    # scores in P - ½ units: P(i beats the top model) - ½
    np.testing.assert_allclose(eq.scores, P[:, 1] - 0.5, atol=1e-12)
    certified(eq, P - 0.5)


def test_dominated_model_gets_zero():
    A, p_star = weighted_rps()
    # model 3 plays like model 0 but loses 0.25 more against everyone (and 0.25 against model 0)
    D = np.zeros((4, 4))
    D[:3, :3] = A
    D[3, :3] = A[0] - 0.25
    D[:3, 3] = -D[3, :3]
    eq = max_entropy_nash(D)
    np.testing.assert_allclose(eq.p, np.append(p_star, 0.0), atol=1e-12)
    assert eq.scores[3] < -0.1
    certified(eq, D)


@pytest.mark.parametrize("copies", [[0, 1, 2, 2], [0, 1, 2, 2, 2, 0], [2, 0, 1, 1, 0, 2, 2]])
def test_duplicated_models_share_mass(copies):
    A, p_star = weighted_rps()
    idx = np.array(copies)
    eq = max_entropy_nash(A[np.ix_(idx, idx)])
    counts = np.bincount(idx, minlength=3)
    np.testing.assert_allclose(eq.p, p_star[idx] / counts[idx], atol=1e-10)
    certified(eq, A[np.ix_(idx, idx)])


def test_all_ties_gives_uniform_and_single_model():
    np.testing.assert_allclose(max_entropy_nash(np.zeros((4, 4))).p, 0.25)
    eq = nash_from_preferences(np.full((1, 1), 0.5))
    assert eq.p.tolist() == [1.0] and eq.exploitability == 0.0


def face_game():
    """A game whose equilibria form a face not explained by duplicates: two RPS triangles
    (different stakes) that tie with each other, plus a model beaten by both."""
    A1, _ = weighted_rps(1.0, 2.0, 3.0)
    A2, _ = weighted_rps(2.0, 1.0, 1.0)
    G = np.zeros((7, 7))
    G[:3, :3] = A1
    G[3:6, 3:6] = A2
    G[6, :6] = -np.array([0.1, 0.3, 0.2, 0.5, 0.1, 0.4])
    G[:6, 6] = -G[6, :6]
    return G


def test_face_of_equilibria_max_entropy_matches_cvxpy():
    G = face_game()
    eq = max_entropy_nash(G)
    certified(eq, G)
    # every mixture t * eq1 + (1 - t) * eq2 is an equilibrium; max entropy picks one t
    p1, p2 = eq.p[:3].sum(), eq.p[3:6].sum()
    assert 0.05 < p1 < 0.95 and p2 == pytest.approx(1 - p1) and eq.p[6] == 0.0
    np.testing.assert_allclose(eq.p, cvxpy_max_entropy(G), atol=1e-6)
    # closed form: max over t of t*H1 + (1-t)*H2 + h(t) gives t = e^H1 / (e^H1 + e^H2)
    h = lambda q: -(q * np.log(q)).sum()  # noqa: E731
    H1, H2 = h(weighted_rps(1, 2, 3)[1]), h(weighted_rps(2, 1, 1)[1])
    assert p1 == pytest.approx(np.exp(H1) / (np.exp(H1) + np.exp(H2)), abs=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_degenerate_integer_games_match_cvxpy(seed):
    rng = np.random.default_rng(seed)
    n = 9
    G = rng.integers(-1, 2, size=(n, n)).astype(float)
    G = np.triu(G, 1) - np.triu(G, 1).T  # many ties: faces of equilibria are common
    eq = max_entropy_nash(G)
    certified(eq, G)
    ref = cvxpy_max_entropy(G)
    np.testing.assert_allclose(eq.p, ref, atol=2e-5)
    assert eq.entropy >= -(ref[ref > 0] * np.log(ref[ref > 0])).sum() - 1e-6


@pytest.mark.parametrize("seed", [0, 14, 59])
def test_sparse_games_thin_faces(seed):
    """Sparse games (most pairs tie) have thin faces: some strategy can carry mass in an
    equilibrium (exact LP) while the maximum-entropy weight on it is below 1e-10. Every
    weight we report must be playable, and the answer must match cvxpy's entr solution."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 50))
    density = rng.choice([0.05, 0.1, 0.2])
    G = rng.standard_normal((n, n)) * (rng.random((n, n)) < density)
    if rng.random() < 0.3:
        G = np.round(G)
    A = np.triu(G, 1) - np.triu(G, 1).T
    eq = max_entropy_nash(A)
    certified(eq, A)
    can_play = np.zeros(n, dtype=bool)
    for i in range(n):
        res = linprog(-np.eye(n)[i], A_ub=A, b_ub=np.zeros(n), A_eq=np.ones((1, n)), b_eq=[1.0],
                      bounds=[(0, None)] * n, method="highs")
        assert res.status == 0
        can_play[i] = -res.fun > 1e-9
    assert np.all(can_play[eq.p > 1e-12])
    ref = cvxpy_max_entropy(A / np.abs(A).max())
    np.testing.assert_allclose(eq.p, ref, atol=1e-6)


def test_soccer_real_data_certified_and_cross_checked():
    if not SOCCER.exists():
        pytest.skip(f"OpenSpiel soccer matrix not found at {SOCCER} (shared data absent)")
    P = np.loadtxt(SOCCER)
    assert P.shape == (10, 10)
    eq = nash_from_preferences(P)
    certified(eq, P)
    A = (P - P.T) / 2
    # independent LP (HiGHS simplex): min v s.t. A p <= v, p in simplex; value must be 0
    n = 10
    res = linprog(np.r_[np.zeros(n), 1.0], A_ub=np.c_[A, -np.ones(n)], b_ub=np.zeros(n),
                  A_eq=np.r_[np.ones(n), 0.0][None], b_eq=[1.0],
                  bounds=[(0, None)] * n + [(None, None)], method="highs-ds")
    assert res.status == 0 and abs(res.fun) < 1e-9
    np.testing.assert_allclose(eq.p, cvxpy_max_entropy(A), atol=1e-6)
    np.testing.assert_allclose(eq.p, res.x[:n], atol=1e-7)  # the equilibrium is unique here
    assert (eq.p > 0).sum() >= 2  # a genuine mixture, not a single agent


def test_rrps_bot_population_real_data():
    """43 repeated-RPS bots (Lanctot et al. 2023, arXiv 2303.03196): expected returns, not
    exactly antisymmetric (cells estimated separately); the game is their antisymmetric part."""
    if not RRPS.exists():
        pytest.skip(f"OpenSpiel RRPS bot table not found at {RRPS} (shared data absent)")
    import ast

    rows = [ast.literal_eval(line) for line in RRPS.read_text().splitlines() if line.strip()]
    names = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    M = np.zeros((len(names), len(names)))
    for a, b, value in rows:
        M[index[a], index[b]] = value
    assert M.shape == (43, 43) and np.abs(M + M.T).max() > 1.0  # really not antisymmetric
    eq = max_entropy_nash(M)
    certified(eq, M)
    A = (M - M.T) / 2 / 1000.0
    np.testing.assert_allclose(eq.p, cvxpy_max_entropy(A), atol=1e-6)
    # the uniformly random bot cannot be exploited (its row is 0 up to estimation noise):
    # the equilibrium plays it, so its Nash-averaged score is exactly 0
    assert eq.p[index["randbot"]] > 0
    assert eq.scores[index["randbot"]] == pytest.approx(0.0, abs=1e-9 * np.abs(M).max())
    assert np.abs(M[index["randbot"]]).max() < 0.05 * np.abs(M).max()


def test_bad_input_is_input_error():
    with pytest.raises(InputError, match="square"):
        max_entropy_nash(np.zeros((2, 3)))
    with pytest.raises(InputError, match="non-finite"):
        max_entropy_nash(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(InputError, match="probabilities"):
        nash_from_preferences(np.array([[0.5, 1.2], [-0.2, 0.5]]))
    with pytest.raises(InputError, match="tol"):
        max_entropy_nash(np.zeros((2, 2)), tol=0.0)


def test_failed_certificate_raises(monkeypatch):
    A, _ = weighted_rps()
    # a broken inner solver (returns the uniform mixture) must not slip through
    monkeypatch.setattr(nash_mod, "_max_entropy_on_face", lambda A, S, p: (S, np.full(S.size, 1 / S.size)))
    with pytest.raises(SolverError, match="certificate"):
        max_entropy_nash(A)


def test_lp_fallback_path_gives_same_answer(monkeypatch):
    """Without the interior point method the LP vertex + maximal-support LP must agree."""
    G = face_game()
    expected = max_entropy_nash(G).p
    monkeypatch.setattr(nash_mod, "_polished_equilibrium", lambda A: None)
    np.testing.assert_allclose(max_entropy_nash(G).p, expected, atol=1e-10)
    A, p_star = weighted_rps()
    idx = [0, 1, 2, 2, 0]
    np.testing.assert_allclose(max_entropy_nash(A[np.ix_(idx, idx)]).p, p_star[idx] / [2, 1, 2, 2, 2], atol=1e-10)


def test_subgame_double_oracle_matches_full_solve(monkeypatch):
    """n >= SUBGAME_MIN_N goes through candidate subgames; a poor candidate set must still
    grow to the same answer as the IPM on the whole game."""
    rng = np.random.default_rng(11)
    n = 240
    G = rng.standard_normal((n, n))
    A = np.triu(G, 1) - np.triu(G, 1).T
    idx = np.r_[np.arange(n), rng.integers(0, n, size=30)]
    A = A[np.ix_(idx, idx)]
    assert A.shape[0] >= nash_mod.SUBGAME_MIN_N
    eq = max_entropy_nash(A)
    certified(eq, A)
    support = np.flatnonzero(eq.p > 0)
    assert 0.2 * A.shape[0] < support.size < 0.8 * A.shape[0]
    for i, j in zip(range(n, A.shape[0]), idx[n:]):  # copies share mass
        assert eq.p[i] == pytest.approx(eq.p[j], abs=1e-12)
    with monkeypatch.context() as m:
        m.setattr(nash_mod, "SUBGAME_MIN_N", 10**9)
        np.testing.assert_allclose(max_entropy_nash(A).p, eq.p, atol=1e-10)
    with monkeypatch.context() as m:
        m.setattr(nash_mod, "_candidate_strategies", lambda A: np.arange(5))
        np.testing.assert_allclose(max_entropy_nash(A).p, eq.p, atol=1e-10)


antisym = st.integers(min_value=2, max_value=12).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.integers(0, 2**32 - 1),
        st.sampled_from(["normal", "integer", "duplicated"]),
    )
)


def random_game(n, seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "integer":
        G = rng.integers(-2, 3, size=(n, n)).astype(float)
    else:
        G = rng.standard_normal((n, n))
    A = np.triu(G, 1) - np.triu(G, 1).T
    if kind == "duplicated":
        idx = np.r_[np.arange(n), rng.integers(0, n, size=n // 2)]
        A = A[np.ix_(idx, idx)]
    return A


@settings(max_examples=60, deadline=None)
@given(antisym, st.integers(0, 2**32 - 1))
def test_property_simplex_certified_and_relabelling(spec, perm_seed):
    A = random_game(*spec)
    eq = max_entropy_nash(A)
    certified(eq, A)
    perm = np.random.default_rng(perm_seed).permutation(A.shape[0])
    eq_perm = max_entropy_nash(A[np.ix_(perm, perm)])
    np.testing.assert_allclose(eq_perm.p, eq.p[perm], atol=1e-8)
    # scale invariance of the mixture; scores scale with A
    eq_scaled = max_entropy_nash(7.5 * A)
    np.testing.assert_allclose(eq_scaled.p, eq.p, atol=1e-8)
    np.testing.assert_allclose(eq_scaled.scores, 7.5 * eq.scores, atol=1e-8)


@pytest.mark.slow
def test_large_random_game_certified():
    rng = np.random.default_rng(0)
    n = 1000
    G = rng.standard_normal((n, n))
    P = 1 / (1 + np.exp(-(G - G.T)))
    eq = nash_from_preferences(P)
    assert eq.exploitability < 1e-8
    certified(eq, P)
