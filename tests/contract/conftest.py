"""A real HTTP server for the contract tests: the ordering service under uvicorn in its own process.

The conformance kits and schemathesis talk to it over TCP exactly as a client would, so
hrefs, Location headers and the fulfilment worker are the production code paths.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from switchboard_dev import testing

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDERING_DIR = REPO_ROOT / "services" / "ordering"
ORDERING_BASE_PATH = "/tmf-api/productOrderingManagement/v4"
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    log: Path  # the server's stdout and stderr

    @property
    def api_url(self) -> str:
        return self.url + ORDERING_BASE_PATH

    @property
    def headers(self) -> dict[str, str]:
        """A bearer token of the integration role (what conformance kits and systems use)."""
        return testing.auth_headers("integration")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _bound_socket() -> socket.socket:
    """A listening socket on a free port; uvicorn inherits it (``--fd``), so no other process can take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"ordering exited with {process.returncode} during startup:\n{log.read_text(errors='replace')}"
            )
        try:
            response = httpx.get(f"{url}/health/ready", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(
        f"ordering not ready after {STARTUP_TIMEOUT}s ({last}):\n{log.read_text(errors='replace')}"
    )


@contextlib.contextmanager
def run_ordering_server(pg_server_url: str, log_dir: Path) -> Iterator[LiveServer]:
    """The ordering service on a free 127.0.0.1 port, against a fresh database built by alembic.

    No Kafka (events stay in the outbox), fulfilment worker on with short delays so orders
    really move through their states while the kits and schemathesis run.
    """
    db_url = testing.create_database(pg_server_url, "sb_ordering_contract")
    try:
        testing.migrate(ORDERING_DIR / "alembic.ini", db_url)
        sock = _bound_socket()
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        log = log_dir / "server.log"
        env = {
            k: v
            for k, v in os.environ.items()
            # The suite-wide fallbacks would point the service at a broker or another database.
            if not k.startswith("ORDERING_")
            and k
            not in (
                "KAFKA_BOOTSTRAP_SERVERS",
                "DATABASE_URL",
                "AUTH_JWKS_URL",
                "AUTH_ISSUER",
                "AUTH_AUDIENCE",
            )
        }
        env.update(testing.issuer().env("ORDERING_"))  # trusts the tests' token issuer
        env.update(
            {
                "ORDERING_DATABASE_URL": db_url,
                "ORDERING_PUBLIC_BASE_URL": url,
                "ORDERING_WORKER_ENABLED": "true",
                "ORDERING_WORKER_POLL_INTERVAL": "0.2",
                "ORDERING_PROVISIONING_DELAY_SECONDS": "0.5",
                "ORDERING_CANCELLATION_DELAY_SECONDS": "0.5",
                # Without Kafka the relay never writes hub deliveries; no reason to poll for them.
                "ORDERING_HUB_ENABLED": "false",
                "ORDERING_LOG_LEVEL": "WARNING",
            }
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "--factory", "ordering.app:create_app",
                    "--fd", str(sock.fileno()), "--no-access-log", "--log-level", "warning",
                ],
                env=env,
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
            )  # fmt: skip
        sock.close()  # the child holds its own copy
        try:
            _wait_ready(url, process, log)
            yield LiveServer(url=url, log=log)
        finally:
            testing.stop_process(process)
    finally:
        with contextlib.suppress(Exception):
            testing.drop_database(db_url)


@pytest.fixture(scope="module")
def ordering_server(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server and database per test module: the CTK checks every listed order for its mandatory
    attributes, so it must not see the minimal orders schemathesis creates."""
    with run_ordering_server(pg_server_url, tmp_path_factory.mktemp("ordering-server")) as server:
        yield server


# ------------------------------------------------------------------------------------- billing

BILLING_DIR = REPO_ROOT / "services" / "billing"
BILLING_BASE_PATH = "/tmf-api/customerBillManagement/v4"


@dataclass(frozen=True)
class BillingServer(LiveServer):
    @property
    def api_url(self) -> str:
        return self.url + BILLING_BASE_PATH


async def _load_billing_demo(db_url: str, base_url: str) -> None:
    """The demo accounts, rates and bills (billing.demo), written through the service's own code: the
    TMF678 kit creates no bill and no rate, it reads them."""
    from billing import demo
    from billing.config import Settings
    from billing.models import kit
    from billing.service import BillingService
    from switchboard_kit import db
    from switchboard_kit.store import Store

    settings = Settings(database_url=db_url)
    engine = db.create_engine(db_url, pool_size=1, max_overflow=0)
    try:
        service = BillingService(base_url=base_url + BILLING_BASE_PATH, tax_rates=settings.tax_rates)
        await demo.load(Store(engine, kit), service)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def run_billing_server(pg_server_url: str, log_dir: Path) -> Iterator[BillingServer]:
    """The billing service on a free 127.0.0.1 port, against a fresh database built by alembic and
    holding the demo data. No Kafka (events stay in the outbox); the scheduler runs, so bills on demand
    really finish while the kit and schemathesis run."""
    import asyncio

    db_url = testing.create_database(pg_server_url, "sb_billing_contract")
    try:
        testing.migrate(BILLING_DIR / "alembic.ini", db_url)
        sock = _bound_socket()
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        asyncio.run(_load_billing_demo(db_url, url))
        log = log_dir / "server.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("BILLING_")
            and k
            not in (
                "KAFKA_BOOTSTRAP_SERVERS",
                "DATABASE_URL",
                "AUTH_JWKS_URL",
                "AUTH_ISSUER",
                "AUTH_AUDIENCE",
            )
        }
        env.update(testing.issuer().env("BILLING_"))
        env.update(
            {
                "BILLING_DATABASE_URL": db_url,
                "BILLING_PUBLIC_BASE_URL": url,
                "BILLING_WORKER_ENABLED": "true",
                "BILLING_WORKER_POLL_INTERVAL": "0.2",
                "BILLING_HUB_ENABLED": "false",
                "BILLING_LOG_LEVEL": "WARNING",
            }
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "--factory", "billing.app:create_app",
                    "--fd", str(sock.fileno()), "--no-access-log", "--log-level", "warning",
                ],
                env=env,
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
            )  # fmt: skip
        sock.close()
        try:
            _wait_ready(url, process, log)
            yield BillingServer(url=url, log=log)
        finally:
            testing.stop_process(process)
    finally:
        with contextlib.suppress(Exception):
            testing.drop_database(db_url)


@pytest.fixture(scope="module")
def billing_server(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingServer]:
    """One billing server and database per test module (the kit checks every listed bill and rate)."""
    with run_billing_server(pg_server_url, tmp_path_factory.mktemp("billing-server")) as server:
        yield server
