"""Run NLHF algorithms side by side on one game and measure their distance to π*_β.

Metrics after every step t (π_0 = π_ref for every algorithm):
- kl: Σ_x ρ(x) KL(π*_β(·|x) ‖ π_t(·|x)), the quantity Nash-MP's theorem bounds
  (Tiapkin et al. 2025, arXiv 2505.19731);
- gap: Σ_x ρ(x) duality gap of (π_t, π_t) in the regularised game (`trainers.lab.nash`);
- span: max_x span(log π_t − log π*_β) = max_x (max_y − min_y);
- queries: preference queries used per context. An exact algorithm's query is one evaluation of
  the vector P(· ≻ π | x) (Nash-MP and EGPO: 2 per step; the others: 1); a sampled algorithm's
  query is one judged pair (B per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_softmax

from arena.errors import InputError
from trainers.lab import algorithms as alg
from trainers.lab import sampled as smp
from trainers.lab.games import Game
from trainers.lab.nash import RegularizedNash, duality_gap, kl_from_logs, regularized_nash

EXACT = ("nash-mp", "nash-md", "nash-md-decay", "md", "mpo", "egpo")
SAMPLED = ("online-ipo", "online-dpo", "self-play", "nash-mp-ema", "nash-mp-ema-const", "nash-md-pg")
# Order matters: an algorithm's index seeds its random stream, so new names go at the end.
ALGORITHMS = EXACT + SAMPLED
THRESHOLDS = (1e-3, 1e-6)


@dataclass(frozen=True, kw_only=True)
class LabConfig:
    """One comparison run."""

    beta: float = 0.1
    """KL-regularisation strength towards π_ref."""
    eta: float | None = None
    """Nash-MP step η (None: 2β, the largest step the linear rate allows). md, mpo, nash-md and
    egpo use the same mirror step η/β on P."""
    steps: int = 100
    """Iterations per algorithm."""
    algorithms: tuple[str, ...] = EXACT
    """Names from ALGORITHMS."""
    seed: int = 0
    """Seed for the sampled algorithms' pairs and labels."""
    batch: int = 16
    """Sampled algorithms: judged pairs per context per step."""
    lr: float = 1.0
    """Sampled algorithms: SGD learning rate on the logits (see `trainers.lab.sampled`)."""
    kappa: float = 0.1
    """nash-mp-ema-const: constant EMA weight of the online policy in the target."""
    refresh: int = 20
    """mpo: refresh the magnet to the current policy every `refresh` steps."""


@dataclass(frozen=True)
class Trace:
    """Metrics of one algorithm along its run; arrays have length steps + 1 (index = step)."""

    name: str
    kl: np.ndarray
    gap: np.ndarray
    span: np.ndarray
    queries: np.ndarray

    def steps_to(self, threshold: float) -> int | None:
        """First step t with kl[t] < threshold, or None."""
        hit = np.flatnonzero(self.kl < threshold)
        return int(hit[0]) if hit.size else None


@dataclass(frozen=True)
class Comparison:
    """The result of `run_comparison`."""

    config: LabConfig
    eta: float
    nash: RegularizedNash
    traces: dict[str, Trace] = field(default_factory=dict)


def _metrics(game: Game, sol: RegularizedNash, log_pi: np.ndarray, beta: float) -> tuple[float, float, float]:
    w = game.weights
    d = log_pi - sol.log_pi
    return (float(np.dot(w, kl_from_logs(sol.log_pi, log_pi))),
            float(np.dot(w, duality_gap(game, log_pi, beta))),
            float(np.max(d.max(axis=1) - d.min(axis=1))))


def _runner(name: str, game: Game, cfg: LabConfig, eta: float, rng: np.random.Generator, log0: np.ndarray):
    """(step function t, state -> state, policy(state) -> log π, queries per step, initial state)."""
    beta = cfg.beta
    ident = lambda s: s  # noqa: E731
    if name == "nash-mp":
        return (lambda t, s: alg.nash_mp_step(s, game=game, beta=beta, eta=eta)), ident, 2, log0
    if name == "md":
        return (lambda t, s: alg.mirror_descent_step(s, game=game, beta=beta, eta=eta)), ident, 1, log0
    if name == "egpo":
        return (lambda t, s: alg.egpo_step(s, game=game, beta=beta, step=eta / beta)), ident, 2, log0
    if name == "nash-md":
        return (lambda t, s: alg.nash_md_step(s, game=game, beta=beta, eta=eta / beta)), ident, 1, log0
    if name == "nash-md-decay":
        return (lambda t, s: alg.nash_md_step(s, game=game, beta=beta, eta=alg.nash_md_schedule(t, beta))), ident, 1, log0
    if name == "mpo":
        if cfg.refresh < 1:
            raise InputError(f"refresh must be >= 1 step; got {cfg.refresh}")

        def mpo(t, s):
            log_pi, log_mu = s
            log_pi = alg.magnetic_step(log_pi, log_mu, game=game, beta=beta, eta=eta)
            return log_pi, (log_pi if (t + 1) % cfg.refresh == 0 else log_mu)

        return mpo, (lambda s: s[0]), 1, (log0, log0)
    B = cfg.batch
    if name in ("online-ipo", "online-dpo"):
        update = smp.online_ipo_step if name == "online-ipo" else smp.online_dpo_step

        def pref(t, theta):
            pairs = smp.judge_pairs(game, np.exp(log_softmax(theta, axis=1)), B, rng)
            return update(theta, pairs, game=game, beta=beta, lr=cfg.lr)

        return pref, (lambda th: log_softmax(th, axis=1)), B, log0.copy()
    if name == "nash-md-pg":
        if eta >= 1.0:
            raise InputError(f"nash-md-pg mixes with weight eta < 1; got eta={eta}: lower --eta")

        def md_pg(t, theta):
            log_pi = log_softmax(theta, axis=1)
            mix = np.exp(alg.geometric_mixture(log_pi, game.log_pi_ref, eta))
            pairs = smp.judge_pairs(game, np.exp(log_pi), B, rng, pi_opponent=mix)
            return smp.nash_md_pg_step(theta, pairs, game=game, beta=beta, lr=cfg.lr)

        return md_pg, (lambda th: log_softmax(th, axis=1)), B, log0.copy()
    if name in ("self-play", "nash-mp-ema", "nash-mp-ema-const"):
        def kappa(t):
            return {"self-play": 1.0, "nash-mp-ema": smp.kappa_schedule(t), "nash-mp-ema-const": cfg.kappa}[name]

        def ema(t, s):
            theta, target = s
            pairs = smp.judge_pairs(game, np.exp(log_softmax(theta, axis=1)), B, rng)
            return smp.nash_mp_ema_step(theta, target, pairs, game=game, beta=beta, eta=eta, lr=cfg.lr, kappa=kappa(t))

        return ema, (lambda s: log_softmax(s[0], axis=1)), B, (log0.copy(), log0.copy())
    raise InputError(f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")


def run_algorithm(name: str, game: Game, sol: RegularizedNash, cfg: LabConfig, *, eta: float,
                  log_pi0: np.ndarray | None = None) -> Trace:
    """Run one algorithm for cfg.steps steps from log_pi0 (default π_ref) and record its metrics."""
    # Independent, reproducible noise per algorithm: the seed and the algorithm's fixed index.
    rng = np.random.default_rng([cfg.seed, ALGORITHMS.index(name) if name in ALGORITHMS else 0])
    if log_pi0 is None:
        log_pi0 = game.log_pi_ref
    elif log_pi0.shape != game.pi_ref.shape:
        raise InputError(f"log_pi0 must have shape {game.pi_ref.shape}; got {log_pi0.shape}")
    step, policy, per_step, state = _runner(name, game, cfg, eta, rng, log_softmax(log_pi0, axis=1))
    n = cfg.steps + 1
    kl, gap, span = np.empty(n), np.empty(n), np.empty(n)
    kl[0], gap[0], span[0] = _metrics(game, sol, policy(state), cfg.beta)
    for t in range(cfg.steps):
        state = step(t, state)
        kl[t + 1], gap[t + 1], span[t + 1] = _metrics(game, sol, policy(state), cfg.beta)
    return Trace(name=name, kl=kl, gap=gap, span=span, queries=per_step * np.arange(n))


def run_comparison(game: Game, config: LabConfig, *, nash: RegularizedNash | None = None) -> Comparison:
    """Solve π*_β, then run every requested algorithm from π_ref for config.steps steps."""
    unknown = [a for a in config.algorithms if a not in ALGORITHMS]
    if unknown:
        raise InputError(f"unknown algorithm(s) {', '.join(unknown)}; choose from {', '.join(ALGORITHMS)}")
    if config.steps < 1:
        raise InputError(f"steps must be >= 1; got {config.steps}")
    if not (np.isfinite(config.beta) and config.beta > 0):
        raise InputError(f"beta must be a finite number > 0; got {config.beta}")
    eta = 2.0 * config.beta if config.eta is None else float(config.eta)
    if not (np.isfinite(eta) and eta > 0):
        raise InputError(f"eta must be a finite number > 0; got {eta}")
    if eta >= 1.0 and any(a in config.algorithms for a in ("nash-md", "egpo")):
        raise InputError(f"nash-md and egpo mix with weight eta < 1; got eta={eta}: lower --eta")
    sol = regularized_nash(game, config.beta) if nash is None else nash
    traces = {a: run_algorithm(a, game, sol, config, eta=eta) for a in config.algorithms}
    return Comparison(config=config, eta=eta, nash=sol, traces=traces)


def report_steps(steps: int) -> list[int]:
    """The steps at which the JSON records KL: 0, 1, 2, 5, 10, 20, 50, ... and the last step."""
    marks = {0, steps}
    k = 1
    while k <= steps:
        for m in (1, 2, 5):
            if m * k <= steps:
                marks.add(m * k)
        k *= 10
    return sorted(marks)


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def comparison_to_json(comp: Comparison, *, game_info: dict | None = None) -> dict:
    """The JSON object of `arena lab game --json`."""
    cfg = comp.config
    marks = report_steps(cfg.steps)
    algos = {}
    for name, tr in comp.traces.items():
        algos[name] = {
            "final_kl": _num(tr.kl[-1]),
            "steps_to_1e-3": tr.steps_to(1e-3),
            "steps_to_1e-6": tr.steps_to(1e-6),
            "queries": int(tr.queries[-1]),
            "queries_to_1e-6": None if tr.steps_to(1e-6) is None else int(tr.queries[tr.steps_to(1e-6)]),
            "final_gap": _num(tr.gap[-1]),
            "final_span": _num(tr.span[-1]),
            "kl": {str(s): _num(tr.kl[s]) for s in marks},
        }
    return {
        "algorithms": algos,
        "game": game_info or {},
        "beta": cfg.beta,
        "eta": comp.eta,
        "steps": cfg.steps,
        "seed": cfg.seed,
        "batch": cfg.batch,
        "lr": cfg.lr,
        "nash": {"gap": comp.nash.gap, "residual": comp.nash.residual},
        "bound_steps_1e-6": theoretical_steps(cfg.beta, 1e-6),
    }


def theoretical_steps(beta: float, target: float) -> int:
    """Smallest T with (1 + 2β)^{−T} / (2β) < target: Nash-MP's guaranteed iteration count."""
    T = np.log(1.0 / (2.0 * beta * target)) / np.log1p(2.0 * beta)
    return max(0, int(np.floor(T)) + 1)
