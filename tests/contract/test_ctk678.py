"""The official TMF678 v4 conformance test kit (CTK), run by newman against the live billing service.

The kit creates no bill and no rate, so the server holds the demo data (billing.demo). The kit is
reference data in ``../shared/tmf-ctk`` (see its README): absent in a user's clone, so the test skips
there, unless ``REQUIRE_TMF_REFERENCE=1`` (CI) makes absence a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from switchboard_dev import testing

if TYPE_CHECKING:
    from .conftest import BillingServer

pytestmark = pytest.mark.contract

NEWMAN = "newman@6.2.2"
TIMEOUT = 300
CTK_DIR = "tmf-ctk/TMF678"
COLLECTION = "CTK-Customer_Bill-4.0.postman_collection.json"
ENVIRONMENT = "TMFENV-V4.0.0.postman_environment.json"
# The kit's requests, and the assertions of a run where each list holds one item (the README's
# total); the kit checks every item a list returns, so the demo data runs more.
EXPECTED_REQUESTS = 20
EXPECTED_ASSERTIONS = 133


def _unavailable(reason: str) -> None:
    if testing.require_reference():
        pytest.fail(f"{reason} (REQUIRE_TMF_REFERENCE=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ctk_files() -> tuple[Path, Path]:
    kit = testing.reference_dir() / CTK_DIR
    collection, environment = kit / COLLECTION, kit / ENVIRONMENT
    missing = [str(p) for p in (collection, environment) if not p.is_file()]
    if missing:
        _unavailable(f"TMF678 CTK not found: {', '.join(missing)} (set TMF_REFERENCE_DIR)")
    return collection, environment


@pytest.fixture(scope="module")
def npx() -> str:
    path = shutil.which("npx")
    if path is None or shutil.which("node") is None:
        _unavailable("node/npx not installed: the CTK runs through newman")
    assert path is not None
    return path


def with_bearer_token(collection: Path, headers: dict[str, str], folder: Path) -> Path:
    """A copy of the kit whose collection-level auth sends our bearer token with every request."""
    kit = json.loads(collection.read_text())
    token = headers["Authorization"].removeprefix("Bearer ")
    kit["auth"] = {"type": "bearer", "bearer": [{"key": "token", "value": token, "type": "string"}]}
    copy = folder / collection.name
    copy.write_text(json.dumps(kit))
    return copy


def test_tmf678_ctk_passes(
    ctk_files: tuple[Path, Path], npx: str, billing_server: BillingServer, tmp_path: Path
) -> None:
    collection, environment = ctk_files
    with httpx.Client(base_url=billing_server.api_url, headers=billing_server.headers, timeout=30) as client:
        # What the kit needs to find: bills, billed and unbilled rates (it creates neither).
        assert int(client.get("/customerBill").headers["X-Total-Count"]) >= 1
        assert client.get("/appliedCustomerBillingRate", params={"isBilled": "false"}).json()
        assert client.get("/appliedCustomerBillingRate", params={"isBilled": "true"}).json()
    collection = with_bearer_token(collection, billing_server.headers, tmp_path)
    report = tmp_path / "ctk678.json"
    command = [
        npx, "-y", NEWMAN, "run", str(collection),
        "-e", str(environment),
        # Trailing slash: the collection builds URLs as {{Customer_Bill}}customerBill.
        "--env-var", f"Customer_Bill={billing_server.api_url}/",
        "--reporters", "cli,json", "--reporter-json-export", str(report),
        "--disable-unicode", "--color", "off",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"newman did not finish in {TIMEOUT}s:\n{exc.stdout or ''}\n{exc.stderr or ''}")
    output = f"{result.stdout}\n{result.stderr}\n--- server log ---\n{billing_server.log_tail()}"
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
    assert stats["assertions"]["total"] >= EXPECTED_ASSERTIONS, output

    # The kit's PATCH put a bill on hold and its POST asked for a bill of an account billing does not
    # know: the request ended rejected, with its reason.
    with httpx.Client(base_url=billing_server.api_url, headers=billing_server.headers, timeout=30) as client:
        assert client.get("/customerBill", params={"state": "onHold"}).json()
        requests = client.get("/customerBillOnDemand", params={"billingAccount.id": "A0815"}).json()
    assert requests
    assert {r["state"] for r in requests} <= {"inProgress", "rejected"}
