"""Schemathesis against the live payment service (as test_schemathesis.py judges ordering): the OpenAPI
it serves, every check that applies, and the official TMF676 v4 swagger, no 5xx."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from switchboard_dev import testing

from .payment_server import PaymentServer, payment_server
from .test_schemathesis import OFFICIAL_EXCLUDED, _config, _excluded_checks, _storable_body

__all__ = ["payment_server"]  # a fixture, used by name

pytestmark = pytest.mark.contract

OFFICIAL_SWAGGER = testing.reference_dir() / "tmf-specs/TMF676/TMF676-Payment-v4.0.0.swagger.json"


def _served_document() -> dict[str, Any]:
    """What ``GET /openapi.json`` returns: the app built by the factory uvicorn runs."""
    from payment.app import create_app
    from payment.config import Settings

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app = create_app(
            Settings(database_url="postgresql+asyncpg://unused/unused", kafka_bootstrap_servers=None)
        )
        return app.openapi()
    finally:
        root.handlers[:], root.level = handlers, level


def _payment_excluded_checks(case: Case) -> list[Any]:
    excluded = _excluded_checks(case)
    if case.method == "POST" and case.operation.path.endswith(("/payment", "/refund")):
        # Money the schema calls valid may still be refused with a 400 (a currency that is not ISO 4217,
        # more decimals than it has, a zero or negative amount: services/payment tests each), and a
        # refund must name a captured payment of this service (404/409/422 otherwise).
        excluded.append(positive_data_acceptance)
    return excluded


SERVED_DOCUMENT = _served_document()
served = schemathesis.openapi.from_dict(SERVED_DOCUMENT, config=_config(seed=676))
served.hook("filter_body")(_storable_body)


def test_served_document_is_the_one_tested(payment_server: PaymentServer) -> None:
    response = httpx.get(f"{payment_server.url}/openapi.json")
    assert response.status_code == 200
    assert response.json() == SERVED_DOCUMENT


@served.parametrize()
def test_served_openapi(case: Case, payment_server: PaymentServer) -> None:
    case.call_and_validate(
        base_url=payment_server.url,
        headers=payment_server.headers,
        excluded_checks=_payment_excluded_checks(case),
    )


if OFFICIAL_SWAGGER.is_file():
    official = schemathesis.openapi.from_path(
        OFFICIAL_SWAGGER,
        config=_config(seed=676, **{"suppress-health-check": ["data_too_large", "too_slow"]}),
    )
    official.hook("filter_body")(_storable_body)

    # /listener/* are the operations a *client* implements to receive notifications.
    @official.exclude(path_regex=r"^/listener/").parametrize()
    def test_official_swagger(case: Case, payment_server: PaymentServer) -> None:
        excluded = OFFICIAL_EXCLUDED + _payment_excluded_checks(case)
        case.call_and_validate(
            base_url=payment_server.api_url, headers=payment_server.headers, excluded_checks=excluded
        )

else:

    def test_official_swagger() -> None:
        if testing.require_reference():
            pytest.fail(f"{OFFICIAL_SWAGGER} not found (REQUIRE_TMF_REFERENCE=1)")
        pytest.skip(f"official TMF676 swagger not found: {OFFICIAL_SWAGGER} (set TMF_REFERENCE_DIR)")
