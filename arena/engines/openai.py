"""Engine for any OpenAI-compatible server (vLLM serve, SGLang, llama.cpp, hosted APIs), via httpx.

Each checkpoint must be served under its name in CKPTS_DIR (the `model` field of the
request). Requests go to `{base_url}/completions` (raw prompt, the server applies no chat
template) or, with `chat=True`, to `{base_url}/chat/completions`; each carries its own
`seed`, so servers that honour seeds give batch-independent answers. Transient HTTP errors
are retried; a request that keeps failing raises (generation is not optional: a missing
response cannot be judged).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from arena.engines import Request, SamplingParams
from arena.errors import ConfigError, InputError
from arena.lm import truncate_at_stop


class OpenAIEngine:
    name = "openai"
    OPTIONS = ("base_url", "api_key", "concurrency", "chat", "timeout", "retries", "transport")

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, concurrency: int = 8,
                 chat: bool = False, timeout: float = 120.0, retries: int = 3, transport=None):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError("--engine openai needs a server: pass --base-url http://HOST:PORT/v1 or set OPENAI_BASE_URL")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "none")
        self.concurrency = max(1, concurrency)
        self.chat = chat
        self.timeout = timeout
        self.retries = retries
        self.transport = transport  # httpx transport override (tests use httpx.MockTransport)

    def check(self) -> None:
        """One GET {base_url}/models before any work: an unreachable server or a refused key is
        an error now, not after the run directory exists. A server without /models passes."""
        import httpx

        try:
            with self._client() as client:
                r = client.get(f"{self.base_url}/models", timeout=min(self.timeout, 10.0))
        except httpx.HTTPError as error:
            raise ConfigError(f"cannot reach the generation server at {self.base_url} ({type(error).__name__}); "
                              "start it or fix --base-url / OPENAI_BASE_URL") from None
        if r.status_code in (401, 403):
            raise ConfigError(f"{self.base_url} refused the API key (HTTP {r.status_code}); "
                              "set OPENAI_API_KEY to a key the server accepts")

    def _client(self):
        import httpx

        return httpx.Client(timeout=self.timeout, transport=self.transport,
                            headers={"Authorization": f"Bearer {self.api_key}"})

    def _one(self, client, model: str, req: Request, params: SamplingParams) -> str:
        body = {"model": model, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p, "seed": req.seed % (2**31)}
        if params.stop:
            body["stop"] = list(params.stop)
        if self.chat:
            url, body["messages"] = f"{self.base_url}/chat/completions", [{"role": "user", "content": req.prompt}]
        else:
            url, body["prompt"] = f"{self.base_url}/completions", req.prompt
        last = None
        for attempt in range(self.retries + 1):
            try:
                r = client.post(url, json=body)
                if r.status_code >= 500 or r.status_code == 429:
                    last = f"HTTP {r.status_code}"
                elif r.status_code >= 400:
                    raise InputError(f"{url} refused model {model!r}: HTTP {r.status_code} {r.text[:200]}; "
                                     "serve each checkpoint under its directory name")
                else:
                    choice = r.json()["choices"][0]
                    text = choice["message"]["content"] if self.chat else choice["text"]
                    return truncate_at_stop(text, params.stop)  # as the hf and vllm engines cut it
            except (KeyError, IndexError, ValueError) as error:
                last = f"malformed response ({error})"
            except Exception as error:  # httpx transport errors
                if isinstance(error, InputError):
                    raise
                last = str(error)
            time.sleep(min(2.0, 0.1 * 2**attempt))
        raise InputError(f"{url} failed for model {model!r} after {self.retries + 1} tries ({last}); is the server up?")

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        chunk_size = self.concurrency * 4
        with self._client() as client, ThreadPoolExecutor(self.concurrency) as pool:
            for start in range(0, len(requests), chunk_size):
                chunk = list(range(start, min(start + chunk_size, len(requests))))
                texts = list(pool.map(lambda i: self._one(client, ckpt.name, requests[i], params), chunk))
                yield list(zip(chunk, texts))
