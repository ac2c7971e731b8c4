"""Engine for any OpenAI-compatible server (vLLM serve, SGLang, llama.cpp, hosted APIs).

Each checkpoint must be served under its name in CKPTS_DIR (the `model` field of the
request). Requests go to `{base_url}/completions` (raw prompt, the server applies no chat
template) or, with `chat=True`, to `{base_url}/chat/completions`; each carries its own
`seed`, so servers that honour seeds give batch-independent answers.

`base_url` may be several servers (a sequence; `--base-url` repeated), all serving every
checkpoint: requests are load-balanced over them and fail over by `arena.http`'s rules, and
`check` probes each one before any work.

HTTP goes through `arena.http` (the same client, retry policy and option names as the
openai judge: `timeout`, `max_retries`, `backoff`, `backoff_max`, `max_time`,
`max_concurrency`, `api_key_env`). A request that still fails after the retries raises
(generation is not optional: a missing response cannot be judged); what was generated
before it is in the store and a rerun resumes from there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from arena.engines import Request, SamplingParams
from arena.errors import ConfigError, InputError
from arena.http import HTTP_OPTIONS, HTTPClient, RequestFailed, RetryPolicy, api_key_from_env, base_urls
from arena.lm import truncate_at_stop


def _completion_shape(chat: bool):
    def check(body) -> None:
        choice = body["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        if not isinstance(text, str):
            raise TypeError(f"completion text is {type(text).__name__}, not a string")
    return check


class OpenAIEngine:
    name = "openai"
    OPTIONS = ("base_url", "chat", "transport", *HTTP_OPTIONS)

    def __init__(self, *, base_url: str | Sequence[str] | None = None, chat: bool = False, transport=None,
                 timeout: float = HTTP_OPTIONS["timeout"][1], max_retries: int = HTTP_OPTIONS["max_retries"][1],
                 backoff: float = HTTP_OPTIONS["backoff"][1], backoff_max: float = HTTP_OPTIONS["backoff_max"][1],
                 max_time: float = HTTP_OPTIONS["max_time"][1],
                 max_concurrency: int = HTTP_OPTIONS["max_concurrency"][1],
                 api_key_env: str = HTTP_OPTIONS["api_key_env"][1]):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError("--engine openai needs a server: pass --base-url http://HOST:PORT/v1 or set OPENAI_BASE_URL")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1; got {max_concurrency}")
        self.base_urls = base_urls(base_url)
        self.base_url = " | ".join(self.base_urls)  # for messages
        self.api_key_env = api_key_env
        self._api_key = api_key_from_env(api_key_env)  # only ever sent as a header
        self.max_concurrency = max_concurrency
        self.chat = chat
        self.policy = RetryPolicy(timeout=timeout, max_retries=max_retries, backoff=backoff,
                                  backoff_max=backoff_max, max_time=max_time)
        self.transport = transport  # httpx transport override (tests use httpx.MockTransport)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine({self.base_url})"

    def _client(self, policy: RetryPolicy | None = None, urls: tuple[str, ...] | None = None) -> HTTPClient:
        return HTTPClient(urls or self.base_urls, api_key=self._api_key, policy=policy or self.policy,
                          max_concurrency=self.max_concurrency, transport=self.transport)

    def check(self) -> None:
        """One GET {base_url}/models per server before any work: an unreachable server or a
        refused key is an error now, not after the run directory exists. A server without
        /models passes."""
        for url in self.base_urls:
            self._check_one(url)

    def _check_one(self, url: str) -> None:
        quick = RetryPolicy(timeout=min(self.policy.timeout, 10.0), max_retries=min(1, self.policy.max_retries),
                            backoff=self.policy.backoff, backoff_max=self.policy.backoff_max,
                            max_time=min(self.policy.max_time, 30.0))
        try:
            with self._client(quick, (url,)) as client:
                client.request("GET", "/models")
        except RequestFailed as error:
            if error.status in (401, 403):
                raise ConfigError(f"{url} refused the API key (HTTP {error.status}); "
                                  f"set {self.api_key_env} to a key the server accepts") from None
            if error.status is None or error.status >= 500 or error.status == 429:
                raise ConfigError(f"cannot reach the generation server at {url} ({error.reason}); "
                                  "start it or fix --base-url / OPENAI_BASE_URL") from None
            # another 4xx (e.g. 404): a server without /models passes

    def _one(self, client: HTTPClient, model: str, req: Request, params: SamplingParams) -> str:
        body = {"model": model, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p, "seed": req.seed % (2**31)}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.top_k:  # not in OpenAI's own API; vLLM serve, SGLang and llama.cpp read it
            body["top_k"] = params.top_k
        if self.chat:
            path, body["messages"] = "/chat/completions", [{"role": "user", "content": req.prompt}]
        else:
            path, body["prompt"] = "/completions", req.prompt
        where = f"{self.base_url}{path}" if len(self.base_urls) == 1 else f"{path} on {self.base_url}"
        try:
            answer = client.request("POST", path, body, check=_completion_shape(self.chat))
        except RequestFailed as error:
            if error.status is not None and 400 <= error.status < 500 and error.status != 429:
                raise InputError(f"{where} refused model {model!r}: {error.reason}; "
                                 "serve each checkpoint under its directory name") from None
            raise InputError(f"{where} failed for model {model!r}: {error.reason}; "
                             "is the server up? (rerun to resume)") from None
        choice = answer["choices"][0]
        text = choice["message"]["content"] if self.chat else choice["text"]
        return truncate_at_stop(text, params.stop)  # as the hf and vllm engines cut it

    def generate(self, ckpt, requests: Sequence[Request], params: SamplingParams) -> Iterator[list[tuple[int, str]]]:
        chunk_size = self.max_concurrency * 4
        with self._client() as client, ThreadPoolExecutor(self.max_concurrency) as pool:
            for start in range(0, len(requests), chunk_size):
                chunk = list(range(start, min(start + chunk_size, len(requests))))
                texts = list(pool.map(lambda i: self._one(client, ckpt.name, requests[i], params), chunk))
                yield list(zip(chunk, texts))
