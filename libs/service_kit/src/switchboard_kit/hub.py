"""TMF630 hub: subscriptions (``POST/GET/DELETE /hub``) and reliable listener delivery.

Delivery state lives in ``hub_delivery`` rows, written by the outbox relay when it
publishes an event, so a restart loses nothing. The deliverer POSTs each due row to
``{callback}/listener/{eventName}`` and retries failures with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import KitTables, SessionDep
from .errors import BadRequest, ErrorCode, NotFound
from .ids import new_id
from .query import QueryCompiler, check_event_query
from .resources import add_hot_route, ensure_storable, parse_body, request_session

log = logging.getLogger("switchboard.hub")

_INVALID_HUB_QUERY = ErrorCode.INVALID_HUB_QUERY
_PATH = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_]*(\.@?[A-Za-z_][A-Za-z0-9_]*)*$")


class EventSubscriptionInput(BaseModel):
    """Request body of ``POST /hub``."""

    model_config = ConfigDict(extra="forbid")
    callback: str = Field(
        min_length=1, description="Base URL of the listener; events go to {callback}/listener/{eventName}"
    )
    query: str | None = Field(
        default=None, description="TMF630 filter on the event, e.g. eventType=ProductOrderCreateEvent"
    )


class EventSubscription(BaseModel):
    id: str
    callback: str
    query: str | None = None


def parse_query(query: str | None) -> list[tuple[list[str], set[str]]]:
    """``eventType=A,B&event.productOrder.state=completed`` -> [(path, allowed values)].

    Checks the syntax only (``invalidHubQuery``); :func:`check_hub_query` checks the names and values."""
    if not query or not query.strip():
        return []
    clauses = []
    for part in query.strip().lstrip("?").split("&"):
        if not part.strip():
            continue
        if "=" not in part:
            raise _INVALID_HUB_QUERY.error(f"Expected attribute=value, got {part!r}")
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not _PATH.match(key) or not value:
            raise _INVALID_HUB_QUERY.error(f"Invalid clause {part!r}")
        clauses.append((key.split("."), {v.strip() for v in value.split(",")}))
    return clauses


def check_hub_query(
    query: str | None, compilers: Mapping[str, QueryCompiler], event_types: Collection[str]
) -> None:
    """400 unless ``query`` is a hub query that can match this service's events: the syntax of
    :func:`parse_query`, then ``eventType`` among ``event_types`` and ``event.<resource>.<path>``
    resolved by ``compilers[<resource>]`` (keyed by the event payload's name for the resource, e.g.
    ``{"productOrder": orders_compiler}``) with values of the attribute's type and enum, as a list
    query's filters are (:func:`switchboard_kit.query.check_event_query`)."""
    clauses = parse_query(query)
    check_event_query([(".".join(path), sorted(values)) for path, values in clauses], compilers, event_types)


def check_callback(callback: str) -> None:
    """400 unless ``callback`` is an absolute http(s) URL with a host that deliveries can be POSTed to."""
    problem = None
    try:
        parts = urlsplit(callback)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            problem = "callback must be an absolute http(s) URL with a host"
        elif any(c.isspace() for c in callback):
            problem = "callback must not contain whitespace"
        else:
            _ = parts.port  # ValueError when not a number in 0..65535
            httpx.URL(callback)
    except (ValueError, httpx.InvalidURL) as exc:
        problem = f"callback is not a valid URL: {exc}"
    if problem is not None:
        raise ErrorCode.INVALID_CALLBACK.error(problem)


def _values_at(node: Any, path: list[str]) -> list[Any]:
    if not path:
        return node if isinstance(node, list) else [node]
    if isinstance(node, list):
        return [v for item in node for v in _values_at(item, path)]
    if isinstance(node, dict) and path[0] in node:
        return _values_at(node[path[0]], path[1:])
    return []


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def subscription_matches(query: str | None, event: dict[str, Any]) -> bool:
    try:
        clauses = parse_query(query)
    except BadRequest:
        return False
    return all(any(_as_text(v) in allowed for v in _values_at(event, path)) for path, allowed in clauses)


def hub_router(tables: KitTables, base_url: str) -> APIRouter:
    router = APIRouter(tags=["hub"])
    subs = tables.hub_subscription

    def to_body(row: Any) -> dict[str, Any]:
        body = {"id": row.id, "callback": row.callback}
        if row.query is not None:
            body["query"] = row.query
        return body

    async def register(body: EventSubscriptionInput, session: AsyncSession) -> Response:
        ensure_storable({"callback": body.callback, "query": body.query})
        parse_query(body.query)
        check_callback(body.callback)
        sub_id = new_id()
        await session.execute(insert(subs).values(id=sub_id, callback=body.callback, query=body.query))
        payload = {"id": sub_id, "callback": body.callback}
        if body.query is not None:
            payload["query"] = body.query
        return Response(
            orjson.dumps(payload),
            status_code=201,
            media_type="application/json",
            headers={"Location": f"{base_url}/hub/{sub_id}"},
        )

    async def serve_register_listener(request: Request) -> Response:
        # The body is read as POST productOrder reads it (415 for a non-JSON media type, JSON when
        # the header is missing, the same limits); the FastAPI route below documents the operation.
        body = parse_body(EventSubscriptionInput, await request.body(), request.headers.get("content-type"))
        async with request_session(request) as session:
            return await register(body, session)

    add_hot_route(router, "/hub", "POST", serve_register_listener)

    @router.post("/hub", status_code=201, response_model=EventSubscription)
    async def register_listener(
        body: EventSubscriptionInput, session: SessionDep, request: Request
    ) -> Response:
        """Registers a listener: matching events are POSTed to {callback}/listener/{eventName}."""
        return await register(body, session)

    @router.get("/hub/{id}", response_model=EventSubscription)
    async def get_listener(id: str, session: SessionDep) -> Response:
        """Retrieves a hub subscription."""
        row = (await session.execute(select(subs).where(subs.c.id == id))).first()
        if row is None:
            raise NotFound("Subscription not found", f"No hub subscription with id {id}")
        return Response(orjson.dumps(to_body(row)), media_type="application/json")

    @router.delete("/hub/{id}", status_code=204)
    async def unregister_listener(id: str, session: SessionDep) -> Response:
        """Unregisters a listener; its pending deliveries are dropped."""
        result = await session.execute(delete(subs).where(subs.c.id == id))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("Subscription not found", f"No hub subscription with id {id}")
        return Response(status_code=204)

    return router


class HubDeliverer:
    """Delivers due ``hub_delivery`` rows; several processes may run it (rows are claimed with SKIP LOCKED)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: KitTables,
        client: httpx.AsyncClient,
        *,
        poll_interval: float = 0.5,
        max_attempts: int = 12,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.tables = tables
        self.client = client
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.delivered = 0

    def backoff(self, attempts: int) -> float:
        delay: float = min(self.backoff_max, self.backoff_base * (2 ** (attempts - 1)))
        return delay * (0.8 + 0.4 * random.random())

    async def run(self) -> None:
        while True:
            try:
                n = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("hub delivery error", extra={"error": repr(exc)})
                n = 0
            if n == 0:
                await asyncio.sleep(self.poll_interval)

    async def deliver_due(self, limit: int = 50) -> int:
        d, s = self.tables.hub_delivery, self.tables.hub_subscription
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(d.c.id, d.c.event_type, d.c.payload, d.c.attempts, s.c.callback)
                    .join(s, s.c.id == d.c.subscription_id)
                    .where(
                        d.c.delivered_at.is_(None),
                        d.c.failed_at.is_(None),
                        d.c.next_attempt_at <= datetime.now(UTC),
                    )
                    .order_by(d.c.id)
                    .limit(limit)
                    .with_for_update(of=d, skip_locked=True)
                )
            ).all()
            results = await asyncio.gather(*(self._post(row) for row in rows))
            now = datetime.now(UTC)
            for row, error in zip(rows, results, strict=True):
                if error is None:
                    await session.execute(
                        update(d).where(d.c.id == row.id).values(delivered_at=now, attempts=row.attempts + 1)
                    )
                    self.delivered += 1
                    continue
                attempts = row.attempts + 1
                values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500]}
                if attempts >= self.max_attempts:
                    values["failed_at"] = now
                    log.error("hub delivery abandoned", extra={"delivery": row.id, "error": error})
                else:
                    values["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempts))
                await session.execute(update(d).where(d.c.id == row.id).values(**values))
        return len(rows)

    async def _post(self, row: Any) -> str | None:
        from .events import listener_name

        url = f"{row.callback.rstrip('/')}/listener/{listener_name(row.event_type)}"
        headers = {"Content-Type": "application/json"}
        if row.payload.get("correlationId"):
            headers["X-Correlation-ID"] = row.payload["correlationId"]
        try:
            response = await self.client.post(url, content=orjson.dumps(row.payload), headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
