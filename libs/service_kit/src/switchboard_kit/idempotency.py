"""``Idempotency-Key`` for POST: a retried request gets the first response and creates nothing new.

The key row is written in the same transaction as the resource. A transaction-level
advisory lock on the key serialises concurrent retries, so the second one waits for the
first to commit and then replays its response. A key longer than :data:`MAX_KEY_LENGTH`
characters is a 400 before anything is read or stored (it would not fit the key's index).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import Request, Response
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import BadRequest, UnprocessableEntity

HEADER = "Idempotency-Key"
# Longest key accepted, in characters. Clients send UUIDs (36) or similar tokens; the primary key
# index on (scope, key) cannot hold an entry above about 2,700 bytes (a 500, not a 400).
MAX_KEY_LENGTH = 255


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, or None when it has none; 400 when it is too long."""
    key = request.headers.get(HEADER)
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            "Invalid Idempotency-Key", f"{HEADER} must be at most {MAX_KEY_LENGTH} characters long"
        )
    return key


def _scope(request: Request) -> str:
    return f"{request.method} {request.url.path}"


async def replay(session: AsyncSession, table: Table, request: Request, body: bytes) -> Response | None:
    key = idempotency_key(request)
    if key is None:
        return None
    scope = _scope(request)
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"{scope}|{key}", 0))))
    row = (await session.execute(select(table).where(table.c.scope == scope, table.c.key == key))).first()
    return _replayed(None if row is None else row._mapping, key, body)


async def replay_on(conn: Any, table: Table, request: Request, body: bytes) -> Response | None:
    """:func:`replay` on a :func:`db.write_connection`, inside the caller's ``conn.transaction()``."""
    key = idempotency_key(request)
    if key is None:
        return None
    scope = _scope(request)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{scope}|{key}")
    row = await conn.fetchrow(
        f"SELECT request_hash, status_code, body, headers FROM {table.name} WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    return _replayed(row, key, body)


def _replayed(row: Any, key: str, body: bytes) -> Response | None:
    if row is None:
        return None
    if row["request_hash"] != request_hash(body):
        raise UnprocessableEntity(
            "Idempotency key reused",
            f"Idempotency-Key {key!r} was already used with a different request body",
        )
    headers = dict(row["headers"])
    headers["Idempotent-Replayed"] = "true"
    return Response(
        orjson.dumps(row["body"]) if row["body"] is not None else b"",
        status_code=row["status_code"],
        headers=headers,
        media_type="application/json",
    )


def _key_row(
    request: Request, key: str, body: bytes, status_code: int, response_body: Any, headers: dict[str, str]
) -> dict[str, Any]:
    return {
        "scope": _scope(request),
        "key": key,
        "request_hash": request_hash(body),
        "status_code": status_code,
        "body": response_body,
        "headers": headers,
    }


async def remember(
    session: AsyncSession,
    table: Table,
    request: Request,
    body: bytes,
    *,
    status_code: int,
    response_body: Any,
    headers: dict[str, str],
) -> None:
    """Stores the response of a request with an ``Idempotency-Key``, in the request's transaction."""
    key = idempotency_key(request)
    if key is not None:
        row = _key_row(request, key, body, status_code, response_body, headers)
        await session.execute(insert(table).values(**row))


async def remember_on(
    conn: Any,
    table: Table,
    request: Request,
    body: bytes,
    *,
    status_code: int,
    response_body: Any,
    headers: dict[str, str],
) -> None:
    """:func:`remember` on a :func:`db.write_connection`, inside the same transaction as :func:`replay_on`."""
    key = idempotency_key(request)
    if key is not None:
        row = _key_row(request, key, body, status_code, response_body, headers)
        row["body"] = orjson.dumps(row["body"]).decode()
        row["headers"] = orjson.dumps(row["headers"]).decode()
        await conn.execute(
            f"INSERT INTO {table.name} ({', '.join(row)}) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
            *row.values(),
        )
