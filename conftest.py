"""Fixtures shared by every test folder: one real PostgreSQL server for the whole run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``DATABASE_URL`` when set (CI: PostgreSQL 15 on 127.0.0.1:5432), else an embedded server."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from switchboard_dev import infra

    # Not tmp_path: pytest prunes old basetemp folders, which must not hold a live server's data.
    # Removed once the server has stopped (about 40 MB a run): nothing in it outlives the run.
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-test-pg-"))
    try:
        server = infra.start_postgres(data_dir)
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real Kafka-protocol broker (tansu, in memory) on a free port for the whole run."""
    import asyncio

    from switchboard_dev import infra

    instance = infra.Broker(log_path=Path(tmp_path_factory.mktemp("broker")) / "tansu.log")
    asyncio.run(instance.start())
    try:
        yield instance
    finally:
        asyncio.run(instance.stop())
