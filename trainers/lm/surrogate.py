"""The LM side of the surrogate control variate (`--cv-samples M`, `trainers.lm.nash_mp`).

Per prompt, K = M + 2 samples of π_θ, only (y_1, y_2) judged; a surrogate of the judge
S(a, b) = σ((φ_a − φ_b)·w + φ_aᵀ(U − Uᵀ)φ_b) (`trainers.lab.control_variate.Surrogate`, the one
implementation of its math, on numpy arrays) scores every pair of the K samples, and the loss
`trainers.losses.nash_mp_cv_loss` uses it as a control variate (unbiased whatever S is).

Features φ(y) of a response, from the *reference* model (fixed, so a feature never drifts with
θ): the mean over the response tokens of its final hidden state, projected to `FEATURE_DIM`
dimensions by a fixed random matrix seeded by the run's seed, plus the reference's mean token
log-prob of the response and its length in tokens; standardised with running statistics over
every sample seen. S is fitted by Adam on the last `BUFFER` judged pairs, `FIT_STEPS` full-batch
steps after every training step; S, its Adam state, the statistics and the buffer live in the
resume state (`SurrogateState.to_tensors`), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from trainers.lab.control_variate import Surrogate

FEATURE_DIM = 16
"""Random projection of the hidden state: enough to separate a handful of styles, and U has
only (16 + 2)² entries to fit from a few thousand judged pairs."""
BUFFER = 4096
"""Judged pairs the surrogate is fitted on (the most recent ones: the policy, hence which
responses matter, moves). About 85 steps of 48 prompts."""
FIT_STEPS = 5
"""Full-batch Adam steps on the buffer after each training step (the fit tracks the buffer;
it need not converge within one step)."""
VAR_FLOOR = 1e-8
"""Added to the running variance before standardising (a constant feature, e.g. the length of
fixed-length responses, is then 0, not NaN)."""


@contextlib.contextmanager
def final_hidden(model: torch.nn.Module):
    """Captures the final hidden states (B, L+T, H) of the next forward of `model` (or of a view of
    it: the reference, the target) as the input of its output embedding, so the features cost no
    forward beyond the one the KL term needs. Yields a list that holds them after the forward."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embedding to read the hidden state from; "
                         f"--cv-samples needs a causal LM with an lm_head")
    seen: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        yield seen
    finally:
        handle.remove()


def projection(hidden_size: int, *, seed: int) -> torch.Tensor:
    """The fixed random matrix (H, FEATURE_DIM), N(0, 1/H) entries, a function of the seed only."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 7)
    return torch.randn(hidden_size, FEATURE_DIM, generator=g) / hidden_size ** 0.5


def response_features(hidden: torch.Tensor, token_logprob: torch.Tensor, mask: torch.Tensor, *,
                      proj: torch.Tensor) -> np.ndarray:
    """Raw features (B, FEATURE_DIM_TOTAL) of responses from the reference's forward.

    hidden: (B, T, H) final hidden states at the response tokens; token_logprob: (B, T) the
    reference's log-prob of each sampled token; mask: (B, T) 1 on response tokens. Features: the
    projected mean and first-token hidden states, the mean, minimum and first token log-probs, the length.
    """
    m = mask.to(hidden.dtype)
    n = m.sum(-1).clamp_min(1.0)                                                 # (B,)
    h = (hidden * m[..., None]).sum(1) / n[:, None]                              # (B, H)
    lp = torch.where(mask.bool(), token_logprob, torch.zeros_like(token_logprob))
    mean_lp = lp.sum(-1) / n
    min_lp = lp.min(-1).values
    first_lp = lp[:, 0]
    return torch.cat([h.float() @ proj, hidden[:, 0].float() @ proj, mean_lp[:, None].float(), min_lp[:, None].float(),
                      first_lp[:, None].float(), n[:, None].float()], 1).double().cpu().numpy()


@dataclass(frozen=True)
class FeatureStats:
    """Running mean and variance of the features (Chan et al.'s pairwise update, exact over
    every batch seen)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, d: int) -> "FeatureStats":
        return cls(n=0, mean=np.zeros(d), m2=np.zeros(d))

    def update(self, x: np.ndarray) -> "FeatureStats":
        nb = len(x)
        if nb == 0:
            return self
        mb = x.mean(0)
        n = self.n + nb
        delta = mb - self.mean
        return FeatureStats(n=n, mean=self.mean + delta * nb / n,
                            m2=self.m2 + ((x - mb) ** 2).sum(0) + delta ** 2 * self.n * nb / n)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """(x − mean)/std; the identity before any update (S ≡ ½ then anyway)."""
        if self.n == 0:
            return x
        return (x - self.mean) / np.sqrt(self.m2 / self.n + VAR_FLOOR)


@dataclass(frozen=True)
class SurrogateState:
    """The surrogate, the feature statistics and the buffer of judged pairs (raw features)."""

    surrogate: Surrogate
    stats: FeatureStats
    phi_a: np.ndarray
    """(N, d) raw features of the first response of each buffered judged pair."""
    phi_b: np.ndarray
    p: np.ndarray
    """(N,) the judge's P(a ≻ b)."""

    @classmethod
    def empty(cls, d: int = 2 * FEATURE_DIM + 4) -> "SurrogateState":
        return cls(surrogate=Surrogate.zeros(d), stats=FeatureStats.empty(d), phi_a=np.zeros((0, d)),
                   phi_b=np.zeros((0, d)), p=np.zeros(0))

    def probs(self, phi: np.ndarray) -> np.ndarray:
        """S(y_i, y_j) for the K responses of each prompt, phi (B, K, d) raw: (B, K, K)."""
        return self.surrogate.probs(self.stats.standardise(phi))

    def update(self, phi: np.ndarray, phi_a: np.ndarray, phi_b: np.ndarray, p: np.ndarray, *,
               buffer: int = BUFFER, fit_steps: int = FIT_STEPS) -> "SurrogateState":
        """After a training step: the statistics take every sample's features phi (n, d), the
        buffer the step's judged pairs (phi_a, phi_b, p), then `fit_steps` Adam steps on the buffer."""
        stats = self.stats.update(phi)
        A, B, P = (np.concatenate([old, new])[-buffer:] for old, new in
                   ((self.phi_a, phi_a), (self.phi_b, phi_b), (self.p, p)))
        s = self.surrogate
        if len(P):
            X = stats.standardise(np.concatenate([A, B]))                        # (2N, d)
            a, b = np.arange(len(P)), len(P) + np.arange(len(P))
            for _ in range(fit_steps):
                s = s.adam_step(X, a, b, P)
        return SurrogateState(surrogate=s, stats=stats, phi_a=A, phi_b=B, p=P)

    # ---- the resume state holds tensors only (torch.load(weights_only=True))
    def to_tensors(self) -> dict[str, torch.Tensor]:
        s, st = self.surrogate, self.stats
        arrays = dict(w=s.w, U=s.U, m_w=s.m[0], m_U=s.m[1], v_w=s.v[0], v_U=s.v[1], t=np.array(s.t),
                      n=np.array(st.n), mean=st.mean, m2=st.m2, phi_a=self.phi_a, phi_b=self.phi_b, p=self.p)
        return {k: torch.from_numpy(np.asarray(v).copy()) for k, v in arrays.items()}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "SurrogateState":
        a = {k: v.numpy() for k, v in t.items()}
        s = Surrogate(w=a["w"], U=a["U"], m=(a["m_w"], a["m_U"]), v=(a["v_w"], a["v_U"]), t=int(a["t"]))
        return cls(surrogate=s, stats=FeatureStats(n=int(a["n"]), mean=a["mean"], m2=a["m2"]),
                   phi_a=a["phi_a"], phi_b=a["phi_b"], p=a["p"])
