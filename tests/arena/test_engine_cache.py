"""The hf engine keeps loaded checkpoints between calls (`arena.engines.hf.ModelCache`): an adaptive
tournament loads each checkpoint once when memory allows, evicts the least recently used under a
small budget, loads an edited checkpoint again, and generates the same texts in every case."""

import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest

import arena.engines.hf as hf
from arena.checkpoints import discover_checkpoints
from arena.engines import Request, SamplingParams, get_engine
from arena.errors import ConfigError
from arena.tournament import TournamentConfig, run_tournament

# The tournament tests' tiny checkpoints and judges (registered as conftest.py there does, so the
# judge spec `python:tournament_helpers:judge` imports it).
if "tournament_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "tournament_helpers", Path(__file__).resolve().parent / "tournament" / "tournament_helpers.py")
    sys.modules["tournament_helpers"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["tournament_helpers"])
import tournament_helpers as h  # noqa: E402

NAMES = {"alpha": 1, "beta": 2, "gamma": 3, "delta": 4}
PARAMS = SamplingParams(max_new_tokens=8, temperature=1.0, seed=0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("enginecache")
    ckpts = h.make_ckpts(root / "ckpts", NAMES)
    prompts = h.write_prompts(root / "prompts.txt", 8)
    return {"ckpts": ckpts, "prompts": prompts}


@pytest.fixture
def spy(monkeypatch):
    """Counts `load_policy` calls by checkpoint name and `generate` calls; records closed engines."""
    seen = {"loads": [], "generates": [], "closed": []}
    load, generate, close = hf.load_policy, hf.HFEngine.generate, hf.HFEngine.close

    def counting_load(ckpt, **kw):
        seen["loads"].append(ckpt.name)
        return load(ckpt, **kw)

    def counting_generate(self, ckpt, requests, params):
        seen["generates"].append(ckpt.name)
        yield from generate(self, ckpt, requests, params)

    def recording_close(self):
        close(self)
        seen["closed"].append(self)

    monkeypatch.setattr(hf, "load_policy", counting_load)
    monkeypatch.setattr(hf.HFEngine, "generate", counting_generate)
    monkeypatch.setattr(hf.HFEngine, "close", recording_close)
    return seen


def _run(base, out):
    config = TournamentConfig(ckpts_dir=base["ckpts"], prompts=base["prompts"], judge="python:tournament_helpers:judge",
                              out=out, max_new_tokens=6, rounds=50, batch_size=4, adaptive=True, budget=40,
                              judge_batch_size=4)
    return run_tournament(config).to_json()


def _rows(out):
    con = sqlite3.connect(out / "arena.sqlite")
    rows = (con.execute("select checkpoint, prompt, sample, params, seed, text from generations order by 1, 2, 3")
            .fetchall(), con.execute("select * from judgments order by a, b, prompt, sample").fetchall())
    con.close()
    return rows


def _tiny_model_bytes(base):
    ckpt = next(c for c in discover_checkpoints(base["ckpts"]).checkpoints if c.name == "alpha")
    model, _ = hf.load_policy(ckpt)
    return hf.model_bytes(model)


def test_adaptive_tournament_loads_each_checkpoint_once_and_evicts_under_a_small_budget(base, tmp_path, spy,
                                                                                         monkeypatch):
    # The default budget (a share of RAM) holds four tiny models: one load each, whatever the steps.
    r = _run(base, tmp_path / "cached")
    steps = len(r["adaptive"]["trace"]) - 1
    assert steps >= 3
    assert sorted(spy["loads"]) == sorted(NAMES)
    assert len(spy["generates"]) > len(NAMES)  # some checkpoint generated at several steps: a reload was saved
    engine, = spy["closed"]  # the run released its models
    assert len(engine.cache) == 0 and engine.cache.loads == len(NAMES) and engine.cache.hits == len(spy["generates"]) - 4
    cached = _rows(tmp_path / "cached")

    # Room for one model and a half: every switch of checkpoint evicts the previous one.
    one = _tiny_model_bytes(base)
    monkeypatch.setattr(hf, "default_cache_bytes", lambda device: int(1.5 * one))
    spy["loads"].clear(), spy["generates"].clear(), spy["closed"].clear()
    _run(base, tmp_path / "one")
    engine, = spy["closed"]
    switches = sum(a != b for a, b in zip(spy["generates"], spy["generates"][1:]))
    assert len(spy["loads"]) == 1 + switches > len(NAMES)
    assert engine.cache.evictions >= switches
    assert _rows(tmp_path / "one") == cached

    # No cache at all (budget 0): a load per call, as before the cache; the same texts and verdicts.
    monkeypatch.setattr(hf, "default_cache_bytes", lambda device: 0)
    spy["loads"].clear(), spy["generates"].clear()
    _run(base, tmp_path / "none")
    assert spy["loads"] == spy["generates"]
    assert _rows(tmp_path / "none") == cached


def test_edited_checkpoint_is_loaded_again(tmp_path, spy):
    root = h.make_ckpts(tmp_path / "ckpts", {"m": 5})
    ckpt, = discover_checkpoints(root).checkpoints
    reqs = [Request("Prompt number 1: tell me about cats.", 11), Request("Prompt number 2: rain", 12)]
    engine = get_engine("hf", batch_size=2)

    def texts(e, c):
        return [t for batch in e.generate(c, reqs, PARAMS) for _, t in sorted(batch)]

    first = texts(engine, ckpt)
    assert texts(engine, ckpt) == first and spy["loads"] == ["m"]  # served from the cache
    h.make_ckpt(root / "m", 6)  # new weights in place; `ckpt` still carries the old fingerprint
    edited = texts(engine, ckpt)
    assert spy["loads"] == ["m", "m"] and edited != first
    assert edited == texts(hf.HFEngine(batch_size=2, cache_mb=0), ckpt)  # what a fresh load generates
    engine.close()
    assert len(engine.cache) == 0


def test_cached_texts_equal_uncached_texts_across_checkpoints_and_dtypes(base, spy):
    ckpts = discover_checkpoints(base["ckpts"]).checkpoints
    reqs = [Request(f"Prompt number {i}: maps", 100 + i) for i in range(5)]
    cached, plain = hf.HFEngine(batch_size=3), hf.HFEngine(batch_size=3, cache_mb=0)
    with cached:
        for dtype in ("auto", "fp32", "auto"):  # interleaved: each (checkpoint, dtype) is its own entry
            params = SamplingParams(max_new_tokens=8, temperature=1.0, seed=0, dtype=dtype)
            for c in list(ckpts) + list(ckpts[:2]):
                got = [t for batch in cached.generate(c, reqs, params) for _, t in sorted(batch)]
                want = [t for batch in plain.generate(c, reqs, params) for _, t in sorted(batch)]
                assert got == want
        assert cached.cache.loads == 2 * len(ckpts) and len(cached.cache) == 2 * len(ckpts)
    assert len(cached.cache) == 0  # the context released them
    assert len({tuple(t for batch in plain.generate(c, reqs, PARAMS) for _, t in sorted(batch)) for c in ckpts}) \
        == len(ckpts)  # the checkpoints really answer differently, so a mixed-up key would show


def test_model_cache_evicts_least_recently_used():
    torch = pytest.importorskip("torch")
    sizes = {"a": 10, "b": 20, "c": 30}  # floats: 40, 80, 120 bytes
    made = []

    def loader(name):
        def load():
            made.append(name)
            return torch.nn.Linear(sizes[name], 1, bias=False), f"tok-{name}"
        return load

    cache = hf.ModelCache(200)
    for name in ("a", "b", "c"):
        cache.get(name, loader(name))
    assert len(cache) == 2 and cache.held == 200 and cache.evictions == 1  # a (the oldest) left for c
    cache.get("b", loader("b"))                  # hit: b is now the most recent
    assert made == ["a", "b", "c"] and cache.hits == 1
    cache.get("a", loader("a"))                  # c is the least recent: it leaves, b stays
    assert made == ["a", "b", "c", "a"] and cache.held == 120
    model, tok = cache.get("b", loader("b"))
    assert tok == "tok-b" and made == ["a", "b", "c", "a"]
    big = hf.ModelCache(100)
    big.get("c", loader("c"))                   # larger than the whole budget: used, not kept
    assert len(big) == 0 and big.loads == 1
    cache.clear()
    assert len(cache) == 0 and cache.held == 0


def test_cache_option_is_checked_and_reaches_the_engine():
    assert get_engine("hf", cache_mb=12).cache.budget == 12 * 2**20
    assert hf.HFEngine().cache.budget == hf.default_cache_bytes(None) > 0
    for bad in (-1, float("nan"), "lots"):
        with pytest.raises(ConfigError, match="cache_mb must be a number >= 0"):
            hf.HFEngine(cache_mb=bad)


def test_model_cache_flag_sets_the_budget_of_a_tournament(base, tmp_path, spy, capsys):
    """`arena tournament --model-cache-mb 0` keeps nothing: one load per generate call, same texts."""
    from arena.cli import main

    _run(base, tmp_path / "cached")
    cached = _rows(tmp_path / "cached")
    spy["loads"].clear(), spy["generates"].clear(), spy["closed"].clear()
    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge",
               "python:tournament_helpers:judge", "--max-new-tokens", "6", "--rounds", "50", "--batch-size", "4",
               "--adaptive", "--budget", "40", "--judge-batch-size", "4", "--out", str(tmp_path / "none"),
               "--model-cache-mb", "0"])
    assert rc == 0, capsys.readouterr().err
    engine, = spy["closed"]
    assert engine.cache.budget == 0 and engine.cache.hits == 0
    assert spy["loads"] == spy["generates"] and len(spy["loads"]) > len(NAMES)
    assert _rows(tmp_path / "none") == cached


@pytest.mark.parametrize("extra, message", [
    (["--model-cache-mb", "-1"], "--model-cache-mb must be a finite number >= 0"),
    (["--model-cache-mb", "nan"], "--model-cache-mb must be a finite number >= 0"),
    (["--model-cache-mb", "64", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1"],
     "--model-cache-mb is for --engine hf"),
])
def test_model_cache_flag_refuses_bad_values_and_other_engines(base, tmp_path, capsys, extra, message):
    from arena.cli import main

    rc = main(["tournament", str(base["ckpts"]), "--prompts", str(base["prompts"]), "--judge",
               "python:tournament_helpers:judge", "--out", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
