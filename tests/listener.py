"""A real HTTP hub listener for tests: records every event POSTed to ``/listener/{eventName}``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchboard_dev.infra import free_port


class Listener:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[
            tuple[str, str, dict[str, Any], int]
        ] = []  # (subscription, event name, body, status)
        self.port = free_port()

        async def receive(request: Request) -> Response:
            status = 503 if len(self.calls) < self.failures else 204
            self.calls.append(
                (request.path_params["sub"], request.path_params["event"], await request.json(), status)
            )
            return Response(status_code=status)

        self.app = Starlette(routes=[Route("/hooks/{sub}/listener/{event}", receive, methods=["POST"])])

    def callback(self, sub: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{sub}"

    def delivered(self, sub: str) -> list[tuple[str, str]]:
        """(event name, eventId) of the calls to ``sub`` that were accepted."""
        return [(name, body["eventId"]) for s, name, body, status in self.calls if s == sub and status < 300]

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Listener]:
        server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task
