"""``Idempotency-Key`` for POST: a retried request gets the first response and creates nothing new.

The key row is written in the same unit of work as the resource. A transaction-level advisory
lock on the key serialises concurrent retries, so the second one waits for the first to commit
and then replays its response. A key longer than :data:`MAX_KEY_LENGTH` characters is a 400
before anything is read or stored (it would not fit the key's index).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import insert, select
from starlette.requests import Request
from starlette.responses import Response

from .errors import BadRequest, UnprocessableEntity
from .store import UnitOfWork

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


async def replay(uow: UnitOfWork, request: Request, key: str, body: bytes) -> Response | None:
    """The first response to this key, or None when it is new (the key stays locked until the unit of
    work ends). 422 when the key was used with a different body."""
    scope = _scope(request)
    table = uow.tables.idempotency_key
    await uow.lock(f"{scope}|{key}")
    rows = await uow.fetch(select(table).where(table.c.scope == scope, table.c.key == key))
    if not rows:
        return None
    row = rows[0]
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


async def remember(
    uow: UnitOfWork,
    request: Request,
    key: str,
    body: bytes,
    *,
    status_code: int,
    response_body: Any,
    headers: dict[str, str],
) -> None:
    """Stores the response to a request with an ``Idempotency-Key``, in the request's unit of work."""
    await uow.execute(
        insert(uow.tables.idempotency_key).values(
            scope=_scope(request),
            key=key,
            request_hash=request_hash(body),
            status_code=status_code,
            body=response_body,
            headers=headers,
        )
    )
