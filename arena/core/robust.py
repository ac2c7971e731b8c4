"""Several criteria at once: the weighted Nash and the robust (max–min) mixture.

A multi-criteria comparison gives one preference matrix per criterion c (helpful, honest,
harmless, ...): P_c[i, j] = P_c(i ≻ j), with P_c + P_cᵀ = 1. Two principled combinations:

* **Weighted** (`weighted_nash`): the user fixes criterion weights w (w >= 0, sum 1), the
  criteria collapse into one game P_w = sum_c w_c P_c (still complementary), and the answer
  is its maximum-entropy Nash equilibrium (`arena.core.nash`, Balduzzi et al. 2018,
  arXiv 1806.02643). Its value is ½: nothing beats it on the *weighted* preference.

* **Robust** (`robust_mixture`): no weights; the mixture π that does best against the worst
  criterion and the worst opponent,

      v* = max_{π in Δ} min_c min_{π' in Δ} P_c(π ≻ π')
         = max_{π, v} v   s.t.  sum_i π_i P_c[i, j] >= v  for every (c, j),  π in Δ,

  a linear program (the maximin of the n × (C·n) matrix game [P_1 | ... | P_C]; the
  opponent picks a criterion and a model). v* <= ½ (π' = π gives ½ on every criterion),
  with equality exactly when the criteria share an equilibrium; v* < ½ measures how much
  the criteria conflict. The LP's dual is the adversary's optimum: a joint distribution q
  over (criterion, opponent), whose marginal over criteria (`criterion_weights`) is the
  least favourable weighting — by the minimax theorem, no mixture guarantees more than v*
  under it. Among the maximin mixtures (a polytope) we report the one of maximum Shannon
  entropy, so that with one criterion (or identical criteria) the answer is exactly the
  maximum-entropy Nash of `arena.core.nash`.

Certificate (checked from the arrays, independently of the solver): the guarantee of π,
min_c min_j P_c(π ≻ j), and the adversary's bound max_i sum_{c,j} q_cj P_c[i, j]; their
difference (`gap`) must be <= tol, else `SolverError`. Multiplicative-weights dynamics that
converge to the same point are in `trainers.lab.multicriteria`.

Uncertainty (`robust_uncertainty`): the robust mixture re-solved on R resampled games
P_r (C, n, n) — all criteria resampled together, whole prompts at a time, so that a prompt
on which the criteria disagree moves every criterion's matrix at once (`arena.criteria`
draws them) — gives percentile intervals for the weights and the value, how often each
criterion binds and how often the binding set is the estimate's, and the guarantee of the
reported mixture π̂ in each resampled game, min_c min_j P_c,r(π̂ ≻ j) (its lower quantile is
what π̂ holds on the worst criterion with the interval's confidence). As for the ordinary Nash
(`arena.core.uncertainty.nash_uncertainty`), the maximin is not a smooth function of P: where
a near-tie decides the binding criterion or the support, percentile intervals undercover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import null_space
from scipy.optimize import linprog, minimize

from arena.core.nash import EXPLOITABILITY_TOL, NashEquilibrium, nash_from_preferences
from arena.errors import InputError, SolverError

__all__ = ["RobustMixture", "RobustUncertainty", "robust_uncertainty", "criterion_values", "robust_mixture", "weighted_nash", "weighted_preferences",
           "check_criteria", "check_weights", "GAP_TOL", "COMPLEMENT_TOL", "WEIGHT_SUM_TOL"]

#: P_c + P_cᵀ must equal 1 within this (3-decimal CSV rounding passes, a swapped matrix does not)
COMPLEMENT_TOL = 1e-6
#: criterion weights must sum to 1 within this
WEIGHT_SUM_TOL = 1e-9
#: default certificate: adversary's bound minus π's guarantee must be <= GAP_TOL
GAP_TOL = 1e-7
#: the entropy step may give up this much of the LP value (keeps its feasible set non-empty)
VALUE_SLACK = 1e-13
#: a model is a best reply to the adversary when it scores within this of the best
REPLY_TOL = 1e-9
#: an adversary weight above this marks a row that every maximin mixture meets with equality
DUAL_TOL = 1e-12
#: a criterion binds when its guarantee is within this of the value
BINDING_TOL = 1e-7


@dataclass(frozen=True)
class RobustMixture:
    """The robust (max–min) mixture over criteria, with its certificate.

    weights: (n,) the mixture π over models (>= 0, sum 1), maximum entropy among the maximin ones.
    value: min_c min_j P_c(π ≻ j), the win rate π guarantees on every criterion against every
        opponent (<= ½; < ½ when the criteria conflict).
    criteria: (C,) criterion names, in the order of the arrays below.
    criterion_values: (C,) min_j P_c(π ≻ j), π's guarantee on each criterion.
    exploitability: (C,) max_j P_c(j ≻ π) − ½ = ½ − criterion_values: what a best response
        gains over a coin flip on each criterion (all 0 when π is a Nash of every criterion).
    binding: names of the criteria whose guarantee equals the value (within BINDING_TOL).
    criterion_weights: (C,) the adversary's least favourable weighting of the criteria (from the
        LP dual; a vertex when it is not unique).
    opponents: (C, n) the adversary's opponent mixture per criterion (uniform where its weight is 0).
    upper_bound: max_i sum_c criterion_weights_c P_c(i ≻ opponents_c): no mixture guarantees more.
    gap: upper_bound − value (>= 0, <= tol): the certificate.
    entropy: Shannon entropy of `weights` in nats.
    """

    weights: np.ndarray
    value: float
    criteria: tuple[str, ...]
    criterion_values: np.ndarray
    exploitability: np.ndarray
    binding: tuple[str, ...]
    criterion_weights: np.ndarray
    opponents: np.ndarray
    upper_bound: float
    gap: float
    entropy: float


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def check_criteria(P, *, criteria: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Validate a vector preference and return it as a (C, n, n) float array with its names.

    P: a (C, n, n) array (P[c, i, j] = P_c(i ≻ j)) or a mapping name -> (n, n) matrix.
    Every P_c must be finite, in [0, 1] and complementary (P_c + P_cᵀ = 1 within
    COMPLEMENT_TOL); it is returned symmetrised, (P_c + 1 − P_cᵀ)/2, so the identity is exact.
    """
    if isinstance(P, Mapping):
        if criteria is not None:
            raise InputError("pass criterion names either as the mapping's keys or as criteria=, not both")
        if not P:
            raise InputError("no criteria given; pass at least one preference matrix")
        names = tuple(str(k) for k in P)
        shapes = {k: np.shape(v) for k, v in P.items()}
        if len(set(shapes.values())) > 1:
            raise InputError(f"every criterion needs a matrix of the same shape (n, n); got {shapes}")
        P = np.stack([np.asarray(v, dtype=np.float64) for v in P.values()])
    else:
        P = np.asarray(P, dtype=np.float64)
        if P.ndim == 2:
            raise InputError(f"P has one matrix of shape {P.shape}; stack the criteria as (C, n, n) "
                             "(P[None] for one criterion) or pass a dict name -> matrix")
        names = None
    if P.ndim != 3 or P.shape[1] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
        raise InputError(f"P must have shape (criteria, n, n) with n >= 1; got {P.shape}")
    C = P.shape[0]
    if names is None:
        names = tuple(f"c{k}" for k in range(C)) if criteria is None else tuple(str(c) for c in criteria)
    if len(names) != C:
        raise InputError(f"criteria names {list(names)} do not match the {C} matrices in P; give one name per criterion")
    if len(set(names)) != C:
        raise InputError(f"criterion names must be distinct; got {list(names)}")
    if not np.all(np.isfinite(P)):
        c, i, j = (int(k) for k in np.argwhere(~np.isfinite(P))[0])
        raise InputError(f"criterion {names[c]!r}: P[{i}, {j}] is not finite; fill every cell with P(i beats j) "
                         "(0.5 for an unplayed pair)")
    if P.min() < 0.0 or P.max() > 1.0:
        raise InputError(f"P must hold probabilities in [0, 1]; got range [{P.min():.4g}, {P.max():.4g}]")
    dev = np.abs(P + np.swapaxes(P, 1, 2) - 1.0)
    if dev.max() > COMPLEMENT_TOL:
        c, i, j = (int(k) for k in np.unravel_index(np.argmax(dev), dev.shape))
        raise InputError(
            f"criterion {names[c]!r} is not complementary: P[{i}, {j}] + P[{j}, {i}] = {P[c, i, j] + P[c, j, i]:.6g}, "
            "not 1; pass P(i beats j) for every ordered pair, or symmetrise as (P + 1 − Pᵀ)/2"
        )
    P = (P + 1.0 - np.swapaxes(P, 1, 2)) / 2.0
    return P, names


def check_weights(weights, names: tuple[str, ...]) -> np.ndarray:
    """Criterion weights as a (C,) array in the order of `names`: >= 0, summing to 1 (not renormalised).

    weights: a sequence with one entry per criterion, or a mapping name -> weight (missing names get 0).
    """
    if isinstance(weights, Mapping):
        unknown = sorted(set(map(str, weights)) - set(names))
        if unknown:
            raise InputError(f"weights name unknown criteria {unknown}; the criteria are {list(names)}")
        w = np.array([float(weights.get(c, 0.0)) for c in names])
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (len(names),):
            raise InputError(f"weights need one entry per criterion {list(names)}; got {w.size}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"criterion weights must be finite and >= 0; got {w.tolist()}")
    if abs(w.sum() - 1.0) > WEIGHT_SUM_TOL:
        raise InputError(f"criterion weights must sum to 1; got sum {w.sum():.6g}: divide them by their sum")
    return w


def weighted_preferences(P, weights, *, criteria: Sequence[str] | None = None) -> np.ndarray:
    """P_w = sum_c w_c P_c: (n, n), complementary. weights: (C,) or a mapping name -> weight (missing = 0)."""
    P, names = check_criteria(P, criteria=criteria)
    w = check_weights(weights, names)
    return np.einsum("c,cij->ij", w, P)


def weighted_nash(P, weights, *, criteria: Sequence[str] | None = None,
                  tol: float = EXPLOITABILITY_TOL) -> NashEquilibrium:
    """Maximum-entropy Nash equilibrium of P_w = sum_c w_c P_c (`arena.core.nash.nash_from_preferences`).

    Scores are P_w(i ≻ p*) − ½. Use `criterion_values(P, eq.p)` for its guarantee per criterion.
    """
    return nash_from_preferences(weighted_preferences(P, weights, criteria=criteria), tol=tol)


def criterion_values(P, p, *, criteria: Sequence[str] | None = None) -> np.ndarray:
    """min_j P_c(p ≻ j) for every criterion: (C,), the win rate the mixture p guarantees on each."""
    P, _ = check_criteria(P, criteria=criteria)
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (P.shape[1],) or not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
        raise InputError(f"p must be a probability vector of length {P.shape[1]}; got shape {p.shape}")
    return np.einsum("i,cij->cj", p, P).min(axis=1)


def _maximin_lp(P: np.ndarray):
    """HiGHS on  max v  s.t.  P_cᵀ π >= v 1 (every c), π in Δ. Returns (π, q) with q (C, n) the dual."""
    C, n, _ = P.shape
    c = np.zeros(n + 1)
    c[-1] = -1.0
    G = np.swapaxes(P, 1, 2).reshape(C * n, n)  # row (c, j): P_c[:, j]
    A_ub = np.hstack([-G, np.ones((C * n, 1))])
    A_eq = np.concatenate([np.ones(n), [0.0]])[None, :]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(C * n), A_eq=A_eq, b_eq=[1.0],
                  bounds=[(0, None)] * n + [(None, None)], method="highs")
    if res.status != 0:
        raise SolverError(f"robust-mixture LP failed (HiGHS status {res.status}: {res.message}); "
                          "check the preference matrices")
    p = np.clip(res.x[:n], 0.0, None)
    q = np.clip(-np.asarray(res.ineqlin.marginals), 0.0, None)
    if not q.sum() > 0:
        raise SolverError("robust-mixture LP returned no dual solution; cannot certify the answer")
    return p / p.sum(), (q / q.sum()).reshape(C, n)


def _max_entropy_on_face(G: np.ndarray, v: float, p0: np.ndarray, q: np.ndarray, upper: float) -> np.ndarray:
    """Maximise entropy over the maximin set {π in Δ : G π >= v} from its point p0 (the LP's).

    Complementary slackness with the adversary q describes the set: every maximin π plays only
    best replies to q (B) and meets every row that q plays (E) with equality. So
    π_B = p0_B + Z u with Z a basis of the null space of [G_EB; 1ᵀ]; when Z is empty (the generic
    case: a unique maximin mixture) p0 is the answer. Otherwise SLSQP over u (few variables)
    maximises the entropy subject to π_B >= 0 and the other rows >= v − VALUE_SLACK. Returns p0
    when SLSQP does not end at a feasible point of higher entropy (p0 is still a certified
    maximin mixture; only the tie-break is lost).
    """
    n = p0.size
    qf = q.reshape(-1)
    B = np.union1d(np.flatnonzero(qf @ G >= upper - REPLY_TOL), np.flatnonzero(p0 > 0))
    E = qf > DUAL_TOL
    Z = null_space(np.vstack([G[np.ix_(E, B)], np.ones((1, B.size))]))
    if Z.shape[1] == 0:
        return p0
    GR = G[np.ix_(~E, B)] @ Z  # the rows q does not play, in u coordinates
    base_R = G[np.ix_(~E, B)] @ p0[B] - (v - VALUE_SLACK)
    x0 = p0[B]

    def f(u):
        x = x0 + Z @ u
        lx = np.log(np.clip(x, 1e-300, None))
        return float(x @ lx), Z.T @ (lx + 1.0)

    res = minimize(f, np.zeros(Z.shape[1]), jac=True, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda u: x0 + Z @ u, "jac": lambda u: Z},
                                {"type": "ineq", "fun": lambda u: base_R + GR @ u, "jac": lambda u: GR}],
                   options={"ftol": 1e-15, "maxiter": 200})
    p = np.zeros(n)
    p[B] = np.clip(x0 + Z @ res.x, 0.0, None)
    p = p / p.sum()
    if (G @ p).min() >= v - 2 * VALUE_SLACK and _entropy(p) >= _entropy(p0):
        return p
    return p0


def robust_mixture(P, *, criteria: Sequence[str] | None = None, tol: float = GAP_TOL) -> RobustMixture:
    """The mixture maximising min over criteria c and opponents π' of P_c(π ≻ π') (module docstring).

    P: (C, n, n) array or mapping name -> (n, n) matrix, each complementary. Solves the LP
    (HiGHS, status checked), picks the maximum-entropy maximin mixture, and certifies it by
    the duality gap between π's guarantee and the adversary's bound (<= tol, else SolverError).
    """
    P, names = check_criteria(P, criteria=criteria)
    if not (np.isfinite(tol) and tol > 0):
        raise InputError(f"tol must be a positive number; got {tol}")
    C, n, _ = P.shape
    G = np.swapaxes(P, 1, 2).reshape(C * n, n)
    p0, q = _maximin_lp(P)
    upper = float(np.einsum("cij,cj->i", P, q).max())
    p = _max_entropy_on_face(G, float((G @ p0).min()), p0, q, upper)

    values = np.einsum("i,cij->cj", p, P).min(axis=1)  # (C,)
    value = float(values.min())
    lam = q.sum(axis=1)  # (C,)
    opponents = np.where(lam[:, None] > 0, q / np.where(lam > 0, lam, 1.0)[:, None], 1.0 / n)
    gap = max(upper - value, 0.0)  # >= 0 in exact arithmetic (weak duality); below 0 is rounding
    if not gap <= tol:
        raise SolverError(f"robust-mixture certificate failed: adversary's bound {upper:.9f} exceeds the "
                          f"mixture's guarantee {value:.9f} by {gap:.3e} > tol {tol:.1e}; try a larger tol")
    binding = tuple(names[c] for c in np.flatnonzero(values <= value + BINDING_TOL))
    for a in (p, values, lam, opponents):
        a.setflags(write=False)
    exploitability = 0.5 - values
    exploitability.setflags(write=False)
    return RobustMixture(weights=p, value=value, criteria=names, criterion_values=values,
                         exploitability=exploitability, binding=binding, criterion_weights=lam,
                         opponents=opponents, upper_bound=upper, gap=float(gap), entropy=_entropy(p))


@dataclass(frozen=True)
class RobustUncertainty:
    """The robust mixture over resampled games (module docstring, "Uncertainty").

    weights_lo, weights_hi: (n,) percentile interval of each model's weight, widened to contain
        the estimate. value_lo, value_hi: the same for the robust value.
    binding_share: (C,) share of rounds in which each criterion binds.
    binding_same: share of rounds whose binding set equals the estimate's.
    guarantee: (rounds,) min_c min_j P_c,r(π̂ ≻ j) of the reported mixture π̂ in each round;
        guarantee_lower: its (1 − level) quantile.
    rounds: rounds solved; failed: rounds whose solve raised SolverError (left out); level: as given.
    """

    weights_lo: np.ndarray
    weights_hi: np.ndarray
    value_lo: float
    value_hi: float
    binding_share: np.ndarray
    binding_same: float
    guarantee: np.ndarray
    guarantee_lower: float
    rounds: int
    failed: int
    level: float


def robust_uncertainty(P_samples, estimate: RobustMixture, *, level: float = 0.95) -> RobustUncertainty:
    """Re-solve the robust mixture on each resampled game P_samples (R, C, n, n) (module docstring).

    `estimate` is the robust mixture of the point-estimate game (its criteria name the axis C).
    Rounds whose solve fails its certificate are counted in `failed` and left out; all failing
    raises SolverError.
    """
    S = np.asarray(P_samples, dtype=np.float64)
    C, n = len(estimate.criteria), estimate.weights.shape[0]
    if S.ndim != 4 or S.shape[1:] != (C, n, n) or S.shape[0] < 1:
        raise InputError(f"P_samples must be (rounds, {C}, {n}, {n}) for {C} criteria over {n} models; got {S.shape}")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    weights, values, binds = [], [], []
    failed = 0
    for P in S:
        try:
            r = robust_mixture(P, criteria=estimate.criteria)
        except SolverError:
            failed += 1
            continue
        weights.append(r.weights)
        values.append(r.value)
        binds.append(frozenset(r.binding))
    if not weights:
        raise SolverError(f"the robust mixture failed its certificate in all {S.shape[0]} resampled games")
    Wt, v = np.array(weights), np.array(values)  # (R', n), (R',)
    alpha = (1.0 - level) / 2.0
    w_lo, w_hi = np.quantile(Wt, [alpha, 1.0 - alpha], axis=0)
    v_lo, v_hi = np.quantile(v, [alpha, 1.0 - alpha])
    guarantee = np.einsum("i,rcij->rcj", estimate.weights, S).min(axis=(1, 2))  # (R,)
    same = frozenset(estimate.binding)
    return RobustUncertainty(
        weights_lo=np.minimum(w_lo, estimate.weights), weights_hi=np.maximum(w_hi, estimate.weights),
        value_lo=float(min(v_lo, estimate.value)), value_hi=float(max(v_hi, estimate.value)),
        binding_share=np.array([sum(c in b for b in binds) / len(binds) for c in estimate.criteria]),
        binding_same=sum(b == same for b in binds) / len(binds),
        guarantee=guarantee, guarantee_lower=float(np.quantile(guarantee, 1.0 - level)),
        rounds=len(weights), failed=failed, level=level)
