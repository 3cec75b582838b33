"""Calling a sibling service: a typed httpx client with timeouts, safe retries and a circuit breaker.

Each sibling (another service of the suite) gets one :class:`SiblingClient` from its base URL (the
``<PREFIX>SIBLINGS__<NAME>`` settings, which ``make run`` fills from the suite manifest), reached as
``runtime.siblings["<name>"]``::

    bill = await runtime.siblings["<name>"].call("GET", f"/customerBill/{id}", model=CustomerBill)

- **Timeouts**: connect and read per attempt, and a total for the whole call, retries included.
- **Retries**: only for idempotent calls (GET, HEAD, PUT, DELETE, OPTIONS, or a POST/PATCH carrying an
  ``Idempotency-Key``), on a transport error or a 502/503/504, with jittered exponential backoff
  (tenacity's ``wait_random_exponential``: "full jitter"). A POST without a key is sent once: the
  sibling may have acted on it before the connection broke.
- **Circuit breaker**: after ``failure_threshold`` consecutive failures (transport errors, 5xx) the
  sibling is *open* and calls fail fast with :class:`CircuitOpen`, without a request, for
  ``reset_timeout`` seconds; then one call at a time is let through (*half-open*): its success closes
  the circuit, its failure opens it again.
- **Context**: ``X-Correlation-ID`` and the caller's bearer token (from the request being served,
  :mod:`switchboard_kit.context`) are forwarded.
- **Errors**: a 4xx/5xx answer raises :class:`SiblingApiError` with the status and the TMF Error's
  ``code``, ``reason`` and ``message``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .context import bearer_token, correlation_id

M = TypeVar("M", bound=BaseModel)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRIED_STATUSES = frozenset({502, 503, 504})


class SiblingError(Exception):
    """A call to a sibling service failed."""

    def __init__(self, sibling: str, message: str) -> None:
        super().__init__(f"{sibling}: {message}")
        self.sibling = sibling


class SiblingUnavailable(SiblingError):
    """The sibling could not be reached (connection refused, timeout) after the retries allowed."""


class CircuitOpen(SiblingUnavailable):
    """The sibling failed repeatedly: calls fail fast until its breaker lets a probe through."""


class SiblingApiError(SiblingError):
    """The sibling answered with an error status; ``code``, ``reason`` and ``message`` come from its
    TMF Error body (``code`` is ``http<status>`` when the body is not one)."""

    def __init__(self, sibling: str, status: int, code: str, reason: str, message: str | None = None) -> None:
        super().__init__(sibling, f"{status} {code}: {reason}" + (f" ({message})" if message else ""))
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message

    @classmethod
    def from_response(cls, sibling: str, response: httpx.Response) -> SiblingApiError:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            message = body.get("message")
            return cls(
                sibling,
                response.status_code,
                body["code"],
                str(body.get("reason") or response.reason_phrase),
                str(message) if message is not None else None,
            )
        return cls(sibling, response.status_code, f"http{response.status_code}", response.reason_phrase)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "halfOpen"


class CircuitBreaker:
    """Consecutive-failure breaker for one sibling, with a single probe when half-open.

    ``clock`` is injectable so tests move time instead of sleeping."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def acquire(self) -> bool:
        """May a call go out now? In half-open state only one call (the probe) at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> None:
        self.failures += 1
        if self._probing or self.failures >= self.failure_threshold:
            self._opened_at = self.clock()
        self._probing = False

    def released(self) -> None:
        """The call ended without saying anything about the sibling (cancelled): let another probe."""
        self._probing = False


class _RetryableAnswer(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class SiblingClient:
    """Calls one sibling service at ``base_url`` (its TMF API root). See the module's docstring."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 5.0,
        total_timeout: float = 10.0,
        attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_max: float = 2.0,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.total_timeout = total_timeout
        self.attempts = max(1, attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.breaker = breaker or CircuitBreaker()
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            transport=transport,
        )
        self.sent = 0  # requests that went out, retries included

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        model: type[M],
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> M:
        """``request`` and validate the JSON answer as ``model``."""
        response = await self.request(
            method, path, json=json, params=params, headers=headers, idempotency_key=idempotency_key
        )
        return model.model_validate_json(response.content)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """One call to the sibling: a 2xx/3xx answer, or :class:`SiblingApiError`,
        :class:`SiblingUnavailable` or :class:`CircuitOpen`."""
        method = method.upper()
        sent_headers = self._headers(headers, idempotency_key)
        content = None if json is None else orjson.dumps(json)
        if content is not None:
            sent_headers.setdefault("Content-Type", "application/json")
        url = self.base_url + "/" + path.lstrip("/")
        retried = method in IDEMPOTENT_METHODS or idempotency_key is not None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts if retried else 1),
            wait=wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max),
            retry=retry_if_exception(lambda exc: isinstance(exc, (httpx.TransportError, _RetryableAnswer))),
            reraise=True,
        )
        try:
            async with asyncio.timeout(self.total_timeout):
                async for attempt in retrying:
                    with attempt:
                        response = await self._send(method, url, content, params, sent_headers)
        except TimeoutError as exc:
            raise SiblingUnavailable(self.name, f"no answer within {self.total_timeout}s") from exc
        except _RetryableAnswer as exc:
            raise SiblingApiError.from_response(self.name, exc.response) from None
        except httpx.TransportError as exc:
            raise SiblingUnavailable(self.name, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise SiblingApiError.from_response(self.name, response)
        return response

    def _headers(self, given: Mapping[str, str] | None, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if (cid := correlation_id.get()) is not None:
            headers["X-Correlation-ID"] = cid
        if (token := bearer_token.get()) is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        headers.update(given or {})
        return headers

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        if not self.breaker.acquire():
            raise CircuitOpen(self.name, f"circuit open after {self.breaker.failures} consecutive failures")
        try:
            self.sent += 1
            response = await self.http.request(method, url, content=content, params=params, headers=headers)
        except httpx.TransportError:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.released()
            raise
        if response.status_code >= 500:
            self.breaker.failed()
        else:
            self.breaker.succeeded()
        if response.status_code in RETRIED_STATUSES:
            raise _RetryableAnswer(response)
        return response


class Siblings(Mapping[str, SiblingClient]):
    """The clients of the sibling services a service calls, by name."""

    def __init__(self, clients: Mapping[str, SiblingClient]) -> None:
        self._clients = dict(clients)

    def __getitem__(self, name: str) -> SiblingClient:
        try:
            return self._clients[name]
        except KeyError:
            known = ", ".join(sorted(self._clients)) or "none"
            raise KeyError(
                f"no base URL for sibling {name!r} (configured: {known}); set <PREFIX>SIBLINGS__{name.upper()}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients.values()))
