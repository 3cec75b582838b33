"""Property-based API tests (schemathesis 4) against the live trouble ticket service.

Two documents judge the same server, as for ordering (``tests/contract/test_schemathesis.py``):

* the OpenAPI the service serves (``/openapi.json``): every operation, every check that applies;
* the official TMF621 v4 swagger (reference data): no 5xx, and what it documents must hold.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from switchboard_dev import testing

if TYPE_CHECKING:
    from .conftest import TicketServer

pytestmark = pytest.mark.contract

OFFICIAL_SWAGGER = (
    testing.reference_dir() / "tmf-specs/TMF621/TMF621_Trouble_Ticket_Management_API_v4.0.0_swagger.json"
)
MAX_EXAMPLES = 30
SEED = 621
# What the official v4 swagger cannot judge (as for ordering): it documents no 206, 409, 412, 413 or 415,
# no minimum/minLength/format (so values it calls valid are rightly 400 here), and the service reads a
# null as absent.
OFFICIAL_EXCLUDED = [status_code_conformance, positive_data_acceptance, negative_data_rejection]


def _config(**extra: Any) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "mode": "all",
                # PostgreSQL cannot store NUL: the service answers 400 (tests/contract/test_schemathesis.py
                # checks that for the kit's routes).
                "allow-x00": False,
            },
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            **extra,
        }
    )


def _served_document() -> dict[str, Any]:
    """What ``GET /openapi.json`` returns: the app built by the factory uvicorn runs (no I/O until startup)."""
    from trouble_ticket.app import create_app
    from trouble_ticket.config import Settings

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app = create_app(
            Settings(database_url="postgresql+asyncpg://unused/unused", kafka_bootstrap_servers=None)
        )
        return app.openapi()
    finally:
        root.handlers[:], root.level = handlers, level


def _fits_in_64_bits(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_fits_in_64_bits(v) for v in value.values())
    if isinstance(value, list):
        return all(_fits_in_64_bits(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    return True


def _storable_body(context: schemathesis.HookContext, body: Any) -> bool:
    return _fits_in_64_bits(body)


def _excluded_checks(case: Case) -> list[Any]:
    excluded: list[Any] = []
    if case.query and "fields" in case.query:
        # A `fields` selection returns partial resources, which no resource schema describes.
        excluded += [response_schema_conformance, positive_data_acceptance]
    hub = case.method == "POST" and case.operation.path.endswith("/hub")
    if hub and isinstance(case.body, dict) and case.body.get("query") is not None:
        excluded.append(positive_data_acceptance)
    if case.headers and "Idempotency-Key" in case.headers:
        excluded.append(positive_data_acceptance)
    return excluded


def _known_to_the_policy(context: schemathesis.HookContext, body: Any) -> Any:
    """A generated ticket's severity and ticketType, when strings, are ones the SLA policy knows (an
    unknown one is a 400 the document cannot express). A valid body stays valid, an invalid one invalid."""
    operation = context.operation
    if (
        operation is None
        or operation.method.upper() != "POST"
        or not operation.path.endswith("/troubleTicket")
    ):
        return body
    if isinstance(body, dict):
        body = dict(body)
        if isinstance(body.get("severity"), str):
            body["severity"] = "High"
        if isinstance(body.get("ticketType"), str):
            body["ticketType"] = "device"
    return body


SERVED_DOCUMENT = _served_document()
served = schemathesis.openapi.from_dict(SERVED_DOCUMENT, config=_config())
served.hook("filter_body")(_storable_body)
served.hook("map_body")(_known_to_the_policy)


def test_served_document_is_the_one_tested(trouble_ticket_server: TicketServer) -> None:
    response = httpx.get(f"{trouble_ticket_server.url}/openapi.json")
    assert response.status_code == 200
    assert response.json() == SERVED_DOCUMENT


@served.parametrize()
def test_served_openapi(case: Case, trouble_ticket_server: TicketServer) -> None:
    case.call_and_validate(
        base_url=trouble_ticket_server.url,
        headers=trouble_ticket_server.headers,
        excluded_checks=_excluded_checks(case),
    )


if OFFICIAL_SWAGGER.is_file():
    official = schemathesis.openapi.from_path(
        OFFICIAL_SWAGGER,
        config=_config(**{"suppress-health-check": ["data_too_large", "too_slow"]}),
    )
    official.hook("filter_body")(_storable_body)
    official.hook("map_body")(_known_to_the_policy)

    # /listener/* are the operations a *client* implements to receive notifications.
    @official.exclude(path_regex=r"^/listener/").parametrize()
    def test_official_swagger(case: Case, trouble_ticket_server: TicketServer) -> None:
        case.call_and_validate(
            base_url=trouble_ticket_server.api_url,
            headers=trouble_ticket_server.headers,
            excluded_checks=OFFICIAL_EXCLUDED + _excluded_checks(case),
        )

else:

    def test_official_swagger() -> None:
        if testing.require_reference():
            pytest.fail(f"{OFFICIAL_SWAGGER} not found (REQUIRE_TMF_REFERENCE=1)")
        pytest.skip(f"official TMF621 swagger not found: {OFFICIAL_SWAGGER} (set TMF_REFERENCE_DIR)")
