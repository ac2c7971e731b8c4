"""A learned surrogate of the judge as a control variate for the sampled Nash-MP gradient.

The symmetrised Nash-MP estimator (Tiapkin et al. 2025, arXiv 2505.19731; `trainers.lab.sampled`)
judges one pair y_1, y_2 ~ π_θ per prompt; its preference part

    −½ Σ_{i=1,2} (P(y_i ≻ y_{3−i}) − ½) ∇log π_θ(y_i)

is unbiased for ∇_θ[−P(π_θ ≻ sg π_θ)] = −E_y[(P(y ≻ π_θ) − ½) ∇log π_θ(y)], but noisy: one
opponent per sample, and only two samples per prompt. With M more samples y_3..y_K (K = M + 2)
that are *not* judged, and a surrogate S(y, y') ∈ (0, 1) with S(y, y') + S(y', y) = 1 (here
S = σ(z), z(a, b) = (φ_a − φ_b)·w + φ_aᵀ(U − Uᵀ)φ_b on features φ, fitted by logistic
regression on the soft labels of the pairs judged so far), the surrogate's part can be
averaged over all K samples and the judge only corrects it on the judged pair
(control variates, e.g. Owen 2013, "Monte Carlo theory, methods and examples", ch. 8):
`cv_preference_grad`. Its expectation is the plain estimator's whatever S is; a good S only
removes variance, a bad one adds some (the judged correction p − S(y_1, y_2) carries it).

The tabular check of this idea on the raters world's class game is
`benchmarks/bench_convergence.py --cv` (benchmarks/RESULTS.trainers-convergence.md, which also
records the LM version that was measured and not kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

SURROGATE_L2 = 1e-4
"""L2 weight of the surrogate fit: keeps z finite where a judge's label is exactly 0 or 1."""
SURROGATE_LR = 0.1
"""Adam step size of the surrogate fit (logit units per step; the features are O(1))."""
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class Surrogate:
    """S(a, b) = σ((φ_a − φ_b)·w + φ_aᵀ(U − Uᵀ)φ_b), antisymmetric in its logit by construction,
    with the Adam state of its fit (moments m, v of (w, U) and the step count t)."""

    w: np.ndarray
    """(d,) the transitive part (a Bradley–Terry score wᵀφ)."""
    U: np.ndarray
    """(d, d) the cyclic part is U − Uᵀ (skew-symmetric)."""
    m: tuple[np.ndarray, np.ndarray]
    v: tuple[np.ndarray, np.ndarray]
    t: int = 0

    @classmethod
    def zeros(cls, d: int) -> "Surrogate":
        """S ≡ ½ (no information yet): the control variate starts as the plain estimator."""
        if d < 1:
            raise ValueError(f"feature dimension must be >= 1; got {d}")
        z = (np.zeros(d), np.zeros((d, d)))
        return cls(w=z[0], U=z[1], m=z, v=z)

    def logits(self, phi: np.ndarray) -> np.ndarray:
        """z(a, b) for the rows of phi (..., n, d): (..., n, n), z + zᵀ = 0 (batched over leading axes)."""
        s = phi @ self.w                                                          # (..., n)
        return s[..., :, None] - s[..., None, :] + phi @ (self.U - self.U.T) @ np.swapaxes(phi, -1, -2)

    def probs(self, phi: np.ndarray) -> np.ndarray:
        """S(a, b) = σ(z(a, b)) for the rows of phi (..., n, d): (..., n, n), S + Sᵀ = 1."""
        return expit(self.logits(phi))

    def pair_probs(self, phi_a: np.ndarray, phi_b: np.ndarray) -> np.ndarray:
        """S(a_n, b_n) for paired rows phi_a, phi_b (N, d): (N,), without the (N, N) matrix."""
        z = (phi_a - phi_b) @ self.w + np.einsum("nd,de,ne->n", phi_a, self.U - self.U.T, phi_b)
        return expit(z)

    def grad(self, phi: np.ndarray, a: np.ndarray, b: np.ndarray, p: np.ndarray, *,
             l2: float = SURROGATE_L2) -> tuple[np.ndarray, np.ndarray]:
        """Gradient in (w, U) of mean_n[−p_n log S(a_n, b_n) − (1 − p_n) log S(b_n, a_n)] + (l2/2)‖w, U‖²,
        the soft-label logistic loss over judged pairs (a_n, b_n) (rows of phi) with labels p_n
        (one order is enough: the other is the same term, z being antisymmetric)."""
        if not (a.shape == b.shape == p.shape and a.ndim == 1 and len(a) > 0):
            raise ValueError(f"a, b, p must be equal non-empty (N,) arrays; got {a.shape}, {b.shape}, {p.shape}")
        phi_a, phi_b = phi[a], phi[b]                                             # (N, d) each
        r = (self.pair_probs(phi_a, phi_b) - p) / len(a)                          # (N,) d loss / d z, over N
        dK = phi_a.T @ (r[:, None] * phi_b)                                       # d loss / d (U − Uᵀ)
        return (phi_a - phi_b).T @ r + l2 * self.w, dK - dK.T + l2 * self.U

    def adam_step(self, phi: np.ndarray, a: np.ndarray, b: np.ndarray, p: np.ndarray, *,
                  lr: float = SURROGATE_LR, l2: float = SURROGATE_L2) -> "Surrogate":
        """One Adam step (Kingma & Ba 2015, arXiv 1412.6980) on the loss of `grad`."""
        b1, b2 = ADAM_BETAS
        t = self.t + 1
        g = self.grad(phi, a, b, p, l2=l2)
        m = tuple(b1 * mi + (1 - b1) * gi for mi, gi in zip(self.m, g))
        v = tuple(b2 * vi + (1 - b2) * gi ** 2 for vi, gi in zip(self.v, g))
        w, U = (x - lr * (mi / (1 - b1 ** t)) / (np.sqrt(vi / (1 - b2 ** t)) + ADAM_EPS)
                for x, mi, vi in zip((self.w, self.U), m, v))
        return Surrogate(w=w, U=U, m=m, v=v, t=t)


def cv_preference_grad(pi: np.ndarray, ys: np.ndarray, p: np.ndarray, S: np.ndarray, *,
                       all_samples: bool) -> np.ndarray:
    """Stochastic gradient on tabular logits θ (X, Y) of −P(π_θ ≻ sg π_θ), with the surrogate's control variate.

    pi (X, Y): π_θ; ys (X, K), K ≥ 2: samples of π_θ per prompt, only (y_1, y_2) judged, with
    p = P(y_1 ≻ y_2) (X,); S (Y, Y): the surrogate, S + Sᵀ = 1. With
    score_i = mean_{j≠i} S(y_i, y_j) − ½ and the judged corrections c_1 = p − S(y_1, y_2),
    c_2 = (1 − p) − S(y_2, y_1):

    - opponents only (all_samples=False): A_i = score_i + c_i for i = 1, 2, gradient
      −½ Σ_{i=1,2} A_i ∇log π(y_i); E[A_i | y_i] = P(y_i ≻ π_θ) − ½ whatever S is;
    - all samples: −(1/K) Σ_{i≤K} score_i ∇log π(y_i) − ½ Σ_{i=1,2} c_i ∇log π(y_i): the first
      sum has the expectation of the surrogate's gradient, the second of (judge − surrogate)'s.

    Both are unbiased for −π ⊙ (Pπ − ½) whatever S is (tests/trainers/lm/test_cv_tabular.py);
    K = 2 gives the plain symmetrised estimator. ∇_θ log π(y) = e_y − π.
    """
    if pi.ndim != 2 or ys.ndim != 2 or ys.shape[0] != pi.shape[0] or ys.shape[1] < 2:
        raise ValueError(f"pi must be (X, Y) and ys (X, K) with K >= 2; got {pi.shape} and {ys.shape}")
    if p.shape != (pi.shape[0],) or S.shape != (pi.shape[1],) * 2:
        raise ValueError(f"p must be (X,) = ({pi.shape[0]},) and S (Y, Y); got {p.shape} and {S.shape}")
    X, K = ys.shape
    s = S[ys[:, :, None], ys[:, None, :]]                                       # (X, K, K)
    score = (s.sum(2) - np.diagonal(s, axis1=1, axis2=2)) / (K - 1) - 0.5       # (X, K), j ≠ i
    corr = np.stack([p - s[:, 0, 1], (1.0 - p) - s[:, 1, 0]], axis=1)           # (X, 2)
    coef = np.zeros((X, K))
    if all_samples:
        coef -= score / K
        coef[:, :2] -= 0.5 * corr
    else:
        coef[:, :2] -= 0.5 * (score[:, :2] + corr)
    g = np.zeros_like(pi)
    np.add.at(g, (np.repeat(np.arange(X), K), ys.ravel()), coef.ravel())
    return g - coef.sum(1, keepdims=True) * pi


def sparse_labels(p: np.ndarray, s: np.ndarray, judged: np.ndarray, q: float) -> np.ndarray:
    """The label `cv_preference_grad` takes when each prompt's pair is judged only with probability q.

    p (X,): the judge's P(y_1 ≻ y_2) (read only where judged); s (X,): the surrogate's S(y_1, y_2);
    judged (X,) bool, each True with probability q. A judged prompt gets s + (p − s)/q, the others
    s: the correction p − S(y_1, y_2) is then weighted 1/q where it is known and 0 elsewhere, so its
    expectation over the draw is the fully judged one's (`cv_preference_grad` is affine in p), and
    a budget of judge queries buys 1/q times as many steps. Only as good as S: the corrections'
    variance grows as 1/q.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1]; got {q}")
    if not (p.shape == s.shape == judged.shape):
        raise ValueError(f"p, s and judged must have one shape (X,); got {p.shape}, {s.shape}, {judged.shape}")
    return np.where(judged, s + (p - s) / q, s)
