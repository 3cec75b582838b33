"""A real HTTP server for trouble_ticket's contract tests: the service under uvicorn in its own process.

The TMF621 conformance kit and schemathesis talk to it over TCP exactly as a client would.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from switchboard_dev import testing

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_DIR = REPO_ROOT / "services" / "trouble_ticket"
BASE_PATH = "/tmf-api/troubleTicket/v4"
PREFIX = "TROUBLE_TICKET_"
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class TicketServer:
    url: str  # http://127.0.0.1:PORT
    log: Path

    @property
    def api_url(self) -> str:
        return self.url + BASE_PATH

    @property
    def headers(self) -> dict[str, str]:
        return testing.auth_headers("integration")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import time

    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"trouble_ticket exited with {process.returncode}:\n{log.read_text(errors='replace')}"
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
        f"trouble_ticket not ready after {STARTUP_TIMEOUT}s ({last}):\n{log.read_text(errors='replace')}"
    )


@contextlib.contextmanager
def run_trouble_ticket_server(pg_server_url: str, log_dir: Path) -> Iterator[TicketServer]:
    """The service on a free 127.0.0.1 port against a fresh database built by alembic; no Kafka (events
    stay in the outbox), SLA timers on."""
    import socket

    db_url = testing.create_database(pg_server_url, "sb_trouble_ticket_contract")
    try:
        testing.migrate(SERVICE_DIR / "alembic.ini", db_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        log = log_dir / "server.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(PREFIX)
            and k
            not in (
                "KAFKA_BOOTSTRAP_SERVERS",
                "DATABASE_URL",
                "AUTH_JWKS_URL",
                "AUTH_ISSUER",
                "AUTH_AUDIENCE",
            )
        }
        env.update(testing.issuer().env(PREFIX))
        env.update(
            {
                f"{PREFIX}DATABASE_URL": db_url,
                f"{PREFIX}PUBLIC_BASE_URL": url,
                f"{PREFIX}WORKER_POLL_INTERVAL": "0.2",
                f"{PREFIX}HUB_ENABLED": "false",
                f"{PREFIX}LOG_LEVEL": "WARNING",
            }
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "--factory", "trouble_ticket.app:create_app",
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
            yield TicketServer(url=url, log=log)
        finally:
            testing.stop_process(process)
    finally:
        with contextlib.suppress(Exception):
            testing.drop_database(db_url)


@pytest.fixture(scope="module")
def trouble_ticket_server(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TicketServer]:
    """One server and database per test module: the CTK checks every listed ticket for its mandatory
    attributes, so it must not see the minimal tickets schemathesis creates."""
    with run_trouble_ticket_server(pg_server_url, tmp_path_factory.mktemp("trouble-ticket-server")) as server:
        yield server
