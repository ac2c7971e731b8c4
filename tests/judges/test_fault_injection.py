"""Fault injection against a fake OpenAI-compatible server (127.0.0.1 only, bounded).

Every verdict under faults equals the fault-free run's or is a recorded failure (zero silent
changes); after `--retry-failures` all of them equal; the API key, echoed by the server in a
401 body, never reaches stdout, stderr or the run directory.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from arena.cli import main
from arena.http import HTTPClient, RequestFailed, RetryPolicy, retry_after_seconds
from arena.redact import redact, register_secret

_spec = importlib.util.spec_from_file_location("fake_openai", Path(__file__).with_name("fake_openai.py"))
fake_openai = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_openai)
FakeOpenAI, KINDS = fake_openai.FakeOpenAI, fake_openai.KINDS

KEY = "sk-test-NEVER-WRITE-ME-0123456789"
# Short waits keep the suite fast: retry delays of milliseconds, a 0.3 s attempt timeout
# against a 0.6 s stall.
FAST = "max_retries=1&backoff=0.001&backoff_max=0.01&timeout=0.3&max_concurrency=8"


def _pairs(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"question {i}", "response_a": f"answer a{i} " * (1 + i % 3),
                                        "response_b": f"answer b{i}"}) + "\n" for i in range(n)))
    return path


def _judge(pairs, url, capsys, *extra) -> tuple[int, dict, str]:
    rc = main(["judge", str(pairs), "--judge", f"openai:{url}#judge-model?{FAST}", "--json", *extra])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.out + captured.err


def test_200_pairs_at_20_percent_faults_no_silent_change(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    pairs = _pairs(tmp_path / "pairs.jsonl", 200)
    with FakeOpenAI(rate=0.0) as clean:
        rc, want, _ = _judge(pairs, clean.url, capsys)
    assert rc == 0 and want["failures"] == 0 and want["judge"]["from_logprobs"] == 400
    with FakeOpenAI(rate=0.2, stall=0.6) as faulty:
        rc, got, text = _judge(pairs, faulty.url, capsys)
        assert rc == 0
        assert all(faulty.faults[k] > 0 for k in KINDS), faulty.faults  # every kind was exercised
        failed = [i for i, row in enumerate(got["rows"]) if row["p"] is None]
        same = [i for i, row in enumerate(got["rows"]) if row["p"] is not None]
        assert failed, "a 20% fault rate with sticky faults must leave some recorded failures"
        for i in failed:
            assert got["rows"][i]["error"]
        for i in same:  # zero silent changes: every number equals the fault-free one
            assert got["rows"][i]["p"] == pytest.approx(want["rows"][i]["p"], abs=1e-12)
        assert got["failures"] == len(failed) and got["judge"]["text_fallbacks"] == 0
        assert any("logprobs unusable" in got["rows"][i]["error"] for i in failed)
        assert KEY not in text and "NEVER-WRITE-ME" not in text
        # the same faulty server, rows judged again: all equal the fault-free run
        rc, again, text = _judge(pairs, faulty.url, capsys, "--retry-failures")
        assert rc == 0 and again["failures"] == 0
        assert [r["p"] for r in again["rows"]] == pytest.approx([r["p"] for r in want["rows"]], abs=1e-12)
        assert KEY not in text


def test_text_fallback_is_opt_in_flagged_and_counted(tmp_path, capsys):
    pairs = _pairs(tmp_path / "pairs.jsonl", 30)
    with FakeOpenAI(rate=0.5, kinds=("nologprobs",)) as server:
        rc = main(["judge", str(pairs), "--judge", f"openai:{server.url}#judge-model?{FAST}&text_fallback=true", "--json"])
        obj = json.loads(capsys.readouterr().out)
    assert rc == 0 and obj["failures"] == 0
    fallbacks = obj["judge"]["text_fallbacks"]
    assert fallbacks == server.faults["nologprobs"] > 0
    assert obj["judge"]["from_logprobs"] + fallbacks == 60
    # a text verdict is 0 or 1, so the rows with a fallback have p_ab or p_ba in {0, 1}
    assert sum(r["p_ab"] in (0.0, 1.0) for r in obj["rows"]) + sum(r["p_ba"] in (0.0, 1.0) for r in obj["rows"]) >= fallbacks


def test_tournament_over_faulty_server_stores_no_key(tmp_path, capsys, monkeypatch, three_ckpts):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(8)))
    run = tmp_path / "run"
    with FakeOpenAI(rate=0.3, kinds=("echo401", "nologprobs", "500"), models=("judge-model", "m1", "m2", "m3"),
                    fault_paths=("/chat/completions",)) as server:
        args = ["tournament", str(three_ckpts), "--prompts", str(prompts), "--out", str(run),
                "--engine", "openai", "--base-url", server.url, "--judge", f"openai:{server.url}#judge-model?{FAST}",
                "--rounds", "20", "--json"]
        capsys.readouterr()  # drop what building the fixtures printed (DeepSpeed logs to stdout on import)
        assert main(args) == 0
        first = capsys.readouterr()
        result = json.loads(first.out)
        assert server.faults["echo401"] > 0 and result["run"]["failures"] > 0
        assert result["judge"]["calls"]["failures"] > 0 and result["judge"]["text_fallbacks"] == 0
        assert main(args + ["--retry-failures"]) == 0
        second = capsys.readouterr()
        assert json.loads(second.out)["run"]["failures"] == 0
    text = first.out + first.err + second.out + second.err
    assert KEY not in text and "NEVER-WRITE-ME" not in text
    for path in run.rglob("*"):
        if path.is_file():
            assert b"NEVER-WRITE-ME" not in path.read_bytes(), path


# ---- the client and the redaction step on their own ---------------------------------------

def test_retry_after_is_honoured_and_total_time_is_bounded():
    httpx = pytest.importorskip("httpx")
    waits = []
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"ok": 1})])
    client = HTTPClient("http://x/v1", api_key=None, policy=RetryPolicy(backoff=0.01, max_retries=3, max_time=60),
                        transport=httpx.MockTransport(lambda r: next(answers)))
    client._sleep = waits.append
    assert client.request("GET", "/models") == {"ok": 1} and waits == [7.0]
    # a Retry-After past max_time is not waited for: the request fails at once
    client = HTTPClient("http://x/v1", api_key=None, policy=RetryPolicy(max_retries=3, max_time=5),
                        transport=httpx.MockTransport(lambda r: httpx.Response(503, headers={"Retry-After": "60"})))
    client._sleep = waits.append
    with pytest.raises(RequestFailed, match="max_time") as info:
        client.request("GET", "/models")
    assert info.value.status == 503 and waits == [7.0]
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 30) == pytest.approx(30.0)
    assert retry_after_seconds("soon") is None


def test_backoff_is_exponential_with_jitter():
    import random

    policy = RetryPolicy(backoff=1.0, backoff_max=5.0)
    rng = random.Random(0)
    delays = [policy.delay(k, None, rng) for k in range(5)]
    for k, d in enumerate(delays):
        base = min(5.0, 2.0 ** k)
        assert base / 2 <= d <= base
    assert len({round(d, 6) for d in delays}) == 5  # jittered, not a fixed schedule


def test_redaction_removes_key_and_authorization_material():
    register_secret("my-very-own-secret-value")
    text = ('failed: {"error": "key my-very-own-secret-value"} Authorization: Bearer abc.def '
            "x-api-key: zzz999 api_key=qqq777 sk-abcdefghijklmnopqrstuvwx")
    out = redact(text)
    for secret in ("my-very-own-secret-value", "abc.def", "zzz999", "qqq777", "sk-abcdefghijklmnop"):
        assert secret not in out
    assert out.startswith("failed: ") and "[REDACTED]" in out
    assert redact("P(a ≻ b) = 0.73, no secrets here") == "P(a ≻ b) = 0.73, no secrets here"


def test_engine_and_judge_share_the_client_and_option_names(monkeypatch):
    httpx = pytest.importorskip("httpx")
    from arena.engines import Request, SamplingParams, get_engine
    from arena.http import HTTP_OPTIONS
    from arena.engines.openai import OpenAIEngine
    from judges.openai_server import OPTIONS

    assert set(HTTP_OPTIONS) <= set(OpenAIEngine.OPTIONS) and set(HTTP_OPTIONS) <= set(OPTIONS)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    tries = {}

    def handler(request):  # per prompt: a 429 with Retry-After, an empty 200, then the answer
        body = json.loads(request.content)
        n = tries[body["prompt"]] = tries.get(body["prompt"], 0) + 1
        if n == 1:
            return httpx.Response(429, headers={"Retry-After": "0.001"})
        if n == 2:
            return httpx.Response(200, content=b"")
        return httpx.Response(200, json={"choices": [{"text": body["prompt"].upper()}]})

    engine = get_engine("openai", base_url="http://server/v1", transport=httpx.MockTransport(handler),
                        backoff=0.001, max_retries=2)
    reqs = [Request(f"p{i}", i) for i in range(5)]
    got = dict(pair for batch in engine.generate(type("C", (), {"name": "m"}), reqs, SamplingParams()) for pair in batch)
    assert got == {i: f"P{i}" for i in range(5)} and set(tries.values()) == {3}
    assert KEY not in repr(engine)


def test_text_fallback_notes_are_stored_per_comparison(tmp_path):
    from arena.store import Store
    from arena.tournament import _fallback_notes

    class Judge:  # 2 comparisons, both orders: the first used the text fallback in its swapped order
        sources = ["logprobs", "logprobs", "text_fallback", "logprobs"]

    assert _fallback_notes(Judge(), 2) == ["text_fallback", None]
    assert _fallback_notes(Judge(), 3) is None  # sources of another call: no guess
    with Store.open(tmp_path) as store:
        store.put_notes("j", "k", [("p", 0, "fb", "fa", "text_fallback"), ("p", 1, "fa", "fb", None)])
        assert store.notes("j", "k") == {("p", 0, "fa", "fb"): "text_fallback"}
        store.put_notes("j", "k", [("p", 0, "fa", "fb", None)])  # judged again from logprobs: flag removed
        assert store.notes("j", "k") == {}
