"""Generation settings per checkpoint, and the store keys they give.

A setting (max_new_tokens, temperature, top_p, top_k) is resolved for each checkpoint by one
rule: the user's flag, else the checkpoint's `generation_config.json`
(`arena.checkpoints.read_generation_config`), else the project default (`DEFAULTS`). The
resolved `SamplingParams` of a checkpoint gives the key its responses are stored under
(`SamplingParams.key`, wrapped with the vLLM engine options when there are any), so changing
one checkpoint's generation_config invalidates its responses only, and a checkpoint whose
settings are the defaults keeps exactly the key it had before per-checkpoint settings existed:
runs stored before reuse their responses.

A judgment depends on both responses, so a pair's judgment key is the one generation key when
both checkpoints share it (every run without a generation_config: the old key) and otherwise
the hash of the two keys in the store's pair order (sorted fingerprints). Reads through
`GenerationKeys` merge the rows of every key in use and keep, for each checkpoint or pair,
only the rows under its own key, so a stale row of another key never leaks in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from arena.engines import SamplingParams
from arena.fingerprint import fingerprint_obj

#: Project defaults of the settings a flag or a checkpoint's generation_config.json may set.
DEFAULTS: Mapping[str, float | int] = {"max_new_tokens": 64, "temperature": 1.0, "top_p": 1.0, "top_k": 0}


@dataclass(frozen=True, kw_only=True)
class CheckpointSettings:
    """One checkpoint's resolved generation settings."""

    params: SamplingParams
    """What the engine samples with."""
    key: str
    """The key its responses are stored under."""
    source: Mapping[str, str] = field(default_factory=dict)
    """{setting: "flag" | "generation_config" | "default"} for each of `DEFAULTS`."""


def resolve_settings(user: Mapping[str, float | int | None], checkpoint: Mapping[str, float | int], *, engine: str,
                     engine_options: Sequence[tuple[str, str]] = (), **fixed) -> CheckpointSettings:
    """flag > checkpoint generation_config > default, for each of `DEFAULTS`.

    `user`: {setting: value or None (not given)}; `checkpoint`: the settings its
    generation_config.json sets; `fixed`: the other `SamplingParams` fields (seed, stop,
    prompt_format, dtype), the same for every checkpoint.
    """
    values, source = {}, {}
    for name, default in DEFAULTS.items():
        if user.get(name) is not None:
            values[name], source[name] = user[name], "flag"
        elif checkpoint.get(name) is not None:
            values[name], source[name] = checkpoint[name], "generation_config"
        else:
            values[name], source[name] = default, "default"
    params = SamplingParams(**values, **fixed)
    key = params.key(engine)
    if engine_options:  # vLLM's dtype, max_model_len, ... change the responses: part of their key
        key = fingerprint_obj({"params": key, "engine_options": sorted(engine_options)})
    return CheckpointSettings(params=params, key=key, source=source)


@dataclass(frozen=True)
class GenerationKeys:
    """The generation key of each checkpoint (by fingerprint) and the judgment key of each pair."""

    by_fingerprint: Mapping[str, str]

    def of(self, fp: str) -> str:
        return self.by_fingerprint[fp]

    def pair(self, fa: str, fb: str) -> str:
        """Judgment key of the pair: the shared generation key, else the hash of both in fingerprint order."""
        ka, kb = self.by_fingerprint[fa], self.by_fingerprint[fb]
        if ka == kb:
            return ka
        lo, hi = sorted((fa, fb))
        return fingerprint_obj({"pair": [self.by_fingerprint[lo], self.by_fingerprint[hi]]})

    def token(self) -> str:
        """One string for the analysis key: the shared key when every checkpoint has it (as before)."""
        keys = set(self.by_fingerprint.values())
        return next(iter(keys)) if len(keys) == 1 else fingerprint_obj(sorted(self.by_fingerprint.items()))

    def generations(self, store) -> dict[tuple[str, str, int], str]:
        """`Store.generations` over every checkpoint's own key: {(fp, prompt hash, sample): text}."""
        out = {}
        for key in sorted(set(self.by_fingerprint.values())):
            out.update((k, t) for k, t in store.generations(key).items() if self.by_fingerprint.get(k[0]) == key)
        return out

    def _pairwise(self, read) -> dict:
        out = {}
        for key in sorted(self._pair_keys()):
            out.update((k, v) for k, v in read(key).items()
                       if k[2] in self.by_fingerprint and k[3] in self.by_fingerprint and self.pair(k[2], k[3]) == key)
        return out

    def _pair_keys(self) -> set[str]:
        fps = sorted(self.by_fingerprint)
        return {self.pair(a, b) for i, a in enumerate(fps) for b in fps[i + 1:]} | set(self.by_fingerprint.values())

    def judgments(self, store, judge: str) -> dict:
        """`Store.judgments` over every pair's own key: {(prompt hash, sample, fp_lo, fp_hi): Judgment}."""
        return self._pairwise(lambda key: store.judgments(judge, key))

    def criterion_judgments(self, store, judge: str) -> dict:
        """`Store.criterion_judgments` over every pair's own key: {(prompt hash, sample, fp_lo, fp_hi): {criterion: Judgment}}."""
        return self._pairwise(lambda key: store.criterion_judgments(judge, key))

    def notes(self, store, judge: str) -> dict:
        """`Store.notes` over every pair's own key."""
        return self._pairwise(lambda key: store.notes(judge, key))

    def by_pair(self, rows, fps: Sequence[str]) -> dict[str, list]:
        """Rows (prompt hash, sample, checkpoint index a, checkpoint index b, ...) grouped by judgment
        key, with the indices replaced by fingerprints, ready for `Store.put_judgments`/`put_notes`."""
        groups: dict[str, list] = {}
        for p, s, a, b, *rest in rows:
            groups.setdefault(self.pair(fps[a], fps[b]), []).append((p, s, fps[a], fps[b], *rest))
        return groups


def settings_record(settings: CheckpointSettings, *, engine: str, samples: int, prompts: str | None) -> dict:
    """The `generation_settings` entry of a checkpoint in results.json."""
    p = settings.params
    return {"engine": engine, "temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k,
            "max_new_tokens": p.max_new_tokens, "stop": list(p.stop), "samples": samples,
            "prompts": prompts, "source": dict(settings.source), "key": settings.key}
