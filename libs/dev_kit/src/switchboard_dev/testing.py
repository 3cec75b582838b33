"""Test helpers shared by every service: throwaway databases migrated by alembic, and the app in-process.

Tests use a real PostgreSQL: ``DATABASE_URL`` when set, otherwise an embedded server.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from .issuer import LocalIssuer
from .manifest import REPO_ROOT


def reference_dir() -> Path:
    """Where the TM Forum reference material lives (``TMF_REFERENCE_DIR``, default ``../shared``)."""
    return Path(os.environ.get("TMF_REFERENCE_DIR") or REPO_ROOT.parent / "shared")


def require_reference() -> bool:
    return os.environ.get("REQUIRE_TMF_REFERENCE") == "1"


def _dsn(url: str) -> str:
    """SQLAlchemy URL -> asyncpg DSN (drop the +asyncpg driver marker)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(server_url: str, prefix: str = "sb_test") -> str:
    """Creates an empty database on the server of ``server_url``; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def database_with(server_url: str, metadata: MetaData, prefix: str = "sb_test") -> Iterator[str]:
    """A throwaway database holding ``metadata``'s tables, created directly (no migrations); dropped after."""
    url = create_database(server_url, prefix)
    try:

        async def create() -> None:
            from switchboard_kit.db import create_engine

            engine = create_engine(url)
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            await engine.dispose()

        asyncio.run(create())
        yield url
    finally:
        drop_database(url)


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def drop_database(url: str) -> None:
    parsed = make_url(url)
    server = parsed.set(database="postgres").render_as_string(hide_password=False)
    with contextlib.suppress(Exception):
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))


def alembic_config(alembic_ini: Path, url: str) -> Config:
    config = Config(str(alembic_ini))
    # ConfigParser interpolation: a socket path in the URL is percent-encoded.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(alembic_ini: Path, url: str) -> None:
    """``alembic upgrade head`` for one service (run from sync code: env.py starts its own loop)."""
    command.upgrade(alembic_config(alembic_ini, url), "head")


@contextlib.asynccontextmanager
async def running(app: FastAPI, role: str | None = "integration") -> AsyncIterator[httpx.AsyncClient]:
    """Runs the app's lifespan and yields a client that calls it in-process, with a bearer token of
    ``role`` from the :func:`issuer` (None: no token). The app must trust the issuer
    (:func:`auth_settings`)."""
    headers = issuer().headers(role) if role is not None else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            yield client


@functools.cache
def issuer() -> LocalIssuer:
    """The tests' identity provider: one signing key per test run, in a folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="switchboard-test-auth-"))
    atexit.register(shutil.rmtree, folder, True)
    return LocalIssuer(folder)


def auth_settings() -> dict[str, str]:
    """Settings that make a service trust :func:`issuer` (``auth_jwks_url``, issuer, audience)."""
    return issuer().settings()


def auth_headers(role: str = "integration", **kw: Any) -> dict[str, str]:
    return issuer().headers(role, **kw)


@contextlib.asynccontextmanager
async def rolled_back(app: FastAPI) -> AsyncIterator[None]:
    """Everything the running ``app`` stores inside the block is rolled back at its end: the app's
    store runs on one connection in a transaction (its units of work become savepoints). Background
    tasks that use their own connections (relay, hub deliveries) do not see what the block wrote."""
    async with app.state.runtime.store.pin():
        yield


async def sql(app: FastAPI, statement: str, **params: Any) -> list[dict[str, Any]]:
    """Runs ``statement`` (named ``:params``) through the app's store: inside :func:`rolled_back` it sees
    what the test wrote. Returns the rows, if any."""
    from sqlalchemy import text

    rows: list[dict[str, Any]] = await app.state.runtime.store.fetch(text(statement).bindparams(**params))
    return rows


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """Serves the ASGI ``app`` with uvicorn on ``127.0.0.1:port`` for the block: a real HTTP peer
    (a hub listener, a sibling service) on loopback, no mocks."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises what stopped it (port taken...)
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
