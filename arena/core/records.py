"""Pairwise comparison records and the count tables every estimator starts from.

A record is one judged comparison between two different models ``a`` and ``b`` with a
score ``s = P(a ≻ b)`` in [0, 1]: 1 when ``a`` wins, 0 when ``b`` wins, ½ for a tie, or any
soft probability (an LLM judge's preference, a reward-model comparison). Ties count as half a
win for each side, as in Chatbot Arena's Bradley–Terry fit (Chiang et al. 2024, "Chatbot
Arena: an open platform for evaluating LLMs by human preference", arXiv 2403.04132).

The count tables are

    W[i, j] = Σ_{records (i, j)} s + Σ_{records (j, i)} (1 − s)     (soft wins of i over j)
    N[i, j] = N[j, i] = number of records between i and j,

so that W + Wᵀ = N and diag(W) = diag(N) = 0. An optional integer ``cluster`` per record
(the prompt id) is kept so that intervals can resample whole prompts (``arena.core.bootstrap``).
Optional per-side ``features`` (e.g. response length, markdown headers) feed rating models that
control for style (``arena.core.style``); estimators that do not use them ignore them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arena.errors import InputError

__all__ = ["Records", "make_records", "make_records_indexed", "pair_counts", "win_rates"]

# How many offending rows an error message shows before it says "and k more".
_SHOW = 5


@dataclass(frozen=True)
class Records:
    """Validated comparison records over a fixed, ordered set of models.

    Attributes:
      models: model names; index i in ``a``/``b`` refers to ``models[i]``.
      a, b: (m,) int64 indices of the first and second model of each comparison, a != b.
      score: (m,) float64 in [0, 1], P(a ≻ b): 1 a wins, 0 b wins, 0.5 tie.
      cluster: (m,) int64 cluster (prompt) ids in 0..C-1, or None when there are none.
      features: (m, 2, k) float64 per-side features (``[:, 0]`` of model a's response,
        ``[:, 1]`` of model b's), or None; see `arena.core.style`.
      feature_names: (k,) names of the features (empty when there are none).
    """

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    cluster: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()

    @property
    def n_models(self) -> int:
        return len(self.models)

    def __len__(self) -> int:
        return int(self.a.shape[0])


def _rows(mask: np.ndarray) -> str:
    """Format the first offending row numbers (1-based, as a user counts data rows)."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in idx[:_SHOW])
    more = f" and {idx.size - _SHOW} more" if idx.size > _SHOW else ""
    return f"{shown}{more}"


def make_records(
    model_a: Sequence[str] | np.ndarray,
    model_b: Sequence[str] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    *,
    cluster: Sequence | np.ndarray | None = None,
    models: Sequence[str] | None = None,
    features: np.ndarray | None = None,
    feature_names: Sequence[str] = (),
) -> Records:
    """Build validated `Records` from parallel sequences of names and scores.

    Args:
      model_a, model_b: (m,) model names of each comparison.
      score: (m,) P(model_a ≻ model_b) in [0, 1] (1 win, 0 loss, 0.5 tie, or soft).
      cluster: optional (m,) prompt ids (any hashable values); recoded to 0..C-1 in order of
        first sorted value.
      models: optional model order; every name in the records must be in it (models listed
        without any record are allowed: they have no games). Default: sorted unique names.
      features, feature_names: optional (m, 2, k) per-side features and their k names.

    Raises:
      InputError: empty input, length mismatch, self-matches, NaN or out-of-range scores,
        names missing from ``models``. The message names the rows and the fix.
    """
    names_a = np.asarray(model_a, dtype=object).astype(str)
    names_b = np.asarray(model_b, dtype=object).astype(str)
    s = np.asarray(score, dtype=np.float64)
    m = names_a.shape[0]
    if names_a.ndim != 1 or names_b.shape != (m,) or s.shape != (m,):
        raise InputError(
            f"model_a, model_b and score must be 1-d of equal length; got shapes "
            f"{names_a.shape}, {names_b.shape}, {s.shape}: give one value per comparison"
        )
    if m == 0:
        raise InputError("no comparisons: give at least one (model_a, model_b, score) record")
    # Scores, self-matches and features are checked once, in make_records_indexed.
    if models is None:
        order, inverse = np.unique(np.concatenate([names_a, names_b]), return_inverse=True)
        model_names = tuple(str(x) for x in order)
        a = inverse[:m].astype(np.int64)
        b = inverse[m:].astype(np.int64)
    else:
        model_names = tuple(str(x) for x in models)
        if len(set(model_names)) != len(model_names):
            raise InputError("models contains duplicate names: list each model once")
        if not model_names:
            raise InputError("models is empty: list the models or leave it out")
        index = {name: i for i, name in enumerate(model_names)}
        try:
            a = np.fromiter((index[x] for x in names_a), dtype=np.int64, count=m)
            b = np.fromiter((index[x] for x in names_b), dtype=np.int64, count=m)
        except KeyError as err:
            raise InputError(
                f"model {err.args[0]!r} appears in the records but not in models: add it to models"
            ) from None

    codes = None
    if cluster is not None:
        c = np.asarray(cluster)
        if c.shape != (m,):
            raise InputError(
                f"cluster must have one prompt id per comparison ({m}); got shape {c.shape}"
            )
        if c.dtype.kind == "f" and not np.isfinite(c).all():
            raise InputError(
                f"cluster (prompt id) is missing in rows {_rows(~np.isfinite(c))}: "
                "give every row a prompt id or drop the column"
            )
        if c.dtype == object:
            c = c.astype(str)
        _, codes = np.unique(c, return_inverse=True)
        codes = codes.astype(np.int64).reshape(m)

    return make_records_indexed(model_names, a, b, s, cluster=codes, features=features,
                                feature_names=feature_names)


def make_records_indexed(
    models: Sequence[str],
    a: np.ndarray,
    b: np.ndarray,
    score: np.ndarray,
    *,
    cluster: np.ndarray | None = None,
    features: np.ndarray | None = None,
    feature_names: Sequence[str] = (),
) -> Records:
    """Build validated `Records` from model indices (the columnar readers' path: no per-row Python).

    Args:
      models: (n,) model names, each once.
      a, b: (m,) integer indices into ``models``.
      score: (m,) P(a ≻ b) in [0, 1].
      cluster: optional (m,) integer cluster codes in 0..C-1.
      features: optional (m, 2, k) per-side features; finite.
      feature_names: (k,) their names, required with ``features``.

    Raises InputError with the offending rows (1-based) and the fix.
    """
    models = tuple(str(x) for x in models)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    m = a.shape[0]
    if a.ndim != 1 or b.shape != (m,) or s.shape != (m,):
        raise InputError(
            f"a, b and score must be 1-d of equal length; got shapes {a.shape}, {b.shape}, {s.shape}: "
            "give one value per comparison"
        )
    if m == 0:
        raise InputError("no comparisons: give at least one (model_a, model_b, score) record")
    n = len(models)
    if len(set(models)) != n:
        raise InputError("models contains duplicate names: list each model once")
    out = (a < 0) | (a >= n) | (b < 0) | (b >= n)
    if out.any():
        raise InputError(f"model index outside 0..{n - 1} in rows {_rows(out)}: every index must name a model")
    bad = ~np.isfinite(s)
    if bad.any():
        raise InputError(
            f"score is NaN or infinite in rows {_rows(bad)}: drop those rows or give a score in [0, 1]"
        )
    bad = (s < 0.0) | (s > 1.0)
    if bad.any():
        raise InputError(
            f"score outside [0, 1] in rows {_rows(bad)} (e.g. {float(s[bad][0])!r}): the score is "
            "P(model_a preferred); rescale it to [0, 1]"
        )
    same = a == b
    if same.any():
        raise InputError(
            f"self-matches (model_a == model_b, e.g. {models[int(a[same][0])]!r}) in rows {_rows(same)}: "
            "a model cannot be compared with itself; drop those rows"
        )
    codes = None
    if cluster is not None:
        codes = np.asarray(cluster)
        if codes.shape != (m,) or codes.dtype.kind not in "iu":
            raise InputError(f"cluster must be (m,) integer codes, one per comparison ({m}); got {codes.dtype} {codes.shape}")
        codes = codes.astype(np.int64, copy=False)
    feats, names = None, ()
    if features is not None:
        feats = np.asarray(features, dtype=np.float64)
        names = tuple(str(x) for x in feature_names)
        if feats.ndim != 3 or feats.shape[:2] != (m, 2) or feats.shape[2] != len(names):
            raise InputError(
                f"features must be (m, 2, k) = ({m}, 2, {len(names)}) with one name per feature; "
                f"got {feats.shape}: give each comparison both sides' values"
            )
        bad = ~np.isfinite(feats).all(axis=(1, 2))
        if bad.any():
            raise InputError(f"features are missing or not finite in rows {_rows(bad)}: fill them or drop those rows")
    elif len(feature_names):
        raise InputError("feature_names given without features: give both or neither")
    return Records(models=models, a=a, b=b, score=s.copy(), cluster=codes, features=feats, feature_names=names)


def pair_counts(records: Records) -> tuple[np.ndarray, np.ndarray]:
    """Return (W, N): W[i, j] soft wins of i over j (ties half), N[i, j] = N[j, i] games.

    W + Wᵀ = N by construction; cost O(m + n²).
    """
    n = records.n_models
    a, b, s = records.a, records.b, records.score
    # Each record adds s to W[a, b] and 1 - s to W[b, a].
    W = np.bincount(a * n + b, weights=s, minlength=n * n)
    W += np.bincount(b * n + a, weights=1.0 - s, minlength=n * n)
    W = W.reshape(n, n)
    N = W + W.T
    return W, N


def win_rates(W: np.ndarray, N: np.ndarray, *, models: Sequence[str] | None = None) -> np.ndarray:
    """Mean score of each model over its own games: Σ_j W[i, j] / Σ_j N[i, j] (ties half).

    Raises InputError naming the models without any game (their win rate is undefined);
    ``models`` (optional) gives the names used in that message.
    """
    W = np.asarray(W, dtype=np.float64)
    N = np.asarray(N, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or N.shape != W.shape:
        raise InputError(f"W and N must be square (n, n) of the same shape; got {W.shape}, {N.shape}")
    games = N.sum(axis=1)
    empty = games <= 0
    if empty.any():
        idx = np.flatnonzero(empty)
        names = [models[i] for i in idx] if models is not None else [f"#{i}" for i in idx]
        raise InputError(
            f"models {', '.join(map(str, names[:10]))} have no games, so no win rate: "
            "drop them or add comparisons for them"
        )
    return W.sum(axis=1) / games
