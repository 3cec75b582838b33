"""Engine, pooled driver connections, compiled statements and the kit's own tables (outbox, hub, consumer tracking, idempotency keys).

Every service has its own ``MetaData``; it calls :func:`kit_tables` on it so that the
kit's tables live in the service's database and in its alembic history.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    cast,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.util import greenlet_spawn

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class KitTables:
    outbox: Table
    hub_subscription: Table
    hub_delivery: Table
    processed_event: Table
    idempotency_key: Table
    schedule: Table  # recurring schedules (switchboard_kit.schedule)
    dead_letter: Table


def kit_tables(metadata: MetaData) -> KitTables:
    """Define the kit's tables on a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        # id is the TMF eventId.
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        # json, not jsonb: the event as the store wrote it (nothing queries into it, and json only
        # checks its input where jsonb would build a binary copy of the order twice per create).
        Column("payload", JSON, nullable=False),
        Column("headers", JSON, nullable=False, server_default=text("'{}'::json")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )
    hub_subscription = Table(
        "hub_subscription",
        metadata,
        Column("id", Text, primary_key=True),
        Column("callback", Text, nullable=False),
        Column("query", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    hub_delivery = Table(
        "hub_delivery",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column(
            "subscription_id",
            Text,
            ForeignKey("hub_subscription.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("event_type", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("delivered_at", DateTime(timezone=True)),
        Column("failed_at", DateTime(timezone=True)),
        Column("last_error", Text),
        # Delivery status per subscription (GET /hub/{id}/deliveryStatus).
        Column("last_attempt_at", DateTime(timezone=True)),
        Column("last_error_at", DateTime(timezone=True)),
        UniqueConstraint("subscription_id", "event_id", name="uq_hub_delivery_subscription_event"),
        Index(
            "ix_hub_delivery_due",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
    )
    processed_event = Table(
        "processed_event",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
    idempotency_key = Table(
        "idempotency_key",
        metadata,
        Column("scope", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("request_hash", Text, nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("body", JSONB),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("scope", "key"),
    )
    # One row per named cron schedule: the tick its next run stands for, and when that run is due
    # (later than the tick while a failed run backs off).
    schedule = Table(
        "schedule",
        metadata,
        Column("name", Text, primary_key=True),
        Column("cron", Text, nullable=False),
        Column("tick_at", DateTime(timezone=True), nullable=False),
        Column("next_run_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_run_at", DateTime(timezone=True)),
        Column("last_error", Text),
    )
    # A record a consumer gave up on after its attempts (switchboard_kit.consumer), as it was read,
    # until replayed (python -m switchboard_kit.deadletters).
    dead_letter = Table(
        "dead_letter",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("consumer", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("key", Text),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        Column("event_id", Text),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("replayed_at", DateTime(timezone=True)),
        UniqueConstraint("consumer", "topic", "partition", "offset", name="uq_dead_letter_record"),
    )
    return KitTables(
        outbox, hub_subscription, hub_delivery, processed_event, idempotency_key, schedule, dead_letter
    )


def due_columns(name: str) -> list[Column[Any] | Index]:
    """The columns :class:`~switchboard_kit.schedule.DueWork` needs on table ``name``: ``next_action_at``
    (when the row is next due; NULL for never) with a partial index, ``attempts`` (failures since the
    last success) and ``last_error``."""
    return [
        Column("next_action_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Index(
            f"ix_{name}_next_action", "next_action_at", postgresql_where=text("next_action_at IS NOT NULL")
        ),
    ]


def document_table(
    name: str, metadata: MetaData, *hot: Column[Any] | Index, due: bool = False, updated_at: bool = True
) -> Table:
    """A table of one TMF resource as the store keeps it: ``id``, the document (``doc``), its
    ``version`` (the ETag), the ``correlation_id`` of the request that created it (events emitted
    later carry it), ``created_at`` and ``updated_at``, plus the ``hot`` columns and indexes that
    filters and sort use. ``due=True`` adds :func:`due_columns` (``next_action_at``, ``attempts``,
    ``last_error``), for :class:`~switchboard_kit.schedule.DueWork`.

    ``doc`` is PostgreSQL ``json``, not ``jsonb``: ``json`` keeps the text it was given, so the
    compact JSON the service wrote is what a read sends, as it is (``jsonb`` would be printed with a
    space after every comma and colon, and every answer re-encoded). SQL that looks into the document
    reads it as ``doc::jsonb`` (:func:`document_jsonb`), and the GIN index for containment filters is
    on that expression. A trigger (:func:`document_ddl`) compacts the text of writers other than the
    store (SQL scripts, bulk loads, ``jsonb_set`` updates), so every stored document reads compact."""
    columns: list[Any] = [
        Column("id", Text, primary_key=True),
        Column("doc", JSON, nullable=False),
        Column("version", Integer, nullable=False, server_default=text("1")),
        Column("correlation_id", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        *hot,
    ]
    if updated_at:
        columns.append(
            Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())
        )
    if due:
        columns += due_columns(name)
    table = Table(name, metadata, *columns)
    Index(
        f"ix_{name}_doc",
        document_jsonb(table).label("doc_jsonb"),
        postgresql_using="gin",
        postgresql_ops={"doc_jsonb": "jsonb_path_ops"},
    )
    event.listen(table, "after_create", _run_document_ddl)
    return table


def _run_document_ddl(table: Table, connection: Any, **_: Any) -> None:
    for statement in document_ddl(table.name):
        connection.exec_driver_sql(statement)  # as written: the regular expression has backslashes


def document_jsonb(table: Table) -> ColumnElement[Any]:
    """The table's document as ``jsonb``, for SQL that looks into it (filters, sort, the GIN index);
    the column itself when it is ``jsonb`` already (tables not made by :func:`document_table`)."""
    doc: ColumnElement[Any] = table.c.doc
    return doc if isinstance(doc.type, JSONB) else cast(doc, JSONB)


def stores_compact_text(table: Table) -> bool:
    """Whether ``doc::text`` of ``table`` is the compact JSON the store wrote (``json``), rather than
    PostgreSQL's print of ``jsonb`` (spaces after commas and colons), which must be re-encoded."""
    return not isinstance(table.c.doc.type, JSONB)


# Compact text of a json value. ``json_strip_nulls`` (C) prints its input without any whitespace,
# but drops object members that are null: documents with a "null" anywhere (rare: the store drops
# nulls except in untyped values) take the exact, slower way, a regular expression that removes the
# whitespace outside strings (a string is matched whole, so a comma or colon inside one is kept).
COMPACT_JSON_FUNCTION = r"""
CREATE OR REPLACE FUNCTION sb_compact_json(value json) RETURNS json
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN strpos(value::text, 'null') = 0 THEN json_strip_nulls(value)
              ELSE regexp_replace(value::text, '("(?:[^"\\]|\\.)*")|\s+', '\1', 'g')::json END
$$
"""
COMPACT_DOC_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION sb_compact_doc() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.doc := sb_compact_json(NEW.doc);
  RETURN NEW;
END
$$
"""
# The store writes compact text, which contains none of these outside a string, and ', "' and '\n'
# not even inside one (a quote or a newline in a string is escaped): only other writers' documents
# (PostgreSQL's print of jsonb, pretty-printed JSON) pay for the compaction.
_NOT_COMPACT = "strpos(NEW.doc::text, ', \"') > 0 OR strpos(NEW.doc::text, '\": ') > 0 OR strpos(NEW.doc::text, E'\\n') > 0"


def document_ddl(name: str) -> list[str]:
    """The SQL that :func:`document_table` runs after creating table ``name`` (and that a migration
    converting an older ``jsonb`` table runs too): the compaction functions and the table's trigger."""
    return [
        COMPACT_JSON_FUNCTION,
        COMPACT_DOC_TRIGGER_FUNCTION,
        f"CREATE TRIGGER {name}_compact_doc BEFORE INSERT OR UPDATE OF doc ON {name} "
        f"FOR EACH ROW WHEN ({_NOT_COMPACT}) EXECUTE FUNCTION sb_compact_doc()",
    ]


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, pre_ping: bool = False
) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # A ping costs a round trip per checkout; asyncpg reports dead connections on use anyway.
        pool_pre_ping=pre_ping,
        json_serializer=_json_dumps,
        # PostgreSQL prints a JSONB number without exponent (1e30 comes back as 1000...0); the stdlib
        # parser would make that an int beyond 64 bits, which orjson then cannot write (HTTP or Kafka).
        json_deserializer=_json_loads,
    )


def _json_dumps(obj: Any) -> str:
    import orjson

    return orjson.dumps(obj).decode()


def _json_loads(text: str | bytes) -> Any:
    import orjson

    return orjson.loads(text)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def pooled_driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection of a connection from the engine's pool (one pool, one budget), handed
    back to the pool afterwards only in a state the next user cannot trip over. Only the
    :class:`~switchboard_kit.store.Store` uses it."""
    pooled = _checkout_idle(engine) or await engine.raw_connection()
    conn: Any = pooled.driver_connection
    try:
        yield conn
    finally:
        # (A cancelled statement is cancelled on the server by asyncpg; the connection stays usable.)
        reusable = True
        if conn.is_in_transaction():  # never pool a connection with a transaction open
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                reusable = False
        if reusable and not conn.is_closed():
            if not _checkin_without_io(engine, pooled):
                await greenlet_spawn(pooled.close)
        else:
            await greenlet_spawn(pooled.invalidate)  # closed and replaced; the pool slot is freed


# SQLAlchemy's pool is synchronous code that awaits the driver through a greenlet (greenlet_spawn).
# Handing out an idle connection and taking one back do no I/O (the driver connection is only passed
# around, and the reset on return rolls back nothing: the store never opens a transaction through
# SQLAlchemy), so when the pool's state says that is what will happen, the two calls run directly,
# which saves creating a greenlet twice per request. Anything that could need I/O (a new or replaced
# connection, waiting for one, closing an overflow connection) takes the greenlet as before; should
# a checkout need I/O after all, SQLAlchemy refuses it (MissingGreenlet) before starting any, the pool
# takes the record back, and the greenlet path runs.


def _checkout_idle(engine: AsyncEngine) -> Any:
    pool: Any = engine.sync_engine.pool
    if not isinstance(pool, AsyncAdaptedQueuePool) or pool.checkedin() == 0:
        return None
    if pool._max_overflow > -1 and pool._overflow >= pool._max_overflow:
        return None  # the pool's get would block (an await) rather than take the idle one at once
    try:
        with warnings.catch_warnings():
            # A refused reconnect closes the driver's connect() coroutine unstarted: not a leak.
            warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
            return engine.sync_engine.raw_connection()
    except MissingGreenlet:  # an idle record whose connection was invalidated: reconnect below
        return None


def _checkin_without_io(engine: AsyncEngine, pooled: Any) -> bool:
    pool: Any = engine.sync_engine.pool
    if not isinstance(pool, AsyncAdaptedQueuePool) or pool.checkedin() >= pool.size():
        return False  # an overflow connection that the pool would close (I/O)
    pooled.close()
    return True


_COMPILED_CACHE_SIZE = 1000


class StatementCache:
    """SQLAlchemy Core statements as (SQL text, positional parameters) for asyncpg.

    Compiling a statement costs more than running it; like SQLAlchemy's own compiled cache,
    this keys the compiled form by the statement's cache key (its shape, not its values) and
    takes this call's values from the key's bound parameters. It uses the same SQLAlchemy
    internals that cache does (``_generate_cache_key``, ``_compiler``, ``_bind_processors``):
    SQLAlchemy is pinned in constraints.txt, and tests/unit/test_statement_cache.py checks the
    SQL and values it produces.
    """

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self._compiled: dict[Any, Any] = {}

    def sql(self, stmt: Any) -> tuple[str, list[Any]]:
        key = stmt._generate_cache_key()
        if key is None:  # not cacheable (SQLAlchemy says so): compile this one
            compiled = stmt.compile(dialect=self.dialect)
            values = compiled.construct_params()
        else:
            compiled = self._compiled.get(key.key)
            if compiled is None:
                # As SQLAlchemy's own compiled cache does: compiled against the key, so that a later
                # statement of the same shape can take its values from its own key.
                compiled = stmt._compiler(self.dialect, cache_key=key, column_keys=[])
                if len(self._compiled) >= _COMPILED_CACHE_SIZE:
                    self._compiled.clear()
                self._compiled[key.key] = compiled
            values = compiled.construct_params(extracted_parameters=key.bindparams)
        sql, names, processors = compiled.string, compiled.positiontup, compiled._bind_processors
        if compiled.post_compile_params or compiled.literal_execute_params:
            # IN (...) lists and the like are rendered per call, for this call's values.
            state = compiled.construct_expanded_state(values)
            sql, names, values, processors = (
                state.statement,
                state.positiontup,
                state.parameters,
                state.processors,
            )
        args = [
            processors[name](values[name]) if name in processors else values[name] for name in names or ()
        ]
        return sql, args

    def template(self, stmt: Any, prefix: str) -> StatementTemplate | None:
        """``stmt`` compiled once, for statements that differ only in the values of the bind
        parameters keyed ``<prefix><n>``: each call passes those values by position ``n``
        (:meth:`StatementTemplate.args`); every other bind parameter keeps ``stmt``'s value.
        ``None`` when the SQL itself would depend on the values (expanding ``IN`` lists)."""
        compiled = stmt.compile(dialect=self.dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            return None
        values = compiled.construct_params()
        processors = compiled._bind_processors
        steps: list[tuple[int, Any]] = []
        for name in compiled.positiontup or ():
            processor = processors.get(name)
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                steps.append((int(name[len(prefix) :]), processor))
            else:
                steps.append((-1, processor(values[name]) if processor is not None else values[name]))
        return StatementTemplate(compiled.string, tuple(steps))


@dataclass(frozen=True)
class StatementTemplate:
    """SQL text and, per positional parameter, either the index of a call's value (with its bind
    processor, or ``None``) or, for index ``-1``, the constant to pass (already processed)."""

    sql: str
    steps: tuple[tuple[int, Any], ...]

    def args(self, values: Sequence[Any]) -> list[Any]:
        return [
            (value if index < 0 else values[index] if value is None else value(values[index]))
            for index, value in self.steps
        ]
