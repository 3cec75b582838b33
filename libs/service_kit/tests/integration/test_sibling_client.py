"""The sibling client against a real HTTP server on loopback (uvicorn), no mocks: timeouts, retries of
idempotent calls only, the circuit breaker, typed TMF errors, and the correlation id and caller's
token forwarded from the request being served."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchboard_dev import testing
from switchboard_dev.infra import free_port
from switchboard_kit import db
from switchboard_kit.app import create_service_app, install_error_handlers
from switchboard_kit.clients import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    SiblingApiError,
    SiblingClient,
    SiblingUnavailable,
)
from switchboard_kit.context import bearer_token, correlation_id
from switchboard_kit.middleware import RequestMiddleware
from switchboard_kit.settings import ServiceSettings

pytestmark = pytest.mark.asyncio

BASE = "/tmf-api/thingManagement/v4"


class Thing(BaseModel):
    id: str
    name: str


class Sibling:
    """A real sibling service: records what it receives; ``failures`` answers of 503 before a success,
    ``down`` answers 503 to everything, ``delay`` before answering."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, str, dict[str, str]]] = []
        self.failures = 0
        self.down = False
        self.delay = 0.0

        async def thing(request: Request) -> Response:
            self.received.append((request.method, request.url.path, dict(request.headers)))
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.down:
                return JSONResponse(
                    {"code": "unavailable", "reason": "Down", "status": "503", "@type": "Error"}, 503
                )
            if self.failures > 0:
                self.failures -= 1
                return Response(status_code=503)
            id = request.path_params["id"]
            if id == "missing":
                body = {
                    "code": "notFound",
                    "reason": "Thing not found",
                    "message": "No thing with id missing",
                    "status": "404",
                    "@type": "Error",
                }
                return JSONResponse(body, 404)
            if id == "plain-error":
                return Response("teapot", 418)
            return JSONResponse({"id": id, "name": "widget"}, 201 if request.method == "POST" else 200)

        self.app = Starlette(
            routes=[Route(f"{BASE}/thing/{{id}}", thing, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self.url = f"http://127.0.0.1:{self.port}{BASE}"

    def sent(self, method: str | None = None) -> int:
        return sum(1 for m, _, _ in self.received if method in (None, m))

    def serve(self) -> contextlib.AbstractAsyncContextManager[None]:
        return testing.serving(self.app, self.port)


@pytest_asyncio.fixture
async def sibling() -> AsyncIterator[Sibling]:
    sibling = Sibling()
    async with sibling.serve():
        yield sibling


def client_for(url: str, **kwargs: Any) -> SiblingClient:
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    return SiblingClient("things", url, **kwargs)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestAnswers:
    async def test_a_typed_answer(self, sibling: Sibling) -> None:
        client = client_for(sibling.url)
        thing = await client.call("GET", "/thing/t-1", model=Thing)
        assert thing == Thing(id="t-1", name="widget")
        await client.aclose()

    async def test_a_tmf_error_is_a_typed_exception(self, sibling: Sibling) -> None:
        client = client_for(sibling.url)
        with pytest.raises(SiblingApiError) as caught:
            await client.call("GET", "/thing/missing", model=Thing)
        error = caught.value
        assert (error.status, error.code, error.reason, error.message) == (
            404,
            "notFound",
            "Thing not found",
            "No thing with id missing",
        )
        assert error.sibling == "things"
        with pytest.raises(SiblingApiError) as caught:
            await client.request("GET", "/thing/plain-error")
        assert (caught.value.status, caught.value.code) == (418, "http418")
        assert sibling.sent() == 2  # a 4xx is an answer: never retried
        await client.aclose()


class TestRetries:
    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_idempotent_calls_are_retried(self, sibling: Sibling, method: str) -> None:
        sibling.failures = 2
        client = client_for(sibling.url, attempts=3)
        response = await client.request(method, "/thing/t-1", json={"name": "w"} if method == "PUT" else None)
        assert response.status_code == 200
        assert sibling.sent(method) == 3
        await client.aclose()

    async def test_a_post_without_idempotency_key_is_sent_once(self, sibling: Sibling) -> None:
        sibling.failures = 2
        client = client_for(sibling.url, attempts=3)
        with pytest.raises(SiblingApiError) as caught:
            await client.request("POST", "/thing/t-1", json={"name": "w"})
        assert caught.value.status == 503
        assert sibling.sent("POST") == 1
        await client.aclose()

    async def test_a_post_with_idempotency_key_is_retried_with_the_same_key(self, sibling: Sibling) -> None:
        sibling.failures = 2
        client = client_for(sibling.url, attempts=3)
        thing = await client.call(
            "POST", "/thing/t-1", model=Thing, json={"name": "w"}, idempotency_key="k-1"
        )
        assert thing.id == "t-1"
        assert [h["idempotency-key"] for _, _, h in sibling.received] == ["k-1"] * 3
        await client.aclose()

    async def test_retries_stop_after_the_attempts_allowed(self, sibling: Sibling) -> None:
        sibling.down = True
        client = client_for(sibling.url, attempts=4, breaker=CircuitBreaker(100))
        with pytest.raises(SiblingApiError) as caught:
            await client.request("GET", "/thing/t-1")
        assert (caught.value.status, caught.value.code) == (503, "unavailable")
        assert sibling.sent() == 4
        await client.aclose()


class TestTimeouts:
    async def test_read_timeout(self, sibling: Sibling) -> None:
        sibling.delay = 2.0
        client = client_for(sibling.url, read_timeout=0.2, attempts=1)
        started = time.monotonic()
        with pytest.raises(SiblingUnavailable, match="ReadTimeout"):
            await client.request("GET", "/thing/t-1")
        assert time.monotonic() - started < 1.5
        await client.aclose()

    async def test_total_timeout_bounds_the_retries(self, sibling: Sibling) -> None:
        sibling.delay = 0.3
        sibling.down = True
        client = client_for(
            sibling.url, read_timeout=5, attempts=50, total_timeout=1.0, breaker=CircuitBreaker(100)
        )
        started = time.monotonic()
        with pytest.raises(SiblingUnavailable, match="no answer within"):
            await client.request("GET", "/thing/t-1")
        assert time.monotonic() - started < 2.0
        assert 2 <= sibling.sent() < 50
        await client.aclose()

    async def test_connection_refused_is_unavailable(self) -> None:
        client = client_for(f"http://127.0.0.1:{free_port()}{BASE}", attempts=2)
        with pytest.raises(SiblingUnavailable, match="ConnectError"):
            await client.request("GET", "/thing/t-1")
        assert client.sent == 2
        await client.aclose()


class TestCircuitBreaker:
    async def test_opens_answers_fast_and_half_opens(self, sibling: Sibling) -> None:
        clock = FakeClock()
        breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
        client = client_for(sibling.url, attempts=1, breaker=breaker)
        sibling.down = True
        for _ in range(3):
            with pytest.raises(SiblingApiError):
                await client.request("GET", "/thing/t-1")
        assert breaker.state is BreakerState.OPEN

        # Open: no request goes out, the answer is immediate.
        sibling.delay = 1.0
        started = time.monotonic()
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/thing/t-1")
        assert time.monotonic() - started < 0.5
        assert sibling.sent() == 3

        # Half-open: one probe; it fails, so the circuit opens again.
        sibling.delay = 0.0
        clock.now += 30
        assert breaker.state is BreakerState.HALF_OPEN
        with pytest.raises(SiblingApiError):
            await client.request("GET", "/thing/t-1")
        assert sibling.sent() == 4
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/thing/t-1")

        # Half-open again with the sibling back: only one probe at a time, and its success closes it.
        sibling.down = False
        sibling.delay = 0.3
        clock.now += 30
        probe = asyncio.create_task(client.request("GET", "/thing/t-1"))
        await asyncio.sleep(0.1)
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/thing/t-2")
        assert (await probe).status_code == 200
        assert breaker.state is BreakerState.CLOSED
        sibling.delay = 0.0
        assert (await client.request("GET", "/thing/t-2")).status_code == 200
        assert sibling.sent() == 6
        await client.aclose()

    async def test_an_open_circuit_stops_the_retries(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30)
        client = client_for(f"http://127.0.0.1:{free_port()}{BASE}", attempts=5, breaker=breaker)
        with pytest.raises(CircuitOpen):
            await client.request("GET", "/thing/t-1")
        assert client.sent == 2
        await client.aclose()

    async def test_4xx_answers_do_not_open_it(self, sibling: Sibling) -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30)
        client = client_for(sibling.url, breaker=breaker)
        for _ in range(3):
            with pytest.raises(SiblingApiError):
                await client.request("GET", "/thing/missing")
        assert breaker.state is BreakerState.CLOSED
        await client.aclose()


class TestContext:
    async def test_correlation_id_and_token_of_the_request_served_are_forwarded(
        self, sibling: Sibling
    ) -> None:
        """Through a real app: RequestMiddleware sets the context, the handler calls the sibling."""
        client = client_for(sibling.url)
        app = FastAPI()
        install_error_handlers(app)

        @app.get("/proxy/{id}")
        async def proxy(id: str) -> dict[str, str]:
            return (await client.call("GET", f"/thing/{id}", model=Thing)).model_dump()

        app.add_middleware(RequestMiddleware, max_body_bytes=1000)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as caller:
            answer = await caller.get(
                "/proxy/t-9", headers={"X-Correlation-ID": "corr-42", "Authorization": "Bearer tok.en.sig"}
            )
            assert answer.status_code == 200, answer.text
            anonymous = await caller.get("/proxy/t-10")
            basic = await caller.get("/proxy/t-11", headers={"Authorization": "Basic dXNlcjpwdw=="})
            assert basic.status_code == 200
        (_, path, headers), (_, _, anonymous_headers), (_, _, basic_headers) = sibling.received
        assert path == f"{BASE}/thing/t-9"
        assert headers["x-correlation-id"] == "corr-42"
        assert headers["authorization"] == "Bearer tok.en.sig"
        assert anonymous_headers["x-correlation-id"] == anonymous.headers["X-Correlation-ID"]
        assert "authorization" not in anonymous_headers
        assert "authorization" not in basic_headers  # only a bearer token is the caller's to forward
        assert bearer_token.get() is None and correlation_id.get() is None
        await client.aclose()

    async def test_explicit_headers_win(self, sibling: Sibling) -> None:
        client = client_for(sibling.url)
        cid, token = correlation_id.set("c-1"), bearer_token.set("user-token")
        try:
            await client.request("GET", "/thing/t-1", headers={"Authorization": "Bearer service-token"})
        finally:
            correlation_id.reset(cid)
            bearer_token.reset(token)
        (_, _, headers) = sibling.received[0]
        assert (headers["authorization"], headers["x-correlation-id"]) == ("Bearer service-token", "c-1")
        await client.aclose()


class TestRuntime:
    async def test_the_app_builds_a_client_per_configured_sibling(self, sibling: Sibling) -> None:
        settings = ServiceSettings(
            kafka_bootstrap_servers=None,
            hub_enabled=False,
            retention_interval=0,
            hub_timeout=7.0,
            siblings={"things": sibling.url},
            sibling_read_timeout=0.5,
            sibling_breaker_failures=4,
        )
        app = create_service_app(
            name="caller",
            title="Caller",
            version="1",
            settings=settings,
            base_path="/tmf-api/callerManagement/v1",
            metadata_tables=db.kit_tables(db.new_metadata()),
            resources=[],
            topics=[],
        )
        async with testing.running(app):
            runtime = app.state.runtime
            things = runtime.siblings["things"]
            assert (await things.call("GET", "/thing/t-3", model=Thing)).id == "t-3"
            assert things.http.timeout.read == 0.5 and things.breaker.failure_threshold == 4
            assert runtime.hub_http.timeout.read == 7.0  # the hub keeps its own client and timeout
            with pytest.raises(KeyError, match="SIBLINGS__BILLING"):
                runtime.siblings["billing"]
