"""App factory: settings, lifespan (engine, relay, hub deliverer, scheduler, consumers), TMF errors, health."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from . import auth, db, logs, openapi, retention
from .clients import CircuitBreaker, SiblingClient, Siblings
from .consumer import Consumer, ConsumerRunner, Retry, describe, supervise
from .errors import CODE_BY_STATUS, ApiError, ErrorCode, invalid_body
from .hub import HubDeliverer, hub_openapi, hub_routes
from .middleware import CorsMiddleware, RequestMiddleware
from .relay import OutboxRelay
from .resource import OrjsonResponse, Resource, openapi_part, routes
from .schedule import Scheduler
from .settings import ServiceSettings
from .store import Store

log = logging.getLogger("switchboard.app")


@dataclass
class Runtime:
    """What a running service holds: reached from handlers as ``request.app.state.runtime``."""

    name: str
    settings: ServiceSettings
    tables: db.KitTables
    base_url: str
    engine: AsyncEngine = field(init=False)
    store: Store = field(init=False)  # the service's one persistence seam
    verifier: auth.Verifier = field(init=False)  # bearer tokens
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    hub_http: httpx.AsyncClient = field(init=False)  # the hub's deliveries, with the hub's timeout
    siblings: Siblings = field(init=False)  # clients of the sibling services, by name
    relay: OutboxRelay | None = None
    deliverer: HubDeliverer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consumers: list[ConsumerRunner[Any]] = field(default_factory=list)
    consumer_tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _error_response(
    code: ErrorCode,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    reason: str | None = None,
) -> OrjsonResponse:
    """A TMF Error body for a catalogue ``code`` (its status, and its standard reason unless given)."""
    body: dict[str, Any] = {"code": code.value, "reason": reason or code.reason, "status": str(code.status)}
    body["@type"] = "Error"
    if message:
        body["message"] = message
    return OrjsonResponse(body, status_code=code.status, headers=headers)


# 22021 character_not_in_repertoire (NUL in text), 22P05 untranslatable_character (\u0000 in jsonb).
_BAD_TEXT_SQLSTATES = frozenset({"22021", "22P05"})

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route serves at this path. Each method is probed through ``matches``, so routes
    inside included routers count too (FastAPI does not list them in ``app.router.routes``)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> OrjsonResponse:
        return OrjsonResponse(exc.to_body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> OrjsonResponse:
        # The same code and reason as errors.invalid_body, which PATCH and service code raise.
        error = invalid_body(exc.errors())
        return OrjsonResponse(error.to_body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        code = CODE_BY_STATUS.get(exc.status_code)
        detail: str | None = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; Allow must list every method.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        if code is None:  # a status outside the catalogue: its own phrase
            body = {
                "code": "error",
                "reason": detail or "Error",
                "status": str(exc.status_code),
                "@type": "Error",
            }
            return OrjsonResponse(body, status_code=exc.status_code, headers=headers)
        if detail is not None and detail.lower() == code.reason.lower():
            detail = None  # Starlette's phrase for the status says no more than the reason
        return _error_response(code, detail, headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> OrjsonResponse:
        return _database_error(exc.orig)

    @app.exception_handler(asyncpg.PostgresError)
    async def driver_error(request: Request, exc: asyncpg.PostgresError) -> OrjsonResponse:
        # Raised as is by hand-written SQL on a db.write_connection (SQLAlchemy wraps the rest).
        return _database_error(exc)

    def _database_error(exc: BaseException | None) -> OrjsonResponse:
        if getattr(exc, "sqlstate", None) in _BAD_TEXT_SQLSTATES:
            # Only client text reaches PostgreSQL with a NUL character (path, query or JSON body).
            return _error_response(
                ErrorCode.INVALID_CHARACTER, "Text must not contain the NUL character (\\u0000)"
            )
        log.exception("database error")
        return _error_response(ErrorCode.INTERNAL_ERROR)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled error")
        return _error_response(ErrorCode.INTERNAL_ERROR)


def create_service_app(
    *,
    name: str,
    title: str,
    version: str,
    settings: ServiceSettings,
    base_path: str,
    metadata_tables: db.KitTables,
    resources: Sequence[Resource],
    topics: Sequence[str],
    routers: Sequence[APIRouter] = (),
    scheduler: Scheduler | None = None,
    consumers: Sequence[Consumer[Any]] = (),
    description: str = "",
) -> FastAPI:
    """Builds a TMF service app. ``base_path`` like ``/tmf-api/productOrderingManagement/v4``.

    Each of ``resources`` is served (and documented) from its declaration, next to the hub; ``routers``
    are for operations that are not a resource's (FastAPI routes). ``scheduler`` runs the service's
    due rows and cron schedules (:mod:`switchboard_kit.schedule`) for as long as the app runs, and
    ``consumers`` are run with the app's lifecycle (:mod:`switchboard_kit.consumer`)."""
    logs.configure(name, settings.log_level)
    base_url = settings.public_base_url.rstrip("/") + base_path
    runtime = Runtime(name=name, settings=settings, tables=metadata_tables, base_url=base_url)

    def wake_relay() -> None:
        if runtime.relay is not None:
            runtime.relay.wake()  # publish without waiting for the next poll

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.engine = db.create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pre_ping=settings.db_pool_pre_ping,
        )
        # Everything loaded at start-up lives as long as the process: keep it out of the
        # collector's scans, and collect young objects less often (full collections of a
        # large heap showed up as 80 ms pauses in the p99).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*settings.gc_thresholds)
        runtime.store = Store(runtime.engine, metadata_tables, on_commit=wake_relay)
        runtime.sessionmaker = db.sessionmaker(runtime.engine)
        runtime.hub_http = httpx.AsyncClient(timeout=settings.hub_timeout)
        runtime.siblings = sibling_clients(settings)
        app.state.sessionmaker = runtime.sessionmaker
        if settings.kafka_bootstrap_servers and settings.relay_enabled:
            runtime.relay = OutboxRelay(
                runtime.engine,
                runtime.sessionmaker,
                metadata_tables,
                bootstrap=settings.kafka_bootstrap_servers,
                topics=list(topics),
                lock_key=zlib.crc32(f"switchboard-relay-{name}".encode()),
                idempotence=settings.kafka_enable_idempotence,
                client_id=f"{settings.kafka_client_id}-{name}",
                batch_size=settings.relay_batch_size,
                poll_interval=settings.relay_poll_interval,
                replay_on_empty_topics=settings.relay_replay_on_empty_topics,
            )
            runtime.tasks.append(asyncio.create_task(runtime.relay.run(), name=f"{name}-relay"))
        if settings.hub_enabled:
            runtime.deliverer = HubDeliverer(
                runtime.sessionmaker,
                metadata_tables,
                runtime.hub_http,
                poll_interval=settings.hub_poll_interval,
                max_attempts=settings.hub_max_attempts,
                backoff_base=settings.hub_backoff_base,
                backoff_max=settings.hub_backoff_max,
            )
            runtime.tasks.append(asyncio.create_task(runtime.deliverer.run(), name=f"{name}-hub"))
        if settings.retention_interval > 0:
            kept = retention.Retention(
                outbox=timedelta(seconds=settings.outbox_retention),
                hub_delivery=timedelta(seconds=settings.hub_delivery_retention),
                processed_event=timedelta(seconds=settings.processed_event_retention),
                idempotency_key=timedelta(seconds=settings.idempotency_key_retention),
            )
            runtime.tasks.append(
                asyncio.create_task(
                    retention.run(
                        runtime.sessionmaker, metadata_tables, kept, interval=settings.retention_interval
                    ),
                    name=f"{name}-retention",
                )
            )
        if scheduler is not None:
            runtime.tasks.append(asyncio.create_task(scheduler.run(runtime.store), name=f"{name}-scheduler"))
        if consumers and not settings.kafka_bootstrap_servers:
            log.warning("no broker configured: the service's consumers do not run")
        elif consumers:
            assert settings.kafka_bootstrap_servers
            retry = Retry(
                settings.consumer_max_attempts, settings.consumer_backoff_base, settings.consumer_backoff_max
            )
            for declared in consumers:
                runner = ConsumerRunner(
                    declared,
                    runtime.store,
                    bootstrap=settings.kafka_bootstrap_servers,
                    retry=retry,
                    client_id=settings.kafka_client_id,
                )
                runtime.consumers.append(runner)
                task = asyncio.create_task(supervise(runner), name=f"{name}-consumer-{declared.group}")
                runtime.consumer_tasks.append(task)
        try:
            yield
        finally:
            for runner in runtime.consumers:
                runner.stop()  # ends after the record in hand, its offset committed
            if runtime.consumer_tasks:
                await asyncio.wait(runtime.consumer_tasks, timeout=10)
            for task in [*runtime.tasks, *runtime.consumer_tasks]:
                task.cancel()
            await asyncio.gather(*runtime.tasks, *runtime.consumer_tasks, return_exceptions=True)
            runtime.tasks.clear()
            runtime.consumers.clear()
            runtime.consumer_tasks.clear()
            if runtime.relay is not None:
                await runtime.relay._close_producer()
            await runtime.hub_http.aclose()
            await runtime.siblings.aclose()
            await runtime.engine.dispose()

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        # Every JSON answer is written by orjson: the resources' (resource.json_response), the
        # errors' and the probes'.
        default_response_class=OrjsonResponse,
        **NO_CDN_DOCS,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    limits = {"default_limit": settings.default_page_limit, "max_limit": settings.max_page_limit}
    app.router.routes.extend(routes(resources, runtime, base_path=base_path, **limits))
    compilers = {r.events.resource: r.compiler(**limits) for r in resources}
    event_types = [t for r in resources for t in r.events.types]
    app.router.routes.extend(hub_routes(runtime, base_path, compilers, event_types))
    install_docs(app)
    for router in routers:
        app.include_router(router, prefix=base_path)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> OrjsonResponse:
        """Readiness: the database answers and, when configured, the broker is reachable. Each consumer's
        state and lag are in ``consumers``: a stopped consumer is a 503, lag alone never is."""
        checks: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if settings.kafka_bootstrap_servers:
            checks["broker"] = await _broker_check(settings.kafka_bootstrap_servers)
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ok", "checks": checks}
        if runtime.consumers:
            body["consumers"] = await describe(runtime.consumers, runtime.consumer_tasks)
            ok = ok and all(c["state"] != "stopped" for c in body["consumers"].values())
        body["status"] = "ok" if ok else "unavailable"
        return OrjsonResponse(body, status_code=200 if ok else 503)

    runtime.verifier = auth.Verifier(
        jwks_url=settings.auth_jwks_url,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        roles_claim=settings.auth_roles_claim,
        party_claim=settings.auth_party_claim,
    )
    # Added first, so it runs inside CORS (a preflight needs no token) and RequestMiddleware (a 401
    # carries the correlation id too).
    app.add_middleware(auth.AuthMiddleware, verifier=runtime.verifier)
    if settings.cors_allow_origins:  # inside RequestMiddleware: preflights get a correlation id too
        app.add_middleware(CorsMiddleware, origins=settings.cors_allow_origins)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes)
    openapi.install(
        app,
        [
            *(
                functools.partial(openapi_part, resource, base_path=base_path, **limits)
                for resource in resources
            ),
            functools.partial(hub_openapi, base_path),
        ],
    )
    return app


def sibling_clients(settings: ServiceSettings) -> Siblings:
    """A :class:`SiblingClient` (and its own breaker) per ``settings.siblings`` entry."""
    return Siblings(
        {
            name: SiblingClient(
                name,
                url,
                connect_timeout=settings.sibling_connect_timeout,
                read_timeout=settings.sibling_read_timeout,
                total_timeout=settings.sibling_total_timeout,
                attempts=settings.sibling_attempts,
                backoff_base=settings.sibling_backoff_base,
                backoff_max=settings.sibling_backoff_max,
                breaker=CircuitBreaker(settings.sibling_breaker_failures, settings.sibling_breaker_reset),
            )
            for name, url in settings.siblings.items()
        }
    )


# FastAPI's /docs and /redoc load their scripts from a CDN, so they are blank offline: turn them off
# and serve the same pages (install_docs) with the assets the fastapi-offline package ships.
NO_CDN_DOCS: dict[str, Any] = {"docs_url": None, "redoc_url": None}
DOCS_ASSETS = "/docs-assets"


def install_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Swagger UI at ``docs_url`` and ReDoc at ``redoc_url``, with every asset served by the app
    itself under :data:`DOCS_ASSETS` (no request leaves for another host, so the pages work offline).
    The app must be built with ``**NO_CDN_DOCS``."""
    app.mount(DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    def urls(request: Request) -> tuple[str, str]:
        """(the OpenAPI document, the assets folder), behind any proxy prefix (``root_path``)."""
        root = str(request.scope.get("root_path", ""))
        return root + (app.openapi_url or "/openapi.json"), root + DOCS_ASSETS

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi_url, assets = urls(request)
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            # Swagger UI would fetch its validity badge from the online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi_url, assets = urls(request)
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )


async def _broker_check(bootstrap: str) -> str:
    """A metadata round trip to the broker (not just a TCP connect)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await asyncio.wait_for(admin.start(), 3)
        await asyncio.wait_for(admin.list_topics(), 3)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
