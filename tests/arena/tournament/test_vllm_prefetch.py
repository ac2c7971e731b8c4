"""--engine vllm builds each checkpoint's `vllm.LLM` once per run (`VLLMEngine.prefetch`,
`arena.tournament.whole_checkpoints`), and the run judges exactly what lazy generation judges.

vLLM itself is replaced by a stand-in module that counts `LLM` constructions, refuses to build
one while another is alive (vLLM holds one model per device), and answers each request with a
text that depends only on the checkpoint and the request's seed, as a seeded engine does."""

from __future__ import annotations

import sys
import types
import weakref
from collections import Counter
from pathlib import Path

import pytest

from arena.engines import Request, SamplingParams
from arena.engines.vllm import VLLMEngine
from arena.store import Store
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

JUDGE = "python:tournament_helpers:judge"
FAST = dict(max_new_tokens=6, rounds=50, batch_size=4, engine="vllm")


class _StandInVLLM(types.ModuleType):
    """`vllm` with `LLM` and `SamplingParams`; `built` lists the model path of each `LLM` built."""

    def __init__(self, tokenizer):
        super().__init__("vllm")
        built, alive = self.built, self.alive = [], weakref.WeakSet()

        class SamplingParams:
            def __init__(self, **kw):
                self.kw = kw

        class LLM:
            def __init__(self, **kw):
                if len(alive):
                    raise RuntimeError("a second vllm.LLM while one is alive: not enough device memory")
                self.model = Path(kw["model"]).name
                built.append(self.model)
                alive.add(self)

            def get_tokenizer(self):
                return tokenizer

            def generate(self, prompts, sps, use_tqdm=False):
                return [types.SimpleNamespace(outputs=[types.SimpleNamespace(
                    text=f"{self.model} says {sp.kw['seed']}")]) for sp in sps]

        self.SamplingParams, self.LLM = SamplingParams, LLM


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefetch")
    ckpts = h.make_ckpts(root / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(root / "prompts.txt", 8)
    return {"ckpts": ckpts, "prompts": prompts}


@pytest.fixture
def vllm(monkeypatch):
    fake = _StandInVLLM(h.tokenizer())
    monkeypatch.setitem(sys.modules, "vllm", fake)
    return fake


def _run(base, out, **kw) -> dict:
    return run_tournament(TournamentConfig(ckpts_dir=base["ckpts"], prompts=base["prompts"], judge=JUDGE, out=out,
                                           samples=2, **{**FAST, **kw})).to_json()


def _judged(out) -> dict:
    with Store.open(out) as store:
        return {row[:4]: row[4:] for row in store.conn.execute(
            "SELECT prompt, sample, a, b, p, p_ab, p_ba FROM judgments ORDER BY prompt, sample, a, b")}


def _stored_generations(out) -> int:
    with Store.open(out) as store:
        return store.conn.execute("SELECT count(*) FROM generations").fetchone()[0]


def _without_counts(result: dict) -> dict:
    """results.json less this invocation's counts (`run.new`, `run.reused`)."""
    return {**result, "run": {k: v for k, v in result["run"].items() if k not in ("new", "reused")}}


def test_adaptive_run_builds_each_llm_once_and_judges_what_lazy_generation_judges(base, tmp_path, vllm,
                                                                                  monkeypatch):
    adaptive = dict(adaptive=True, budget=40, judge_batch_size=4)
    ahead = _run(base, tmp_path / "ahead", **adaptive)
    steps = len(ahead["adaptive"]["trace"])
    assert steps >= 4 and ahead["adaptive"]["stop"] == "budget"  # several steps, each touching the models
    assert Counter(vllm.built) == {"alpha": 1, "beta": 1, "gamma": 1}

    vllm.built.clear()
    monkeypatch.setattr(VLLMEngine, "prefetch", False)  # lazy: only what each step's batch uses
    lazy = _run(base, tmp_path / "lazy", **adaptive)
    assert len(vllm.built) > 3  # the cost this avoids: an LLM per step and checkpoint

    # The same comparisons, verdicts, trace and analysis; only the responses generated differ.
    assert _judged(tmp_path / "ahead") == _judged(tmp_path / "lazy")
    assert ahead["adaptive"] == lazy["adaptive"]
    assert _without_counts(ahead) == _without_counts(lazy)
    # Honest counts: every response of the three checkpoints (3 x 8 prompts x 2 samples) was
    # generated, of which those no judged comparison uses are named.
    used = ahead["adaptive"]["generations"]
    assert used < 48 and ahead["run"]["generations"] == used == lazy["run"]["generations"]
    assert _stored_generations(tmp_path / "ahead") == 48 and _stored_generations(tmp_path / "lazy") == used
    assert ahead["run"]["new"] == {"generations": 48, "judgments": 40, "unjudged_generations": 48 - used}
    assert ahead["run"]["reused"] == {"generations": 0, "judgments": 0}
    assert lazy["run"]["new"] == {"generations": used, "judgments": 40}  # lazy: nothing generated ahead

    # A larger budget goes on from the store: every response is there, so no LLM is built.
    monkeypatch.setattr(VLLMEngine, "prefetch", True)
    vllm.built.clear()
    more = _run(base, tmp_path / "ahead", **{**adaptive, "budget": 56})
    assert more["adaptive"]["calls"] == 56 and vllm.built == []
    assert more["run"]["new"]["generations"] == 0 and more["run"]["reused"]["generations"] == more["run"]["generations"]


def test_round_robin_is_unaffected(base, tmp_path, vllm, monkeypatch):
    ahead = _run(base, tmp_path / "ahead")
    assert Counter(vllm.built) == {"alpha": 1, "beta": 1, "gamma": 1}
    vllm.built.clear()
    monkeypatch.setattr(VLLMEngine, "prefetch", False)
    lazy = _run(base, tmp_path / "lazy")
    assert Counter(vllm.built) == {"alpha": 1, "beta": 1, "gamma": 1}
    assert _without_counts(ahead) == _without_counts(lazy) and _judged(tmp_path / "ahead") == _judged(tmp_path / "lazy")
    assert ahead["run"]["new"] == {"generations": 48, "judgments": 96, "unjudged_generations": 0}
    assert ahead["run"]["reused"] == lazy["run"]["reused"] == {"generations": 0, "judgments": 0}


def test_each_call_releases_its_llm_and_an_empty_call_builds_none(base, vllm):
    from arena.checkpoints import discover_checkpoints

    ckpts = {c.name: c for c in discover_checkpoints(base["ckpts"]).checkpoints}
    params = SamplingParams(max_new_tokens=4)
    engine = VLLMEngine(batch_size=2)
    requests = [Request(f"Prompt {i}?", 10 + i) for i in range(3)]
    got = [x for batch in engine.generate(ckpts["alpha"], requests, params) for x in batch]
    assert got == [(0, "alpha says 10"), (1, "alpha says 11"), (2, "alpha says 12")]
    assert vllm.built == ["alpha"] and not vllm.alive  # released when the call ends
    assert list(engine.generate(ckpts["beta"], [], params)) == [] and vllm.built == ["alpha"]
    # A caller that stops after the first batch releases it too (the generator's finally).
    calls = engine.generate(ckpts["gamma"], requests, params)
    assert next(calls) == [(0, "gamma says 10"), (1, "gamma says 11")] and len(vllm.alive) == 1
    calls.close()
    assert not vllm.alive and vllm.built == ["alpha", "gamma"]
