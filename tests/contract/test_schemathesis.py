"""Property-based API tests (schemathesis 4) against the live ordering service.

Two documents judge the same server:

* the OpenAPI the service serves (``/openapi.json``): every operation, every check that applies;
* the official TMF622 v4 swagger (reference data): no 5xx, and what it documents must hold.

Schemas are loaded at collection time so that each operation is its own pytest item. (The lazy
``schemathesis.pytest.from_fixture`` loader reads ``Function._nodeid``, which pytest 9.2 no longer
has.) The served document is therefore built in-process from the same factory uvicorn runs, and
``test_served_document_is_the_one_tested`` proves the live server serves exactly that document.
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
    from .conftest import LiveServer

pytestmark = pytest.mark.contract

OFFICIAL_SWAGGER = (
    testing.reference_dir() / "tmf-specs/TMF622/TMF622_Product_Ordering_Management_API_v4.0.0_swagger.json"
)
# Bounded and reproducible: the whole contract suite must stay well under three minutes on two cores.
MAX_EXAMPLES = 30
SEED = 622
# What the official v4 swagger cannot judge, so those checks are off for it (everything else stays on:
# no 5xx, bodies, content types and headers conform wherever it documents a status, Allow on 405):
# * status codes: it documents no 206 (TMF630 partial lists), no 404 on POST (cancelProductOrder of an
#   unknown order), no 412/413/415 (If-Match, body limit, media types);
# * schema-valid requests rejected: it has no minimum, minLength or format, so `limit=0`, `fields=`,
#   `callback: ""` or a productOrder.id of "" are "valid" there, and 400 (which it documents) is right;
# * schema-invalid requests accepted: the service reads a null as "absent" (never echoing it back).
OFFICIAL_EXCLUDED = [status_code_conformance, positive_data_acceptance, negative_data_rejection]


def _config(**extra: Any) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",  # no .hypothesis/ directory in the checkout
                "mode": "all",  # valid and invalid inputs
                # PostgreSQL cannot store NUL, so the service answers 400 to text holding one, which the
                # positive-data check would count as a rejected valid request (see test_unstorable_values_are_400).
                "allow-x00": False,
            },
            # The coverage phase builds its cases at collection (about 20 s for these schemas) and multiplies
            # the requests; examples and fuzzing stay on. Stateful links are not declared by either document.
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            # Hypothesis times its own data generation: on a loaded machine (other jobs on the same two
            # cores) drawing a nested productOrder body trips "too slow", which says nothing about the
            # API. Every check on the server's answers stays on.
            "suppress-health-check": ["too_slow"],
            **extra,
        }
    )


def _served_document() -> dict[str, Any]:
    """What ``GET /openapi.json`` returns: the app built by the factory uvicorn runs (no I/O until startup)."""
    from ordering.app import create_app
    from ordering.config import Settings

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:  # create_app configures JSON logging on the root logger; keep pytest's
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
    """JSON Schema integers are unbounded, JSONB documents (and I-JSON, RFC 7493) are not: the service
    answers 400 to an integer beyond 64 bits, which test_unstorable_values_are_400 checks."""
    return _fits_in_64_bits(body)


def _excluded_checks(case: Case) -> list[Any]:
    excluded: list[Any] = []
    if case.query and "fields" in case.query:
        # TMF630 attribute selection returns partial resources, which no resource schema describes.
        # And the document cannot list every (nested) attribute path fields may name, so a name the
        # pattern allows but the model lacks ("fields=V") is rightly a 400, as an unknown filter is.
        excluded += [response_schema_conformance, positive_data_acceptance]
    hub = case.method == "POST" and case.operation.path.endswith("/hub")
    if hub and isinstance(case.body, dict) and case.body.get("query") is not None:
        # The callback is described exactly (a pattern the server enforces), but a query must name
        # event attributes and values the service has, which no pattern can list (as for fields).
        excluded.append(positive_data_acceptance)
    if case.headers and "Idempotency-Key" in case.headers:
        # The generator reuses keys across different bodies; a reused key with another body is a 422
        # by design (test_product_order checks it), not a rejected valid request.
        excluded.append(positive_data_acceptance)
    return excluded


SERVED_DOCUMENT = _served_document()
served = schemathesis.openapi.from_dict(SERVED_DOCUMENT, config=_config())
served.hook("filter_body")(_storable_body)

# A generated order names its customer, as a real one must (a relatedParty with role customer; without
# one the service answers 400, which the document cannot express). Adding a valid party keeps a valid
# body valid and an invalid one invalid, so every check stays on.
CUSTOMER = {"id": "C-FUZZ", "role": "customer", "@referredType": "Individual"}


@served.hook("map_body")
def _with_customer(context: schemathesis.HookContext, body: Any) -> Any:
    operation = context.operation
    if (
        operation is None
        or operation.method.upper() != "POST"
        or not operation.path.endswith("/productOrder")
    ):
        return body
    parties = body.get("relatedParty") if isinstance(body, dict) else ()
    if parties is None or isinstance(parties, list):  # null reads as absent
        return {**body, "relatedParty": [*(parties or []), CUSTOMER]}
    return body


# ---------------------------------------------------------------------------- served OpenAPI


def test_served_document_is_the_one_tested(ordering_server: LiveServer) -> None:
    response = httpx.get(f"{ordering_server.url}/openapi.json")
    assert response.status_code == 200
    assert response.json() == SERVED_DOCUMENT


# An order that is stored (it names its customer), so each case below fails on the value it is about.
ORDER = (
    '{"productOrderItem": [{"id": "1", "action": "add"}], '
    '"relatedParty": [{"id": "C1", "role": "customer", "@referredType": "Individual"}], '
)


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("GET", "/productOrder/a%00b", None),
        ("GET", "/productOrder?externalId=a%00b", None),
        ("POST", "/productOrder", ORDER + '"description": "a\\u0000b"}'),
        ("POST", "/productOrder", ORDER + '"x": 123456789012345678901234567890}'),
        ("POST", "/productOrder", ORDER + '"description": "\\udb61"}'),
        ("POST", "/hub", '{"callback": "http://listener.example/a\\u0000b"}'),
    ],
    ids=["nul-in-path", "nul-in-query", "nul-in-body", "int-beyond-64-bits", "lone-surrogate", "nul-in-hub"],
)
def test_unstorable_values_are_400(
    ordering_server: LiveServer, method: str, path: str, content: str | None
) -> None:
    """Values generation leaves out (``allow-x00``, ``_storable_body``): PostgreSQL refuses NUL in text
    and JSONB cannot hold them, so each is a TMF Error with 400, never a 500."""
    headers = {"Content-Type": "application/json"} if content else {}
    response = httpx.request(
        method,
        ordering_server.api_url + path,
        content=content,
        headers={**ordering_server.headers, **headers},
    )
    assert response.status_code == 400, response.text
    assert {"code", "reason"} <= response.json().keys()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # Every route is a plain route served from the resource's declaration: each GET answers HEAD.
        ("PUT", "/productOrder", "GET, HEAD, POST"),
        ("PUT", "/productOrder/x", "GET, HEAD, PATCH, DELETE"),
        ("PATCH", "/cancelProductOrder/x", "GET, HEAD"),
        ("PUT", "/hub/x", "GET, HEAD, DELETE"),
    ],
)
def test_405_allow_lists_every_method(
    ordering_server: LiveServer, method: str, path: str, allow: str
) -> None:
    """RFC 9110: Allow names all the methods of the resource (schemathesis accepts an empty Allow)."""
    response = httpx.request(method, ordering_server.api_url + path, headers=ordering_server.headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow


def test_large_numbers_survive_storage(ordering_server: LiveServer) -> None:
    """PostgreSQL prints the JSONB number 1e30 as 1000...0; read back as a Python int beyond 64 bits it
    made every later GET of the order, and of any list holding it, a 500."""
    created = httpx.post(
        f"{ordering_server.api_url}/productOrder",
        content=ORDER + '"x": 1e30}',
        headers={"Content-Type": "application/json", **ordering_server.headers},
    )
    assert created.status_code == 201, created.text
    for url in (created.json()["href"], f"{ordering_server.api_url}/productOrder?id={created.json()['id']}"):
        response = httpx.get(url, headers=ordering_server.headers)
        assert response.status_code == 200, response.text
        (order,) = response.json() if isinstance(response.json(), list) else [response.json()]
        # The same JSON number either way: PostgreSQL writes it out in full, lists send the stored text.
        assert float(order["x"]) == 1e30


@served.parametrize()
def test_served_openapi(case: Case, ordering_server: LiveServer) -> None:
    case.call_and_validate(
        base_url=ordering_server.url, headers=ordering_server.headers, excluded_checks=_excluded_checks(case)
    )


# -------------------------------------------------------------------------- official swagger

if OFFICIAL_SWAGGER.is_file():
    # The v4 definitions nest deeply (ProductRefOrValue -> Product -> ProductRelationship -> ...), so
    # Hypothesis regularly overruns its size budget while drawing a body (those draws are just retried)
    # and, on a busy machine, trips its "too slow" health check: both are about generation, not the API.
    # Drawing one such ProductOrder body takes about a second, hence fewer of them.
    official = schemathesis.openapi.from_path(
        OFFICIAL_SWAGGER,
        config=_config(
            **{
                "suppress-health-check": ["data_too_large", "too_slow"],
                "operations": [
                    {
                        "include-path": ["/productOrder", "/productOrder/{id}"],
                        "include-method": ["POST", "PATCH"],
                        "generation": {"max-examples": 12},
                    }
                ],
            }
        ),
    )
    official.hook("filter_body")(_storable_body)

    # /listener/* are the operations a *client* implements to receive notifications.
    @official.exclude(path_regex=r"^/listener/").parametrize()
    def test_official_swagger(case: Case, ordering_server: LiveServer) -> None:
        excluded = OFFICIAL_EXCLUDED + _excluded_checks(case)
        case.call_and_validate(
            base_url=ordering_server.api_url, headers=ordering_server.headers, excluded_checks=excluded
        )

else:

    def test_official_swagger() -> None:
        if testing.require_reference():
            pytest.fail(f"{OFFICIAL_SWAGGER} not found (REQUIRE_TMF_REFERENCE=1)")
        pytest.skip(f"official TMF622 swagger not found: {OFFICIAL_SWAGGER} (set TMF_REFERENCE_DIR)")
