"""The request's transaction commits before the response starts: a client that got a 2xx never reads
older state, and a failed commit turns into an error response instead of a write lost after a 2xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from switchboard_kit import db
from switchboard_kit.db import SessionDep

pytestmark = pytest.mark.asyncio


async def test_commit_happens_before_the_response_is_sent(pg_server_url: str) -> None:
    timeline: list[str] = []
    app = FastAPI()

    @app.post("/write")
    async def write(session: SessionDep) -> dict[str, bool]:
        await session.execute(text("SELECT 1"))
        timeline.append("handler done")
        return {"ok": True}

    def on_commit(session: Any) -> None:
        timeline.append("committed")

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        async def watching_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                timeline.append("response started")
            await send(message)

        await app(scope, receive, watching_send)

    engine = db.create_engine(pg_server_url, pool_size=1, max_overflow=0)
    app.state.sessionmaker = db.sessionmaker(engine)
    event.listen(Session, "after_commit", on_commit)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as client:
            assert (await client.post("/write")).status_code == 200
    finally:
        event.remove(Session, "after_commit", on_commit)
        await engine.dispose()
    assert timeline == ["handler done", "committed", "response started"]
