"""The official TMF622 v4 conformance test kit (CTK), run by newman against the live service.

The kit is reference data in ``../shared/tmf-ctk`` (see its README): absent in a user's clone,
so the test skips there, unless ``REQUIRE_TMF_REFERENCE=1`` (CI) makes absence a failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from ordering.samples import broadband_order
from switchboard_dev import testing

if TYPE_CHECKING:
    from .conftest import LiveServer

pytestmark = pytest.mark.contract

NEWMAN = "newman@6.2.2"
# A cold npx downloads newman from the npm registry first (about 10 s); the run itself takes seconds.
TIMEOUT = 300
CTK_DIR = "tmf-ctk/TMF622"
COLLECTION = "TMF622-ProductOrdering-v4.0.0.testkit.json"
ENVIRONMENT = "TMFENV-V4.0.0.postman_environment.json"
# Totals the kit's README gives for a run where every check passes, on an empty service.
EXPECTED_REQUESTS = 9
EXPECTED_ASSERTIONS = 63


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
        _unavailable(f"TMF622 CTK not found: {', '.join(missing)} (set TMF_REFERENCE_DIR)")
    return collection, environment


@pytest.fixture(scope="module")
def npx() -> str:
    path = shutil.which("npx")
    if path is None or shutil.which("node") is None:
        _unavailable("node/npx not installed: the CTK runs through newman")
    assert path is not None
    return path


# Integration testers run the kit against populated systems: the service holds more orders than one
# default page (100) before the kit starts, so a list the kit asks for without paging must still be
# a 200 (a 206 there failed its status check).
POPULATION = 130


def populate(ordering_server: LiveServer) -> None:
    with httpx.Client(
        base_url=ordering_server.api_url, timeout=30, headers=ordering_server.headers
    ) as client:
        for n in range(POPULATION):
            body = broadband_order(f"CUST-CTK-{n % 7}", f"BA-CTK-{n % 7}")
            assert client.post("/productOrder", json=body).status_code == 201
        listed = client.get("/productOrder")
    assert listed.status_code == 200
    assert int(listed.headers["X-Total-Count"]) >= POPULATION > int(listed.headers["X-Result-Count"])


def with_bearer_token(collection: Path, headers: dict[str, str], folder: Path) -> Path:
    """A copy of the kit whose collection-level auth sends our bearer token with every request."""
    kit = json.loads(collection.read_text())
    token = headers["Authorization"].removeprefix("Bearer ")
    kit["auth"] = {"type": "bearer", "bearer": [{"key": "token", "value": token, "type": "string"}]}
    copy = folder / collection.name
    copy.write_text(json.dumps(kit))
    return copy


def test_tmf622_ctk_passes(
    ctk_files: tuple[Path, Path], npx: str, ordering_server: LiveServer, tmp_path: Path
) -> None:
    collection, environment = ctk_files
    populate(ordering_server)
    collection = with_bearer_token(collection, ordering_server.headers, tmp_path)
    report = tmp_path / "ctk622.json"
    command = [
        npx, "-y", NEWMAN, "run", str(collection),
        "-e", str(environment),
        # Trailing slash: the collection builds URLs as {{Product_Ordering}}productOrder.
        "--env-var", f"Product_Ordering={ordering_server.api_url}/",
        "--reporters", "cli,json", "--reporter-json-export", str(report),
        "--disable-unicode", "--color", "off",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"newman did not finish in {TIMEOUT}s:\n{exc.stdout or ''}\n{exc.stderr or ''}")
    output = f"{result.stdout}\n{result.stderr}\n--- server log ---\n{ordering_server.log_tail()}"
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
    # The kit checks every order a list returns, so a populated service runs more assertions than
    # the README's total for an empty one (954 with a full first page).
    assert stats["assertions"]["total"] > EXPECTED_ASSERTIONS, output
