"""The analysis result as typed, frozen dataclasses, with its JSON form (`results.json`, `--json`).

`arena.analysis` returns a `Result`; every renderer reads it by attribute; `Result.to_json` gives
the JSON object (lists, floats, strings and None that survive `json.dumps(..., allow_nan=False)`)
and `Result.from_json` checks one, reads older schemas and types it. Keys this version does not
know (written by a newer arena, or added by hand) are kept in each part's `extra` and written
back after the known ones, so `from_json` then `to_json` never truncates a file. Schema history:

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
state its claims as point estimates. Written back, it stays schema 1 with those nulls present,
and reads back to the same object.

A tournament adds `run` (`RunInfo`), `judge` (`JudgeInfo`), `checkpoints` (name -> card) and,
when copies of one checkpoint were found, `duplicates` (kept name -> copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from arena.errors import InputError

__all__ = ["Result", "Rating", "Preference", "CyclesResult", "NashResult", "FitResult", "Settings", "RunInfo",
           "JudgeInfo", "SCHEMA_VERSION"]

SCHEMA_VERSION = 2
_FIX = "re-create it with `arena rate FILE --out DIR` (or re-run the tournament)"


def _fail(what: str) -> InputError:
    return InputError(f"{what}: {_FIX}")


class _Part:
    """JSON form shared by the parts: the fields in declaration order (those named in `_OMIT`
    left out when None, as the producers never write them then), then `extra` as it came."""

    _OMIT: ClassVar[frozenset] = frozenset()

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name != "extra" and not (f.name in self._OMIT and getattr(self, f.name) is None)}
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    @classmethod
    def from_json(cls, data, where: str):
        if not isinstance(data, dict):
            raise _fail(f"'{where}' must be an object")
        names = {f.name for f in fields(cls)} - {"extra"}
        try:
            return cls(**{k: v for k, v in data.items() if k in names},
                       extra={k: v for k, v in data.items() if k not in names})
        except TypeError as error:  # a required field is missing
            raise _fail(f"'{where}' lacks a required field ({str(error).split('argument')[-1].strip(': ')})") from None


@dataclass(frozen=True, kw_only=True)
class Rating(_Part):
    """One model's Bradley–Terry rating: θ, Elo, their intervals, the bootstrap rank interval
    [best, worst] and the mean score over its games (each may be None)."""

    bt: float | None
    elo: float | None
    bt_ci: list | None = None
    elo_ci: list | None = None
    rank_interval: list | None = None
    win_rate: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Preference(_Part):
    """P[i][j] = P(models[i] ≻ models[j]) with per-cell interval lo, hi and game counts n (None
    for a matrix given without counts)."""

    models: list
    P: list
    n: list | None = None
    lo: list | None = None
    hi: list | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CyclesResult(_Part):
    """Majority-graph cycles: the listed triangles (capped) and their full count;
    condorcet_winner only when significant (schema 2), majority_winner on the point estimates,
    top_set the smallest set whose members each significantly beat every outsider,
    triangle_survival aligned with triangles, HodgeRank cyclic share, strongly connected
    components best first."""

    triangles: list
    n_triangles: int | None = None
    condorcet_winner: str | None = None
    majority_winner: str | None = None
    top_set: list | None = None
    distinguishable: bool | None = None
    triangle_survival: list | None = None
    cyclic_share: float | None = None
    components: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NashResult(_Part):
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
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FitResult(_Part):
    """Certificate of the Bradley–Terry fit."""

    grad_norm: float | None = None
    iterations: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Settings(_Part):
    """How the result was computed: the input kind and size, the interval methods behind each
    figure, seed, level, prior; `extra` holds what a caller adds (`arena rate`: file, example)."""

    input: str | None = None
    records: int | None = None
    clusters: int | None = None
    rounds: int | None = None
    seed: int | None = None
    level: float | None = None
    prior: float | None = None
    ci: str | None = None
    matrix_ci: str | None = None
    nash_ci: str | None = None
    rank_ci: str | None = None
    degenerate_rounds: int | None = None
    significant: bool | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunInfo(_Part):
    """A tournament's work: generations, judge calls (`judgments`, two per comparison),
    comparisons and failed comparisons of the whole plan; `new`/`reused` {generations,
    judgments} of this invocation."""

    _OMIT: ClassVar[frozenset] = frozenset({"new", "reused"})

    generations: int | None = None
    judgments: int | None = None
    comparisons: int | None = None
    failures: int | None = None
    new: dict | None = None
    reused: dict | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class JudgeInfo(_Part):
    """The tournament judge and its health: position consistency, first-position rate, failed
    comparisons, spec and fingerprint, mean label mass (None when no call reported it), the
    warnings of `arena.analysis.judge_warnings`, text fallbacks over the plan and the judge's
    own per-source counts for this invocation (`calls`, absent when it reports none)."""

    _OMIT: ClassVar[frozenset] = frozenset({"spec", "fingerprint", "warnings", "text_fallbacks", "calls"})

    position_consistency: float | None = None
    first_position_rate: float | None = None
    failures: int | None = None
    spec: str | None = None
    fingerprint: str | None = None
    label_mass_mean: float | None = None
    warnings: list | None = None
    text_fallbacks: int | None = None
    calls: dict | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Result:
    """A whole analysis: the five parts every renderer needs, the fit certificate, the settings,
    the tournament parts (None outside a tournament), the reading and any other top-level keys
    (`extra`, kept as they are)."""

    schema: int
    models: list
    ratings: dict  # name -> Rating
    preference: Preference
    cycles: CyclesResult
    nash: NashResult
    fit: FitResult | None = None
    settings: Settings = field(default_factory=Settings)
    run: RunInfo | None = None
    judge: JudgeInfo | None = None
    checkpoints: dict | None = None  # name -> card {fingerprint, kind, card fields[, duplicates]}
    duplicates: dict | None = None  # kept name -> its identical copies
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
        typed_ratings = {m: Rating.from_json(ratings[m], f"ratings.{m}") for m in models}
        pref = dict(data["preference"]) if isinstance(data["preference"], dict) else data["preference"]
        if isinstance(pref, dict):
            pref.setdefault("models", list(models))
        preference = Preference.from_json(pref, "preference")
        P = preference.P
        if not (isinstance(P, list) and len(P) == n and all(isinstance(r, list) and len(r) == n for r in P)):
            raise _fail(f"'preference.P' must be a {n}x{n} list of lists")
        cyc = data["cycles"]
        if not isinstance(cyc, dict):
            raise _fail("'cycles' must be an object")
        cyc = dict(cyc)
        cyc.setdefault("triangles", [])
        if schema < 2 and "majority_winner" not in cyc:
            # Never checked for significance: keep it as the point-estimate winner only. (A
            # schema-1 file this version wrote back already has majority_winner: left as it is.)
            cyc["majority_winner"] = cyc.get("condorcet_winner")
            cyc["condorcet_winner"] = None
            for key in ("top_set", "distinguishable", "triangle_survival"):
                cyc[key] = None
        cycles = CyclesResult.from_json(cyc, "cycles")
        nash = NashResult.from_json(data["nash"], "nash")
        if not isinstance(nash.weights, dict) or set(nash.weights) != set(models):
            raise _fail("'nash.weights' must have one entry per model")

        def part(key, kind):
            value = data.get(key)
            return None if value is None else kind.from_json(value, key)

        def mapping(key):
            value = data.get(key)
            if value is not None and not isinstance(value, dict):
                raise _fail(f"'{key}' must be an object")
            return value

        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            schema=schema, models=list(models), ratings=typed_ratings, preference=preference, cycles=cycles,
            nash=nash, fit=part("fit", FitResult), settings=Settings.from_json(data.get("settings") or {}, "settings"),
            run=part("run", RunInfo), judge=part("judge", JudgeInfo), checkpoints=mapping("checkpoints"),
            duplicates=mapping("duplicates"), reading=data.get("reading"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict:
        """The JSON object: the analysis keys always (None as null), the tournament keys and
        the reading when present, then `extra` at the top level."""
        out: dict[str, Any] = {
            "schema": self.schema,
            "models": list(self.models),
            "ratings": {m: r.to_json() for m, r in self.ratings.items()},
            "preference": self.preference.to_json(),
            "cycles": self.cycles.to_json(),
            "nash": self.nash.to_json(),
            "fit": None if self.fit is None else self.fit.to_json(),
            "settings": self.settings.to_json(),
        }
        for key in ("run", "judge"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).to_json()
        for key in ("checkpoints", "duplicates", "reading"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out
