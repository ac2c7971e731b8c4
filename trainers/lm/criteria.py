"""Training on a vector judge: its criteria combined into the scalar preference a trainer uses.

A vector judge (`judges.base.VectorJudge`) answers P_c(y ≻ y' | x) per criterion c. The trainers
consume one number per judged pair, so `--criteria-weights` wraps the judge; the training loops
are untouched.

* **Weighted** (`WeightedCriteriaJudge`, `--criteria-weights helpful=0.5,brief=0.25,safe=0.25`):
  P_w(y ≻ y') = Σ_c w_c P_c(y ≻ y'), a preference like any other; Nash-MP on it converges to the
  β-regularised Nash of P_w (`trainers.lab.multicriteria.run_weighted`). A failed criterion with
  w_c > 0 fails the pair (masked by the trainer, never a tie).

* **Max–min** (`MaxMinCriteriaJudge`, `--criteria-weights maxmin`): the robust objective of
  `arena.core.robust`, max_π min_c min_π' P_c(π ≻ π'), is not a symmetric game — the
  minimiser picks a criterion *and* an opponent — so self-play cannot solve it (against itself
  the policy wins ½ on every criterion, whatever it is). The wrapper is the adversary: per
  prompt x it keeps a bank of the distinct responses the policy has produced for x (at most
  `bank` of them, the oldest dropped), opponent weights q_c(x) over the bank per criterion, and
  criterion weights λ. Each judged response y of a batch is scored against the bank,

      s(y) = Σ_c λ_c Σ_k q_c(x, k) P_c(y ≻ bank_x[k])        (both orders, `judge_vector_both_orders`)

  and the pair gets the preference ½ + ½ (s(y) − s(y')), whose symmetrised policy gradient is
  that of Σ_c λ_c P_c(π ≻ q_c) (the payoff of `trainers.lab.multicriteria`, at half scale).
  Then the adversary moves by multiplicative weights on the policy's judged win rates
  (the `_gains` of the lab's max–min dynamics, with π estimated by the batch's responses):

      q_c(x, k) ∝ q_c(x, k) exp(−eta_q · mean_{y in batch at x} P_c(y ≻ bank_x[k]))
      λ_c      ∝ λ_c      exp(−eta_lam · mean_y Σ_k q_c(x, k) P_c(y ≻ bank_x[k]))

  so weight flows to the criteria and the responses on which the policy is weakest.
  `trainers.lab.multicriteria.bank_preferences` and `adversary_step` are the same formulas on
  a tabular game (the tests compare them on one-token responses). Each wrapper judge call costs
  2·|bank| vector judgments per response. The adversary's state (λ, the banks, q) is saved
  with the trainer's resume state (`state_json`, `load_state_json`), so `--resume` continues
  it; each process of a distributed run keeps its own, and a resumed run restarts them all
  from the first process's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from arena.errors import ConfigError
from judges.base import Comparison, Failure, is_vector, judge_vector_both_orders

__all__ = ["parse_criteria_weights", "criteria_judge", "WeightedCriteriaJudge", "MaxMinCriteriaJudge", "MAXMIN"]

MAXMIN = "maxmin"
#: responses kept per prompt as the adversary's opponents
BANK_SIZE = 16
#: default multiplicative-weights steps of the adversary
ETA_LAM = 1.0
ETA_Q = 1.0


def parse_criteria_weights(text: str) -> dict[str, float] | str:
    """'helpful=0.5,brief=0.5' -> {'helpful': 0.5, 'brief': 0.5}; 'maxmin' -> 'maxmin'."""
    text = str(text).strip()
    if text == MAXMIN:
        return MAXMIN
    weights = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, eq, value = item.partition("=")
        try:
            w = float(value)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            raise ConfigError(f"--criteria-weights item {item!r} is not NAME=NUMBER; e.g. --criteria-weights "
                              "helpful=0.5,brief=0.5, or --criteria-weights maxmin")
        weights[name.strip()] = w
    if not weights:
        raise ConfigError("--criteria-weights is empty; e.g. --criteria-weights helpful=0.5,brief=0.5, or maxmin")
    return weights


def criteria_judge(judge, criteria_weights: str | None, *, seed: int = 0):
    """The judge a trainer uses: `judge` itself without criteria weights, else its wrapper.

    Refuses criteria weights on a scalar judge, and weights that do not name the judge's
    criteria (checked before any work).
    """
    if criteria_weights is None:
        return judge
    if not is_vector(judge):
        raise ConfigError("--criteria-weights needs a vector judge (one preference per criterion), e.g. "
                          "--judge python:arena.worlds.multicriteria:judge or 'panel:helpful=SPEC1|honest=SPEC2'; "
                          "drop --criteria-weights for a scalar judge")
    parsed = parse_criteria_weights(criteria_weights)
    if parsed == MAXMIN:
        return MaxMinCriteriaJudge(judge)
    return WeightedCriteriaJudge(judge, parsed)


class WeightedCriteriaJudge:
    """P_w = Σ_c w_c P_c over a vector judge (module docstring)."""

    def __init__(self, judge, weights):
        from arena.core.robust import check_weights
        from arena.errors import InputError
        from arena.fingerprint import fingerprint_obj

        try:
            self.weights = check_weights(weights, tuple(judge.criteria))
        except InputError as error:
            raise ConfigError(f"--criteria-weights: {error}") from None
        self.inner = judge
        self.criteria = tuple(judge.criteria)
        self.fingerprint = "weighted:" + fingerprint_obj(
            [judge.fingerprint, [[c, round(float(w), 12)] for c, w in zip(self.criteria, self.weights)]])

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        from judges.base import as_criteria

        out: list[float | Failure] = []
        for value in self.inner.judge_vector(list(comparisons)):
            v = as_criteria(value, self.criteria)
            failed = [f"{c}: {x.reason}" for c, w, (_, x) in zip(self.criteria, self.weights, v.items())
                      if w > 0 and isinstance(x, Failure)]
            if failed:
                out.append(Failure("; ".join(failed)))
                continue
            out.append(min(1.0, max(0.0, sum(float(w) * v[c] for c, w in zip(self.criteria, self.weights) if w > 0))))
        return out


class MaxMinCriteriaJudge:
    """Adversarial criterion weights and per-criterion opponents over a response bank (module docstring).

    State: `lam` (C,) the criterion weights; per prompt, `banks[x]` the response texts and
    `log_q[x]` (C, k) the opponents' log-weights over them. `history` holds λ after each call.
    """

    def __init__(self, judge, *, bank: int = BANK_SIZE, eta_lam: float = ETA_LAM, eta_q: float = ETA_Q):
        from arena.fingerprint import fingerprint_obj

        for name, value in (("eta_lam", eta_lam), ("eta_q", eta_q)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0; got {value}")
        if int(bank) < 1:
            raise ConfigError(f"bank must be >= 1; got {bank}")
        self.inner = judge
        self.criteria = tuple(judge.criteria)
        self.bank, self.eta_lam, self.eta_q = int(bank), float(eta_lam), float(eta_q)
        self.log_lam = np.full(len(self.criteria), -math.log(len(self.criteria)))
        self.banks: dict[str, list[str]] = {}
        self.log_q: dict[str, np.ndarray] = {}
        self.history: list[np.ndarray] = []
        self.fingerprint = "maxmin:" + fingerprint_obj([judge.fingerprint, self.bank, self.eta_lam, self.eta_q])

    @property
    def lam(self) -> np.ndarray:
        return np.exp(self.log_lam)

    def _add(self, prompt: str, text: str) -> None:
        """Put `text` in the prompt's bank (once) at the average opponent weight; drop the oldest beyond `bank`."""
        bank = self.banks.setdefault(prompt, [])
        if text in bank:
            return
        C = len(self.criteria)
        log_q = self.log_q.get(prompt, np.zeros((C, 0)))
        new = np.full((C, 1), 0.0) if not bank else np.logaddexp.reduce(log_q, axis=1, keepdims=True) - math.log(len(bank))
        bank.append(text)
        log_q = np.concatenate([log_q, new], axis=1)
        if len(bank) > self.bank:
            bank.pop(0)
            log_q = log_q[:, 1:]
        self.log_q[prompt] = log_q - np.logaddexp.reduce(log_q, axis=1, keepdims=True)

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        comparisons = list(comparisons)
        for c in comparisons:  # the batch's responses join their banks first: opponents from the start
            self._add(c.prompt, c.response_a)
            self._add(c.prompt, c.response_b)
        # every distinct (prompt, response) of the batch against its prompt's bank, both orders, one call
        seen = [(c.prompt, t) for c in comparisons for t in (c.response_a, c.response_b)]
        texts = list(dict.fromkeys(seen))
        mult = {t: seen.count(t) for t in texts}  # how often the batch drew each: its estimate of π
        asks = [(i, k) for i, (x, _) in enumerate(texts) for k in range(len(self.banks[x]))]
        verdicts = judge_vector_both_orders(self.inner, [Comparison(texts[i][0], texts[i][1], self.banks[texts[i][0]][k])
                                                         for i, k in asks])
        G: dict[int, np.ndarray] = {}      # text index -> (C, k) P_c(text ≻ bank[k]), NaN where it failed
        errors: dict[int, str] = {}
        for (i, k), v in zip(asks, verdicts):
            g = G.setdefault(i, np.full((len(self.criteria), len(self.banks[texts[i][0]])), np.nan))
            for ci, c in enumerate(self.criteria):
                if v[c].ok:
                    g[ci, k] = v[c].p
                else:
                    errors.setdefault(i, f"{c}: {v[c].error}")
        lam = self.lam
        score = {}
        for i, (x, _) in enumerate(texts):
            if i not in errors:
                score[i] = float(lam @ (np.exp(self.log_q[x]) * G[i]).sum(axis=1))
        index = {t: i for i, t in enumerate(texts)}
        out: list[float | Failure] = []
        for c in comparisons:
            ia, ib = index[(c.prompt, c.response_a)], index[(c.prompt, c.response_b)]
            bad = [errors[i] for i in (ia, ib) if i in errors]
            out.append(Failure("; ".join(bad)) if bad else 0.5 + 0.5 * (score[ia] - score[ib]))
        self._update(texts, [mult[t] for t in texts], G, errors)
        return out

    def _update(self, texts, mult, G, errors) -> None:
        """One multiplicative-weights step of the opponents and the criterion weights on this batch's gains
        (`trainers.lab.multicriteria.adversary_step` with π, ρ estimated by the batch's responses)."""
        by_prompt: dict[str, list[tuple[int, np.ndarray]]] = {}
        for i, (x, _) in enumerate(texts):
            if i not in errors:
                by_prompt.setdefault(x, []).append((mult[i], G[i]))
        if not by_prompt:
            return
        g_lam, count = np.zeros(len(self.criteria)), 0
        for x, gs in by_prompt.items():
            n_x = sum(m for m, _ in gs)
            g_opp = sum(m * g for m, g in gs) / n_x           # (C, k): π's win rate against each bank response
            q = np.exp(self.log_q[x])
            g_lam += sum(m * (q * g).sum(axis=1) for m, g in gs)  # π's win rate against q_c, per criterion
            count += n_x
            log_q = self.log_q[x] - self.eta_q * g_opp
            self.log_q[x] = log_q - np.logaddexp.reduce(log_q, axis=1, keepdims=True)
        log_lam = self.log_lam - self.eta_lam * g_lam / count
        self.log_lam = log_lam - np.logaddexp.reduce(log_lam)
        self.history.append(self.lam)

    def diagnostics(self) -> dict:
        return {"criterion_weights": {c: float(w) for c, w in zip(self.criteria, self.lam)}}

    def state_json(self) -> str:
        """The adversary's state as JSON (the resume state holds it): λ, and per prompt its bank and q.
        `history` is not part of it (diagnostics of this process only)."""
        import json

        return json.dumps({"criteria": list(self.criteria), "log_lam": self.log_lam.tolist(),
                           "banks": self.banks, "log_q": {x: q.tolist() for x, q in self.log_q.items()}})

    def load_state_json(self, text: str) -> None:
        """Continue from `state_json`'s output; refused when it was written for other criteria."""
        import json

        state = json.loads(text)
        if tuple(state["criteria"]) != self.criteria:
            raise ConfigError(f"the saved max-min adversary has criteria {state['criteria']}, the judge "
                              f"{list(self.criteria)}; resume with the same judge, or pass --overwrite")
        self.log_lam = np.asarray(state["log_lam"], dtype=float)
        self.banks = {x: list(bank) for x, bank in state["banks"].items()}
        self.log_q = {x: np.asarray(q, dtype=float).reshape(len(self.criteria), -1) for x, q in state["log_q"].items()}
