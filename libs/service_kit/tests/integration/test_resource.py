"""A new resource takes one declaration: a small ``widget`` resource declared here is served and
documented by the kit (list, get, HEAD, POST, PATCH, DELETE, the hub, the OpenAPI), through HTTP on
real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Integer, Text

from switchboard_dev import testing
from switchboard_kit import db
from switchboard_kit.app import create_service_app
from switchboard_kit.errors import Conflict
from switchboard_kit.query import HotColumn
from switchboard_kit.resource import Change, Events, Resource
from switchboard_kit.settings import ServiceSettings
from switchboard_kit.store import Stored, UnitOfWork

pytestmark = pytest.mark.asyncio

BASE = "/tmf-api/widgetManagement/v1"
WIDGETS = f"{BASE}/widget"


class WidgetState(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


NEXT_STATES = {WidgetState.DRAFT: {WidgetState.ACTIVE}, WidgetState.ACTIVE: {WidgetState.RETIRED}}


class Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    name: str | None = None


class Widget(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    id: str | None = None
    href: str | None = None
    name: str | None = None
    state: WidgetState | None = None
    size: int | None = None
    part: list[Part] | None = None
    type: str | None = Field(default=None, alias="@type")


class Widget_Create(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str
    size: int | None = None
    part: list[Part] | None = None


class Widget_Update(BaseModel):
    name: str | None = None
    size: int | None = None
    state: WidgetState | None = None


metadata = db.new_metadata()
kit = db.kit_tables(metadata)
widget = db.document_table(
    "widget", metadata, Column("state", Text, nullable=False), Column("size", Integer), updated_at=False
)
EVENTS = Events(
    topic="widget",
    resource="widget",
    domain="widgetManagement",
    types=(
        "WidgetCreateEvent",
        "WidgetStateChangeEvent",
        "WidgetAttributeValueChangeEvent",
        "WidgetDeleteEvent",
    ),
)


async def create_widget(uow: UnitOfWork, doc: dict[str, Any]) -> Change:
    doc["state"] = WidgetState.DRAFT.value
    return Change(doc, events=[("WidgetCreateEvent", doc)])


async def patch_widget(uow: UnitOfWork, stored: Stored, patched: dict[str, Any]) -> Change | None:
    old, new = WidgetState(stored.doc["state"]), WidgetState(patched["state"])
    if new != old and new not in NEXT_STATES.get(old, set()):
        raise Conflict("Invalid state transition", f"A widget cannot go from {old} to {new}")
    event = "WidgetStateChangeEvent" if new != old else "WidgetAttributeValueChangeEvent"
    return Change(patched, events=[(event, patched)])


def delete_widget(stored: Stored) -> list[tuple[str, dict[str, Any]]]:
    if stored.doc["state"] != WidgetState.RETIRED:
        raise Conflict("Widget in use", "Only a retired widget can be deleted")
    return [("WidgetDeleteEvent", stored.doc)]


WIDGET = Resource(
    name="widget",
    model=Widget,
    create_model=Widget_Create,
    update_model=Widget_Update,
    table=widget,
    hot={"state": HotColumn(widget.c.state), "size": HotColumn(widget.c.size)},
    columns=lambda doc: {"state": doc["state"], "size": doc.get("size")},
    sort=("size", "id"),
    filters=("part.name",),
    default_order=(widget.c.created_at,),
    events=EVENTS,
    on_create=create_widget,
    on_patch=patch_widget,
    on_delete=delete_widget,
    hook_errors={"patch": (409,), "delete": (409,)},
)


@pytest.fixture(scope="module")
def widget_db(pg_server_url: str) -> Any:
    with testing.database_with(pg_server_url, metadata, "sb_widget") as url:
        yield url


@pytest.fixture
def app(widget_db: str) -> FastAPI:
    settings = ServiceSettings(
        database_url=widget_db,
        kafka_bootstrap_servers=None,
        hub_enabled=False,
        retention_interval=0,
        public_base_url="http://widgets.example",
        default_page_limit=2,
        **testing.auth_settings(),
    )
    return create_service_app(
        name="widgets",
        title="Widgets",
        version="1.0.0",
        settings=settings,
        base_path=BASE,
        metadata_tables=kit,
        resources=[WIDGET],
        topics=["widget"],
    )


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


async def post(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = await client.post(WIDGETS, json=body, **kw)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count(app: FastAPI, table: str) -> int:
    return int((await testing.sql(app, f"SELECT count(*) AS n FROM {table}"))[0]["n"])


async def test_create_stores_the_document_and_its_event_together(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.post(WIDGETS, json={"name": "w", "size": 3, "id": "mine", "href": "x"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "mine"
    assert body["href"] == f"http://widgets.example{BASE}/widget/{body['id']}"
    assert body["state"] == "draft"
    assert body["@type"] == "Widget"
    assert response.headers["Location"] == body["href"]
    assert response.headers["ETag"] == 'W/"1"'
    (event,) = await testing.sql(app, "SELECT topic, key, event_type, payload FROM outbox")
    assert (event["topic"], event["key"], event["event_type"]) == ("widget", body["id"], "WidgetCreateEvent")
    assert event["payload"]["event"]["widget"] == body


async def test_idempotency_key_replays_the_first_answer(client: httpx.AsyncClient, app: FastAPI) -> None:
    key = {"Idempotency-Key": "widget-1"}
    first = await post(client, {"name": "w"}, headers=key)
    again = await client.post(WIDGETS, json={"name": "w"}, headers=key)
    assert again.status_code == 201
    assert again.json() == first
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = await client.post(WIDGETS, json={"name": "other"}, headers=key)
    assert reused.status_code == 422
    assert reused.json()["@type"] == "Error"
    too_long = await client.post(WIDGETS, json={"name": "w"}, headers={"Idempotency-Key": "k" * 300})
    assert too_long.status_code == 400
    assert await count(app, "widget") == 1
    assert await count(app, "outbox") == 1


async def test_bad_bodies_are_4xx_and_store_nothing(client: httpx.AsyncClient, app: FastAPI) -> None:
    assert (
        await client.post(WIDGETS, content=b"{", headers={"Content-Type": "application/json"})
    ).status_code == 400
    assert (await client.post(WIDGETS, json={"size": 1})).status_code == 400  # name is required
    assert (
        await client.post(WIDGETS, content=b"{}", headers={"Content-Type": "text/plain"})
    ).status_code == 415
    assert await count(app, "widget") == 0


async def test_get_head_and_conditional_get(client: httpx.AsyncClient) -> None:
    created = await post(client, {"name": "w", "size": 3})
    url = f"{WIDGETS}/{created['id']}"
    got = await client.get(url)
    assert got.status_code == 200
    assert got.json() == created
    assert got.headers["ETag"] == 'W/"1"'
    # One encoding: compact, as the POST answer (PostgreSQL prints stored JSONB with spaces).
    assert got.content == orjson.dumps(got.json())
    listed = await client.get(WIDGETS)
    assert listed.content == orjson.dumps(listed.json())
    head = await client.head(url)
    assert (head.status_code, head.content, head.headers["ETag"]) == (200, b"", 'W/"1"')
    cached = await client.get(url, headers={"If-None-Match": 'W/"1"'})
    assert (cached.status_code, cached.content) == (304, b"")
    assert (await client.get(url, headers={"If-None-Match": 'W/"7"'})).status_code == 200
    assert (await client.get(url, params={"fields": "name"})).json() == {
        "id": created["id"],
        "href": created["href"],
        "name": "w",
    }
    missing = await client.get(f"{WIDGETS}/nope")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "Widget not found"


async def test_documents_read_as_the_compact_text_whoever_wrote_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """doc is json: GET and lists send the stored text as it is. The store writes it compact; what
    other writers store (here a jsonb_set update, which PostgreSQL prints with spaces) the table's
    trigger compacts, nulls and separators inside strings included."""
    created = await post(client, {"name": 'a, b: "c": d', "size": 3})
    url = f"{WIDGETS}/{created['id']}"
    got = await client.get(url)
    assert got.content == orjson.dumps(created)  # the POST answer's bytes
    listed = await client.get(WIDGETS)
    assert listed.content == b"[" + orjson.dumps(created) + b"]"
    await testing.sql(
        app,
        "UPDATE widget SET doc = jsonb_set(doc::jsonb, '{extra}', CAST(:extra AS jsonb)) WHERE id = :id",
        id=created["id"],
        extra='{"v": null, "w": "x, y", "n": [1, null]}',
    )
    stored = (await testing.sql(app, "SELECT doc::text AS t FROM widget WHERE id = :id", id=created["id"]))[0]
    assert stored["t"] == orjson.dumps(orjson.loads(stored["t"])).decode()
    got = await client.get(url)
    assert got.json() == {**created, "extra": {"v": None, "w": "x, y", "n": [1, None]}}
    assert got.content == orjson.dumps(got.json())
    listed = await client.get(WIDGETS)
    assert listed.content == orjson.dumps(listed.json())
    await testing.sql(
        app, "UPDATE widget SET doc = jsonb_set(doc::jsonb, '{size}', '4') WHERE id = :id", id=created["id"]
    )
    got = await client.get(url)
    assert got.json()["size"] == 4
    assert got.content == orjson.dumps(got.json())
    # Filters on the document read doc::jsonb (containment, served by the GIN index's expression).
    await post(client, {"name": "other", "part": [{"name": "p1"}]})
    found = await client.get(WIDGETS, params={"part.name": "p1"})
    assert [w["name"] for w in found.json()] == ["other"]


async def test_list_filters_fields_paging_and_sort(client: httpx.AsyncClient) -> None:
    for size in (1, 2, 3, 4):
        await post(client, {"name": f"w{size}", "size": size, "part": [{"name": f"p{size}"}]})
    # No paging asked for: 200 with the default page (limit 2 here), the total in X-Total-Count.
    everything = await client.get(WIDGETS)
    assert everything.status_code == 200
    assert (everything.headers["X-Total-Count"], everything.headers["X-Result-Count"]) == ("4", "2")
    page = await client.get(WIDGETS, params={"limit": 2, "offset": 1, "sort": "-size"})
    assert page.status_code == 206
    assert [w["size"] for w in page.json()] == [3, 2]
    last = await client.get(WIDGETS, params={"limit": 2, "offset": 2, "sort": "size"})
    assert last.status_code == 200
    assert [w["size"] for w in last.json()] == [3, 4]
    big = await client.get(WIDGETS, params={"size.gt": 2, "fields": "size", "sort": "size"})
    assert big.json() == [{"id": w["id"], "href": w["href"], "size": w["size"]} for w in big.json()]
    assert [w["size"] for w in big.json()] == [3, 4]
    by_part = await client.get(WIDGETS, params={"part.name": "p2"})
    assert [w["name"] for w in by_part.json()] == ["w2"]
    assert [
        w["state"] for w in (await client.get(WIDGETS, params={"state": "draft", "limit": 10})).json()
    ] == ["draft"] * 4
    unknown = await client.get(WIDGETS, params={"colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["@type"] == "Error"


async def test_patch_merge_and_json_patch_with_if_match(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = await post(client, {"name": "w", "size": 1})
    url = f"{WIDGETS}/{created['id']}"
    merged = await client.patch(
        url,
        json={"name": "renamed"},
        headers={"Content-Type": "application/merge-patch+json", "If-Match": 'W/"1"'},
    )
    assert merged.status_code == 200
    assert (merged.json()["name"], merged.headers["ETag"]) == ("renamed", 'W/"2"')
    stale = await client.patch(url, json={"name": "again"}, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    patched = await client.patch(
        url,
        json=[{"op": "replace", "path": "/state", "value": "active"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert (patched.status_code, patched.json()["state"], patched.headers["ETag"]) == (200, "active", 'W/"3"')
    backwards = await client.patch(url, json={"state": "draft"})
    assert backwards.status_code == 409
    assert (await client.patch(url, json={"id": "other"})).status_code == 400  # server-owned
    assert (await client.patch(url, json={"size": "big"})).status_code == 400  # not the model
    assert (await client.patch(f"{WIDGETS}/nope", json={"name": "x"})).status_code == 404
    events = [r["event_type"] for r in await testing.sql(app, "SELECT event_type FROM outbox ORDER BY seq")]
    assert events == ["WidgetCreateEvent", "WidgetAttributeValueChangeEvent", "WidgetStateChangeEvent"]
    assert (await client.get(url)).json()["state"] == "active"


async def test_delete_asks_the_domain(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = await post(client, {"name": "w"})
    url = f"{WIDGETS}/{created['id']}"
    assert (await client.delete(url)).status_code == 409
    await client.patch(url, json={"state": "active"})
    await client.patch(url, json={"state": "retired"})
    assert (await client.delete(url, headers={"If-Match": 'W/"1"'})).status_code == 412
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404
    last = await testing.sql(app, "SELECT event_type FROM outbox ORDER BY seq DESC LIMIT 1")
    assert last == [{"event_type": "WidgetDeleteEvent"}]


async def test_hub_subscriptions(client: httpx.AsyncClient) -> None:
    created = await client.post(f"{BASE}/hub", json={"callback": "http://listener.example/cb"})
    assert created.status_code == 201
    sub = created.json()
    assert created.headers["Location"] == f"http://widgets.example{BASE}/hub/{sub['id']}"
    assert (await client.get(f"{BASE}/hub/{sub['id']}")).json() == sub
    assert (await client.post(f"{BASE}/hub", json={"callback": "ftp://x"})).status_code == 400
    assert (await client.delete(f"{BASE}/hub/{sub['id']}")).status_code == 204
    assert (await client.get(f"{BASE}/hub/{sub['id']}")).status_code == 404


async def test_unsupported_method_lists_the_allowed_ones(client: httpx.AsyncClient) -> None:
    response = await client.put(WIDGETS, json={})
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


async def test_openapi_documents_every_operation_from_the_declaration(app: FastAPI) -> None:
    document = app.openapi()
    operations = {
        (path, method): op
        for path, methods in document["paths"].items()
        for method, op in methods.items()
        if path.startswith(BASE)
    }
    assert {(p, m, op["operationId"]) for (p, m), op in operations.items()} == {
        (WIDGETS, "get", "listWidget"),
        (WIDGETS, "post", "createWidget"),
        (f"{WIDGETS}/{{id}}", "get", "retrieveWidget"),
        (f"{WIDGETS}/{{id}}", "patch", "patchWidget"),
        (f"{WIDGETS}/{{id}}", "delete", "deleteWidget"),
        (f"{BASE}/hub", "post", "registerListener"),
        (f"{BASE}/hub/{{id}}", "get", "retrieveListener"),
        (f"{BASE}/hub/{{id}}", "delete", "unregisterListener"),
        (f"{BASE}/hub/{{id}}/deliveryStatus", "get", "retrieveListenerDeliveryStatus"),
    }
    listing = operations[(WIDGETS, "get")]
    params = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert params["state"]["enum"] == ["draft", "active", "retired"]
    assert params["size.gt"] == {"type": "integer"}
    assert "part.name" in params
    assert params["sort"]["enum"] == ["size", "id", "-size", "-id"]
    signed_in = {"401", "403"}
    assert set(listing["responses"]) == {"200", "206", "400"} | signed_in
    assert (
        set(operations[(f"{WIDGETS}/{{id}}", "delete")]["responses"])
        == {"204", "404", "409", "412"} | signed_in
    )
    assert (
        set(operations[(f"{WIDGETS}/{{id}}", "get")]["responses"]) == {"200", "304", "400", "404"} | signed_in
    )
    schemas = document["components"]["schemas"]
    assert {"Widget", "Widget_Create", "Widget_Update", "Error", "EventSubscription"} <= set(schemas)


# -- sign-in and roles ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with testing.running(app, role=None) as client, testing.rolled_back(app):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", WIDGETS),
        ("POST", WIDGETS),
        ("GET", f"{WIDGETS}/x"),
        ("HEAD", f"{WIDGETS}/x"),
        ("PATCH", f"{WIDGETS}/x"),
        ("DELETE", f"{WIDGETS}/x"),
        ("POST", f"{BASE}/hub"),
        ("GET", f"{BASE}/hub/x"),
        ("DELETE", f"{BASE}/hub/x"),
        ("GET", f"{BASE}/nothing-here"),
    ],
)
async def test_every_api_route_needs_a_token(anonymous: httpx.AsyncClient, method: str, path: str) -> None:
    response = await anonymous.request(
        method, path, json={"name": "w"} if method in ("POST", "PATCH") else None
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if method != "HEAD":
        assert response.json()["code"] == "unauthorized"


async def test_probes_and_documents_need_no_token(anonymous: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/openapi.json", "/docs"):
        assert (await anonymous.get(path)).status_code == 200, path


async def test_bad_tokens_are_401(anonymous: httpx.AsyncClient, tmp_path: Any) -> None:
    from switchboard_dev.issuer import LocalIssuer

    issuer = testing.issuer()
    stranger = LocalIssuer(tmp_path / "other")  # same issuer name, another key
    cases = {
        "expired": issuer.token("integration", lifetime=-120),
        "another key": stranger.token("integration"),
        "another audience": LocalIssuer(issuer.folder, audience="elsewhere").token("integration"),
        "another issuer": LocalIssuer(issuer.folder, issuer="http://evil.example").token("integration"),
        "not a JWT": "abc.def",
    }
    for name, token in cases.items():
        response = await anonymous.get(WIDGETS, headers=bearer(token))
        assert response.status_code == 401, name
        assert response.json()["@type"] == "Error", name
    assert (await anonymous.get(WIDGETS, headers={"Authorization": "Basic eDp5"})).status_code == 401
    assert (await anonymous.get(WIDGETS, headers=bearer(issuer.token("integration")))).status_code == 200


async def test_roles_decide_what_a_caller_may_do(anonymous: httpx.AsyncClient) -> None:
    as_agent, as_manager = testing.auth_headers("agent"), testing.auth_headers("manager")
    created = await anonymous.post(WIDGETS, json={"name": "w"}, headers=as_agent)
    assert created.status_code == 201
    url = f"{WIDGETS}/{created.json()['id']}"
    for state in ("active", "retired"):
        assert (await anonymous.patch(url, json={"state": state}, headers=as_agent)).status_code == 200
    refused = await anonymous.delete(url, headers=as_agent)  # deleting needs a manager or a system
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert (
        await anonymous.post(f"{BASE}/hub", json={"callback": "http://l.example/"}, headers=as_agent)
    ).status_code == 403
    assert (await anonymous.delete(url, headers=as_manager)).status_code == 204
    # A role the service does not know grants nothing; a customer reaches no widget (no owner declared).
    for headers in (testing.auth_headers("visitor"), testing.auth_headers("customer", party="P1")):
        assert (await anonymous.get(WIDGETS, headers=headers)).status_code == 403


async def test_openapi_shows_the_bearer_scheme_and_the_roles(app: FastAPI) -> None:
    document = app.openapi()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    delete = document["paths"][f"{WIDGETS}/{{id}}"]["delete"]
    assert delete["security"] == [{"bearerAuth": []}]
    assert delete["x-roles"] == ["integration", "manager"]
    assert "security" not in document["paths"]["/health/live"]["get"]
