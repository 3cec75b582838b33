"""`make run` as a newcomer meets it: its last start-up line comes only once every service answers and
the demo data is in, and `make token` gives a token that the README's curl needs."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from switchboard_dev.infra import free_port
from switchboard_dev.manifest import REPO_ROOT, SERVICES

from ..scratch import scratch_dir

pytestmark = pytest.mark.e2e

READY_LINE = "Press Ctrl-C to stop."
BASE = "/tmf-api/productOrderingManagement/v4"
BILLING_BASE = "/tmf-api/customerBillManagement/v4"
SEEDED_ORDERS = 7  # ordering.seed: two per customer, and one rejected on purpose
SEEDED_PAYMENTS = 4  # payment.seed: one captured per customer, and one declined card


def test_the_last_start_up_line_means_ready_and_seeded() -> None:
    port, billing_port, broker_port = free_port(), free_port(), free_port()
    with scratch_dir("switchboard-make-run-") as data_dir:
        env = {
            k: v
            for k, v in os.environ.items()
            # The suite-wide fallbacks would point it at CI's shared database server or a broker.
            if not k.startswith(tuple(s.env_prefix for s in SERVICES))
            and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
        }
        # Every service of the suite on a free port, so the test runs next to a `make run`.
        env.update({f"{s.env_prefix}PORT": str(free_port()) for s in SERVICES})
        env.update(
            SWITCHBOARD_DATA_DIR=str(data_dir),
            ORDERING_PORT=str(port),
            BILLING_PORT=str(billing_port),
            SWITCHBOARD_KAFKA_PORT=str(broker_port),
            PYTHONUNBUFFERED="1",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "switchboard_dev.launcher", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output = _read_until(process, READY_LINE, timeout=180)
            assert "make token ROLE=agent" in output  # the banner says how to get a token
            # The moment the line is printed: ready, and the demo data is there.
            api = f"http://localhost:{port}{BASE}"
            assert httpx.get(f"http://localhost:{port}/health/ready", timeout=5).status_code == 200
            assert httpx.get(f"{api}/productOrder", timeout=5).status_code == 401  # no token, no data
            token = subprocess.run(
                [sys.executable, "-m", "switchboard_dev.issuer", "agent"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            listed = httpx.get(f"{api}/productOrder", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            assert listed.status_code == 200, listed.text
            assert int(listed.headers["X-Total-Count"]) == SEEDED_ORDERS
            # Billing charged the demo orders from their events and billed two of the three accounts
            # (billing.seed): bills in two states, and billed and unbilled rates.
            bearer = {"Authorization": f"Bearer {token}"}
            billing = f"http://localhost:{billing_port}{BILLING_BASE}"
            bills = httpx.get(f"{billing}/customerBill", headers=bearer, timeout=5).json()
            assert sorted(b["state"] for b in bills) == ["onHold", "sent"]
            for billed in ("true", "false"):
                rates = httpx.get(
                    f"{billing}/appliedCustomerBillingRate",
                    params={"isBilled": billed},
                    headers=bearer,
                    timeout=5,
                )
                assert rates.json(), billed
            accounts = httpx.get(f"{billing}/billingAccount", headers=bearer, timeout=5).json()
            assert [a["id"] for a in accounts] == ["BA-1001", "BA-1002", "BA-1003"]
            payments = httpx.get(
                f"http://localhost:{env['PAYMENT_PORT']}/tmf-api/paymentManagement/v4/payment",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            assert payments.status_code == 200, payments.text
            assert int(payments.headers["X-Total-Count"]) == SEEDED_PAYMENTS
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_until(process: subprocess.Popen[str], line: str, *, timeout: float) -> str:
    """The launcher's output up to and including ``line`` (read by a thread: no blocking past the
    deadline)."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for text in stdout:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            text = lines.get(timeout=left)
        except queue.Empty:
            break
        if text is None:
            break
        seen += text
        if line in text:
            return seen
    raise AssertionError(f"no {line!r} within {timeout}s (exit {process.poll()}):\n{seen[-4000:]}")
