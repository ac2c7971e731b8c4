"""Generation settings per checkpoint (arena.generation): flag > generation_config.json > default,
each checkpoint's responses keyed by its own settings, the same for the hf, vllm and openai engines."""

from __future__ import annotations

import json
import sys
import types

import pytest

import arena.engines
import arena.fingerprint as F
from arena.checkpoints import Checkpoint, read_generation_config
from arena.engines import SamplingParams
from arena.errors import CheckpointError
from arena.generation import DEFAULTS, GenerationKeys, resolve_settings
from arena.lm import PromptFormat
from arena.store import Store
from arena.tournament import TournamentConfig, run_tournament

import tournament_helpers as h  # registered by conftest.py

JUDGE = "python:tournament_helpers:judge"
FIXED = dict(seed=0, stop=(), prompt_format=PromptFormat(), dtype="auto")
UNSET = dict.fromkeys(DEFAULTS)
#: SamplingParams().key("hf") and the 16-token key as computed before per-checkpoint settings
#: existed (main before this change): plain runs must keep exactly these keys.
OLD_KEY_HF = "b36697f78ea45ada"
OLD_KEY_HF_16 = "13aacbeb7e3bfeb2"
OLD_KEY_OPENAI = "e8b3e32e971d49ad"


def _set_generation_config(path, **fields):
    """Add `fields` to the checkpoint's generation_config.json (save_pretrained writes one with the EOS ids)."""
    file = path / "generation_config.json"
    data = json.loads(file.read_text()) if file.exists() else {}
    file.write_text(json.dumps({**data, **fields}))


# ---------------------------------------------------------------------------- reading and resolving


def test_reader_returns_only_what_the_file_sets(tmp_path):
    ckpt = Checkpoint("m", tmp_path, "hf", "f")
    assert read_generation_config(ckpt) == {}
    _set_generation_config(tmp_path, eos_token_id=2, top_k=40, max_new_tokens=12, temperature=0.7)
    assert read_generation_config(ckpt) == {"top_k": 40, "max_new_tokens": 12, "temperature": 0.7}
    _set_generation_config(tmp_path, do_sample=False)  # model.generate would decode greedily
    assert read_generation_config(ckpt)["temperature"] == 0.0
    _set_generation_config(tmp_path, top_p=1.5, do_sample=True)
    with pytest.raises(CheckpointError, match=r"top_p=1.5.*--top-p"):
        read_generation_config(ckpt)
    assert read_generation_config(ckpt, ignore={"top_p", "temperature"}) == {"top_k": 40, "max_new_tokens": 12}
    (tmp_path / "generation_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot be read as JSON"):
        read_generation_config(ckpt)


def test_peft_adapter_file_wins_over_its_base(tmp_path):
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir(), adapter.mkdir()
    _set_generation_config(base, temperature=0.3, top_p=0.8)
    ckpt = Checkpoint("a", adapter, "peft", "f", base=base)
    assert read_generation_config(ckpt) == {"temperature": 0.3, "top_p": 0.8}
    _set_generation_config(adapter, temperature=0.9)
    assert read_generation_config(ckpt) == {"temperature": 0.9}


def test_flag_beats_generation_config_beats_default():
    s = resolve_settings({**UNSET, "top_p": 0.5}, {"top_p": 0.9, "temperature": 0.0}, engine="hf", **FIXED)
    assert (s.params.top_p, s.params.temperature, s.params.max_new_tokens, s.params.top_k) == (0.5, 0.0, 64, 0)
    assert s.source == {"top_p": "flag", "temperature": "generation_config", "max_new_tokens": "default",
                        "top_k": "default"}


def test_plain_settings_keep_the_keys_of_before():
    assert resolve_settings(UNSET, {}, engine="hf", **FIXED).key == OLD_KEY_HF == SamplingParams().key("hf")
    assert resolve_settings({**UNSET, "max_new_tokens": 16}, {}, engine="hf", **FIXED).key == OLD_KEY_HF_16
    assert resolve_settings(UNSET, {}, engine="openai", **FIXED).key == OLD_KEY_OPENAI
    # A generation_config that only repeats the defaults (or only has EOS ids) keeps them too.
    assert resolve_settings(UNSET, {"temperature": 1.0, "top_k": 0}, engine="hf", **FIXED).key == OLD_KEY_HF
    assert resolve_settings(UNSET, {"top_k": 5}, engine="hf", **FIXED).key != OLD_KEY_HF


def test_pair_keys_and_reads_keep_each_rows_own_key():
    keys = GenerationKeys({"fa": "K", "fb": "K", "fc": "G"})
    assert keys.pair("fa", "fb") == "K" and keys.token() != "K"
    assert keys.pair("fa", "fc") == keys.pair("fc", "fa") not in ("K", "G")
    assert GenerationKeys({"fa": "K", "fb": "K"}).token() == "K"

    class FakeStore:  # a stale row: fc's old generation under K must not be read
        def generations(self, key):
            return {("fa", "p", 0): "a", ("fc", "p", 0): "stale"} if key == "K" else {("fc", "p", 0): "c"}

    assert keys.generations(FakeStore()) == {("fa", "p", 0): "a", ("fc", "p", 0): "c"}


# ---------------------------------------------------------------------------- tournaments


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "RACY_SECONDS", -1.0)
    ckpts = h.make_ckpts(tmp_path / "ckpts", {"alpha": 1, "beta": 2, "gamma": 3})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 3)
    return {"ckpts": ckpts, "prompts": prompts, "out": tmp_path / "run"}


def _run(w, **kw):
    return run_tournament(TournamentConfig(ckpts_dir=w["ckpts"], prompts=w["prompts"], judge=JUDGE, out=w["out"],
                                           samples=2, rounds=20, batch_size=4, **kw))


def _responses(out, name):
    with Store.open(out) as store:
        fp = next(fp for fp, n in store.conn.execute("SELECT fingerprint, name FROM checkpoints") if n == name)
        rows = store.conn.execute("SELECT prompt, sample, params, text FROM generations WHERE checkpoint=?", (fp,))
        return [tuple(r) for r in rows]


def test_greedy_generation_config_vs_a_flag_override(world):
    _set_generation_config(world["ckpts"] / "beta", temperature=0.0, max_new_tokens=5)
    first = _run(world)
    gen = {n: c["generation_settings"] for n, c in first.checkpoints.items()}
    assert gen["beta"]["temperature"] == 0.0 and gen["beta"]["max_new_tokens"] == 5
    assert gen["beta"]["source"]["temperature"] == "generation_config"
    assert gen["alpha"]["temperature"] == 1.0 and gen["alpha"]["source"]["temperature"] == "default"
    assert gen["alpha"]["key"] == gen["gamma"]["key"] == OLD_KEY_HF != gen["beta"]["key"]
    assert {k: gen["alpha"][k] for k in ("engine", "top_p", "top_k", "stop", "samples", "prompts")} == \
        {"engine": "hf", "top_p": 1.0, "top_k": 0, "stop": [], "samples": 2, "prompts": str(world["prompts"])}
    # Greedy: both samples of a prompt are the same text for beta, not for the sampled alpha.
    beta = {(p, s): t for p, s, _, t in _responses(world["out"], "beta")}
    alpha = {(p, s): t for p, s, _, t in _responses(world["out"], "alpha")}
    assert all(beta[(p, 0)] == beta[(p, 1)] for p, _ in beta)
    assert any(alpha[(p, 0)] != alpha[(p, 1)] for p, _ in alpha)
    # results.json records the same settings.
    written = json.loads((world["out"] / "results.json").read_text())
    assert written["checkpoints"]["beta"]["generation_settings"] == gen["beta"]

    # The flag overrides the file: only beta generates again, and only beta's pairs are judged again.
    second = _run(world, temperature=1.0)
    P, S = 3, 2
    assert second.run.new == {"generations": P * S, "judgments": 2 * 2 * P * S}
    gen2 = {n: c["generation_settings"] for n, c in second.checkpoints.items()}
    assert gen2["beta"]["temperature"] == 1.0 and gen2["beta"]["source"]["temperature"] == "flag"
    assert gen2["beta"]["max_new_tokens"] == 5 and gen2["beta"]["source"]["max_new_tokens"] == "generation_config"
    beta2 = {(p, s): t for p, s, k, t in _responses(world["out"], "beta") if k == gen2["beta"]["key"]}
    assert any(beta2[(p, 0)] != beta2[(p, 1)] for p, _ in beta2)

    # Back to no flag: everything is in the store already.
    assert _run(world).run.new == {"generations": 0, "judgments": 0}


def test_plain_run_stores_under_the_old_keys_and_reuses_them(world):
    first = _run(world, max_new_tokens=16)
    with Store.open(world["out"]) as store:
        assert {r[0] for r in store.conn.execute("SELECT DISTINCT params FROM generations")} == {OLD_KEY_HF_16}
        assert {r[0] for r in store.conn.execute("SELECT DISTINCT params FROM judgments")} == {OLD_KEY_HF_16}
    assert first.run.new["generations"] == 3 * 3 * 2
    assert _run(world, max_new_tokens=16).run.new == {"generations": 0, "judgments": 0}


def test_changing_one_generation_config_regenerates_that_checkpoint_only(world):
    _run(world, max_new_tokens=6)
    _set_generation_config(world["ckpts"] / "gamma", top_k=3)
    again = _run(world, max_new_tokens=6)
    assert again.run.new == {"generations": 3 * 2, "judgments": 2 * 2 * 3 * 2}
    assert again.checkpoints["gamma"]["generation_settings"]["top_k"] == 3


class _FakeVLLM(types.ModuleType):
    """Stands in for vllm: records each request's SamplingParams; the text names its temperature."""

    def __init__(self, tokenizer):
        super().__init__("vllm")
        seen = self.seen = []

        class SamplingParams:
            def __init__(self, **kw):
                self.kw = kw
                seen.append(kw)

        class LLM:
            def __init__(self, **kw):
                pass

            def get_tokenizer(self):
                return tokenizer

            def generate(self, prompts, sps, use_tqdm=False):
                return [types.SimpleNamespace(outputs=[types.SimpleNamespace(
                    text=f"t={sp.kw['temperature']} k={sp.kw.get('top_k', 0)} s={sp.kw['seed']}")]) for sp in sps]

        self.SamplingParams, self.LLM = SamplingParams, LLM


@pytest.mark.parametrize("engine", ["hf", "openai", "vllm"])
def test_every_engine_gets_each_checkpoints_own_settings(world, monkeypatch, engine):
    _set_generation_config(world["ckpts"] / "beta", temperature=0.0, top_k=7)
    extra = {}
    if engine == "openai":
        httpx = pytest.importorskip("httpx")
        bodies = []

        def handler(request):
            if request.method == "GET":
                return httpx.Response(200, json={"data": []})
            body = json.loads(request.content)
            bodies.append(body)
            return httpx.Response(200, json={"choices": [{"text": f"{body['model']} t={body['temperature']} "
                                                                  f"s={body['seed']}"}]})

        real = arena.engines.get_engine
        monkeypatch.setattr(arena.engines, "get_engine",
                            lambda name, **o: real(name, **o, transport=httpx.MockTransport(handler)))
        extra["base_url"] = "http://server/v1"
    if engine == "vllm":
        fake = _FakeVLLM(h.tokenizer())
        monkeypatch.setitem(sys.modules, "vllm", fake)
    seen: dict[str, SamplingParams] = {}
    real_get = arena.engines.get_engine

    def recording(name, **options):
        eng = real_get(name, **options)
        generate = eng.generate

        def wrapped(ckpt, requests, params):
            seen[ckpt.name] = params
            return generate(ckpt, requests, params)

        eng.generate = wrapped
        return eng

    monkeypatch.setattr(arena.engines, "get_engine", recording)
    result = _run(world, engine=engine, max_new_tokens=6, **extra)
    assert seen["beta"].temperature == 0.0 and seen["beta"].top_k == 7 and seen["beta"].max_new_tokens == 6
    assert seen["alpha"].temperature == 1.0 and seen["alpha"].top_k == 0
    assert result.checkpoints["beta"]["generation_settings"]["engine"] == engine
    if engine == "openai":
        by_model = {b["model"]: b for b in bodies}
        assert by_model["beta"]["temperature"] == 0.0 and by_model["beta"]["top_k"] == 7
        assert by_model["alpha"]["temperature"] == 1.0 and "top_k" not in by_model["alpha"]
    if engine == "vllm":
        assert sorted({(kw["temperature"], kw.get("top_k")) for kw in fake.seen}) == [(0.0, 7), (1.0, None)]


def test_top_k_keeps_the_k_most_probable_tokens():
    import torch

    from arena.lm import draw_tokens

    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]]))

    def draw(u, **kw):
        return int(draw_tokens(logits, torch.tensor([u]), **kw)[0])

    # top-2 renormalised: token 1 with 2/3, token 2 with 1/3; token 0 never.
    assert [draw(u, top_k=2) for u in (0.0, 0.6, 0.66, 0.67, 0.99)] == [1, 1, 1, 2, 2]
    assert [draw(u, top_k=1) for u in (0.0, 0.5, 0.99)] == [1, 1, 1]
    # top-p after top-k, on the renormalised mass: 0.6 <= 2/3, so only token 1 remains.
    assert [draw(u, top_k=2, top_p=0.6) for u in (0.0, 0.99)] == [1, 1]
    # k >= V is no restriction: the plain inverse CDF in id order.
    assert [draw(u, top_k=3) for u in (0.05, 0.5, 0.8)] == [draw(u) for u in (0.05, 0.5, 0.8)] == [0, 1, 2]
    with pytest.raises(Exception, match="top_k"):
        SamplingParams(top_k=-1)


def test_cli_refuses_a_bad_generation_config_before_any_work(world, capsys):
    from arena.cli import main

    _set_generation_config(world["ckpts"] / "beta", temperature="hot")
    rc = main(["tournament", str(world["ckpts"]), "--prompts", str(world["prompts"]), "--judge", JUDGE,
               "--out", str(world["out"])])
    err = capsys.readouterr().err
    assert rc == 2 and "temperature='hot'" in err and "--temperature" in err and "Traceback" not in err
    assert not world["out"].exists()  # nothing written
    # The flag overrides the file, so the same run goes through with --temperature.
    assert main(["tournament", str(world["ckpts"]), "--prompts", str(world["prompts"]), "--judge", JUDGE,
                 "--out", str(world["out"]), "--temperature", "0.5", "--top-k", "4", "--max-new-tokens", "4",
                 "--rounds", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {n: (c["generation_settings"]["temperature"], c["generation_settings"]["top_k"])
            for n, c in result["checkpoints"].items()} == {n: (0.5, 4) for n in ("alpha", "beta", "gamma")}
