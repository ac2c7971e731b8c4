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

Several servers (`HTTPClient(["http://a/v1", "http://b/v1"], ...)`), serving the same models:
each attempt goes to the server with the fewest requests in flight from this client (ties in
turn, round robin), preferring servers this request has not tried yet and servers whose last
attempt did not fail within `FAILED_SERVER_COOLDOWN` seconds. A retryable failure moves the
request at once to a server it has not tried (no wait); once it has tried them all, the waits
above apply. The attempt budget (`max_retries`, `max_time`) is the same as with one server,
so a request fails over only while it has retries left. Requests carry their own seeds, so
the answer must not depend on the server: serve the same weights everywhere.

The option names below (`HTTP_OPTIONS`) are the same for the engine and the judge.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
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
# Seconds a server whose last attempt failed is avoided by new attempts (while another is up).
FAILED_SERVER_COOLDOWN = 5.0


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


def base_urls(urls: str | Sequence[str]) -> tuple[str, ...]:
    """One URL or several as a tuple without trailing slashes; ConfigError for none, a non-http(s)
    URL or a repeated one."""
    urls = (urls,) if isinstance(urls, str) else tuple(urls)
    out = tuple(u.strip().rstrip("/") for u in urls)
    if not out or not all(out):
        raise ConfigError(f"no server URL given (got {list(urls)!r}); pass e.g. http://127.0.0.1:8000/v1")
    for url in out:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"server URL {url!r} must start with http:// or https://, e.g. http://127.0.0.1:8000/v1")
    repeated = sorted({u for u in out if out.count(u) > 1})
    if repeated:
        raise ConfigError(f"server URL {repeated[0]} is given twice; give each server once")
    return out


class HTTPClient:
    """A pooled httpx client for one server or several (`base_url`: one URL or a sequence,
    load-balanced; see the module docstring) with the retry policy. Thread-safe; use as a
    context manager. `transport` overrides httpx's (tests use `httpx.MockTransport`)."""

    def __init__(self, base_url: str | Sequence[str], *, api_key: str | None, policy: RetryPolicy,
                 max_concurrency: int = 8, transport=None, seed: int | None = None):
        import httpx

        register_secret(api_key)
        self.base_urls = base_urls(base_url)
        self.base_url = self.base_urls[0]
        self.policy = policy
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        n = max(1, max_concurrency)
        self._client = httpx.Client(headers=headers, timeout=policy.timeout, transport=transport,
                                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._sleep = time.sleep
        # per server: requests in flight, end of its cooldown (monotonic), answers (200s) served
        self._outstanding = [0] * len(self.base_urls)
        self._avoid_until = [0.0] * len(self.base_urls)
        self.served = [0] * len(self.base_urls)
        self._turn = 0
        self._pick_lock = threading.Lock()

    def __enter__(self) -> "HTTPClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _pick(self, tried: set[int]) -> int:
        """The server for the next attempt (counted as in flight until `_done`)."""
        n = len(self.base_urls)
        with self._pick_lock:
            now = time.monotonic()
            i = min(range(n), key=lambda j: (j in tried, self._avoid_until[j] > now, self._outstanding[j],
                                             (j - self._turn) % n))
            self._outstanding[i] += 1
            self._turn = (i + 1) % n
            return i

    def _done(self, i: int, ok: bool) -> None:
        with self._pick_lock:
            self._outstanding[i] -= 1
            if ok:
                self._avoid_until[i] = 0.0
                self.served[i] += 1
            else:
                self._avoid_until[i] = time.monotonic() + FAILED_SERVER_COOLDOWN

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
        several = len(self.base_urls) > 1
        deadline = time.monotonic() + policy.max_time
        last, status = "no attempt", None
        tried: set[int] = set()
        waits = 0
        for attempt in range(retries + 1):
            retry_after = None
            server = self._pick(tried)
            tried.add(server)
            url = self.base_urls[server] + path
            where = f"{url}" if several else path
            ok = False
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
                        ok = True
                        return body
                    last = f"{problem} from {where}"
                else:
                    last = f"HTTP {status} from {where}: {response.text[:BODY_EXCERPT]!r}"
                    if status != 429 and status < 500:
                        ok = True  # the server answered; the request is at fault
                        raise RequestFailed(last, status)  # a bad request stays bad: no retry
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
            finally:
                self._done(server, ok)
            if several and status is None:
                last = f"{last} at {self.base_urls[server]}"
            if attempt == retries:
                break
            if len(tried) < len(self.base_urls):
                continue  # fail over to a server this request has not tried: no wait
            with self._rng_lock:
                wait = policy.delay(waits, retry_after, self._rng)
            waits += 1
            if time.monotonic() + wait > deadline:
                raise RequestFailed(f"{last} (gave up: the next retry would pass max_time={policy.max_time:g} s)", status)
            self._sleep(wait)
            tried.clear()  # every server was tried: start another round over all of them
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
