"""The payment service under uvicorn in its own process, for the TMF676 conformance kit and schemathesis
(as ``conftest.run_ordering_server`` runs ordering): a fresh database built by alembic, no Kafka,
reconciliation on."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from switchboard_dev import testing

from .conftest import REPO_ROOT, LiveServer, _bound_socket, _wait_ready

PAYMENT_DIR = REPO_ROOT / "services" / "payment"
PAYMENT_BASE_PATH = "/tmf-api/paymentManagement/v4"


@dataclass(frozen=True)
class PaymentServer(LiveServer):
    @property
    def api_url(self) -> str:
        return self.url + PAYMENT_BASE_PATH


@contextlib.contextmanager
def run_payment_server(pg_server_url: str, log_dir: Path) -> Iterator[PaymentServer]:
    db_url = testing.create_database(pg_server_url, "sb_payment_contract")
    try:
        testing.migrate(PAYMENT_DIR / "alembic.ini", db_url)
        sock = _bound_socket()
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        log = log_dir / "server.log"
        suite_wide = (
            "KAFKA_BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "AUTH_JWKS_URL",
            "AUTH_ISSUER",
            "AUTH_AUDIENCE",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENT_") and k not in suite_wide}
        env.update(testing.issuer().env("PAYMENT_"))  # trusts the tests' token issuer
        env.update(
            {
                "PAYMENT_DATABASE_URL": db_url,
                "PAYMENT_PUBLIC_BASE_URL": url,
                "PAYMENT_WORKER_ENABLED": "true",
                "PAYMENT_WORKER_POLL_INTERVAL": "0.2",
                "PAYMENT_RECONCILE_DELAY_SECONDS": "0.5",
                "PAYMENT_GATEWAY_LATE_SUCCESS_SECONDS": "1",
                "PAYMENT_GATEWAY_TIMEOUT_SECONDS": "2",
                "PAYMENT_HUB_ENABLED": "false",
                "PAYMENT_LOG_LEVEL": "WARNING",
            }
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "--factory", "payment.app:create_app",
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
            yield PaymentServer(url=url, log=log)
        finally:
            testing.stop_process(process)
    finally:
        with contextlib.suppress(Exception):
            testing.drop_database(db_url)


@pytest.fixture(scope="module")
def payment_server(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaymentServer]:
    """One server and database per test module (the kit checks every listed payment)."""
    with run_payment_server(pg_server_url, tmp_path_factory.mktemp("payment-server")) as server:
        yield server
