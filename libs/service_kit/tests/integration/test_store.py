"""The store: a one-statement insert commits on its own, a failed unit of work leaves nothing, a lost
update is a 409, a connection goes back to the pool only in a usable state, and a pinned store rolls
everything back. (Replaces the tests of db.write_connection and the request session, which the store
replaced.)"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB

from switchboard_dev import testing
from switchboard_kit import db
from switchboard_kit.errors import Conflict
from switchboard_kit.store import Store

pytestmark = pytest.mark.asyncio

metadata = db.new_metadata()
kit = db.kit_tables(metadata)
thing = Table(
    "thing",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("size", Integer, nullable=False),
)


@pytest.fixture(scope="module")
def store_db(pg_server_url: str) -> Any:
    with testing.database_with(pg_server_url, metadata, "sb_store") as url:
        yield url


async def _count(store: Store, table: Table) -> int:
    return int((await store.fetch(select(func.count()).select_from(table)))[0]["count_1"])


async def test_units_of_work_commit_roll_back_and_check_versions(store_db: str) -> None:
    engine = db.create_engine(store_db, pool_size=1, max_overflow=0)  # one connection: reuse is certain
    commits: list[str] = []
    store = Store(engine, kit, on_commit=lambda: commits.append("commit"))
    event = {"id": "7f1c6b64-8d0e-4f3e-9b8e-000000000001", "topic": "t", "key": "a", "event_type": "E"}
    event |= {"payload": {"eventId": event["id"]}, "headers": {}}
    try:
        async with store.unit_of_work() as uow:  # one statement: the row and its outbox row
            await uow.insert(thing, {"id": "a", "n": 1}, columns={"size": 1}, events=[event])
        assert await _count(store, thing) == 1 and await _count(store, kit.outbox) == 1
        assert commits == ["commit"]
        assert await store.get_text(thing, "a") == ('{"n": 1, "id": "a"}', 1)

        async def two_one_statement_inserts() -> None:
            async with store.unit_of_work() as uow:
                await uow.insert(thing, {"id": "b"}, columns={"size": 2})
                await uow.insert(thing, {"id": "c"}, columns={"size": 3})

        async def save_then_duplicate() -> None:
            async with store.unit_of_work() as uow:
                stored = await uow.get(thing, "a", for_update=True)
                assert stored is not None
                assert stored.columns == {"size": 1}
                await uow.save(thing, stored, {"id": "a", "n": 2}, columns={"size": 2})
                await uow.insert(thing, {"id": "a"}, columns={"size": 3})

        with pytest.raises(RuntimeError):  # nothing can be atomic with a one-statement insert after it
            await two_one_statement_inserts()
        with pytest.raises(asyncpg.UniqueViolationError):  # a failed unit leaves nothing
            await save_then_duplicate()
        text = await store.get_text(thing, "a")
        assert text is not None
        assert text[1] == 1

        async with store.unit_of_work() as uow:
            stored = await uow.get(thing, "a")
            assert stored is not None
            assert await uow.save(thing, stored, {"id": "a", "n": 2}, columns={"size": 2}) == 2
            with pytest.raises(Conflict):  # the version read is no longer the stored one
                await uow.save(thing, stored, {"id": "a", "n": 3}, columns={"size": 3})

        # A unit cancelled mid-statement: its connection is replaced, not reused mid-query.
        async def slow() -> None:
            async with store.unit_of_work() as uow:
                await uow.fetch(select(func.pg_sleep(5)))

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(_count(store, thing), 3) == 2  # "a" and "b" (committed alone)
    finally:
        await engine.dispose()


async def test_a_pinned_store_rolls_back_everything(store_db: str) -> None:
    engine = db.create_engine(store_db, pool_size=2, max_overflow=0)
    store = Store(engine, kit)
    try:
        before = await _count(store, thing)
        async with store.pin():
            async with store.unit_of_work() as uow:
                await uow.insert(thing, {"id": "pinned-1"}, columns={"size": 1})

            async def change_then_duplicate() -> None:
                async with store.unit_of_work() as uow:
                    await uow.set_columns(thing, "pinned-1", {"size": 2})
                    await uow.insert(thing, {"id": "pinned-1"}, columns={"size": 1})

            async def duplicate() -> None:
                async with store.unit_of_work() as uow:
                    await uow.insert(thing, {"id": "pinned-1"}, columns={"size": 1})

            with pytest.raises(asyncpg.UniqueViolationError):  # a savepoint: only this unit is undone
                await change_then_duplicate()
            with pytest.raises(asyncpg.UniqueViolationError):  # even a unit's one-statement insert
                await duplicate()
            rows = await store.fetch(select(thing.c.size).where(thing.c.id == "pinned-1"))
            assert rows == [{"size": 1}]
        assert await _count(store, thing) == before
    finally:
        await engine.dispose()


async def _backends(store_db: str) -> set[int]:
    conn = await asyncpg.connect(store_db.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row["pid"] for row in rows}
    finally:
        await conn.close()


async def test_pooled_connections_are_reused_waited_for_and_overflow_closed(store_db: str) -> None:
    """The pool's bookkeeping holds whether a checkout or checkin runs directly (an idle connection)
    or through SQLAlchemy's greenlet (a new connection, a wait, closing an overflow connection)."""
    engine = db.create_engine(store_db, pool_size=1, max_overflow=1)
    pool: Any = engine.sync_engine.pool
    try:
        async with db.pooled_driver_connection(engine) as conn:  # new: through the greenlet
            first = await conn.fetchval("SELECT pg_backend_pid()")
        assert (pool.checkedin(), pool.checkedout()) == (1, 0)
        for _ in range(3):  # idle: handed out again, the same backend
            async with db.pooled_driver_connection(engine) as conn:
                assert pool.checkedout() == 1
                assert await conn.fetchval("SELECT pg_backend_pid()") == first
        async with db.pooled_driver_connection(engine) as a, db.pooled_driver_connection(engine) as b:
            assert pool.checkedout() == 2
            assert await a.fetchval("SELECT pg_backend_pid()") == first
            overflow = await b.fetchval("SELECT pg_backend_pid()")
        assert (pool.checkedin(), pool.checkedout()) == (1, 0)
        for _ in range(50):  # one of the two was closed (the one that came back to a full pool)
            if len({first, overflow} & await _backends(store_db)) == 1:
                break
            await asyncio.sleep(0.05)
        (kept,) = {first, overflow} & await _backends(store_db)
        async with db.pooled_driver_connection(engine) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == kept
        async with db.pooled_driver_connection(engine) as conn:  # closed while in use: replaced
            await conn.close()
        async with db.pooled_driver_connection(engine) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != kept
        assert (pool.checkedin(), pool.checkedout()) == (1, 0)
    finally:
        await engine.dispose()
    engine = db.create_engine(store_db, pool_size=1, max_overflow=0)  # a full pool: users wait in turn
    pool = engine.sync_engine.pool
    try:

        async def use() -> int:
            async with db.pooled_driver_connection(engine) as conn:
                await conn.execute("SELECT pg_sleep(0.02)")
                return int(await conn.fetchval("SELECT pg_backend_pid()"))

        assert len(set(await asyncio.gather(*(use() for _ in range(4))))) == 1
        assert (pool.checkedin(), pool.checkedout()) == (1, 0)
    finally:
        await engine.dispose()
