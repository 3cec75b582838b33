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
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy import true as sa_true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import auth, openapi
from .bodies import ensure_storable, parse_body
from .db import KitTables
from .errors import BadRequest, ErrorCode, NotFound
from .ids import new_id
from .openapi import OpenApiPart
from .query import QueryCompiler, check_event_query
from .store import Store

log = logging.getLogger("switchboard.hub")

_INVALID_HUB_QUERY = ErrorCode.INVALID_HUB_QUERY
_PATH = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_]*(\.@?[A-Za-z_][A-Za-z0-9_]*)*$")


def _ipv6() -> str:
    h = "[0-9A-Fa-f]{1,4}"
    forms = [f"(?:{h}:){{7}}{h}", f"(?:{h}:){{1,7}}:", f":(?::{h}){{1,7}}", "::"]
    forms += [f"(?:{h}:){{{n}}}(?::{h}){{1,{7 - n}}}" for n in range(1, 7)]
    return "|".join(forms)


_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
#: What a hub ``callback`` must be, in the document and in the server alike: an absolute http(s) URL
#: whose host is a DNS name, an IPv4 or a bracketed IPv6 address (no user info), with an optional port
#: and printable ASCII after it (percent-encode the rest).
CALLBACK_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:{_LABEL}(?:\.{_LABEL})*|\[(?:{_ipv6()})\])(?::{_PORT})?(?:[/?#][!-~]*)?$"
)
_CALLBACK = re.compile(CALLBACK_PATTERN)


class EventSubscriptionInput(BaseModel):
    """Request body of ``POST /hub``."""

    model_config = ConfigDict(extra="forbid")
    callback: str = Field(
        min_length=1,
        description="Base URL of the listener (an absolute http(s) URL); events go to {callback}/listener/{eventName}",
        json_schema_extra={"pattern": CALLBACK_PATTERN},
    )
    query: str | None = Field(
        default=None, description="TMF630 filter on the event, e.g. eventType=ProductOrderCreateEvent"
    )


class EventSubscription(BaseModel):
    id: str
    callback: str
    query: str | None = None


class HubDeliveryStatus(BaseModel):
    """How a subscription's deliveries are going: answer of ``GET /hub/{id}/deliveryStatus``.

    Counts cover the deliveries still kept (finished ones are deleted after the service's
    ``HUB_DELIVERY_RETENTION``)."""

    model_config = ConfigDict(populate_by_name=True)
    id: str = Field(description="The subscription's id")
    callback: str
    pending: int = Field(description="Deliveries not yet made, waiting for their next attempt")
    delivered: int = Field(description="Deliveries the listener accepted (2xx)")
    failed: int = Field(description="Deliveries abandoned after the last attempt")
    attempts: int = Field(description="POSTs made to the listener, successful or not")
    lastAttempt: datetime | None = Field(default=None, description="When the listener was last called")
    lastDelivered: datetime | None = Field(
        default=None, description="When the listener last accepted an event"
    )
    lastError: str | None = Field(
        default=None, description="What went wrong at the last failed attempt, e.g. 'HTTP 500'"
    )
    lastErrorAt: datetime | None = Field(default=None, description="When the last failed attempt was made")
    nextAttempt: datetime | None = Field(
        default=None, description="When the next pending delivery is due (none when nothing is pending)"
    )
    type: str = Field(default="HubDeliveryStatus", alias="@type")


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
    """400 unless ``callback`` is an absolute http(s) URL with a host that deliveries can be POSTed to
    (:data:`CALLBACK_PATTERN`, which the OpenAPI document states)."""
    problem = None
    try:
        parts = urlsplit(callback)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            problem = "callback must be an absolute http(s) URL with a host"
        elif any(c.isspace() for c in callback):
            problem = "callback must not contain whitespace"
        elif not _CALLBACK.fullmatch(callback):
            problem = (
                "callback must be http(s)://host[:port][/path], the host a DNS name or an IP address"
                " without user info, in printable ASCII (percent-encode the rest)"
            )
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


def _subscription(row: Mapping[str, Any]) -> dict[str, Any]:
    body = {"id": row["id"], "callback": row["callback"]}
    if row["query"] is not None:
        body["query"] = row["query"]
    return body


def _not_found(id: str) -> NotFound:
    return NotFound("Subscription not found", f"No hub subscription with id {id}")


# Subscriptions are for other systems and for managers; agents and customers have no use for them.
HUB_ROLES = (auth.INTEGRATION, auth.MANAGER)


class _Hub:
    def __init__(
        self, runtime: Any, compilers: Mapping[str, QueryCompiler], event_types: Collection[str]
    ) -> None:
        self.runtime = runtime
        self.compilers = compilers
        self.event_types = event_types

    @property
    def store(self) -> Store:
        store: Store = self.runtime.store
        return store

    async def register(self, request: Request) -> Response:
        auth.require(request, HUB_ROLES)
        body = parse_body(EventSubscriptionInput, await request.body(), request.headers.get("content-type"))
        ensure_storable({"callback": body.callback, "query": body.query})
        check_hub_query(body.query, self.compilers, self.event_types)
        check_callback(body.callback)
        row = {"id": new_id(), "callback": body.callback, "query": body.query}
        async with self.store.unit_of_work() as uow:
            await uow.execute(insert(uow.tables.hub_subscription).values(**row))
        return Response(
            orjson.dumps(_subscription(row)),
            status_code=201,
            media_type="application/json",
            headers={"Location": f"{self.runtime.base_url}/hub/{row['id']}"},
        )

    async def retrieve(self, request: Request) -> Response:
        auth.require(request, HUB_ROLES)
        id = request.path_params["id"]
        subs = self.store.tables.hub_subscription
        rows = await self.store.fetch(select(subs).where(subs.c.id == id))
        if not rows:
            raise _not_found(id)
        return Response(orjson.dumps(_subscription(rows[0])), media_type="application/json")

    async def delivery_status(self, request: Request) -> Response:
        id = request.path_params["id"]
        subs, d = self.store.tables.hub_subscription, self.store.tables.hub_delivery
        pending = d.c.delivered_at.is_(None) & d.c.failed_at.is_(None)
        latest_error = (
            select(d.c.last_error, d.c.last_error_at)
            .where(d.c.subscription_id == id, d.c.last_error_at.is_not(None))
            .order_by(d.c.last_error_at.desc())
            .limit(1)
            .lateral()
        )
        totals = (
            select(
                func.count().filter(pending).label("pending"),
                func.count(d.c.delivered_at).label("delivered"),
                func.count(d.c.failed_at).label("failed"),
                func.coalesce(func.sum(d.c.attempts), 0).label("attempts"),
                func.max(d.c.last_attempt_at).label("last_attempt"),
                func.max(d.c.delivered_at).label("last_delivered"),
                func.min(case((pending, d.c.next_attempt_at))).label("next_attempt"),
            )
            .where(d.c.subscription_id == id)
            .subquery()
        )
        rows = await self.store.fetch(
            select(
                subs.c.id, subs.c.callback, totals, latest_error.c.last_error, latest_error.c.last_error_at
            )
            .select_from(subs.join(totals, sa_true()).outerjoin(latest_error, sa_true()))
            .where(subs.c.id == id)
        )
        if not rows:
            raise _not_found(id)
        row = rows[0]
        status = HubDeliveryStatus(
            id=row["id"],
            callback=row["callback"],
            pending=row["pending"],
            delivered=row["delivered"],
            failed=row["failed"],
            attempts=row["attempts"],
            lastAttempt=row["last_attempt"],
            lastDelivered=row["last_delivered"],
            lastError=row["last_error"],
            lastErrorAt=row["last_error_at"],
            nextAttempt=row["next_attempt"],
        )
        body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        return Response(orjson.dumps(body), media_type="application/json")

    async def unregister(self, request: Request) -> Response:
        auth.require(request, HUB_ROLES)
        id = request.path_params["id"]
        subs = self.store.tables.hub_subscription
        async with self.store.unit_of_work() as uow:
            if not await uow.fetch(delete(subs).where(subs.c.id == id).returning(subs.c.id)):
                raise _not_found(id)
        return Response(status_code=204)


def hub_routes(
    runtime: Any, base_path: str, compilers: Mapping[str, QueryCompiler], event_types: Collection[str]
) -> list[BaseRoute]:
    """``POST /hub``, ``GET /hub/{id}``, ``DELETE /hub/{id}`` and ``GET /hub/{id}/deliveryStatus`` under
    ``base_path``. A subscription's
    query must be able to match the service's events: ``eventType`` among ``event_types``, and
    ``event.<resource>.<attribute>`` known to ``compilers[<resource>]`` (see :func:`check_hub_query`)."""
    hub = _Hub(runtime, compilers, event_types)
    return [
        Route(f"{base_path}/hub", hub.register, methods=["POST"]),
        Route(f"{base_path}/hub/{{id}}", hub.retrieve, methods=["GET"]),
        Route(f"{base_path}/hub/{{id}}", hub.unregister, methods=["DELETE"]),
        Route(f"{base_path}/hub/{{id}}/deliveryStatus", hub.delivery_status, methods=["GET"]),
    ]


def hub_openapi(base_path: str) -> OpenApiPart:
    """The OpenAPI operations of :func:`hub_routes`."""
    tags = ["events subscription"]
    subscription = openapi.json_content(openapi.ref(EventSubscription))
    paths: dict[str, dict[str, Any]] = {
        f"{base_path}/hub": {
            "post": {
                "tags": tags,
                "operationId": "registerListener",
                "summary": "Registers a listener",
                "description": "Registers a listener: matching events are POSTed to {callback}/listener/{eventName}.",
                "requestBody": {
                    "required": True,
                    "content": openapi.json_content(openapi.ref(EventSubscriptionInput)),
                },
                "responses": {
                    "201": {"description": "The subscription", "content": subscription},
                    **openapi.errors(400, 413, 415),
                },
            }
        },
        f"{base_path}/hub/{{id}}": {
            "get": {
                "tags": tags,
                "operationId": "retrieveListener",
                "summary": "Retrieves a hub subscription",
                "description": "Retrieves a hub subscription.",
                "parameters": [openapi.path_id("subscription")],
                "responses": {
                    "200": {"description": "The subscription", "content": subscription},
                    **openapi.errors(404),
                },
            },
            "delete": {
                "tags": tags,
                "operationId": "unregisterListener",
                "summary": "Unregisters a listener",
                "description": "Unregisters a listener; its pending deliveries are dropped.",
                "parameters": [openapi.path_id("subscription")],
                "responses": {"204": {"description": "Unregistered"}, **openapi.errors(404)},
            },
        },
        f"{base_path}/hub/{{id}}/deliveryStatus": {
            "get": {
                "tags": tags,
                "operationId": "retrieveListenerDeliveryStatus",
                "summary": "Retrieves how a listener's deliveries are going",
                "description": (
                    "How the deliveries of a hub subscription are going: pending, delivered and abandoned"
                    " deliveries, attempts made, the last attempt, the last error and when the next"
                    " attempt is due. A failing delivery is retried with exponential backoff and"
                    " abandoned after the service's maximum number of attempts. An extension of TMF630."
                ),
                "parameters": [openapi.path_id("subscription")],
                "responses": {
                    "200": {
                        "description": "The delivery status",
                        "content": openapi.json_content(openapi.ref(HubDeliveryStatus)),
                    },
                    **openapi.errors(404),
                },
            }
        },
    }
    return paths, [
        (EventSubscriptionInput, "validation"),
        (EventSubscription, "serialization"),
        (HubDeliveryStatus, "serialization"),
    ]


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
                    select(
                        d.c.id, d.c.subscription_id, d.c.event_type, d.c.payload, d.c.attempts, s.c.callback
                    )
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
            attempted = datetime.now(UTC)
            results = await asyncio.gather(*(self._post(row) for row in rows))
            now = datetime.now(UTC)
            for row, error in zip(rows, results, strict=True):
                attempts = row.attempts + 1
                values: dict[str, Any] = {"attempts": attempts, "last_attempt_at": attempted}
                if error is None:
                    values["delivered_at"] = now
                    await session.execute(update(d).where(d.c.id == row.id).values(**values))
                    self.delivered += 1
                    continue
                values |= {"last_error": error[:500], "last_error_at": attempted}
                context = {
                    "delivery": row.id,
                    "subscription": row.subscription_id,
                    "eventType": row.event_type,
                    "attempts": attempts,
                    "error": error,
                }
                if attempts >= self.max_attempts:
                    values["failed_at"] = now
                    log.error("hub delivery abandoned", extra=context)
                else:
                    values["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempts))
                    log.warning(
                        "hub delivery failed, will retry",
                        extra={**context, "nextAttempt": values["next_attempt_at"].isoformat()},
                    )
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
