"""The official TMF676 v4 conformance test kit (CTK), run by newman against the live payment service
(as test_ctk.py runs TMF622's). Reference data in ``../shared/tmf-ctk``: skipped where absent, a
failure with ``REQUIRE_TMF_REFERENCE=1``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from payment.samples import card_payment
from switchboard_dev import testing

from .payment_server import PaymentServer, payment_server
from .test_ctk import NEWMAN, TIMEOUT, _unavailable, npx, with_bearer_token

__all__ = ["npx", "payment_server"]  # fixtures, used by name

pytestmark = pytest.mark.contract

CTK_DIR = "tmf-ctk/TMF676"
COLLECTION = "TMF676-Payment-v4.0.0.testkit.json"
ENVIRONMENT = "TMFENV-V4.0.0.postman_environment.json"
# Totals the kit's README gives for a run where every check passes, on an empty service.
EXPECTED_REQUESTS = 12
EXPECTED_ASSERTIONS = 76
# A populated service: more payments than one default page, of every outcome, before the kit runs.
POPULATION = 120
TOKENS = ("tok_visa", "tok_decline", "tok_insufficient_funds", "tok_mastercard")


@pytest.fixture(scope="module")
def ctk676_files() -> tuple[Path, Path]:
    kit = testing.reference_dir() / CTK_DIR
    collection, environment = kit / COLLECTION, kit / ENVIRONMENT
    missing = [str(p) for p in (collection, environment) if not p.is_file()]
    if missing:
        _unavailable(f"TMF676 CTK not found: {', '.join(missing)} (set TMF_REFERENCE_DIR)")
    return collection, environment


def populate(server: PaymentServer) -> None:
    with httpx.Client(base_url=server.api_url, timeout=30, headers=server.headers) as client:
        for n in range(POPULATION):
            body = card_payment(f"BA-CTK-{n % 7}", f"CUST-CTK-{n % 7}", 10 + n, token=TOKENS[n % len(TOKENS)])
            if n % 5 == 0:  # the net amount and its tax (and an empty total, as the kit sends it)
                body["totalAmount"] = {}
                body["amount"] = {"unit": "EUR", "value": 10}
                body["taxAmount"] = {"unit": "EUR", "value": 2.1}
            assert client.post("/payment", json=body).status_code == 201
        paid = client.get("/payment", params={"status": "captured", "limit": 1}).json()[0]
        refund = {
            "account": paid["account"],
            "payment": {"id": paid["id"]},
            "paymentMethod": paid["paymentMethod"],
            "totalAmount": {"unit": "EUR", "value": 1},
        }
        assert client.post("/refund", json=refund).status_code == 201
        listed = client.get("/payment")
    assert listed.status_code == 200
    assert int(listed.headers["X-Total-Count"]) >= POPULATION > int(listed.headers["X-Result-Count"])


def test_tmf676_ctk_passes(
    ctk676_files: tuple[Path, Path], npx: str, payment_server: PaymentServer, tmp_path: Path
) -> None:
    collection, environment = ctk676_files
    populate(payment_server)
    collection = with_bearer_token(collection, payment_server.headers, tmp_path)
    report = tmp_path / "ctk676.json"
    command = [
        npx, "-y", NEWMAN, "run", str(collection),
        "-e", str(environment),
        # Trailing slash: the collection builds URLs as {{Payment}}payment.
        "--env-var", f"Payment={payment_server.api_url}/",
        "--reporters", "cli,json", "--reporter-json-export", str(report),
        "--disable-unicode", "--color", "off",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"newman did not finish in {TIMEOUT}s:\n{exc.stdout or ''}\n{exc.stderr or ''}")
    output = f"{result.stdout}\n{result.stderr}\n--- server log ---\n{payment_server.log_tail()}"
    assert report.is_file(), f"newman wrote no report (exit {result.returncode}):\n{output}"

    run = json.loads(report.read_text())["run"]
    stats = run["stats"]
    failures = [
        f"{f.get('source', {}).get('name', '?')}: {f['error'].get('test') or ''} {f['error'].get('message', '')}"
        for f in run.get("failures", [])
    ]
    assert stats["assertions"]["failed"] == 0, (
        "CTK assertions failed:\n" + "\n".join(failures) + "\n" + output
    )
    assert stats["requests"]["failed"] == 0, output
    assert result.returncode == 0, output
    assert stats["requests"]["total"] == EXPECTED_REQUESTS, output
    # The kit checks every payment a list returns, so a populated service runs more assertions than
    # the README's total for an empty one.
    assert stats["assertions"]["total"] > EXPECTED_ASSERTIONS, output
