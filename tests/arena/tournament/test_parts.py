"""The tournament's parts: prompt loading, checkpoint discovery, store keys and orientation,
per-request seeded sampling (independent of batching), the openai engine over a mock server."""

import json

import numpy as np
import pytest

from arena.checkpoints import check_safetensors, discover_checkpoints
from arena.engines import Request, SamplingParams, get_engine, request_seed
from arena.errors import CheckpointError, ConfigError, InputError
from arena.prompts import default_prompts, load_prompts
from arena.store import Judgment, Store, flip, lookup
from arena.tournament import parse_pairs, select_pairs


import tournament_helpers as h  # registered by conftest.py


# ---- prompts -------------------------------------------------------------------------------

def test_prompt_formats(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "x", "prompt": "Hi?"}\n\n{"text": "Bye?"}\n"plain"\n')
    assert [(p.id, p.text) for p in load_prompts(tmp_path / "p.jsonl")] == [("x", "Hi?"), ("3", "Bye?"), ("4", "plain")]
    (tmp_path / "p.csv").write_text("question_id,question\nq1,One?\nq2,\nq3,Three?\n")
    assert [(p.id, p.text) for p in load_prompts(tmp_path / "p.csv")] == [("q1", "One?"), ("q3", "Three?")]
    (tmp_path / "p.txt").write_text("first\n\nsecond\nfirst\n")
    assert [p.text for p in load_prompts(tmp_path / "p.txt")] == ["first", "second"]  # duplicate dropped
    assert len(default_prompts()) >= 8 and load_prompts(None) == default_prompts()
    assert load_prompts(tmp_path / "p.txt")[0].hash != load_prompts(tmp_path / "p.txt")[1].hash


def test_prompt_dataset_dir(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"prompt": ["a?", "b?"], "id": ["1", "2"]}).save_to_disk(str(tmp_path / "ds"))
    assert [p.text for p in load_prompts(tmp_path / "ds")] == ["a?", "b?"]


@pytest.mark.parametrize("content,name,match", [
    ("", "e.txt", "holds no prompts"),
    ("\n \n", "e.jsonl", "holds no prompts"),
    ('{"prompt": "ok"}\n{oops\n', "bad.jsonl", r"bad.jsonl:2 is not valid JSON"),
    ('{"other": 1}\n', "nofield.jsonl", "no prompt text"),
    ("a,b\n1,2\n", "nocol.csv", "no prompt column"),
])
def test_bad_prompt_files(tmp_path, content, name, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=match):
        load_prompts(tmp_path / name)
    with pytest.raises(InputError, match="does not exist"):
        load_prompts(tmp_path / "missing.jsonl")


# ---- checkpoints ---------------------------------------------------------------------------

def test_discovery_lists_everything(tmp_path):
    root = tmp_path / "ckpts"
    h.make_ckpt(root / "b_model", 1)
    h.make_ckpt(root / "a_model", 2)
    (root / "a_model" / "arena_card.json").write_text(json.dumps({"algorithm": "nash-mp", "parent": "sft"}))
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("x")
    (root / "stuff").mkdir()
    (root / "stuff" / "x.npy").write_bytes(b"0")
    d = discover_checkpoints(root)
    assert [c.name for c in d.checkpoints] == ["a_model", "b_model"]
    assert d.checkpoints[0].card == {"algorithm": "nash-mp", "parent": "sft"} and d.checkpoints[1].card is None
    assert d.checkpoints[0].fingerprint != d.checkpoints[1].fingerprint
    assert {s.name: s.reason for s in d.skipped} == {
        "empty": "empty directory", "notes.txt": "a file, not a model directory or .gguf file",
        "stuff": "no config.json or adapter_config.json (not a Hugging Face model directory)"}


def test_gguf_files_are_found_and_checked(tmp_path):
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    d = discover_checkpoints(tmp_path)
    assert [(c.name, c.kind) for c in d.checkpoints] == [("tiny", "gguf")]
    (tmp_path / "broken.gguf").write_bytes(b"<html>not found</html>")
    with pytest.raises(CheckpointError, match="GGUF magic"):
        discover_checkpoints(tmp_path)


def test_fingerprint_follows_content_not_name(tmp_path):
    import shutil

    h.make_ckpt(tmp_path / "a" / "x", 1)
    shutil.copytree(tmp_path / "a" / "x", tmp_path / "b" / "y")
    fx = discover_checkpoints(tmp_path / "a").checkpoints[0].fingerprint
    assert discover_checkpoints(tmp_path / "b").checkpoints[0].fingerprint == fx


def test_truncated_and_garbage_safetensors(tmp_path):
    h.make_ckpt(tmp_path / "m", 1)
    check_safetensors(tmp_path / "m")  # intact
    w = tmp_path / "m" / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data + b"\0")
    with pytest.raises(CheckpointError, match="bytes"):
        check_safetensors(tmp_path / "m")
    w.write_bytes(b"garbage!" * 3)
    with pytest.raises(CheckpointError, match="corrupt"):
        check_safetensors(tmp_path / "m")


def test_peft_adapter_over_local_base(tmp_path):
    peft = pytest.importorskip("peft")
    from arena.engines.hf import HFEngine

    root = tmp_path / "ckpts"
    base = h.make_ckpt(tmp_path / "base", 1)
    from arena.loading import load_causal_lm

    model, tok = load_causal_lm(base)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["c_attn"], init_lora_weights=False))
    lora.save_pretrained(root / "adapter")
    cfg = json.loads((root / "adapter" / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(base)
    (root / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))
    h.make_ckpt(root / "plain", 1)  # the base itself, under another name
    d = discover_checkpoints(root)
    kinds = {c.name: c.kind for c in d.checkpoints}
    assert kinds == {"adapter": "peft", "plain": "hf"}
    adapter = d.checkpoints[0]
    assert adapter.base == base.resolve()
    params = SamplingParams(max_new_tokens=8, temperature=1.0, seed=0)
    reqs = [Request("Question 1: say something", 5), Request("Question 2: say", 6)]
    engine = HFEngine(batch_size=2)
    got_adapter = [t for batch in engine.generate(adapter, reqs, params) for _, t in sorted(batch)]
    got_plain = [t for batch in engine.generate(d.checkpoints[1], reqs, params) for _, t in sorted(batch)]
    assert got_adapter != got_plain  # the adapter changes the policy
    cfg["base_model_name_or_path"] = "some/hub-model"
    (root / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="not a local directory"):
        discover_checkpoints(root)


# ---- sampling ------------------------------------------------------------------------------

def test_draw_tokens_inverse_cdf():
    # The sampling rule changed with the one runtime (arena.lm): at top_p = 1 the CDF runs over
    # token ids in vocabulary order (no sort); with top_p < 1 over the sorted nucleus.
    import torch

    from arena.lm import draw_tokens

    def draw(u, **kw):
        return int(draw_tokens(torch.log(torch.tensor([[0.1, 0.6, 0.3]])), torch.tensor([u]), **kw)[0])

    assert draw(0.0) == 0 and draw(0.05) == 0
    assert draw(0.65) == 1                        # cdf in id order: .1, .7, 1.0
    assert draw(0.95) == 2
    assert draw(0.95, top_p=0.85) == 2            # nucleus sorted .6, .3 (cdf .6, .9): 0 (p=.1) cut
    assert draw(0.5, top_p=0.85) == 1
    assert draw(0.99, temperature=0.0) == 1       # greedy
    rng = np.random.default_rng(0)
    draws = [draw(u) for u in rng.random(4000)]
    assert np.bincount(draws, minlength=3) / 4000 == pytest.approx([0.1, 0.6, 0.3], abs=0.03)


def test_request_seed_depends_on_each_part():
    s = request_seed(0, "fp", "ph", 0)
    assert len({s, request_seed(1, "fp", "ph", 0), request_seed(0, "fq", "ph", 0), request_seed(0, "fp", "pi", 0),
                request_seed(0, "fp", "ph", 1)}) == 5
    assert s == request_seed(0, "fp", "ph", 0) and 0 <= s < 2**63


def test_generation_does_not_depend_on_batching(tmp_path):
    h.make_ckpt(tmp_path / "ckpts" / "m", 3)
    ckpt = discover_checkpoints(tmp_path / "ckpts").checkpoints[0]
    prompts = ["Question 0: say", "Question 1: say something about cats.", "Q", "Question 3: tea", "Question 4"]
    reqs = [Request(p, 100 + i) for i, p in enumerate(prompts)]
    params = SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=0)

    def run(batch_size, requests):
        got = {}
        for batch in get_engine("hf", batch_size=batch_size).generate(ckpt, requests, params):
            got.update(batch)
        return [got[i] for i in range(len(requests))]

    one = run(1, reqs)
    assert run(5, reqs) == one and run(2, reqs) == one
    assert run(3, reqs[2:]) == one[2:]  # a request's answer ignores its neighbours
    assert len(set(one)) > 1
    reseeded = run(5, [Request(r.prompt, r.seed + 1) for r in reqs])
    assert reseeded != one


def test_chat_template_is_applied_when_present():
    from arena.lm import format_prompt

    tok = h.tokenizer()
    assert format_prompt(tok, "Hi") == ("Hi", False)
    import copy

    t2 = copy.deepcopy(tok)  # keep the shared tokenizer untouched
    t2.chat_template = "{% for m in messages %}<user>{{ m['content'] }}</user>{% endfor %}<bot>"
    assert format_prompt(t2, "Hi") == ("<user>Hi</user><bot>", True)


def test_sampling_params_are_checked_and_keyed():
    with pytest.raises(ConfigError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        SamplingParams(max_new_tokens=0)
    p = SamplingParams()
    assert p.key("hf") != p.key("vllm") and p.key("hf") != SamplingParams(temperature=0.5).key("hf")
    with pytest.raises(ConfigError, match="unknown engine"):
        get_engine("tpu")


def test_openai_engine_over_a_mock_server(monkeypatch):
    httpx = pytest.importorskip("httpx")
    seen = []

    def handler(request):
        body = json.loads(request.content)
        seen.append(body)
        if body["model"] == "missing":
            return httpx.Response(404, json={"error": "no such model"})
        return httpx.Response(200, json={"choices": [{"text": f"{body['model']}:{body['prompt']}:{body['seed']}"}]})

    engine = get_engine("openai", base_url="http://server/v1", transport=httpx.MockTransport(handler), max_concurrency=2)

    class C:
        name = "m1"

    params = SamplingParams(max_new_tokens=5, temperature=0.5, top_p=0.9)
    reqs = [Request(f"p{i}", i) for i in range(11)]
    got = dict(pair for batch in engine.generate(C, reqs, params) for pair in batch)
    assert got == {i: f"m1:p{i}:{i}" for i in range(11)}
    assert all(b["max_tokens"] == 5 and b["temperature"] == 0.5 and b["top_p"] == 0.9 for b in seen)
    C.name = "missing"
    with pytest.raises(InputError, match="serve each checkpoint under its directory name"):
        list(engine.generate(C, reqs[:1], params))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="base-url"):
        get_engine("openai", base_url=None)


def test_openai_engine_checks_the_server_before_work():
    httpx = pytest.importorskip("httpx")

    def down(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ConfigError, match="cannot reach the generation server"):
        get_engine("openai", base_url="http://server/v1", transport=httpx.MockTransport(down)).check()
    refused = httpx.MockTransport(lambda request: httpx.Response(401, json={"error": "bad key"}))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_engine("openai", base_url="http://server/v1", transport=refused).check()
    for status in (200, 404):  # a server without /models passes
        ok = httpx.MockTransport(lambda request, status=status: httpx.Response(status, json={"data": []}))
        get_engine("openai", base_url="http://server/v1", transport=ok).check()


def test_vllm_engine_needs_the_extra(monkeypatch):
    import sys

    from arena.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed (tests/judges/test_vllm_spec.py: the rest)
    engine = get_engine("vllm")
    with pytest.raises(MissingDependencyError):
        engine.check()


# ---- store ---------------------------------------------------------------------------------

def test_store_orientation_and_idempotence(tmp_path):
    j = Judgment(p=0.7, p_ab=0.8, p_ba=0.6, error=None)
    assert flip(flip(j)) == j and flip(j).p == pytest.approx(0.3) and flip(j).p_ab == pytest.approx(0.4)
    with Store.open(tmp_path) as store:
        store.put_judgments("J", "S", [("pr", 0, "zz", "aa", j)])
        store.put_judgments("J", "S", [("pr", 0, "aa", "zz", Judgment(0.1, 0.1, 0.1, None))])  # ignored: exists
        table = store.judgments("J", "S")
        assert len(table) == 1
        assert lookup(table, "pr", 0, "zz", "aa") == j
        assert lookup(table, "pr", 0, "aa", "zz").p == pytest.approx(0.3)
        assert lookup(table, "pr", 1, "aa", "zz") is None and store.judgments("K", "S") == {}
        store.put_judgments("J", "S", [("pr", 1, "aa", "zz", Judgment(None, 0.5, None, "b first: timeout"))])
        failed = lookup(store.judgments("J", "S"), "pr", 1, "zz", "aa")
        assert failed.p is None and failed.p_ba == pytest.approx(0.5) and failed.error == "b first: timeout"
    assert Store.open_readonly(tmp_path / "nothing") is None


def test_store_refuses_a_foreign_file(tmp_path):
    (tmp_path / "arena.sqlite").write_text("this is not a database, it is a text file " * 20)
    with pytest.raises(InputError, match="not a usable arena store"):
        Store.open_readonly(tmp_path)


def test_pairs_parsing():
    assert parse_pairs("a:b, c:d") == (("a", "b"), ("c", "d"))
    assert parse_pairs(None) is None
    with pytest.raises(InputError, match="bad --pairs"):
        parse_pairs("a-b")
    assert select_pairs(["a", "b", "c"], None) == [(0, 1), (0, 2), (1, 2)]
    assert select_pairs(["a", "b", "c"], (("c", "a"), ("a", "c"))) == [(0, 2)]
    with pytest.raises(InputError, match="compared with itself"):
        select_pairs(["a", "b"], (("a", "a"),))


def test_generation_stops_at_the_context_window(tmp_path):
    h.make_ckpt(tmp_path / "ckpts" / "m", 3)  # n_positions = 128
    ckpt = discover_checkpoints(tmp_path / "ckpts").checkpoints[0]
    engine = get_engine("hf", batch_size=2)
    tok = h.tokenizer()
    long = "cats " * 60
    n = len(tok(long)["input_ids"])
    params = SamplingParams(max_new_tokens=200, temperature=1.0, seed=0)
    assert n < 128
    # Without the cap, position 128 would index past GPT-2's position table (IndexError).
    (_, text), = next(engine.generate(ckpt, [Request(long, 1)], params))
    widest = max(len(tok.decode([i]).encode()) for i in range(len(tok)))
    assert len(text.encode()) <= widest * (128 - n)  # at most 128 - n tokens
    with pytest.raises(InputError, match="does not fit"):
        list(engine.generate(ckpt, [Request("cats " * 200, 1)], params))
