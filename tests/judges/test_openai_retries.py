"""The openai backend against a real local HTTP server (127.0.0.1) that fails on purpose.

Every loop is bounded: the server answers from a finite script, the judge's retries are
capped by max_retries, and delays are hundredths of a second.
"""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena.errors import ConfigError
from judges import Comparison, Failure, judge_both_orders, load_judge

FAST = {"backoff": 0.01, "backoff_max": 0.05, "timeout": 2.0}


class Script:
    """What the fake server answers: a queue of statuses/behaviours, then `default`."""

    def __init__(self, plan=(), default="ok", reply=None, models=("judge-model",)):
        self.plan = list(plan)
        self.default = default
        self.reply = reply or (lambda body: chat_logprobs({"A": -0.5, "B": -1.5}))
        self.models = list(models)
        self.requests = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    def next(self):
        with self.lock:
            return self.plan.pop(0) if self.plan else self.default


def chat_logprobs(alts, text="[[A]]"):
    """A /chat/completions answer whose verdict token (after "[[") has these alternatives."""
    chosen = max(alts, key=alts.get)
    content = [
        {"token": "[[", "logprob": -0.01, "top_logprobs": [{"token": "[[", "logprob": -0.01}]},
        {"token": chosen, "logprob": alts[chosen],
         "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alts.items()]},
        {"token": "]]", "logprob": -0.01, "top_logprobs": []},
    ]
    return {"choices": [{"message": {"role": "assistant", "content": text}, "logprobs": {"content": content}}]}


def chat_text(text):
    return {"choices": [{"message": {"role": "assistant", "content": text}, "logprobs": None}]}


@pytest.fixture
def server():
    scripts = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, code, obj, headers=()):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            s = scripts["s"]
            s.requests.append(("GET", self.path, dict(self.headers), None))
            if self.path.endswith("/models"):
                step = s.plan.pop(0) if s.plan and s.plan[0] in ("probe401",) else None
                if step == "probe401":
                    return self._send(401, {"error": "bad key"})
                return self._send(200, {"object": "list", "data": [{"id": m} for m in s.models]})
            self._send(404, {"error": "no"})

        def do_POST(self):
            s = scripts["s"]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with s.lock:
                s.requests.append(("POST", self.path, dict(self.headers), body))
                s.in_flight += 1
                s.max_in_flight = max(s.max_in_flight, s.in_flight)
            if s.delay:
                time.sleep(s.delay)
            step = s.next()
            if step == "slow":
                time.sleep(0.5)
            with s.lock:  # done before answering: the client may send its next request at once
                s.in_flight -= 1
            if step in ("ok", "slow"):
                return self._send(200, s.reply(body))
            if step == "drop":  # close the connection without an answer
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if step == 429:
                return self._send(429, {"error": "slow down"}, headers=[("Retry-After", "0.01")])
            return self._send(int(step), {"error": f"status {step}"})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()

    def make(**kw):
        scripts["s"] = Script(**kw)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1", scripts["s"]

    yield make
    httpd.shutdown()
    httpd.server_close()


C = Comparison("What is 2+2?", "4", "5")


def _posts(script):
    return [r for r in script.requests if r[0] == "POST"]


def test_429_then_500_then_ok_gives_the_logprob_verdict(server):
    url, script = server(plan=[429, 500])
    judge = load_judge(f"openai:{url}#judge-model", max_retries=3, **FAST)
    (p,) = judge.judge([C])
    assert p == pytest.approx(math.exp(-0.5) / (math.exp(-0.5) + math.exp(-1.5)))
    assert len(_posts(script)) == 3
    assert judge.label_mass[0] == pytest.approx(math.exp(-0.5) + math.exp(-1.5))
    body = _posts(script)[0][3]
    assert body["logprobs"] is True and body["top_logprobs"] == 10 and body["model"] == "judge-model"
    assert "[Response A]\n4" in body["messages"][0]["content"]


def test_always_failing_server_gives_failure_after_n_retries(server):
    url, script = server(default=500)
    judge = load_judge(f"openai:{url}#judge-model", max_retries=2, **FAST)
    (p,) = judge.judge([C])
    assert isinstance(p, Failure) and "HTTP 500" in p.reason and "2 retries" in p.reason
    assert len(_posts(script)) == 3  # first try + 2 retries, then stop
    (v,) = judge_both_orders(judge, [C])
    assert v.p is None and v.p_ab is None and v.p_ba is None  # never a number


def test_bad_request_is_not_retried(server):
    url, script = server(plan=[400])
    (p,) = load_judge(f"openai:{url}#judge-model", max_retries=3, **FAST).judge([C])
    assert isinstance(p, Failure) and "HTTP 400" in p.reason and len(_posts(script)) == 1


def test_dropped_connection_and_timeout_are_retried(server):
    url, script = server(plan=["drop", "slow"])
    judge = load_judge(f"openai:{url}#judge-model", max_retries=3, backoff=0.01, timeout=0.2)
    (p,) = judge.judge([C])
    assert isinstance(p, float) and len(_posts(script)) == 3


@pytest.mark.parametrize("text, want", [
    ("Both are fine. [[B]]", 0.0), ("[[A]]", 1.0), ("It's a tie: [[C]]", 0.5),
    ("I cannot decide", None), ("[[A]] no wait [[B]]", None),
])
def test_text_verdicts_when_no_logprobs(server, text, want):
    url, script = server(reply=lambda body: chat_text(text))
    (p,) = load_judge(f"openai:{url}#judge-model", logprobs=False, **FAST).judge([C])
    if want is None:
        assert isinstance(p, Failure) and "verdict" in p.reason
    else:
        assert p == want
    assert "logprobs" not in _posts(script)[0][3]


def test_unparseable_failure_never_counted_after_unswap(server):
    # Order (a, b) answers garbage; order (b, a) answers [[B]] (= a wins). The pair must fail.
    def reply(body):
        a_first = "[Response A]\n4" in body["messages"][0]["content"]
        return chat_text("no idea" if a_first else "[[B]]")

    url, _ = server(reply=reply)
    (v,) = judge_both_orders(load_judge(f"openai:{url}#judge-model", logprobs=False, **FAST), [C])
    assert v.p is None and v.p_ab is None and v.p_ba == 1.0 and "no verdict" in v.error


def test_completions_mode_reads_legacy_logprobs(server):
    def reply(body):
        assert body["prompt"].endswith("Verdict: [[")
        return {"choices": [{"text": "B]]", "logprobs": {
            "tokens": ["B", "]]"], "token_logprobs": [-0.2, -0.1],
            "top_logprobs": [{"B": -0.2, " A": -2.0, "A": -3.0}, {"]]": -0.1}]}}]}

    url, script = server(reply=reply)
    (p,) = load_judge(f"openai:{url}#judge-model", mode="completions", **FAST).judge([C])
    a = math.exp(-2.0) + math.exp(-3.0)
    assert p == pytest.approx(a / (a + math.exp(-0.2)))
    assert _posts(script)[0][1].endswith("/v1/completions") and _posts(script)[0][3]["logprobs"] == 10


def test_concurrency_is_bounded(server):
    url, script = server()
    script.delay = 0.02
    judge = load_judge(f"openai:{url}#judge-model", max_concurrency=2, **FAST)
    out = judge.judge([C] * 8)
    assert all(isinstance(x, float) for x in out) and script.max_in_flight <= 2


def test_api_key_from_env_only_sent_as_header(server, monkeypatch):
    url, script = server()
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret-123")
    judge = load_judge(f"openai:{url}#judge-model", api_key_env="MY_JUDGE_KEY", **FAST)
    judge.judge([C])
    assert all(r[2].get("Authorization") == "Bearer sk-secret-123" for r in script.requests)
    assert "sk-secret" not in repr(judge) and "sk-secret" not in judge.fingerprint
    assert "sk-secret" not in json.dumps(judge.values)


def test_probe_errors_before_work(server, monkeypatch):
    url, script = server(plan=["probe401"])
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret-456")
    with pytest.raises(ConfigError, match="refused the API key") as info:
        load_judge(f"openai:{url}#judge-model", api_key_env="MY_JUDGE_KEY", **FAST)
    assert "sk-secret" not in str(info.value)
    url, script = server(models=("other",))
    with pytest.raises(ConfigError, match="not served"):
        load_judge(f"openai:{url}#judge-model", **FAST)
    assert not _posts(script)


def test_unreachable_server_and_bad_specs():
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach"):
        load_judge(f"openai:http://127.0.0.1:{port}/v1#m", **FAST)
    for spec in ["openai:http://127.0.0.1:1/v1", "openai:127.0.0.1:1#m", "openai:http://x/v1#m?mode=stream"]:
        with pytest.raises(ConfigError):
            load_judge(spec, probe=False)


def test_fingerprint_depends_on_model_and_mode(server):
    url, _ = server(models=())
    a = load_judge(f"openai:{url}#m1", **FAST).fingerprint
    assert a == load_judge(f"openai:{url}#m1", **FAST).fingerprint
    assert a != load_judge(f"openai:{url}#m2", **FAST).fingerprint
    assert a != load_judge(f"openai:{url}#m1?mode=completions", **FAST).fingerprint


@pytest.mark.parametrize("reply", [
    {"choices": []},
    {"choices": [{"message": None}]},
    {"choices": [{"message": {"content": "[[A]]"}, "logprobs": {"content": [{"no_token": 1}]}}]},
    {"unexpected": True},
])
def test_malformed_answers_fail_that_comparison_only(server, reply):
    url, _ = server(reply=lambda body: reply)
    out = load_judge(f"openai:{url}#judge-model", **FAST).judge([C, C])
    assert all(isinstance(x, Failure) and "unexpected response shape" in x.reason for x in out)
