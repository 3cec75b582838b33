from __future__ import annotations

import logging

import httpx
import orjson
import pytest
from fastapi import FastAPI

from switchboard_kit.app import install_error_handlers
from switchboard_kit.context import correlation_id
from switchboard_kit.logs import JsonFormatter
from switchboard_kit.middleware import RequestMiddleware


class TestJsonFormatter:
    def test_one_json_line_with_the_correlation_id_and_extras(self) -> None:
        record = logging.makeLogRecord(
            {"name": "t", "levelname": "INFO", "msg": "hello %s", "args": ("world",), "order": "o-1"}
        )
        token = correlation_id.set("corr-9")
        try:
            line = JsonFormatter("ordering").format(record)
        finally:
            correlation_id.reset(token)
        entry = orjson.loads(line)
        assert "\n" not in line
        assert entry["message"] == "hello world"
        assert entry["correlationId"] == "corr-9"
        assert entry["service"] == "ordering"
        assert entry["order"] == "o-1"
        assert entry["ts"].endswith("Z")


def small_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    seen: list[str | None] = []

    @app.post("/things")
    async def things(body: dict[str, int]) -> dict[str, str | None]:
        seen.append(correlation_id.get())
        return {"correlationId": correlation_id.get()}

    app.add_middleware(RequestMiddleware, max_body_bytes=100)
    return app


@pytest.mark.asyncio
class TestMiddleware:
    async def test_correlation_id_is_taken_or_created_and_returned(self) -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=small_app()), base_url="http://t"
        ) as client:
            given = await client.post("/things", json={"a": 1}, headers={"X-Correlation-ID": "abc"})
            assert given.headers["X-Correlation-ID"] == "abc"
            assert given.json() == {"correlationId": "abc"}
            created = await client.post("/things/", json={"a": 1})
            assert created.status_code == 200
            assert created.headers["X-Correlation-ID"] == created.json()["correlationId"]
            assert len(created.headers["X-Correlation-ID"]) == 36

    async def test_oversized_body_is_413_even_without_content_length(self) -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=small_app()), base_url="http://t"
        ) as client:
            response = await client.post(
                "/things", json={"a": 1, "b": "x" * 200}, headers={"X-Correlation-ID": "big-1"}
            )
            assert response.status_code == 413
            assert response.json()["code"] == "payloadTooLarge"
            assert response.headers["X-Correlation-ID"] == "big-1"

            async def chunks():  # streamed: no Content-Length header
                yield b'{"a": 1, "pad": "'
                yield b"x" * 200
                yield b'"}'

            streamed = await client.post(
                "/things", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert streamed.status_code == 413
