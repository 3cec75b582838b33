"""db.write_connection: one statement commits on its own, a failed transaction rolls back, and a
connection is never handed back to the pool in a state the next request could trip over."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from switchboard_kit import db

pytestmark = pytest.mark.asyncio


class _Request:
    """What write_connection reads from a request: ``app.state.runtime`` (engine, relay)."""

    def __init__(self, engine: Any) -> None:
        self.app = SimpleNamespace(state=SimpleNamespace(runtime=SimpleNamespace(engine=engine, relay=None)))


async def _count(engine: Any) -> int:
    async with db.write_connection(_Request(engine)) as conn:  # type: ignore[arg-type]
        return int(await conn.fetchval("SELECT count(*) FROM wc_probe"))


async def test_statements_commit_transactions_roll_back_and_the_pool_stays_usable(pg_server_url: str) -> None:
    engine = db.create_engine(pg_server_url, pool_size=1, max_overflow=0)  # one connection: reuse is certain
    request: Any = _Request(engine)
    try:
        async with db.write_connection(request) as conn:
            await conn.execute("DROP TABLE IF EXISTS wc_probe; CREATE TABLE wc_probe (n int UNIQUE)")
        async with db.write_connection(request) as conn:
            await conn.execute("INSERT INTO wc_probe VALUES (1)")  # autocommit: one statement

        async def two_inserts_one_duplicate() -> None:
            async with db.write_connection(request) as conn, conn.transaction():
                await conn.execute("INSERT INTO wc_probe VALUES (2)")
                await conn.execute("INSERT INTO wc_probe VALUES (1)")

        with pytest.raises(asyncpg.UniqueViolationError):
            await two_inserts_one_duplicate()
        assert await _count(engine) == 1  # the failed transaction left nothing

        # A request cancelled mid-statement: its connection is replaced, not reused mid-query.
        async def slow() -> None:
            async with db.write_connection(request) as conn:
                await conn.execute("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(_count(engine), 3) == 1
        async with db.write_connection(request) as conn:
            await conn.execute("DROP TABLE wc_probe")
    finally:
        await engine.dispose()
