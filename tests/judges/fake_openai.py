"""A fake OpenAI-compatible server on 127.0.0.1 that injects faults, deterministically.

Answers are a pure function of the request: a judge request's verdict-token logprobs come
from a hash of its messages, a completion's text from a hash of (model, prompt, seed). A
request is faulty on its first try or two (by hash; see `fault_for`) when the hash of its
body falls under `rate`; the fault kind is also picked by hash from `kinds`:

  drop        the connection is closed without an answer
  429         Too Many Requests with `Retry-After: 0.01`
  500, 503    server errors
  timeout     the answer comes after `stall` seconds (longer than the client's timeout)
  malformed   200 with a body that is not JSON
  empty       200 with an empty body
  nologprobs  200 with a text verdict and no logprobs
  echo401     401 whose body echoes the Authorization header and the raw key

Later tries of the same body are answered normally, so a fault-free run, a faulty run and a
faulty run followed by `--retry-failures` can be compared verdict by verdict. Bounded: one
thread per connection, every stall is `stall` seconds, `shutdown()` stops it.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("drop", "429", "500", "503", "timeout", "malformed", "empty", "nologprobs", "echo401")


def _u(text: str, salt: str = "") -> float:
    return int(hashlib.sha256((salt + text).encode()).hexdigest()[:12], 16) / 16**12


def verdict_logprobs(content: str) -> dict[str, float]:
    """The fault-free answer: logprobs of labels A and B at the verdict token."""
    return {"A": -4.0 * _u(content, "A"), "B": -4.0 * _u(content, "B")}


def expected_p(content: str) -> float:
    lp = verdict_logprobs(content)
    return math.exp(lp["A"]) / (math.exp(lp["A"]) + math.exp(lp["B"]))


class FakeOpenAI:
    def __init__(self, *, rate: float = 0.0, kinds=KINDS, stall: float = 0.5, models=("judge-model",),
                 fault_paths: tuple[str, ...] | None = None):
        self.rate = rate
        self.fault_paths = fault_paths  # None: every POST may fail; else only paths ending so
        self.kinds = tuple(kinds)
        self.stall = stall
        self.models = list(models)
        self.attempts: dict[str, int] = {}
        self.faults: dict[str, int] = {k: 0 for k in KINDS}
        self.requests = 0
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def fault_for(self, raw: bytes) -> str | None:
        """The fault for this try of this body (None: answer normally); counts the try."""
        key = hashlib.sha256(raw).hexdigest()
        with self.lock:
            attempt = self.attempts.get(key, 0)
            self.attempts[key] = attempt + 1
            self.requests += 1
        if _u(key, "rate") >= self.rate:
            return None
        kind = self.kinds[int(_u(key, "kind") * len(self.kinds)) % len(self.kinds)]
        # A fault the client retries lasts one or two tries (two outlast max_retries=1); one it
        # must not retry (a 401, an answer without logprobs) lasts one.
        sticky = kind not in ("echo401", "nologprobs") and _u(key, "sticky") < 0.5
        if attempt >= 1 + int(sticky):
            return None
        with self.lock:
            self.faults[kind] += 1
        return kind

    def answer(self, path: str, body: dict, logprobs: bool = True) -> dict:
        if path.endswith("/chat/completions"):
            content = body["messages"][0]["content"]
            alts = verdict_logprobs(content)
            chosen = max(alts, key=alts.get)
            text = f"[[{chosen}]]"
            entries = [
                {"token": "[[", "logprob": -0.01, "top_logprobs": [{"token": "[[", "logprob": -0.01}]},
                {"token": chosen, "logprob": alts[chosen],
                 "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alts.items()]},
                {"token": "]]", "logprob": -0.01, "top_logprobs": []},
            ]
            return {"choices": [{"message": {"role": "assistant", "content": text},
                                 "logprobs": {"content": entries} if logprobs else None}]}
        seed = body.get("seed", 0)
        key = "|".join((body["model"], body["prompt"], str(seed)))
        text = " answer " + hashlib.sha256(key.encode()).hexdigest()[:10]
        return {"choices": [{"text": text}]}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, data: bytes, headers=()):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers:
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout): nothing to do
                    self.close_connection = True

            def do_GET(self):
                if self.path.endswith("/models"):
                    return self._send(200, json.dumps({"data": [{"id": m} for m in fake.models]}).encode())
                self._send(404, b'{"error": "no"}')

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                eligible = fake.fault_paths is None or self.path.endswith(fake.fault_paths)
                kind = fake.fault_for(raw) if eligible else None
                if kind is None:
                    return self._send(200, json.dumps(fake.answer(self.path, body)).encode())
                if kind == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if kind == "429":
                    return self._send(429, b'{"error": "slow down"}', headers=[("Retry-After", "0.01")])
                if kind in ("500", "503"):
                    return self._send(int(kind), b'{"error": "server trouble"}')
                if kind == "timeout":
                    threading.Event().wait(fake.stall)
                    return self._send(200, json.dumps(fake.answer(self.path, body)).encode())
                if kind == "malformed":
                    return self._send(200, b'{"choices": [{"message": ')
                if kind == "empty":
                    return self._send(200, b"")
                if kind == "nologprobs":
                    return self._send(200, json.dumps(fake.answer(self.path, body, logprobs=False)).encode())
                if kind == "echo401":
                    auth = self.headers.get("Authorization", "")
                    key = auth.split(" ", 1)[-1]
                    echo = {"error": {"message": f"Incorrect API key provided: {key}", "header": f"Authorization: {auth}"}}
                    return self._send(401, json.dumps(echo).encode())
                raise AssertionError(kind)

        return Handler
