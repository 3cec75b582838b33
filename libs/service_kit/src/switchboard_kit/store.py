"""The one persistence seam: documents, their hot columns and their events, in units of work.

A service never sees a driver connection, a session or a transaction. It asks the :class:`Store`
for a read (:meth:`Store.get_text`, :meth:`Store.list_page`, :meth:`Store.fetch`) or for a
:meth:`Store.unit_of_work`, and the unit of work is the one place that commits.

Every resource table holds a TMF document as JSONB (``doc``) with its ``id`` and a ``version``
(the ETag), beside hot columns that filters and sort use. Writes take the document, the hot
column values and the events to publish, and write all of them together:

- :meth:`UnitOfWork.insert` of a new document in a unit of work that has read nothing is *one*
  statement (a data-modifying ``WITH``: the row and its outbox rows), atomic on its own: one round
  trip, no BEGIN/COMMIT. Any read or other write first opens a transaction, and the unit of work
  commits it when its block ends without an error (before the response is sent), or rolls back.
- :meth:`UnitOfWork.save` checks the version it was given (a lost update is a 409, never silent).

For tests, :meth:`Store.pin` runs everything on one connection inside a transaction that the test
rolls back: units of work become savepoints, so each test leaves nothing behind without a TRUNCATE.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Integer, Table, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from . import db
from .context import correlation_id
from .errors import Conflict
from .events import OUTBOX_COLUMNS
from .query import PAGE_PARAM, PageQuery

OutboxRow = dict[str, Any]  # see events.outbox_row


@dataclass(frozen=True)
class Stored:
    """A stored document: its id, the document, its version and the row's other columns."""

    id: str
    doc: dict[str, Any]
    version: int
    columns: Mapping[str, Any]


class Store:
    """Connections and transactions of one service's database (see the module docstring)."""

    def __init__(
        self, engine: AsyncEngine, tables: db.KitTables, *, on_commit: Callable[[], None] | None = None
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.outbox = tables.outbox
        self.statements = db.StatementCache(engine.dialect)
        self.on_commit = on_commit
        self._pinned: Any = None
        self._pinned_lock = asyncio.Lock()
        self._page_templates: dict[Any, db.StatementTemplate | None] = {}

    # -- connections ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pinned is not None:
            async with self._pinned_lock:  # one connection: one user at a time
                yield self._pinned
            return
        async with db.pooled_driver_connection(self.engine) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def pin(self) -> AsyncIterator[None]:
        """Runs every read and unit of work of this store on one connection, inside a transaction
        that is rolled back when the block ends (tests). Units of work become savepoints."""
        async with db.pooled_driver_connection(self.engine) as conn:
            transaction = conn.transaction()
            await transaction.start()
            self._pinned = conn
            try:
                yield
            finally:
                self._pinned = None
                await transaction.rollback()

    # -- reads (one statement each: its own snapshot, no transaction) ---------------------------

    async def get_text(self, table: Table, id: str) -> tuple[str, int] | None:
        """The stored document as its JSON text (sent as it is), and its version."""
        async with self._connection() as conn:
            row = await conn.fetchrow(_get_text_sql(table), id)
        return None if row is None else (row[0], row[1])

    async def list_page(self, table: Table, query: Any) -> tuple[list[str], int]:
        """One page of documents as stored JSON text (a :class:`query.PageQuery` or
        :class:`query.ListQuery`), and the number of every match: one round trip (a window count),
        and a count only for an empty page."""
        page = query if isinstance(query, PageQuery) else None
        if page is not None:
            sql, args = self._page_sql(table, page)
        else:
            sql, args = self.statements.sql(_page_statement(table, query))
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *args)
            if rows:
                return [row[0] for row in rows], int(rows[0][1])
            where = page.query().where if page is not None else query.where
            sql, args = self.statements.sql(select(func.count()).select_from(table).where(*where))
            return [], int(await conn.fetchval(sql, *args))

    def _page_sql(self, table: Table, page: PageQuery) -> tuple[str, list[Any]]:
        """The page statement of a :class:`query.PageQuery`: compiled once per table and query shape
        (no SQLAlchemy work for a shape seen before), with this query's values."""
        values = (*page.values, page.offset, page.limit)
        key = (table, page.shape)
        template = self._page_templates.get(key, _MISSING)
        if template is _MISSING:
            stmt = _page_statement(table, page.query(keyed=True), keyed=len(page.values))
            template = self.statements.template(stmt, PAGE_PARAM)
            if len(self._page_templates) >= _PAGE_TEMPLATES:  # shapes come from clients: bounded
                self._page_templates.clear()
            self._page_templates[key] = template
        if template is None:  # SQL that depends on the values: compiled per call
            return self.statements.sql(_page_statement(table, page.query()))
        return template.sql, template.args(values)

    async def fetch(self, stmt: Any) -> list[dict[str, Any]]:
        """Rows of a SQLAlchemy Core query, as dicts (one statement)."""
        async with self._connection() as conn:
            sql, args = self.statements.sql(stmt)
            return [dict(row.items()) for row in await conn.fetch(sql, *args)]

    # -- writes ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: its writes commit together when the block ends without an error."""
        async with self._connection() as conn:
            uow = UnitOfWork(self, conn)
            try:
                yield uow
            except BaseException:
                await uow._rollback()
                raise
            await uow._commit()
        if uow.wrote and self.on_commit is not None:
            self.on_commit()  # e.g. wake the outbox relay


class UnitOfWork:
    """Reads and writes that commit together; from :meth:`Store.unit_of_work` only."""

    def __init__(self, store: Store, conn: Any) -> None:
        self._store = store
        self._conn = conn
        self._transaction: Any = None
        self._autocommitted = False
        self.wrote = False
        self.tables = store.tables
        # On a pinned connection every unit is a savepoint: a failed statement must not abort the
        # test's transaction.
        self._pinned = store._pinned is not None

    # -- transaction ----------------------------------------------------------------------------

    async def _begin(self) -> None:
        if self._autocommitted:
            # A one-statement insert already committed: nothing after it could be atomic with it.
            raise RuntimeError("a unit of work cannot continue after its one-statement insert")
        if self._transaction is None:
            self._transaction = self._conn.transaction()
            await self._transaction.start()

    async def _commit(self) -> None:
        if self._transaction is not None:
            await self._transaction.commit()
            self._transaction = None

    async def _rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()
            self._transaction = None

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A block whose writes are undone alone when it raises (the rest of the unit still commits)."""
        await self._begin()
        async with self._conn.transaction():
            yield

    async def lock(self, key: str) -> None:
        """Holds a lock on ``key`` until the unit of work ends (a transaction-level advisory lock)."""
        await self._begin()
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    # -- reads ----------------------------------------------------------------------------------

    async def fetch(self, stmt: Any) -> list[dict[str, Any]]:
        """Rows of a SQLAlchemy Core statement, as dicts, in this unit's transaction."""
        await self._begin()
        sql, args = self._store.statements.sql(stmt)
        return [dict(row.items()) for row in await self._conn.fetch(sql, *args)]

    async def execute(self, stmt: Any) -> None:
        """A SQLAlchemy Core statement that returns nothing, in this unit's transaction."""
        await self._begin()
        sql, args = self._store.statements.sql(stmt)
        await self._conn.execute(sql, *args)
        self.wrote = True

    async def get(self, table: Table, id: str, *, for_update: bool = False) -> Stored | None:
        """A stored document; ``for_update`` locks its row until the unit of work ends."""
        stmt = select(table).where(table.c.id == id)
        if for_update:
            stmt = stmt.with_for_update()
        rows = await self.fetch(stmt)
        return _stored(rows[0]) if rows else None

    async def due(
        self, table: Table, now: datetime, limit: int, *, column: str = "next_action_at"
    ) -> list[Stored]:
        """Rows whose ``column`` time has come, oldest first, locked; rows another worker holds are
        skipped (``FOR UPDATE SKIP LOCKED``), so several replicas never take the same row."""
        due_at = table.c[column]
        stmt = (
            select(table).where(due_at <= now).order_by(due_at).limit(limit).with_for_update(skip_locked=True)
        )
        return [_stored(row) for row in await self.fetch(stmt)]

    # -- writes ---------------------------------------------------------------------------------

    async def insert(
        self,
        table: Table,
        doc: dict[str, Any],
        *,
        columns: Mapping[str, Any] | None = None,
        events: Sequence[OutboxRow] = (),
    ) -> None:
        """A new document (version 1) with its hot ``columns`` and its events.

        First in a unit of work, this is one statement that commits on its own; the unit of work can
        then do nothing else. After a read or a write it joins the unit's transaction.
        """
        names, values = _column_values(table, doc, columns)
        sql = _insert_sql(table, self._store.outbox, names, len(events))
        args = [*values, *_outbox_args(events)]
        if self._transaction is None and not self._autocommitted and not self._pinned:
            await self._conn.execute(sql, *args)
            self._autocommitted = True
        else:
            await self._begin()
            await self._conn.execute(sql, *args)
        self.wrote = True

    async def save(
        self,
        table: Table,
        current: Stored,
        doc: dict[str, Any],
        *,
        columns: Mapping[str, Any] | None = None,
        events: Sequence[OutboxRow] = (),
    ) -> int:
        """Replaces ``current``'s document (and hot ``columns``) if its version is still
        ``current.version``, and records ``events``; returns the new version. 409 otherwise."""
        await self._begin()
        names, values = _column_values(table, doc, columns, with_id=False)
        status = await self._conn.execute(_update_sql(table, names), current.id, current.version, *values)
        if status != "UPDATE 1":
            raise Conflict(
                "Concurrent update",
                f"{current.id} changed since version {current.version} was read; read it again",
            )
        await self.emit(events)
        self.wrote = True
        return current.version + 1

    async def set_columns(self, table: Table, id: str, columns: Mapping[str, Any]) -> None:
        """Sets columns that are not the document (e.g. when a worker next looks at a row)."""
        await self.execute(table.update().where(table.c.id == id).values(**columns))

    async def delete(self, table: Table, current: Stored, *, events: Sequence[OutboxRow] = ()) -> None:
        await self.execute(table.delete().where(table.c.id == current.id))
        await self.emit(events)

    async def emit(self, events: Sequence[OutboxRow]) -> None:
        """Adds outbox rows in this unit's transaction (published only if it commits), in order."""
        if events:
            await self._begin()
            await self._conn.execute(_outbox_sql(self._store.outbox, len(events)), *_outbox_args(events))
            self.wrote = True


# -- statements --------------------------------------------------------------------------------


def _stored(row: Mapping[str, Any]) -> Stored:
    columns = {k: v for k, v in row.items() if k not in ("id", "doc", "version")}
    return Stored(id=row["id"], doc=row["doc"], version=row["version"], columns=columns)


def _is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSON | JSONB)


def _column_values(
    table: Table, doc: dict[str, Any], columns: Mapping[str, Any] | None, *, with_id: bool = True
) -> tuple[tuple[str, ...], list[Any]]:
    values = dict(columns or {})
    if with_id and "correlation_id" in table.c and "correlation_id" not in values:
        values["correlation_id"] = correlation_id.get()
    names = (*(("id",) if with_id else ()), "doc", *values)
    args: list[Any] = [doc["id"]] if with_id else []
    args.append(orjson.dumps(doc).decode())
    for name, value in values.items():
        args.append(orjson.dumps(value).decode() if _is_json(table.c[name]) else value)
    return names, args


def _placeholder(table: Table, name: str, n: int) -> str:
    return f"${n}::text::jsonb" if _is_json(table.c[name]) else f"${n}"


@functools.cache
def _get_text_sql(table: Table) -> str:
    return f"SELECT doc::text, version FROM {table.name} WHERE id = $1"


@functools.cache
def _insert_sql(table: Table, outbox: Table, names: tuple[str, ...], n_events: int) -> str:
    placeholders = ", ".join(_placeholder(table, name, i + 1) for i, name in enumerate(names))
    insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
    if not n_events:
        return insert
    return f"WITH new_row AS ({insert}) {_outbox_sql(outbox, n_events, first=len(names) + 1)}"


@functools.cache
def _update_sql(table: Table, names: tuple[str, ...]) -> str:
    sets = [f"{name} = {_placeholder(table, name, i + 3)}" for i, name in enumerate(names)]
    sets.append("version = version + 1")
    if "updated_at" in table.c and "updated_at" not in names:
        sets.append("updated_at = now()")
    return f"UPDATE {table.name} SET {', '.join(sets)} WHERE id = $1 AND version = $2"


@functools.cache
def _outbox_sql(outbox: Table, n_events: int, first: int = 1) -> str:
    width = len(OUTBOX_COLUMNS)
    groups = []
    for i in range(n_events):
        n = first + i * width
        groups.append(f"(${n}, ${n + 1}, ${n + 2}, ${n + 3}, ${n + 4}::text::jsonb, ${n + 5}::text::jsonb)")
    # Rows get their seq in the order given: events of one resource stay in order.
    return f"INSERT INTO {outbox.name} ({', '.join(OUTBOX_COLUMNS)}) VALUES {', '.join(groups)}"


def _outbox_args(events: Sequence[OutboxRow]) -> list[Any]:
    args: list[Any] = []
    for row in events:
        args += (
            row["id"],
            row["topic"],
            row["key"],
            row["event_type"],
            orjson.dumps(row["payload"]).decode(),
            orjson.dumps(row["headers"]).decode(),
        )
    return args


_WINDOW_COUNT = func.count().over()
_PAGE_TEMPLATES = 1000  # page statements kept per store (one per table and query shape)
_MISSING: Any = object()


@functools.cache
def _page_columns(table: Table) -> tuple[Any, Any]:
    return table.c.doc.cast(Text), _WINDOW_COUNT


def _page_statement(table: Table, query: Any, *, keyed: int | None = None) -> Any:
    """The page's SELECT; ``keyed=n`` binds offset and limit as ``sb_v<n>`` and ``sb_v<n+1>``."""
    offset: Any = query.offset
    limit: Any = query.limit
    if keyed is not None:
        # (BIGINT: the documented offset goes beyond 32 bits, as PostgreSQL's OFFSET does.)
        offset = bindparam(f"{PAGE_PARAM}{keyed}", query.offset, type_=BigInteger)
        limit = bindparam(f"{PAGE_PARAM}{keyed + 1}", query.limit, type_=Integer)
    return (
        select(*_page_columns(table))
        .where(*query.where)
        .order_by(*query.order_by, table.c.id)
        .offset(offset)
        .limit(limit)
    )
