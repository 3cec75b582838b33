"""Scheduled and due work (switchboard_kit.schedule) on a real PostgreSQL, with a clock that the tests
move: replicas never run a row twice, failures back off and park, nothing is lost when a replica
stops mid-run, and a schedule missed while the service was down runs once when it comes back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import BigInteger, Column, DateTime, Identity, Table, Text, func, select

from switchboard_dev import testing
from switchboard_kit import db
from switchboard_kit.app import create_service_app
from switchboard_kit.schedule import (
    Backoff,
    DueHandler,
    DueWork,
    ManualClock,
    Schedule,
    ScheduleHandler,
    Scheduler,
)
from switchboard_kit.settings import ServiceSettings
from switchboard_kit.store import Store, Stored, UnitOfWork

pytestmark = pytest.mark.asyncio

metadata = db.new_metadata()
kit = db.kit_tables(metadata)
task = db.document_table("task", metadata, due=True, updated_at=False)
# What handlers did: a row per run (no unique key, so a second run of one row shows as a second row).
ran = Table(
    "ran",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("what", Text, nullable=False),
    Column("runner", Text),
    Column("tick_at", DateTime(timezone=True)),
)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def kit_db(pg_server_url: str) -> Iterator[str]:
    with testing.database_with(pg_server_url, metadata, "sb_schedule") as url:
        yield url


@contextlib.asynccontextmanager
async def replica(url: str) -> AsyncIterator[Store]:
    """The store of one replica (its own engine and pool, as another process would have)."""
    engine = db.create_engine(url, pool_size=2, max_overflow=0)
    try:
        yield Store(engine, kit)
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def store(kit_db: str) -> AsyncIterator[Store]:
    async with replica(kit_db) as store:
        async with store.unit_of_work() as uow:
            for table in (task, ran, kit.schedule):
                await uow.execute(table.delete())
        yield store


async def add_tasks(store: Store, ids: list[str], due: datetime) -> None:
    async with store.unit_of_work() as uow:
        await uow.fetch(select(1))  # one transaction for all of them
        for id in ids:
            await uow.insert(task, {"id": id}, columns={"next_action_at": due})


async def task_row(store: Store, id: str) -> dict[str, Any]:
    (row,) = await store.fetch(select(task).where(task.c.id == id))
    return row


async def runs(store: Store) -> list[tuple[str, Any]]:
    rows = await store.fetch(select(ran.c.what, ran.c.tick_at).order_by(ran.c.seq))
    return [(r["what"], r["tick_at"]) for r in rows]


def recording(runner: str) -> DueHandler:
    """Records the run and finishes the row (nothing more is due)."""

    async def handler(uow: UnitOfWork, row: Stored) -> None:
        await uow.execute(ran.insert().values(what=row.id, runner=runner))
        await uow.set_columns(task, row.id, {"next_action_at": None})

    return handler


class TestDueRows:
    async def test_two_replicas_never_run_one_row_twice(self, kit_db: str, store: Store) -> None:
        clock = ManualClock(T0)
        ids = [f"t{i:02}" for i in range(40)]
        await add_tasks(store, ids, T0 - MINUTE)
        # Each replica holds its first claimed batch open until the other has claimed one too, so the
        # two claims overlap for certain (no timing luck).
        both_claimed = asyncio.Barrier(2)

        def held_first(runner: str) -> DueHandler:
            record = recording(runner)
            waiting = True

            async def handler(uow: UnitOfWork, row: Stored) -> None:
                nonlocal waiting
                if waiting:
                    waiting = False
                    async with asyncio.timeout(10):
                        await both_claimed.wait()
                await record(uow, row)

            return handler

        async with replica(kit_db) as other:
            a = Scheduler(due=[DueWork(task, held_first("a"), batch_size=5)], clock=clock)
            b = Scheduler(due=[DueWork(task, held_first("b"), batch_size=5)], clock=clock)
            while sum(await asyncio.gather(a.tick(store), b.tick(other))):
                pass

        rows = await store.fetch(select(ran.c.what, ran.c.runner))
        assert sorted(r["what"] for r in rows) == ids  # every row once, none twice
        assert {r["runner"] for r in rows} == {"a", "b"}  # and both replicas worked
        assert await store.fetch(select(func.count()).where(task.c.next_action_at.is_not(None))) == [
            {"count_1": 0}
        ]

    async def test_failures_back_off_growing_then_the_row_is_parked(self, store: Store) -> None:
        clock = ManualClock(T0)
        await add_tasks(store, ["bad"], T0)
        healthy = False

        async def step(uow: UnitOfWork, row: Stored) -> None:
            await uow.execute(ran.insert().values(what=row.id))  # undone when the step fails
            if not healthy:
                raise RuntimeError("provisioning is down")
            await uow.set_columns(task, row.id, {"next_action_at": None})

        backoff = Backoff(first=MINUTE, factor=2, longest=5 * MINUTE, max_attempts=5)
        scheduler = Scheduler(due=[DueWork(task, step, backoff=backoff)], clock=clock)
        waits = []
        while True:
            assert await scheduler.tick(store) == 0
            row = await task_row(store, "bad")
            if row["next_action_at"] is None:
                break
            waits.append(row["next_action_at"] - clock.now())
            clock.advance(waits[-1] - timedelta(seconds=1))
            assert await scheduler.tick(store) == 0  # not due a second early: no attempt
            assert (await task_row(store, "bad"))["attempts"] == row["attempts"]
            clock.advance(timedelta(seconds=1))

        assert waits == [MINUTE, 2 * MINUTE, 4 * MINUTE, 5 * MINUTE]  # grows, up to `longest`
        assert (row["attempts"], row["last_error"]) == (5, "RuntimeError: provisioning is down")
        assert await runs(store) == []  # every failed attempt was rolled back
        clock.advance(timedelta(days=30))
        await scheduler.tick(store)
        assert (await task_row(store, "bad"))["attempts"] == 5  # parked: nothing claims it again

        # Retried by hand once the cause is fixed; a success starts the count over.
        healthy = True
        async with store.unit_of_work() as uow:
            await uow.set_columns(task, "bad", {"next_action_at": clock.now()})
        assert await scheduler.tick(store) == 1
        row = await task_row(store, "bad")
        assert (row["attempts"], row["last_error"], row["next_action_at"]) == (0, None, None)
        assert [what for what, _ in await runs(store)] == ["bad"]

    async def test_a_replica_stopped_mid_run_loses_nothing(self, kit_db: str, store: Store) -> None:
        """The app runs the scheduler with its lifespan; stopping the app while a step is running
        rolls the step back and leaves the row due, and the next replica runs it."""
        await add_tasks(store, ["t"], datetime.now(UTC) - MINUTE)
        started = asyncio.Event()

        async def busy(uow: UnitOfWork, row: Stored) -> None:
            await uow.execute(ran.insert().values(what=row.id, runner="stopped"))
            started.set()
            await asyncio.Event().wait()  # still working when the app stops

        settings = ServiceSettings(
            database_url=kit_db, kafka_bootstrap_servers=None, hub_enabled=False, retention_interval=0
        )
        app = create_service_app(
            name="scheduled",
            title="Scheduled",
            version="1",
            settings=settings,
            base_path="/scheduled/v1",
            metadata_tables=kit,
            resources=[],
            topics=[],
            scheduler=Scheduler(due=[DueWork(task, busy)], poll_interval=0.01),
        )
        async with asyncio.timeout(30), testing.running(app):  # stopping must not hang either
            await started.wait()
        assert await runs(store) == []
        assert (await task_row(store, "t"))["next_action_at"] is not None  # still due

        async with replica(kit_db) as restarted:
            assert await Scheduler(due=[DueWork(task, recording("restarted"))]).tick(restarted) == 1
        assert [what for what, _ in await runs(store)] == ["t"]


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def ticking(name: str) -> ScheduleHandler:
    async def handler(uow: UnitOfWork, tick_at: datetime) -> None:
        await uow.execute(ran.insert().values(what=name, tick_at=tick_at))

    return handler


class TestSchedules:
    def schedules(self) -> list[Schedule]:
        return [
            Schedule("bill-cycle", "0 2 * * *", ticking("bill-cycle")),  # daily at 02:00 UTC
            Schedule("statement", "0 0 1 * *", ticking("statement")),  # the 1st of the month
        ]

    async def test_a_schedule_missed_while_down_runs_once_on_start(self, kit_db: str, store: Store) -> None:
        clock = ManualClock(at(1, 10))
        assert await Scheduler(schedules=self.schedules(), clock=clock).tick(store) == 0

        clock.advance(timedelta(days=3))  # down from 1 March 10:00 to 4 March 10:00: three ticks missed
        async with replica(kit_db) as restarted:
            scheduler = Scheduler(schedules=self.schedules(), clock=clock)
            assert await scheduler.tick(restarted) == 1
            assert await scheduler.tick(restarted) == 0
        assert await runs(store) == [("bill-cycle", at(2, 2))]  # once, for the first tick it missed
        (row,) = await store.fetch(select(kit.schedule).where(kit.schedule.c.name == "bill-cycle"))
        assert (row["tick_at"], row["next_run_at"], row["last_run_at"]) == (at(5, 2), at(5, 2), at(4, 10))

        scheduler = Scheduler(schedules=self.schedules(), clock=clock)
        clock.advance(at(5, 2) - clock.now())
        assert await scheduler.tick(store) == 1
        clock.advance(at(1, 0, month=4) - clock.now())
        assert await scheduler.tick(store) == 2
        assert (await runs(store))[1:] == [
            ("bill-cycle", at(5, 2)),
            ("bill-cycle", at(6, 2)),  # once for the 26 ticks since
            ("statement", at(1, 0, month=4)),
        ]

    async def test_a_failing_run_backs_off_then_waits_for_the_next_tick(self, store: Store) -> None:
        clock = ManualClock(at(1, 10))
        ticks: list[datetime] = []

        async def failing(uow: UnitOfWork, tick_at: datetime) -> None:
            ticks.append(tick_at)
            raise RuntimeError("billing is down")

        backoff = Backoff(first=MINUTE, max_attempts=2)
        scheduler = Scheduler(schedules=[Schedule("bill-cycle", "0 2 * * *", failing, backoff)], clock=clock)
        await scheduler.tick(store)
        clock.advance(at(2, 2) - clock.now())
        assert await scheduler.tick(store) == 0
        (row,) = await store.fetch(select(kit.schedule))
        assert (row["tick_at"], row["next_run_at"], row["attempts"]) == (at(2, 2), at(2, 2) + MINUTE, 1)
        clock.advance(MINUTE)
        assert await scheduler.tick(store) == 0
        (row,) = await store.fetch(select(kit.schedule))
        assert ticks == [at(2, 2), at(2, 2)]  # the retry stands for the same tick
        assert (row["tick_at"], row["next_run_at"], row["attempts"]) == (at(3, 2), at(3, 2), 0)
        assert row["last_error"] == "RuntimeError: billing is down"

    async def test_a_changed_expression_starts_over(self, store: Store) -> None:
        clock = ManualClock(at(1, 10))
        await Scheduler(schedules=self.schedules()[:1], clock=clock).tick(store)
        clock.advance(timedelta(days=3))
        monthly = Schedule("bill-cycle", "0 0 1 * *", ticking("bill-cycle"))
        assert await Scheduler(schedules=[monthly], clock=clock).tick(store) == 0
        assert await store.fetch(select(func.count()).select_from(ran)) == [{"count_1": 0}]
        (row,) = await store.fetch(select(kit.schedule))
        assert (row["cron"], row["next_run_at"]) == ("0 0 1 * *", at(1, 0, month=4))

    async def test_a_bad_expression_is_refused_when_declared(self) -> None:
        with pytest.raises(ValueError, match="bad cron expression"):
            Schedule("bill-cycle", "0 25 * * *", ticking("bill-cycle"))
