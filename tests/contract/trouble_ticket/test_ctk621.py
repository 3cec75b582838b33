"""The official TMF621 conformance test kit (R18 CTK), run by newman against the live service.

The kit is reference data in ``../shared/tmf-ctk`` (see its README): absent in a user's clone, so the
test skips there, unless ``REQUIRE_TMF_REFERENCE=1`` (CI) makes absence a failure. Its URLs are
``{{TroubleTicketAPI}}/troubleTicket`` (no trailing slash on the variable).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from switchboard_dev import testing

if TYPE_CHECKING:
    from .conftest import TicketServer

pytestmark = pytest.mark.contract

NEWMAN = "newman@6.2.2"
TIMEOUT = 300
CTK_DIR = "tmf-ctk/TMF621"
COLLECTION = "CTK-TMF621-TroubleTicket.postman_collection.json"
ENVIRONMENT = "TMForumR18.0.postman_environment.json"
# Totals the kit's README gives for a run where every check passes.
EXPECTED_REQUESTS = 14
EXPECTED_ASSERTIONS = 158


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
        _unavailable(f"TMF621 CTK not found: {', '.join(missing)} (set TMF_REFERENCE_DIR)")
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


def seed_tickets(server: TicketServer) -> None:
    """Tickets already there, in several statuses, as on a system in use: the kit checks every listed
    ticket for its mandatory attributes, and its own two must still be on the first page."""
    from trouble_ticket.seed import SEED

    with httpx.Client(base_url=server.api_url, timeout=30, headers=server.headers) as client:
        for _, body, moves in SEED:
            created = client.post("/troubleTicket", json=body)
            assert created.status_code == 201, created.text
            for status, reason in moves:
                moved = client.patch(
                    f"/troubleTicket/{created.json()['id']}",
                    json={"status": status, "statusChangeReason": reason},
                )
                assert moved.status_code == 200, moved.text


def run_kit(
    npx: str, collection: Path, environment: Path, server: TicketServer, folder: Path
) -> dict[str, Any]:
    """One newman run of the kit; asserts it ran cleanly with 0 failures and returns its stats."""
    report = folder / "ctk621.json"
    command = [
        npx, "-y", NEWMAN, "run", str(collection),
        "-e", str(environment),
        "--env-var", f"TroubleTicketAPI={server.api_url}",
        "--reporters", "cli,json", "--reporter-json-export", str(report),
        "--disable-unicode", "--color", "off",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=folder)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"newman did not finish in {TIMEOUT}s:\n{exc.stdout or ''}\n{exc.stderr or ''}")
    output = f"{result.stdout}\n{result.stderr}\n--- server log ---\n{server.log_tail()}"
    assert report.is_file(), f"newman wrote no report (exit {result.returncode}):\n{output}"
    run = json.loads(report.read_text())["run"]
    stats: dict[str, Any] = run["stats"]
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
    return stats


def test_tmf621_ctk_passes(
    ctk_files: tuple[Path, Path], npx: str, trouble_ticket_server: TicketServer, tmp_path: Path
) -> None:
    collection, environment = ctk_files
    collection = with_bearer_token(collection, trouble_ticket_server.headers, tmp_path)
    # On an empty service: exactly the README's totals.
    (tmp_path / "empty").mkdir()
    empty = run_kit(npx, collection, environment, trouble_ticket_server, tmp_path / "empty")
    assert empty["assertions"]["total"] == EXPECTED_ASSERTIONS
    # Again on a service in use (the kit's own four tickets and the seed's, in every status): the kit
    # checks every listed ticket for its mandatory attributes, so it runs more assertions, all passing.
    seed_tickets(trouble_ticket_server)
    (tmp_path / "in-use").mkdir()
    in_use = run_kit(npx, collection, environment, trouble_ticket_server, tmp_path / "in-use")
    assert in_use["assertions"]["total"] > EXPECTED_ASSERTIONS
