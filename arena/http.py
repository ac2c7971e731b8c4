"""One HTTP client, with one retry policy, for every OpenAI-compatible server the arena talks to
(the `openai` generation engine and the `openai` judge).

Policy (`RetryPolicy`), for each request:

- retried: connection errors (refused, reset, dropped), timeouts, HTTP 429 and 5xx, and a
  200 whose body is empty, not JSON, or fails the caller's shape check (`check`);
- not retried: other 4xx (a bad request stays bad); the caller gets the status;
- delay before retry k (0-based): `min(backoff_max, backoff · 2^k)`, times a random factor
  in [½, 1] ("equal jitter", so clients that failed together do not retry together), but
  never less than the server's `Retry-After` (seconds or an HTTP date);
- bounded: at most `max_retries` retries and `max_time` seconds in all (a wait that would
  pass `max_time` is not started; the request fails at once with its last reason).

A request that gives up raises `RequestFailed(reason, status)`; its reason, like every
string leaving this module, has been through `arena.redact.redact`, and the API key (read
from the environment variable named by `api_key_env`) is registered as a secret before the
first request, so an error body that echoes it never carries it further.

The option names below (`HTTP_OPTIONS`) are the same for the engine and the judge.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from arena.errors import ArenaError, ConfigError
from arena.redact import redact, register_secret

# (default, help) per shared option; judges.options and the engine build on these.
HTTP_OPTIONS: dict[str, tuple[type, object, str]] = {
    "timeout": (float, 60.0, "seconds per request attempt (connect, read, write)"),
    "max_retries": (int, 4, "retries on connection errors, timeouts, 429, 5xx and malformed 200 bodies"),
    "backoff": (float, 0.5, "first retry delay in seconds (doubles each retry, with jitter)"),
    "backoff_max": (float, 30.0, "longest retry delay in seconds (a longer Retry-After is still honoured)"),
    "max_time": (float, 600.0, "seconds one request may take in all, retries and waits included"),
    "max_concurrency": (int, 8, "requests in flight at once"),
    "api_key_env": (str, "OPENAI_API_KEY", "environment variable holding the API key (unset: no key sent)"),
}
# How much of an error body a failure reason quotes (after redaction).
BODY_EXCERPT = 200


class RequestFailed(ArenaError):
    """A request that gave up: `reason` (redacted) and the last HTTP `status` (None: no answer)."""

    def __init__(self, reason: str, status: int | None = None):
        self.reason = redact(reason)
        self.status = status
        super().__init__(self.reason)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how long to retry; see the module docstring."""

    timeout: float = 60.0
    """Seconds per attempt."""
    max_retries: int = 4
    """Retries after the first attempt."""
    backoff: float = 0.5
    """First retry delay (seconds)."""
    backoff_max: float = 30.0
    """Cap of the exponential delay (seconds)."""
    max_time: float = 600.0
    """Total seconds for one request, waits included."""

    def __post_init__(self):
        for name in ("timeout", "max_time"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds; got {getattr(self, name)}")
        for name in ("backoff", "backoff_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 seconds; got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0; got {self.max_retries}")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry `attempt` (0-based)."""
        base = min(self.backoff_max, self.backoff * 2.0 ** attempt)
        jittered = base * (0.5 + 0.5 * rng.random())
        return max(jittered, retry_after or 0.0)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A Retry-After header as seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def api_key_from_env(name: str) -> str | None:
    """The key in environment variable `name` (None when unset or empty), registered for redaction."""
    key = os.environ.get(name) or None
    register_secret(key)
    return key


class HTTPClient:
    """A pooled httpx client for one server (`base_url`) with the retry policy. Thread-safe;
    use as a context manager. `transport` overrides httpx's (tests use `httpx.MockTransport`)."""

    def __init__(self, base_url: str, *, api_key: str | None, policy: RetryPolicy, max_concurrency: int = 8,
                 transport=None, seed: int | None = None):
        import httpx

        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        n = max(1, max_concurrency)
        self._client = httpx.Client(headers=headers, timeout=policy.timeout, transport=transport,
                                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._sleep = time.sleep

    def __enter__(self) -> "HTTPClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, payload: dict | None = None, *,
                check: Callable[[object], None] | None = None, max_retries: int | None = None) -> object:
        """The decoded JSON body of a 200 answer, after retries; raises `RequestFailed`.

        `check(body)` raises (KeyError, IndexError, TypeError, ValueError, AttributeError) when
        a 200 body does not have the expected shape: that attempt counts as malformed and is
        retried like a 5xx.
        """
        import httpx

        policy = self.policy
        retries = policy.max_retries if max_retries is None else max_retries
        url = self.base_url + path
        deadline = time.monotonic() + policy.max_time
        last, status = "no attempt", None
        for attempt in range(retries + 1):
            retry_after = None
            try:
                response = self._client.request(method, url, json=payload)
            except httpx.TimeoutException as error:
                last, status = f"timeout ({type(error).__name__}) after {policy.timeout:g} s", None
            except httpx.TransportError as error:  # refused, reset, dropped mid-answer
                last, status = f"connection error ({type(error).__name__}: {error})", None
            else:
                status = response.status_code
                if status == 200:
                    body, problem = _decode(response, check)
                    if problem is None:
                        return body
                    last = f"{problem} from {path}"
                else:
                    last = f"HTTP {status} from {path}: {response.text[:BODY_EXCERPT]!r}"
                    if status != 429 and status < 500:
                        raise RequestFailed(last, status)  # a bad request stays bad: no retry
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if attempt == retries:
                break
            with self._rng_lock:
                wait = policy.delay(attempt, retry_after, self._rng)
            if time.monotonic() + wait > deadline:
                raise RequestFailed(f"{last} (gave up: the next retry would pass max_time={policy.max_time:g} s)", status)
            self._sleep(wait)
        raise RequestFailed(f"{last} (gave up after {retries} retries)", status)


def _decode(response, check) -> tuple[object, str | None]:
    """(body, None) for a usable 200, else (None, why it is not)."""
    text = response.text
    if not text.strip():
        return None, "empty 200 body"
    try:
        body = response.json()
    except ValueError:
        return None, f"non-JSON 200 body {text[:BODY_EXCERPT]!r}"
    if check is not None:
        try:
            check(body)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            return None, f"unexpected response shape ({type(error).__name__}: {error}): {str(body)[:BODY_EXCERPT]}"
    return body, None
