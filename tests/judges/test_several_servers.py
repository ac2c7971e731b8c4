"""Several OpenAI-compatible servers behind one client (fake servers on 127.0.0.1, bounded).

Requests spread over the servers; one server down: every request still succeeds through the
others, with the same answers as a one-server run; all down: a clear error for generation,
recorded failures for judging; the /models probe checks every server.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from arena.cli import main
from arena.engines import Request, SamplingParams, get_engine
from arena.errors import ConfigError, InputError
from arena.http import HTTPClient, RetryPolicy, base_urls
from judges.base import Comparison, Failure
from judges.openai_server import load_openai_judge

_spec = importlib.util.spec_from_file_location("fake_openai", Path(__file__).with_name("fake_openai.py"))
fake_openai = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_openai)
FakeOpenAI, expected_p = fake_openai.FakeOpenAI, fake_openai.expected_p

MODELS = ("judge-model", "m1", "m2", "m3")
FAST = dict(max_retries=2, backoff=0.001, backoff_max=0.01, timeout=5.0, max_concurrency=4)
JFAST = "max_retries=2&backoff=0.001&backoff_max=0.01&timeout=5&max_concurrency=4"
REQS = [Request(f"prompt number {i}", 1000 + 7 * i) for i in range(24)]


class Ckpt:
    name = "m2"


def _generate(urls, **kw) -> dict[int, str]:
    engine = get_engine("openai", base_url=urls, **{**FAST, **kw})
    return dict(pair for batch in engine.generate(Ckpt(), REQS, SamplingParams(max_new_tokens=8)) for pair in batch)


def _down_url() -> str:
    """The URL of a server that was started and stopped: its port refuses connections."""
    server = FakeOpenAI(models=MODELS)
    server.shutdown()
    return server.url


def test_generation_spreads_and_matches_one_server():
    with FakeOpenAI(models=MODELS) as a, FakeOpenAI(models=MODELS) as b, FakeOpenAI(models=MODELS) as c:
        single = _generate(a.url)
        assert a.requests == len(REQS)
        several = _generate([a.url, b.url, c.url])
        get_engine("openai", base_url=[a.url, b.url, c.url]).check()  # every server answers /models
        assert several == single and len(set(single.values())) == len(REQS)
        # least outstanding with round-robin ties: every server takes a real share
        counts = [a.requests - len(REQS), b.requests, c.requests]
        assert sum(counts) == len(REQS) and min(counts) >= 4, counts


def test_one_server_down_all_requests_succeed_elsewhere():
    down = _down_url()
    with FakeOpenAI(models=MODELS) as a, FakeOpenAI(models=MODELS) as b:
        single = _generate(a.url)
        with pytest.raises(ConfigError, match=down.replace(".", r"\.")):
            get_engine("openai", base_url=[a.url, down, b.url]).check()  # the probe names the down server
        before = (a.requests, b.requests)
        assert _generate([down, a.url, b.url]) == single
        assert a.requests - before[0] > 0 and b.requests - before[1] > 0
        assert (a.requests - before[0]) + (b.requests - before[1]) == len(REQS)


def test_a_failing_server_is_retried_on_another_without_waiting():
    httpx = pytest.importorskip("httpx")
    hits = []

    def handler(request):
        hits.append(request.url.host)
        if request.url.host == "bad":
            return httpx.Response(503, content=b'{"error": "overloaded"}')
        return httpx.Response(200, json={"host": request.url.host})

    client = HTTPClient(["http://bad/v1", "http://good/v1"], api_key=None, policy=RetryPolicy(max_retries=1),
                        transport=httpx.MockTransport(handler))
    client._sleep = lambda s: pytest.fail(f"waited {s} s before failing over")
    assert client.request("GET", "/models") == {"host": "good"}
    assert hits == ["bad", "good"] and client.served == [0, 1]
    # the failed server is avoided by the next requests while the other one is up
    assert [client.request("GET", "/models")["host"] for _ in range(3)] == ["good"] * 3
    assert hits == ["bad", "good", "good", "good", "good"]
    # a 4xx is the request's fault: not retried anywhere
    four = HTTPClient(["http://a/v1", "http://b/v1"], api_key=None, policy=RetryPolicy(max_retries=3),
                      transport=httpx.MockTransport(lambda r: (hits.append(r.url.host), httpx.Response(400))[1]))
    hits.clear()
    with pytest.raises(Exception, match="HTTP 400"):
        four.request("GET", "/models")
    assert len(hits) == 1


def test_all_servers_down_is_a_clear_error():
    downs = [_down_url(), _down_url()]
    with pytest.raises(InputError, match="connection error") as info:
        _generate(downs)
    assert "is the server up" in str(info.value) and f"/completions on {downs[0]} | {downs[1]}" in str(info.value)
    with pytest.raises(ConfigError, match="cannot reach the generation server"):
        get_engine("openai", base_url=downs).check()
    judge = load_openai_judge(",".join(downs) + "#judge-model", {"probe": "false", **dict(
        kv.split("=") for kv in JFAST.split("&"))})
    verdicts = judge.judge([Comparison("q", "a", "b"), Comparison("q2", "b", "a")])
    assert all(isinstance(v, Failure) and "connection error" in v.reason for v in verdicts)
    with pytest.raises(ConfigError, match="cannot reach the judge server"):
        load_openai_judge(",".join(downs) + "#judge-model", {})


def test_judge_over_several_servers_matches_one_and_survives_one_down():
    comparisons = [Comparison(f"question {i}", f"answer a{i} " * (1 + i % 3), f"answer b{i}") for i in range(16)]
    opts = dict(kv.split("=") for kv in JFAST.split("&"))
    down = _down_url()
    with FakeOpenAI(models=MODELS) as a, FakeOpenAI(models=MODELS) as b:
        one = load_openai_judge(f"{a.url}#judge-model", opts).judge(comparisons)
        both = load_openai_judge(f"{a.url},{b.url}#judge-model", opts)
        assert both.judge(comparisons) == one and b.requests > 0
        assert all(isinstance(p, float) for p in one) and len(set(one)) == len(one)
        with pytest.raises(ConfigError, match=down.replace(".", r"\.")):
            load_openai_judge(f"{a.url},{down}#judge-model", opts)  # probed before any work
        # a panel member may itself be a list of servers (`|` separates members, `,` servers)
        import judges
        panel = judges.load_judge(f"panel:3*openai:{a.url},{b.url}#judge-model?{JFAST}|1*openai:{b.url}#judge-model?{JFAST}")
        assert panel.judge(comparisons) == pytest.approx(one)
        degraded = load_openai_judge(f"{down},{a.url},{b.url}#judge-model", {**opts, "probe": "false"})
        assert degraded.judge(comparisons) == one
    # one server keeps its old fingerprint (store key); a list has its own
    assert both.fingerprint != load_openai_judge(f"{a.url}#judge-model", {**opts, "probe": "false"}).fingerprint


def test_bad_server_lists_fail_before_any_work():
    with pytest.raises(ConfigError, match="given twice"):
        base_urls(["http://a/v1", "http://a/v1/"])
    with pytest.raises(ConfigError, match="http://"):
        base_urls(["http://a/v1", "b:8000/v1"])
    with pytest.raises(ConfigError, match="must start with http"):
        load_openai_judge("http://a/v1,b/v1#m", {})
    assert base_urls("http://a/v1/") == ("http://a/v1",)


def test_tournament_cli_with_two_base_urls(tmp_path, capsys, three_ckpts):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(6)))
    with FakeOpenAI(models=MODELS) as a, FakeOpenAI(models=MODELS) as b:
        results = []
        for out, urls in (("one", [a.url]), ("two", [a.url, b.url])):
            flags = [x for u in urls for x in ("--base-url", u)]
            assert main(["tournament", str(three_ckpts), "--prompts", str(prompts), "--out",
                         str(tmp_path / out), "--engine", "openai", *flags, "--judge",
                         f"openai:{','.join(urls)}#judge-model?{JFAST}", "--rounds", "20", "--json"]) == 0
            results.append(json.loads(capsys.readouterr().out))
        assert b.requests > 0
    one, two = results
    assert one["run"]["failures"] == two["run"]["failures"] == 0
    assert one["preference"] == two["preference"] and one["nash"] == two["nash"]
    assert one["ratings"] == two["ratings"]
