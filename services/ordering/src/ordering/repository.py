"""Every query of the ordering service lives here."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table, Text, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_kit import db
from switchboard_kit import events as kit_events
from switchboard_kit.context import correlation_id
from switchboard_kit.query import ListQuery

from .models import cancel_product_order, kit, product_order

INSERT_ORDER_SQL = (
    f"INSERT INTO {product_order.name}"
    " (id, doc, state, order_date, party_ids, next_action_at, correlation_id)"
    " VALUES ($1, $2::text::jsonb, $3, $4, $5, $6, $7)"
)


async def insert_order(
    conn: Any,
    doc: dict[str, Any],
    *,
    order_date: datetime,
    next_action_at: datetime | None,
    events: list[dict[str, Any]],
) -> None:
    """A new order and its outbox rows in one statement, on a :func:`db.write_connection`: one round
    trip, atomic on its own (or part of the caller's transaction)."""
    outbox_sql, outbox_params = kit_events.outbox_values(events, first=8)
    await conn.execute(
        f"WITH new_order AS ({INSERT_ORDER_SQL}) INSERT INTO {kit.outbox.name} {outbox_sql}",
        doc["id"],
        orjson.dumps(doc).decode(),
        doc["state"],
        order_date,
        party_ids(doc),
        next_action_at,
        correlation_id.get(),
        *outbox_params,
    )


def party_ids(doc: dict[str, Any]) -> list[str]:
    return sorted({p["id"] for p in doc.get("relatedParty") or [] if isinstance(p, dict) and p.get("id")})


class DocumentRepository:
    """A table of TMF documents with a ``version`` column (the ETag)."""

    table: Table

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id: str, *, for_update: bool = False) -> Any:
        stmt = select(self.table).where(self.table.c.id == id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).first()

    async def postpone(self, id: str, until: datetime) -> None:
        """Sets when the worker next looks at the row, and nothing else (not a change of the document)."""
        await self.session.execute(
            update(self.table).where(self.table.c.id == id).values(next_action_at=until)
        )

    async def list(self, query: ListQuery) -> tuple[list[str], int]:
        """One page of documents as stored JSON text, and the total number of matches (see
        :func:`list_documents`, which runs the same statements without a session)."""
        rows = (await self.session.execute(_page_statement(self.table, query))).all()
        if rows:
            return [row[0] for row in rows], int(rows[0][1])
        return [], int((await self.session.execute(_count_statement(self.table, query))).scalar_one())


_WINDOW_COUNT = func.count().over()


@functools.cache
def _page_columns(table: Table) -> tuple[Any, Any]:
    return table.c.doc.cast(Text), _WINDOW_COUNT


def _page_statement(table: Table, query: ListQuery) -> Any:
    """One page of documents (their stored text) with a window count of every match: one round trip
    gives both. (Expression parts that never change are built once.)"""
    return (
        select(*_page_columns(table))
        .where(*query.where)
        .order_by(*query.order_by, table.c.id)
        .offset(query.offset)
        .limit(query.limit)
    )


def _count_statement(table: Table, query: ListQuery) -> Any:
    """The number of matches, for an empty page (for example an offset past the end)."""
    return select(func.count()).select_from(table).where(*query.where)


async def list_documents(request: Any, conn: Any, table: Table, query: ListQuery) -> tuple[list[str], int]:
    """:meth:`DocumentRepository.list` on a :func:`db.read_connection` (no session, no transaction)."""
    rows = await db.fetch(request, conn, _page_statement(table, query))
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    return [], int((await db.fetch(request, conn, _count_statement(table, query)))[0][0])


async def document_text(conn: Any, table: Table, id: str) -> tuple[str, int] | None:
    """A stored document as its JSON text, and its version; on a :func:`db.read_connection`."""
    row = await conn.fetchrow(f"SELECT doc::text, version FROM {table.name} WHERE id = $1", id)
    return None if row is None else (row[0], row[1])


class OrderRepository(DocumentRepository):
    table = product_order

    async def save(self, doc: dict[str, Any], version: int, *, next_action_at: Any = ...) -> int:
        values: dict[str, Any] = {
            "doc": doc,
            "state": doc["state"],
            "party_ids": party_ids(doc),
            "version": version + 1,
            "updated_at": func.now(),
        }
        if next_action_at is not ...:
            values["next_action_at"] = next_action_at
        await self.session.execute(
            update(product_order).where(product_order.c.id == doc["id"]).values(**values)
        )
        return version + 1

    async def delete(self, id: str) -> None:
        await self.session.execute(product_order.delete().where(product_order.c.id == id))

    async def due(self, now: datetime, limit: int) -> list[Any]:
        stmt = (
            select(product_order)
            .where(product_order.c.next_action_at <= now)
            .order_by(product_order.c.next_action_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).all())

    async def is_empty(self) -> bool:
        return (await self.session.execute(select(product_order.c.id).limit(1))).first() is None


class CancelRepository(DocumentRepository):
    table = cancel_product_order

    async def add(self, doc: dict[str, Any], *, next_action_at: datetime | None) -> None:
        await self.session.execute(
            insert(cancel_product_order).values(
                id=doc["id"],
                doc=doc,
                state=doc["state"],
                order_id=doc["productOrder"]["id"],
                next_action_at=next_action_at,
                correlation_id=correlation_id.get(),
            )
        )

    async def save(self, doc: dict[str, Any], version: int, *, next_action_at: datetime | None) -> None:
        await self.session.execute(
            update(cancel_product_order)
            .where(cancel_product_order.c.id == doc["id"])
            .values(doc=doc, state=doc["state"], version=version + 1, next_action_at=next_action_at)
        )

    async def due(self, now: datetime, limit: int) -> list[Any]:
        stmt = (
            select(cancel_product_order)
            .where(cancel_product_order.c.next_action_at <= now)
            .order_by(cancel_product_order.c.next_action_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).all())
