"""Scheduled and due work: rows with a due time, and recurring (cron) schedules, run with the app.

One mechanism serves fulfilment steps, bill cycles, SLA timers, dunning steps and retries:

- :class:`DueWork`: rows of a service table whose ``next_action_at`` has come (a table built with
  ``db.document_table(..., due=True)`` or holding :func:`db.due_columns`). Rows are claimed with
  ``FOR UPDATE SKIP LOCKED`` (:meth:`UnitOfWork.due`), so several replicas never run the same row
  at once, and each row runs in its own savepoint: a failing row is rolled back alone. The handler
  sets the row's next due time itself (``None`` when there is nothing more to do).
- :class:`Schedule`: a named cron expression (UTC; ``0 2 * * *`` daily at 02:00, ``0 0 1 * *`` the
  1st of the month) kept in the kit's ``schedule`` table. A schedule missed while no replica ran (a
  restart, an outage) runs *once* when one comes back, for the first tick it missed, and then waits
  for the next tick after the present: missed ticks are not replayed one by one.

A failure is retried with a growing :class:`Backoff` and an attempt count kept in the row
(``attempts``, ``last_error``), never every poll forever. When a due row reaches
``Backoff.max_attempts`` it is *parked*: ``next_action_at`` is NULL (nothing claims it again),
``attempts`` and ``last_error`` say why, and an error is logged. A parked row is retried by setting
its ``next_action_at`` again (``UPDATE <table> SET next_action_at = now() WHERE id = ...``); its
attempt count starts over when it succeeds. A schedule is never parked: after its last attempt it
gives up on that tick (logged, ``last_error`` kept) and waits for the next one.

Nothing is lost on restart: a row or a schedule is only moved on in the unit of work that ran it, so
a replica that stops (or is cancelled) mid-run leaves it due for the next one.

Time comes from a :class:`Clock` (``SystemClock`` in production, :class:`ManualClock` in tests), so
a test moves a clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cronsim import CronSim, CronSimError
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert

from .context import correlation_id
from .store import Store, Stored, UnitOfWork

log = logging.getLogger("switchboard.schedule")

# The error kept on a row: enough to recognise it, not a whole traceback (that goes to the log).
MAX_ERROR_CHARS = 1000


class Clock(Protocol):
    """Where scheduled work reads the time (timezone-aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th failed attempt: ``first * factor ** (n - 1)``, at most ``longest``; after
    ``max_attempts`` failures a due row is parked (a schedule waits for its next tick)."""

    first: timedelta = timedelta(minutes=1)
    factor: float = 2.0
    longest: timedelta = timedelta(hours=1)
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.factor < 1 or self.first <= timedelta(0):
            raise ValueError("Backoff needs max_attempts >= 1, factor >= 1 and a positive first delay")

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first failure)."""
        # (The exponent is bounded so that a large attempt number cannot overflow a timedelta.)
        seconds = self.first.total_seconds() * self.factor ** min(attempt - 1, 64)
        return timedelta(seconds=min(seconds, self.longest.total_seconds()))


DueHandler = Callable[[UnitOfWork, Stored], Awaitable[None]]
# Gets the tick the run stands for (the first one missed, after an outage), not the time it runs.
ScheduleHandler = Callable[[UnitOfWork, datetime], Awaitable[None]]


@dataclass(frozen=True)
class DueWork:
    """Rows of ``table`` whose ``next_action_at`` has come, given to ``handler`` one by one."""

    table: Table
    handler: DueHandler
    batch_size: int = 50
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        missing = {"next_action_at", "attempts", "last_error"} - set(self.table.c.keys())
        if missing:
            raise ValueError(f"{self.table.name} lacks the due columns {sorted(missing)} (db.due_columns)")


@dataclass(frozen=True)
class Schedule:
    """A recurring job: ``handler`` runs at each tick of ``cron`` (five fields, UTC)."""

    name: str
    cron: str
    handler: ScheduleHandler
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        try:
            CronSim(self.cron, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise ValueError(f"schedule {self.name}: bad cron expression {self.cron!r}: {exc}") from exc

    def next_after(self, when: datetime) -> datetime:
        """The first tick strictly after ``when``."""
        return next(CronSim(self.cron, when.astimezone(UTC)))


class Scheduler:
    """Runs a service's :class:`DueWork` and :class:`Schedule` s on its store (one per replica).

    :meth:`run` is the app's background task (``create_service_app(scheduler=...)``); :meth:`tick`
    is one pass, which tests call after moving a :class:`ManualClock`."""

    def __init__(
        self,
        *,
        due: Sequence[DueWork] = (),
        schedules: Sequence[Schedule] = (),
        clock: Clock | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        names = [s.name for s in schedules]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule names must be unique: {names}")
        self.due = tuple(due)
        self.schedules = {s.name: s for s in schedules}
        self.clock: Clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self._registered = False

    async def run(self, store: Store) -> None:
        while True:
            try:
                worked = await self.tick(store)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a while: try again next poll
                log.exception("scheduled work failed")
                worked = 0
            if worked == 0:
                await asyncio.sleep(self.poll_interval)

    async def tick(self, store: Store) -> int:
        """Runs the due schedules, then one batch of each due work; returns how many runs succeeded."""
        if not self._registered:
            await self._register(store)
            self._registered = True
        worked = 0
        while (ran := await self._run_one_schedule(store)) is not None:
            worked += ran
        for work in self.due:
            worked += await self._run_due(store, work)
        return worked

    # -- schedules ------------------------------------------------------------------------------

    async def _register(self, store: Store) -> None:
        """Adds each schedule's row; a row that exists keeps its next tick (missed ticks included)
        unless its cron expression changed."""
        if not self.schedules:
            return
        table = store.tables.schedule
        now = self.clock.now()
        async with store.unit_of_work() as uow:
            for schedule in self.schedules.values():
                first = schedule.next_after(now)
                stmt = insert(table).values(
                    name=schedule.name, cron=schedule.cron, tick_at=first, next_run_at=first
                )
                # A changed expression starts over from the present.
                await uow.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[table.c.name],
                        set_={
                            "cron": stmt.excluded.cron,
                            "tick_at": stmt.excluded.tick_at,
                            "next_run_at": stmt.excluded.next_run_at,
                            "attempts": 0,
                        },
                        where=table.c.cron != stmt.excluded.cron,
                    )
                )

    async def _run_one_schedule(self, store: Store) -> int | None:
        """Claims one due schedule of this app and runs it: 1 if it succeeded, 0 if it failed, None
        when none is due. One per unit of work, so replicas share the due schedules."""
        if not self.schedules:
            return None
        table = store.tables.schedule
        now = self.clock.now()
        async with store.unit_of_work() as uow:
            rows = await uow.fetch(
                select(table)
                .where(table.c.next_run_at <= now, table.c.name.in_(list(self.schedules)))
                .order_by(table.c.next_run_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if not rows:
                return None
            row = rows[0]
            schedule = self.schedules[row["name"]]
            try:
                async with uow.savepoint():
                    await schedule.handler(uow, row["tick_at"])
            except Exception as exc:
                attempts = row["attempts"] + 1
                values: dict[str, Any] = {"attempts": attempts, "last_error": _error_text(exc)}
                if attempts >= schedule.backoff.max_attempts:
                    values.update(attempts=0, **_next_tick(schedule, now))
                    log.exception(
                        "schedule %s (tick %s) failed %d times; giving up on this tick, next at %s",
                        schedule.name,
                        row["tick_at"].isoformat(),
                        attempts,
                        values["next_run_at"].isoformat(),
                    )
                else:
                    values["next_run_at"] = now + schedule.backoff.delay(attempts)
                    log.exception(
                        "schedule %s (tick %s) failed (attempt %d of %d); next attempt at %s",
                        schedule.name,
                        row["tick_at"].isoformat(),
                        attempts,
                        schedule.backoff.max_attempts,
                        values["next_run_at"].isoformat(),
                    )
                await uow.execute(table.update().where(table.c.name == schedule.name).values(**values))
                return 0
            # The next tick after *now*: ticks missed while no replica ran are not run one by one.
            values = {"attempts": 0, "last_error": None, "last_run_at": now, **_next_tick(schedule, now)}
            await uow.execute(table.update().where(table.c.name == schedule.name).values(**values))
            return 1

    # -- due rows -------------------------------------------------------------------------------

    async def _run_due(self, store: Store, work: DueWork) -> int:
        worked = 0
        async with store.unit_of_work() as uow:
            now = self.clock.now()
            for row in await uow.due(work.table, now, work.batch_size):
                worked += await self._run_row(uow, work, row, now)
        return worked

    async def _run_row(self, uow: UnitOfWork, work: DueWork, row: Stored, now: datetime) -> int:
        table = work.table
        token = correlation_id.set(row.columns.get("correlation_id"))
        try:
            try:
                async with uow.savepoint():
                    await work.handler(uow, row)
            except Exception as exc:
                attempts = int(row.columns["attempts"]) + 1
                retry_at: datetime | None = None
                if attempts >= work.backoff.max_attempts:
                    log.exception(
                        "%s %s failed %d times (state %s); parked: rolled back and not retried"
                        " until its next_action_at is set again",
                        table.name,
                        row.id,
                        attempts,
                        row.columns.get("state"),
                    )
                else:
                    retry_at = now + work.backoff.delay(attempts)
                    log.exception(
                        "%s %s failed in state %s (attempt %d of %d); rolled back, next attempt at %s",
                        table.name,
                        row.id,
                        row.columns.get("state"),
                        attempts,
                        work.backoff.max_attempts,
                        retry_at.isoformat(),
                    )
                columns = {"next_action_at": retry_at, "attempts": attempts, "last_error": _error_text(exc)}
                await uow.set_columns(table, row.id, columns)
                return 0
            if row.columns["attempts"] or row.columns["last_error"] is not None:
                await uow.set_columns(table, row.id, {"attempts": 0, "last_error": None})
            return 1
        finally:
            correlation_id.reset(token)


def _next_tick(schedule: Schedule, now: datetime) -> dict[str, datetime]:
    tick = schedule.next_after(now)
    return {"tick_at": tick, "next_run_at": tick}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
