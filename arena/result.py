"""The analysis result as typed, frozen dataclasses, with its JSON form (`results.json`, `--json`).

`arena.analysis` builds the JSON form (a dict of lists, floats, strings and None that survives
`json.dumps(..., allow_nan=False)`); `Result.from_json` checks it, reads older schemas and gives
the typed object; `Result.to_json` gives the dict back. Schema history:

* 1: ratings (bt, elo, intervals, win rate), preference matrix with per-cell Wilson intervals,
  cycles with the point-estimate Condorcet winner, the Nash mixture of the point matrix.
* 2: one shared set of bootstrap resamples behind every interval: `ratings[m].rank_interval`,
  prompt-cluster matrix intervals (`settings.matrix_ci`), `cycles.condorcet_winner` only when
  significant (the point-estimate one moved to `cycles.majority_winner`), `cycles.top_set`,
  `cycles.distinguishable`, `cycles.triangle_survival`, `nash.intervals`,
  `nash.support_probability`, `nash.resampled_exploitability`, `nash.estimator`, `nash.method`;
  judge health (`judge.label_mass_mean`, `judge.warnings`) and the `reading` text.

A schema-1 file reads as schema 1 with the new fields null (its `condorcet_winner` is copied to
`majority_winner`, since it was never checked for significance, and cleared); renderers then
state its claims as point estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from arena.errors import InputError

__all__ = ["Result", "Rating", "Preference", "CyclesResult", "NashResult", "FitResult", "SCHEMA_VERSION"]

SCHEMA_VERSION = 2
_FIX = "re-create it with `arena rate FILE --out DIR` (or re-run the tournament)"


def _fail(what: str) -> InputError:
    return InputError(f"{what}: {_FIX}")


@dataclass(frozen=True, kw_only=True)
class Rating:
    """One model's Bradley–Terry rating: θ, Elo, their intervals, the bootstrap rank interval
    [best, worst] and the mean score over its games (each may be None)."""

    bt: float | None
    elo: float | None
    bt_ci: list | None = None
    elo_ci: list | None = None
    rank_interval: list | None = None
    win_rate: float | None = None


@dataclass(frozen=True, kw_only=True)
class Preference:
    """P[i][j] = P(models[i] ≻ models[j]) with per-cell interval lo, hi and game counts n (None
    for a matrix given without counts)."""

    models: list
    P: list
    n: list | None = None
    lo: list | None = None
    hi: list | None = None


@dataclass(frozen=True, kw_only=True)
class CyclesResult:
    """Majority-graph cycles; condorcet_winner only when significant (schema 2), majority_winner
    on the point estimates, top_set the smallest set whose members each significantly beat every
    outsider, triangle_survival aligned with triangles."""

    triangles: list
    condorcet_winner: str | None = None
    n_triangles: int | None = None
    majority_winner: str | None = None
    top_set: list | None = None
    distinguishable: bool | None = None
    triangle_survival: list | None = None
    cyclic_share: float | None = None
    components: list = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class NashResult:
    """The maximum-entropy Nash mixture of the point matrix with its certificate, and its
    uncertainty from the shared resamples (None without them)."""

    weights: dict
    scores: dict = field(default_factory=dict)
    exploitability: float | None = None
    entropy: float | None = None
    estimator: str | None = None
    intervals: dict | None = None
    support_probability: dict | None = None
    resampled_exploitability: dict | None = None
    method: str | None = None


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """Certificate of the Bradley–Terry fit."""

    grad_norm: float | None = None
    iterations: int | None = None


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise _fail(f"'{where}' must be an object")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as error:  # a required field is missing
        raise _fail(f"'{where}' lacks a required field ({str(error).split('argument')[-1].strip(': ')})") from None


def _as_dict(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass(frozen=True, kw_only=True)
class Result:
    """A whole analysis: the five parts every renderer needs, the settings, and the optional
    tournament parts (run, judge, checkpoints), the reading and any other top-level keys
    (`extra`, kept as they are)."""

    schema: int
    models: list
    ratings: dict  # name -> Rating
    preference: Preference
    cycles: CyclesResult
    nash: NashResult
    fit: FitResult | None = None
    settings: dict = field(default_factory=dict)
    run: dict | None = None
    judge: dict | None = None
    checkpoints: dict | None = None
    reading: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data) -> Result:
        """Check a JSON object from `arena.analysis` (any schema up to SCHEMA_VERSION) and type it.

        Raises InputError naming what is wrong and how to fix it."""
        if not isinstance(data, dict):
            raise _fail(f"the result is a {type(data).__name__}, not a JSON object")
        missing = [k for k in ("models", "ratings", "preference", "cycles", "nash") if k not in data]
        if missing:
            raise _fail(f"the result lacks {', '.join(missing)}")
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or isinstance(schema, bool) or not 1 <= schema <= SCHEMA_VERSION:
            raise InputError(f"results schema {schema!r} is not one this arena reads (1..{SCHEMA_VERSION}): "
                             f"upgrade arena or {_FIX[0].lower() + _FIX[1:]}")
        models = data["models"]
        if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)):
            raise _fail("'models' must be a non-empty list of names")
        n = len(models)
        ratings = data["ratings"]
        if not isinstance(ratings, dict) or set(ratings) != set(models):
            raise _fail("'ratings' must have one entry per model")
        typed_ratings = {m: _build(Rating, ratings[m], f"ratings.{m}") for m in models}
        pref = dict(data["preference"]) if isinstance(data["preference"], dict) else data["preference"]
        if isinstance(pref, dict):
            pref.setdefault("models", list(models))
        preference = _build(Preference, pref, "preference")
        P = preference.P
        if not (isinstance(P, list) and len(P) == n and all(isinstance(r, list) and len(r) == n for r in P)):
            raise _fail(f"'preference.P' must be a {n}x{n} list of lists")
        cyc = data["cycles"]
        if not isinstance(cyc, dict):
            raise _fail("'cycles' must be an object")
        cyc = dict(cyc)
        cyc.setdefault("triangles", [])
        if schema < 2:  # never checked for significance: keep it as the point-estimate winner only
            cyc["majority_winner"] = cyc.get("condorcet_winner")
            cyc["condorcet_winner"] = None
            for key in ("top_set", "distinguishable", "triangle_survival"):
                cyc[key] = None
        cycles = _build(CyclesResult, cyc, "cycles")
        nash = _build(NashResult, data["nash"], "nash")
        if not isinstance(nash.weights, dict) or set(nash.weights) != set(models):
            raise _fail("'nash.weights' must have one entry per model")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            schema=schema, models=list(models), ratings=typed_ratings, preference=preference, cycles=cycles,
            nash=nash, fit=_build(FitResult, data["fit"], "fit") if isinstance(data.get("fit"), dict) else None,
            settings=dict(data.get("settings") or {}), run=data.get("run"), judge=data.get("judge"),
            checkpoints=data.get("checkpoints"), reading=data.get("reading"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict:
        """The JSON object (every field, None as null; `extra` keys merged back at the top level)."""
        out: dict[str, Any] = {
            "schema": self.schema,
            "models": list(self.models),
            "ratings": {m: _as_dict(r) for m, r in self.ratings.items()},
            "preference": _as_dict(self.preference),
            "cycles": _as_dict(self.cycles),
            "nash": _as_dict(self.nash),
            "fit": None if self.fit is None else _as_dict(self.fit),
            "settings": dict(self.settings),
        }
        for key in ("run", "judge", "checkpoints", "reading"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.extra)
        return out
