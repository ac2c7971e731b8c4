"""Maximum-entropy Nash equilibrium of a symmetric zero-sum (antisymmetric) game.

Balduzzi, Tuyls, Perolat, Graepel (2018), "Re-evaluating evaluation", arXiv 1806.02643.

Game. Checkpoint i meets checkpoint j; the row player's payoff is A[i, j] with
A = -Aᵀ (antisymmetric). For a preference matrix P (P + Pᵀ = 1) we use

    A = (P - Pᵀ) / 2  =  P - ½,

so every score below is in "P - ½" units: (A p)_i = P(i ≻ p) - ½, the probability that
checkpoint i beats a draw from the mixture p, minus one half.

Equilibria. The symmetric zero-sum game has value 0, and its (symmetric) Nash equilibria
are the mixtures

    E = {p in simplex : A p <= 0}          (no checkpoint beats the mixture on average).

E is a polytope; it can be a face rather than a point (duplicated checkpoints, exact ties,
unplayed pairs). Two facts pin down its structure:

* for any p, q in E: qᵀ A p = 0, hence (A p)_i = 0 for every i in the support of any
  equilibrium q;
* strict complementarity (Bohnenblust, Karlin, Shapley 1950; Goldman-Tucker): there is an
  equilibrium whose support S contains every strategy that any equilibrium plays and that
  has (A p)_j < 0 for every j outside S.

So E = {p >= 0, p_T = 0, sum p = 1, (A p)_S = 0, (A p)_T <= 0} with T the complement of S.
Balduzzi et al. report the unique maximiser of the Shannon entropy H(p) = -sum p log p
over E, which has full support on S and splits mass evenly between duplicated checkpoints.

Algorithm (`max_entropy_nash`), on A / max|A| (entries in [-1, 1]).

1. An equilibrium p0 near the analytic centre of E: a feasible primal-dual interior point
   method on  min v s.t. A p <= v 1, p in simplex  (Mehrotra predictor-corrector; one LU
   of A - diag(w/p) per step). Its limit is strictly complementary, so p_i > w_i = v - (A p)_i
   identifies the support S. For n >= SUBGAME_MIN_N it runs on a subgame of candidate
   strategies from a few predictive-regret-matching+ steps and grows it by double oracle
   until no strategy outside beats the answer. Fallback if anything breaks down: HiGHS
   LP (status checked) for a vertex p0.
2. S is confirmed by the best replies B = {i : (A p0)_i >= -BEST_REPLY_TOL}, which contain
   S: if B = supp(p0) then S = B. Otherwise S comes from a maximal-support LP on the
   columns B (max sum t_i + sum s_i with t_i <= x_i, s_i <= -(A x)_i, t, s in [0, 1], x >= 0
   in the cone A x <= 0: the optimum is |B|, t = 1 exactly on S).
3. Maximise H on the face: Newton's method on the affine set {(A p)_S = 0, sum p = 1}
   (null-space coordinates from one SVD; for a unique equilibrium the null space is empty
   and this is an exact linear solve), started at the relative-interior point, with a
   logarithmic barrier for the rows (A p)_T <= 0 followed down to tau = 1e-16. On a
   "thin" face the optimal weight of a playable strategy can be below double precision
   (seen in sparse games: an LP can give it 1% while the entropy optimum gives < 1e-10);
   such a weight (< COLLAPSE_TOL) is reported as 0.
4. Certify: p >= 0 and sum p = 1 by construction, exploitability max_i (A p)_i checked
   against `tol * max|A|`; a failed certificate raises `SolverError`. Nothing uncertified
   is ever returned (the entropy optimality is checked in the tests against cvxpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lu_factor, lu_solve
from scipy.optimize import linprog

from arena.errors import InputError, SolverError

__all__ = ["NashEquilibrium", "max_entropy_nash", "nash_from_preferences", "EXPLOITABILITY_TOL"]

#: default certificate: exploitability max_i (A p)_i must be <= EXPLOITABILITY_TOL * max|A|
EXPLOITABILITY_TOL = 1e-9
#: relative slack below which a strategy counts as a best reply in step 1
BEST_REPLY_TOL = 1e-9
#: upper bound on sum(x) in the maximal-support LP (keeps its feasible set bounded)
SUPPORT_LP_SCALE = 1e8
#: the interior point method stops when the duality measure mu = pᵀw / n falls below this
IPM_MU_TOL = 1e-16
#: fraction of the distance to the boundary taken by one interior point step
IPM_STEP = 0.99
#: games at least this large are first solved on a subgame of candidate strategies
SUBGAME_MIN_N = 200
#: a subgame larger than this share of the game is not worth it: solve the whole game
SUBGAME_MAX_SHARE = 0.8
#: regret-matching steps, and the score margin in units of their exploitability, for candidates
CANDIDATE_ITERS = 100
CANDIDATE_MARGIN = 10.0
#: Newton stops when the Newton decrement (squared) falls below this
NEWTON_DECREMENT_TOL = 1e-22
#: fraction of the distance to the boundary p > 0 that one Newton step may travel
FRACTION_TO_BOUNDARY = 0.95
#: a weight the entropy step drives below this leaves the support (face thinner than precision)
COLLAPSE_TOL = 1e-14
#: barrier weight for the rows outside the support: start, shrink factor, end
BARRIER_TAU0 = 1e-3
BARRIER_SHRINK = 0.1
BARRIER_TAU_MIN = 1e-16
#: a row outside the support with slack below this at the relative-interior start is an equality
SLACK_TOL = 1e-12


@dataclass(frozen=True)
class NashEquilibrium:
    """The maximum-entropy Nash equilibrium of an antisymmetric game, with its certificate.

    p: (n,) mixture (p >= 0, sum 1).
    scores: (n,) Nash-averaged scores A @ p (in the units of A; <= 0, = 0 on the support).
    exploitability: max_i (A p)_i, the best gain any pure strategy has against p (<= tol).
    entropy: Shannon entropy of p in nats.
    """

    p: np.ndarray
    scores: np.ndarray
    exploitability: float
    entropy: float


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def _check_square_finite(M, name: str) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty square (n, n) matrix; got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        bad = np.argwhere(~np.isfinite(M))[0]
        raise InputError(
            f"{name} has a non-finite entry at {tuple(int(k) for k in bad)}; "
            "replace NaN/inf by a finite value (e.g. 0.5 for an unplayed pair)"
        )
    return M


def _svd_split(M: np.ndarray):
    """Orthonormal bases of the row space and the null space of M, with its singular values."""
    U, sig, Vt = np.linalg.svd(M, full_matrices=True)
    rank_tol = (sig[0] if sig.size else 0.0) * max(M.shape) * np.finfo(float).eps
    r = int((sig > rank_tol).sum())
    return U[:, :r], sig[:r], Vt[:r], Vt[r:].T  # Z = Vt[r:].T spans the null space


def _project_affine(M: np.ndarray, d: np.ndarray, p: np.ndarray, split=None) -> np.ndarray:
    """Closest point to p on {x : M x = d} (least squares when the system is inconsistent)."""
    U, sig, Vr, _ = _svd_split(M) if split is None else split
    return p - Vr.T @ ((U.T @ (M @ p - d)) / sig)


def _ipm_equilibrium(A: np.ndarray, *, max_iter: int = 100):
    """Equilibrium near the analytic centre of E by a feasible primal-dual interior point method.

    Central path of  min v  s.t.  w = v 1 - A p >= 0, 1ᵀp = 1, p >= 0,  p ∘ w = mu 1.
    Started feasible (p uniform, v = max(A p) + 1), Newton steps keep the linear equalities;
    pᵀw = v because pᵀ A p = 0, so mu = v / n. Each step factors K = A - diag(w / p) once
    (negative definite: xᵀ K x = -xᵀ diag(w/p) x, so always invertible) and solves twice
    (Mehrotra predictor-corrector). Iterates approach the analytic centre of the optimal
    face, which is strictly complementary: p_i >> w_i on the support S, w_i >> p_i off it.
    Returns (p, w) or None when the iteration breaks down (then the LP path is used).
    """
    n = A.shape[0]
    one = np.ones(n)
    p = np.full(n, 1.0 / n)
    v = float((A @ p).max()) + 1.0
    w = v - A @ p
    diag = np.diag_indices(n)
    for _ in range(max_iter):
        mu = float(p @ w) / n
        if mu < IPM_MU_TOL:
            return p, w
        K = A.copy()
        K[diag] -= w / p
        try:
            lu = lu_factor(K, check_finite=False)
        except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - defensive
            return None
        a = lu_solve(lu, one, check_finite=False)
        sa = float(a.sum())
        if not np.isfinite(sa) or sa == 0.0:
            return None

        def direction(r):
            b = lu_solve(lu, r / p, check_finite=False)
            dv = float(b.sum()) / sa
            dp = dv * a - b
            return dp, dv, dv - A @ dp  # dw from the linear equality, so it stays exact

        def max_step(dp, dw):
            ratios = np.concatenate([-p[dp < 0] / dp[dp < 0], -w[dw < 0] / dw[dw < 0], [np.inf]])
            return float(ratios.min())

        dp, dv, dw = direction(-p * w)  # predictor (affine scaling)
        alpha = min(1.0, max_step(dp, dw))
        mu_aff = float((p + alpha * dp) @ (w + alpha * dw)) / n
        sigma = (mu_aff / mu) ** 3
        dp, dv, dw = direction(sigma * mu - p * w - dp * dw)  # corrector
        alpha = min(1.0, IPM_STEP * max_step(dp, dw))
        if not np.isfinite(alpha) or alpha < 1e-12:
            return p, w
        p, v, w = p + alpha * dp, v + alpha * dv, w + alpha * dw
    return p, w


def _candidate_strategies(A: np.ndarray) -> np.ndarray:
    """Strategies likely to be in (or near) the support, from a cheap first-order estimate.

    Predictive regret matching+ (Farina, Kroer, Sandholm 2021, arXiv 2007.14358) in self-play
    for CANDIDATE_ITERS steps gives a mixture pbar with exploitability eps; strategies scoring
    within CANDIDATE_MARGIN * eps of the best are kept. Only a starting point: the double
    oracle loop in `_polished_equilibrium` adds every strategy that beats the subgame answer.
    """
    n = A.shape[0]
    Q = np.zeros(n)
    m = np.zeros(n)
    avg = np.zeros(n)
    for t in range(1, CANDIDATE_ITERS + 1):
        Qp = np.maximum(Q + m, 0.0)
        s = Qp.sum()
        p = Qp / s if s > 0 else np.full(n, 1.0 / n)
        u = A @ p
        r = u - p @ u
        Q = np.maximum(Q + r, 0.0)
        m = r
        avg += t * p
    scores = A @ (avg / avg.sum())
    eps = max(float(scores.max()), 1e-12)
    return np.flatnonzero(scores >= -CANDIDATE_MARGIN * eps)


def _polished_equilibrium(A: np.ndarray):
    """Equilibrium near the analytic centre of E, by the IPM on a growing subgame.

    For large n the IPM runs on candidate strategies K first (double oracle, McMahan, Gordon,
    Blum 2003): the subgame answer extended by zeros is an equilibrium of the whole game
    unless some strategy outside K beats it; those join K and the subgame is solved again.
    The IPM point is classified (S = {p > w}) and set to zero off S. Returns an approximate
    relative-interior equilibrium p0 of A (exactly zero off S), or None when that fails
    (then the caller falls back to the LP).
    """
    n = A.shape[0]
    K = np.arange(n)
    if n >= SUBGAME_MIN_N:
        K = _candidate_strategies(A)
        if K.size > SUBGAME_MAX_SHARE * n or K.size == 0:
            K = np.arange(n)
    while True:
        found = _ipm_equilibrium(A[np.ix_(K, K)])
        if found is None:
            return None
        p, w = found
        S = K[p > w]
        if S.size == 0:
            return None
        # p_T = 0; the exact projection onto the face happens once, in the entropy step
        p0 = np.zeros(n)
        p0[S] = p[p > w] / p[p > w].sum()
        scores = A @ p0
        if scores.max() <= BEST_REPLY_TOL:
            return p0
        if K.size == n:
            return None
        beaters = np.flatnonzero(scores > 0)
        K = np.union1d(K, beaters)
        if K.size > SUBGAME_MAX_SHARE * n:
            K = np.arange(n)


def _lp_equilibrium(A: np.ndarray) -> np.ndarray:
    """One equilibrium: min v s.t. A p <= v 1, sum p = 1, p >= 0 (value is 0)."""
    n = A.shape[0]
    c = np.zeros(n + 1)
    c[-1] = 1.0
    A_ub = np.hstack([A, -np.ones((n, 1))])
    A_eq = np.concatenate([np.ones(n), [0.0]])[None, :]
    res = linprog(
        c, A_ub=A_ub, b_ub=np.zeros(n), A_eq=A_eq, b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)], method="highs-ipm",
    )
    if res.status != 0:
        raise SolverError(f"equilibrium LP failed (HiGHS status {res.status}: {res.message}); "
                          "check that the payoff matrix is well scaled")
    p = np.clip(res.x[:n], 0.0, None)
    return p / p.sum()


def _lp_max_support(A: np.ndarray, B: np.ndarray):
    """Maximal support among equilibria whose support lies in B (S subset of B).

    Variables x (on B) >= 0, t in [0, 1]^B, s in [0, 1]^B; rows A[:, B] x + s (on B rows) <= 0,
    t - x <= 0, sum x <= SUPPORT_LP_SCALE; maximise sum t + sum s. The set {x >= 0, A x <= 0}
    is a cone, so a strictly complementary equilibrium scaled up gives t = 1 on S and s = 1
    on B minus S. Returns (S as a boolean mask over B, x normalised to the simplex) or None
    when the optimum does not classify every strategy of B (numerically too degenerate).
    """
    n, b = A.shape[0], B.size
    AB = A[:, B]
    inB = np.zeros((n, b))
    inB[B, np.arange(b)] = 1.0
    eye, zero = np.eye(b), np.zeros((b, b))
    A_ub = np.vstack([
        np.hstack([AB, np.zeros((n, b)), inB]),
        np.hstack([-eye, eye, zero]),
        np.concatenate([np.ones(b), np.zeros(2 * b)])[None, :],
    ])
    b_ub = np.concatenate([np.zeros(n + b), [SUPPORT_LP_SCALE]])
    c = np.concatenate([np.zeros(b), -np.ones(2 * b)])
    bounds = [(0, None)] * b + [(0, 1)] * (2 * b)
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:
        raise SolverError(f"support LP failed (HiGHS status {res.status}: {res.message})")
    x, t, s = res.x[:b], res.x[b:2 * b], res.x[2 * b:]
    in_S, in_T = t > 0.5, s > 0.5
    if not np.all(in_S ^ in_T) or x.sum() <= 0:
        return None
    return in_S, x / x.sum()


def _max_entropy_on_face(A: np.ndarray, S: np.ndarray, pS: np.ndarray, *, max_newton: int = 60):
    """Minimise sum p log p over {p_T = 0, (A p)_S = 0, 1ᵀp = 1, (A p)_T <= 0, p_S > 0}.

    From a relative-interior pS. Newton's method in null-space coordinates of the equality
    rows, with a logarithmic barrier -tau sum_T log(-(A p)_j) for the rows outside S that
    is followed down to tau = BARRIER_TAU_MIN (rows that the optimum makes active keep a
    slack of order tau, so the answer stays strictly feasible). A row whose slack is
    already below SLACK_TOL at the start is an equality in all but name and joins them.
    A weight the optimum drives below COLLAPSE_TOL (the face is that thin in its direction;
    its optimal value is below double precision) leaves S while its row stays an equality.
    Returns (S, p_S).
    """
    n = A.shape[0]
    S = np.asarray(S)
    R = S.copy()  # rows with (A p)_R = 0 on the whole face
    for _restart in range(2 * n + 2):
        T = np.setdiff1d(np.arange(n), R)
        C = np.vstack([A[np.ix_(R, S)], np.ones((1, S.size))])
        d = np.concatenate([np.zeros(R.size), [1.0]])
        split = _svd_split(C)
        p = _project_affine(C, d, pS / pS.sum(), split)
        if np.any(p <= 0):
            raise SolverError("entropy step lost positivity after projection; the game is too "
                              "degenerate at this precision (try rescaling A)")
        Z = split[3]
        if Z.shape[1] == 0:  # a unique equilibrium on S: the linear solve is the answer
            return S, p
        G = A[np.ix_(T, S)]
        slack = -(G @ p)
        if np.any(slack <= SLACK_TOL):
            R = np.union1d(R, T[slack <= SLACK_TOL])
            pS = p
            continue
        GZ = G @ Z
        tau = BARRIER_TAU0 if T.size else 0.0
        collapsed = False
        while not collapsed:
            for _ in range(max_newton):
                inv_s = 1.0 / slack
                g = Z.T @ (np.log(p) + 1.0) + tau * (GZ.T @ inv_s)
                H = (Z.T / p) @ Z + tau * (GZ.T * inv_s**2) @ GZ
                try:
                    u = -np.linalg.solve(H, g)
                except np.linalg.LinAlgError:
                    u = -np.linalg.lstsq(H, g, rcond=None)[0]
                decrement = float(-g @ u)
                if not decrement > NEWTON_DECREMENT_TOL:
                    break
                dp, ds = Z @ u, -(GZ @ u)
                ratios = np.concatenate([-p[dp < 0] / dp[dp < 0], -slack[ds < 0] / ds[ds < 0], [np.inf]])
                alpha = min(1.0, FRACTION_TO_BOUNDARY * float(ratios.min()))

                def f(q, sq):
                    return float(q @ np.log(q)) - tau * float(np.log(sq).sum())

                f0 = f(p, slack)
                while alpha > 1e-12:  # Armijo backtracking
                    q, sq = p + alpha * dp, slack + alpha * ds
                    if f(q, sq) <= f0 - 1e-4 * alpha * decrement:
                        break
                    alpha *= 0.5
                else:
                    break
                p, slack = q, sq
                if p.min() < COLLAPSE_TOL:
                    collapsed = True
                    break
            if collapsed or tau <= BARRIER_TAU_MIN:
                break
            tau *= BARRIER_SHRINK
        if not collapsed:
            return S, p
        keep = p >= COLLAPSE_TOL
        S, pS = S[keep], p[keep]
    raise SolverError("maximum-entropy step did not settle; the equilibrium face is too "
                      "degenerate at this precision")


def max_entropy_nash(A, *, tol: float = EXPLOITABILITY_TOL) -> NashEquilibrium:
    """Maximum-entropy Nash equilibrium of the antisymmetric game A (see the module docstring).

    Solves   max_p  -sum_i p_i log p_i   s.t.  A p <= 0,  sum p = 1,  p >= 0
    with A replaced by its antisymmetric part (A - Aᵀ)/2 (so A = P - ½ and A = P - Pᵀ both
    work; scores come back in the units of the A passed in). Certificate: exploitability
    max_i (A p)_i <= tol * max|A_ij|, else SolverError.
    """
    A = _check_square_finite(A, "A")
    if not (np.isfinite(tol) and tol > 0):
        raise InputError(f"tol must be a positive number; got {tol}")
    A = (A - A.T) / 2.0
    n = A.shape[0]
    scale = float(np.abs(A).max())
    if scale == 0.0:  # every mixture is an equilibrium: the uniform one has maximum entropy
        p = np.full(n, 1.0 / n)
        return NashEquilibrium(p=p, scores=np.zeros(n), exploitability=0.0, entropy=_entropy(p))
    An = A / scale  # entries in [-1, 1]

    p0 = _polished_equilibrium(An)
    if p0 is None:
        p0 = _lp_equilibrium(An)
    B = np.flatnonzero(An @ p0 >= -BEST_REPLY_TOL)  # best replies to p0 contain the support S
    supp0 = np.flatnonzero(p0 > 0)
    S, start = supp0, p0[supp0]
    if not np.array_equal(B, supp0):  # p0 may not have maximal support: find S by LP
        found = _lp_max_support(An, B)
        if found is not None:
            in_S, x = found
            S, start = B[in_S], x[in_S]
        # else keep p0's own support: still certified, the face may be smaller
    S, pS = _max_entropy_on_face(An, S, start / start.sum())
    p = np.zeros(n)
    p[S] = pS

    p = np.clip(p, 0.0, None)
    p = p / p.sum()
    scores = A @ p
    exploitability = float(scores.max())
    if not exploitability <= tol * scale:
        raise SolverError(
            f"Nash certificate failed: exploitability {exploitability:.3e} > tol {tol * scale:.3e} "
            "(tol * max|A|); the game may be too ill-conditioned, try a larger tol"
        )
    p.setflags(write=False)
    scores.setflags(write=False)
    return NashEquilibrium(p=p, scores=scores, exploitability=exploitability, entropy=_entropy(p))


def nash_from_preferences(P, *, tol: float = EXPLOITABILITY_TOL) -> NashEquilibrium:
    """Maximum-entropy Nash of the preference game: A = (P - Pᵀ)/2 (= P - ½ when P + Pᵀ = 1).

    P[i, j] = probability that i beats j, in [0, 1] (an array, or a PreferenceMatrix from
    arena.core.matrix). Scores are P(i ≻ p*) - ½.
    """
    P = _check_square_finite(getattr(P, "P", P), "P")
    if P.min() < 0.0 or P.max() > 1.0:
        raise InputError(
            f"P must hold probabilities in [0, 1]; got range [{P.min():.4g}, {P.max():.4g}] "
            "(pass a payoff matrix to max_entropy_nash instead)"
        )
    return max_entropy_nash((P - P.T) / 2.0, tol=tol)
