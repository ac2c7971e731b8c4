"""Judge through any OpenAI-compatible server (vLLM serve, SGLang, llama.cpp, hosted APIs).

Per (comparison, order) one request. With `logprobs` (the default) the verdict token's top
alternatives give ℓ_A, ℓ_B and P(a ≻ b) = exp ℓ_A / (exp ℓ_A + exp ℓ_B) as in the hf judge.
An answer without usable logprobs (none returned, or neither label among the top
alternatives) is a Failure with the reason, never a silent 0/1: judge it again with
`--retry-failures`, or opt in with `?text_fallback=true` to accept the text verdict
`[[A]]` / `[[B]]` / `[[C]]` (tie, ½; MT-Bench style, Zheng et al. 2023, arXiv 2306.05685),
which is then counted as a `text_fallback` in the diagnostics (and `arena judge` output,
tournament results). With `?logprobs=false` the text verdict is the method. No verdict is
a Failure, never a guess.

Two request modes: `chat` (/chat/completions; the template asks for `[[A]]`/`[[B]]`) and
`completions` (/completions; the prompt ends with `answer_prefix`, e.g. "Verdict: [[", so
the very next token is the label, exactly like the local logprob judge).

Robustness: `arena.http` (the same client and retry policy as the openai engine): bounded
concurrency, a timeout per attempt, a bounded total time, retries with jittered exponential
backoff (honouring Retry-After) on 429, 5xx, connection errors, timeouts and malformed or
empty 200 bodies, none on other 4xx. The API key is read from an environment variable
(`api_key_env`, default OPENAI_API_KEY), only ever sent as the Authorization header, and
registered with `arena.redact`, so even a server that echoes it cannot get it into a
failure reason, the store or the terminal. `load_openai_judge` probes `GET {url}/models`
first, so an unreachable server or a refused key fails before any work.

Several servers serving the same judge: `openai:URL1,URL2,URL3#MODEL` (commas, because `|`
separates the members of a panel: `panel:openai:URL1,URL2#judge|...`). Requests are
load-balanced over them and fail over by `arena.http`'s rules; every server is probed before
any work. The verdicts do not depend on which server answered when they serve the same
weights at temperature 0; the judge's fingerprint (its store key) holds the URL list as
given, so the same list reuses stored verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from arena.errors import ConfigError
from arena.http import HTTP_OPTIONS, HTTPClient, RequestFailed, RetryPolicy, api_key_from_env, base_urls
from arena.fingerprint import fingerprint_obj
from judges.base import Comparison, Failure
from judges.options import Option, coerce_options
from judges.templates import DEFAULT_TIE_LABEL, TEMPLATE_OPTIONS, parse_verdict, prepare_template, render

OPTIONS: dict[str, Option] = {
    **TEMPLATE_OPTIONS,
    "mode": Option("str", "chat", "chat (/chat/completions) or completions (/completions, prompt + answer_prefix)"),
    "tie_label": Option("str", DEFAULT_TIE_LABEL, "label of a tie in a text verdict ([[C]] = ½); empty: no ties"),
    "max_tokens": Option("int", None, "tokens to generate (default 16 in chat mode, 4 in completions mode)", minimum=1),
    "temperature": Option("float", 0.0, "sampling temperature", minimum=0.0),
    "logprobs": Option("bool", True, "ask for log-probabilities (top_logprobs) of the verdict token"),
    "top_logprobs": Option("int", 10, "alternatives per token to ask for (OpenAI allows up to 20)", minimum=1),
    **{name: Option(kind.__name__, default, doc, minimum=None if kind is str else (1 if name == "max_concurrency" else 0.0))
       for name, (kind, default, doc) in HTTP_OPTIONS.items()},
    "max_concurrency": Option("int", 4, HTTP_OPTIONS["max_concurrency"][2], minimum=1),
    "text_fallback": Option("bool", False, "when logprobs were asked for but the answer has none usable, use the "
                            "text verdict (flagged 'text_fallback' and counted) instead of recording a failure"),
    "probe": Option("bool", True, "check GET /models (reachable, key accepted, model served) before any work"),
}


class OpenAIJudge:
    """Pairwise judge over an OpenAI-compatible HTTP API."""

    def __init__(self, url: str, model: str, values: dict, *, api_key: str | None = None):
        self.urls = base_urls(url.split(","))
        self.url = ",".join(self.urls)  # one URL: as before, so its fingerprint is unchanged
        self.model = model
        self.values = values
        self.labels = tuple(values["labels"])
        self.tie_label = values["tie_label"] or None
        self.mode = values["mode"]
        self.max_tokens = values["max_tokens"] or (16 if self.mode == "chat" else 4)
        self._api_key = api_key  # only ever sent as a header (and registered for redaction)
        self.transport = None     # httpx transport override (tests)
        self.fingerprint = "openai:" + fingerprint_obj({
            "backend": "openai", "url": self.url, "model": model, "mode": self.mode,
            "template": values["template"],
            "answer_prefix": values["answer_prefix"] if self.mode == "completions" else None,
            "labels": list(self.labels), "tie_label": self.tie_label, "max_tokens": self.max_tokens,
            "temperature": values["temperature"], "logprobs": values["logprobs"],
            # only when on: the verdicts it adds differ in kind (0/1 instead of a probability)
            **({"text_fallback": True} if values["text_fallback"] and values["logprobs"] else {}),
        })
        self.label_mass: list[float | None] = []
        # "logprobs" | "text" (logprobs not asked for) | "text_fallback" (asked for, none usable,
        # text_fallback on) | None (failure), per comparison of the last call
        self.sources: list[str | None] = []

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIJudge({self.url}#{self.model}, mode={self.mode})"

    # -- HTTP (arena.http: one client and one retry policy for engine and judge) --------
    def client(self, transport=None, urls: tuple[str, ...] | None = None) -> HTTPClient:
        v = self.values
        policy = RetryPolicy(timeout=v["timeout"], max_retries=v["max_retries"], backoff=v["backoff"],
                             backoff_max=v["backoff_max"], max_time=v["max_time"])
        return HTTPClient(urls or self.urls, api_key=self._api_key, policy=policy, max_concurrency=v["max_concurrency"],
                          transport=transport or self.transport)

    def request(self, client: HTTPClient, method: str, path: str, payload: dict | None = None, *,
                retries: int | None = None, check=None) -> dict | Failure:
        """One call through the shared retry policy; a Failure (redacted reason) when it gives up."""
        try:
            return client.request(method, path, payload, check=check, max_retries=retries)
        except RequestFailed as error:
            return Failure(error.reason)

    def probe(self) -> None:
        """GET /models on every server: reachable, key accepted, model served; ConfigError otherwise."""
        for url in self.urls:
            self._probe_one(url)

    def _probe_one(self, url: str) -> None:
        with self.client(urls=(url,)) as client:
            # One retry at most: a missing server should be reported at once, not after backoff.
            answer = self.request(client, "GET", "/models", retries=min(1, self.values["max_retries"]))
        if isinstance(answer, Failure):
            reason = answer.reason
            if "HTTP 401" in reason or "HTTP 403" in reason:
                raise ConfigError(
                    f"{url} refused the API key (from ${self.values['api_key_env']}): {reason.split(':')[0]}; "
                    "set the right key in that environment variable"
                )
            if "HTTP 404" in reason:
                raise ConfigError(f"{url}/models answered 404; the URL should be the API base, e.g. http://HOST:PORT/v1")
            raise ConfigError(f"cannot reach the judge server at {url} ({reason}); start it or fix the URL")
        served = [m.get("id") for m in answer.get("data", []) if isinstance(m, dict)] if isinstance(answer, dict) else []
        if served and self.model not in served:
            raise ConfigError(
                f"model {self.model!r} is not served at {url}; it serves: {', '.join(map(str, served[:20]))}"
            )

    # -- judging ------------------------------------------------------------------------
    def payload(self, c: Comparison) -> tuple[str, dict]:
        text = render(self.values["template"], c, self.labels)
        body = {"model": self.model, "max_tokens": self.max_tokens, "temperature": self.values["temperature"]}
        if self.mode == "chat":
            body["messages"] = [{"role": "user", "content": text}]
            if self.values["logprobs"]:
                body["logprobs"] = True
                body["top_logprobs"] = self.values["top_logprobs"]
            return "/chat/completions", body
        body["prompt"] = text + self.values["answer_prefix"]
        if self.values["logprobs"]:
            body["logprobs"] = self.values["top_logprobs"]
        return "/completions", body

    def one(self, client, c: Comparison) -> tuple[float | Failure, float | None, str | None]:
        """(verdict or Failure, label mass, source) for one comparison in one order."""
        path, body = self.payload(c)
        answer = self.request(client, "POST", path, body, check=self._check_shape)
        if isinstance(answer, Failure):
            return answer, None, None
        choice = answer["choices"][0]
        if self.mode == "chat":
            text = choice["message"].get("content") or ""
            tokens = _chat_tokens(choice.get("logprobs"))
            prefix = ""
        else:
            text = choice.get("text") or ""
            tokens = _completion_tokens(choice.get("logprobs"))
            prefix = self.values["answer_prefix"]
        if not self.values["logprobs"]:  # the user asked for text verdicts
            return parse_verdict(prefix + text, self.labels, self.tie_label), None, "text"
        from_logprobs = verdict_from_logprobs(tokens, self.labels, prefix=prefix)
        if from_logprobs is not None:
            p, mass = from_logprobs
            return p, mass, "logprobs"
        why = ("the answer has no logprobs" if not tokens
               else f"neither label {self.labels[0]!r} nor {self.labels[1]!r} is among the top "
                    f"{self.values['top_logprobs']} alternatives at the verdict token")
        if not self.values["text_fallback"]:
            # Never substitute a 0/1 text verdict for a probability silently: a recorded
            # failure (judge again with --retry-failures), or the documented opt-in.
            return Failure(f"logprobs unusable: {why}; text {text[:80]!r} (rerun with --retry-failures, "
                           "or pass ?text_fallback=true to accept text verdicts)"), None, None
        verdict = parse_verdict(prefix + text, self.labels, self.tie_label)
        return verdict, None, (None if isinstance(verdict, Failure) else "text_fallback")

    def _check_shape(self, answer) -> None:
        """Raise when a 200 body is not a completion (the client retries it as malformed)."""
        choice = answer["choices"][0]
        if self.mode == "chat":
            content = choice["message"]["content"]
            if content is not None and not isinstance(content, str):
                raise TypeError(f"message content is {type(content).__name__}")
            logprobs = choice.get("logprobs")
            _chat_tokens(logprobs)
        else:
            if not isinstance(choice.get("text", ""), str):
                raise TypeError("text is not a string")
            _completion_tokens(choice.get("logprobs"))

    def judge(self, comparisons: Sequence[Comparison]) -> list[float | Failure]:
        comparisons = list(comparisons)
        if not comparisons:
            return []
        with self.client() as client, ThreadPoolExecutor(max_workers=self.values["max_concurrency"]) as pool:
            answers = list(pool.map(lambda c: self.one(client, c), comparisons))
        self.label_mass = [a[1] for a in answers]
        self.sources = [a[2] for a in answers]
        return [a[0] for a in answers]

    def diagnostics(self) -> dict:
        """Counts for the last `judge` call: verdicts from logprobs, from text (asked for), from the
        opt-in text fallback, failures; label-mass mean and min over the logprob verdicts."""
        masses = [m for m in self.label_mass if m is not None]
        out = {"from_logprobs": self.sources.count("logprobs"), "from_text": self.sources.count("text"),
               "text_fallbacks": self.sources.count("text_fallback"), "failures": self.sources.count(None)}
        if masses:
            out.update(label_mass_mean=sum(masses) / len(masses), label_mass_min=min(masses))
        return out


def _chat_tokens(logprobs) -> list[tuple[str, dict[str, float]]]:
    """[(token, {alternative: logprob})] from a chat response's `logprobs.content`."""
    if not logprobs or not logprobs.get("content"):
        return []
    out = []
    for entry in logprobs["content"]:
        alts = {a["token"]: a["logprob"] for a in entry.get("top_logprobs") or [] if a.get("logprob") is not None}
        if entry.get("logprob") is not None:
            alts.setdefault(entry["token"], entry["logprob"])
        out.append((entry["token"], alts))
    return out


def _completion_tokens(logprobs) -> list[tuple[str, dict[str, float]]]:
    """[(token, {alternative: logprob})] from a legacy completion's `logprobs`."""
    if not logprobs or not logprobs.get("tokens"):
        return []
    tokens = logprobs["tokens"]
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    chosen = logprobs.get("token_logprobs") or [None] * len(tokens)
    out = []
    for tok, top, lp in zip(tokens, tops, chosen):
        alts = {k: v for k, v in (top or {}).items() if v is not None}
        if lp is not None:
            alts.setdefault(tok, lp)
        out.append((tok, alts))
    return out


def _norm(token: str) -> str:
    return token.strip().strip("[]").strip()


def verdict_from_logprobs(tokens: list[tuple[str, dict[str, float]]], labels: tuple[str, str],
                          *, prefix: str = "") -> tuple[float, float] | None:
    """(P(label A) / (P(A) + P(B)), P(A) + P(B)) at the verdict token, or None.

    The verdict token is the first one generated right after "[[" (counting `prefix`, the
    pre-filled text), else the first token that reads as a label. Alternatives are matched
    after stripping spaces and brackets (" A", "A", "[[A" all count as A), summing variants.
    """
    if not tokens:
        return None
    position = None
    seen = prefix
    for j, (tok, _) in enumerate(tokens):
        if seen.rstrip().endswith("[["):
            position = j
            break
        seen += tok
    if position is None:
        position = next((j for j, (tok, _) in enumerate(tokens) if _norm(tok) in labels), None)
    if position is None:
        return None
    mass = [0.0, 0.0]
    for alt, lp in tokens[position][1].items():
        key = _norm(alt)
        if key in labels and math.isfinite(lp):
            mass[labels.index(key)] += math.exp(lp)
    total = mass[0] + mass[1]
    if total <= 0.0:
        return None
    return mass[0] / total, total


def load_openai_judge(body: str, options: dict) -> OpenAIJudge:
    """`openai:URL#MODEL` -> OpenAIJudge, after checking options and probing the server."""
    url, sep, model = body.partition("#")
    if not sep or not url or not model:
        raise ConfigError(f"openai judge spec needs URL#MODEL (or URL1,URL2#MODEL); got {body!r} (e.g. openai:http://127.0.0.1:8000/v1#my-model)")
    for one in url.split(","):
        if not one.startswith(("http://", "https://")):
            raise ConfigError(f"openai judge URL {one!r} must start with http:// or https:// "
                              "(several servers: openai:URL1,URL2#MODEL)")
    values = coerce_options("openai", options, OPTIONS)
    prepare_template(values, "openai")
    if values["mode"] not in ("chat", "completions"):
        raise ConfigError(f"mode={values['mode']!r}; use chat or completions")
    if values["tie_label"] and values["tie_label"] in values["labels"]:
        raise ConfigError(f"tie_label {values['tie_label']!r} is also a verdict label; choose another")
    api_key = api_key_from_env(values["api_key_env"])
    judge = OpenAIJudge(url, model, values, api_key=api_key)
    if values["probe"]:
        judge.probe()
    return judge
