"""One declaration per TMF resource; the kit serves it.

A service describes each resource once, as a :class:`Resource`: its name (and so its path), its
models, its table and the hot columns that filters and sort use, its domain hooks and its events.
:func:`routes` turns the declarations into plain Starlette routes (no per-request dependency
solving: this is the fast path, and the only one) and :func:`openapi.resource_paths` documents the
same routes from the same declarations, so the two cannot drift apart.

What a declaration gets:

- ``GET /{name}``: TMF630 filters, ``fields``, ``offset``/``limit``, ``sort``, ``X-Total-Count``;
- ``GET``/``HEAD /{name}/{id}``: the stored JSON as it is, ``ETag``, 304 on ``If-None-Match``;
- ``POST /{name}`` when it has ``on_create``: the body validated from its bytes, ``Idempotency-Key``,
  the document and its events written together (one statement unless the hook reads);
- ``PATCH /{name}/{id}`` when it has ``on_patch``: merge patch or JSON patch, ``If-Match``;
- ``DELETE /{name}/{id}`` when it has ``on_delete``: ``If-Match``.

The hooks hold the domain: they get the client's document (or the stored one) and return the new
document and the events to emit; the kit persists what they return. Every answer and error is
built here, so every service reads the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table
from sqlalchemy.sql.elements import ColumnElement
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import auth, db, idempotency, openapi
from . import events as kit_events
from .bodies import input_document, parse_body
from .conditional import check_if_match, etag, not_modified
from .errors import BadRequest, NotFound, invalid_body
from .ids import new_id
from .patch import apply_patch
from .query import HotColumn, QueryCompiler, select_fields
from .store import Store, Stored, UnitOfWork

EventList = Sequence[tuple[str, dict[str, Any]]]  # (event type, the resource as the event carries it)


@dataclasses.dataclass(frozen=True)
class Events:
    """The events of one resource: their topic, the envelope's resource name and domain, and the
    event types the resource may emit. Events are keyed by ``key(doc)`` (default: the id), so the
    events of one key keep their order on the topic."""

    topic: str
    resource: str
    domain: str
    types: tuple[str, ...]
    key: Callable[[dict[str, Any]], str] = lambda doc: str(doc["id"])

    def rows(self, changes: EventList, *, at: datetime | None = None) -> list[dict[str, Any]]:
        """Outbox rows of ``changes``, in order, all at ``at`` (default: now)."""
        at = at or kit_events.utc_now()
        rows = []
        for event_type, doc in changes:
            if event_type not in self.types:
                raise ValueError(f"{event_type} is not an event of {self.resource}")
            event = kit_events.envelope(event_type, self.resource, doc, domain=self.domain, at=at)
            rows.append(kit_events.outbox_row(self.topic, self.key(doc), event))
        return rows


@dataclasses.dataclass(frozen=True)
class Change:
    """What a domain hook returns: the new document, the row's columns that are not derived from the
    document (``Resource.columns`` derives the rest), and the events to emit, in order."""

    doc: dict[str, Any]
    columns: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    events: EventList = ()
    at: datetime | None = None  # the events' time (default: now)


# on_create(uow, doc): ``doc`` is the client's document, validated, with the server's id and href
# and without the attributes the server owns. The unit of work is there for hooks that must read
# (or change another resource); a hook that does not touch it keeps the create one statement.
CreateHook = Callable[[UnitOfWork, dict[str, Any]], Awaitable[Change]]
# on_patch(uow, stored, patched): the patched document, validated against the resource's model;
# returns the change, or None when nothing changes.
PatchHook = Callable[[UnitOfWork, Stored, dict[str, Any]], Awaitable[Change | None]]
# on_delete(stored): the events of the deletion; raises (e.g. Conflict) when it may not happen.
DeleteHook = Callable[[Stored], EventList]


_READ = (auth.AGENT, auth.MANAGER, auth.INTEGRATION, auth.CUSTOMER)
# Who may do what, by default: staff and customers read and create (customers only their own party's
# resources), staff change, and only a manager or a system deletes.
DEFAULT_ROLES: Mapping[str, tuple[str, ...]] = {
    "list": _READ,
    "retrieve": _READ,
    "create": _READ,
    "patch": (auth.AGENT, auth.MANAGER, auth.INTEGRATION),
    "delete": (auth.MANAGER, auth.INTEGRATION),
}


@dataclasses.dataclass(frozen=True)
class Resource:
    """The declaration of one TMF resource (see the module docstring)."""

    name: str  # "productOrder": the path segment and the envelope's resource name
    model: type[BaseModel]  # the full resource, as GET answers it
    table: Table  # id, doc (db.document_table), version, and the hot columns
    events: Events
    hot: Mapping[str, HotColumn] = dataclasses.field(default_factory=dict)
    # Hot column values of a document (state, ids of related parties, ...): written with every change.
    columns: Callable[[dict[str, Any]], Mapping[str, Any]] = lambda doc: {}
    sort: Sequence[str] = ("id",)  # sortable attributes, documented
    filters: Sequence[str] = ()  # filters documented beyond the hot ones (any attribute works)
    default_order: Sequence[ColumnElement[Any]] = ()
    create_model: type[BaseModel] | None = None
    update_model: type[BaseModel] | None = None
    on_create: CreateHook | None = None
    on_patch: PatchHook | None = None
    on_delete: DeleteHook | None = None
    # Attributes the server owns: dropped from a POST; a PATCH may repeat them but not change them.
    server_owned: tuple[str, ...] = ("id", "href")
    # Statuses a hook may answer with, per operation ("create", "patch", "delete"), for the OpenAPI.
    hook_errors: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    descriptions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    always_fields: tuple[str, ...] = ("id", "href")  # kept by a ``fields`` selection
    # Roles per operation ("list", "retrieve", "create", "patch", "delete"); see DEFAULT_ROLES.
    roles: Mapping[str, Collection[str]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_ROLES))
    # A customer sees only resources whose owner(doc) holds its party id, and its lists are filtered
    # on ``owner_filter`` (an attribute path, e.g. "relatedParty.id"); without them, customers get 403.
    owner: Callable[[dict[str, Any]], Collection[str]] | None = None
    owner_filter: str | None = None

    def allows(self, operation: str) -> Collection[str]:
        return self.roles.get(operation, DEFAULT_ROLES[operation])

    @property
    def title(self) -> str:
        return self.name[:1].upper() + self.name[1:]

    @property
    def path(self) -> str:
        return f"/{self.name}"

    def href(self, base_url: str, id: str) -> str:
        return f"{base_url}/{self.name}/{id}"

    def not_found(self, id: str) -> NotFound:
        return NotFound(f"{self.title} not found", f"No {self.name} with id {id}")

    def compiler(self, *, default_limit: int, max_limit: int) -> QueryCompiler:
        return QueryCompiler(
            self.model,
            db.document_jsonb(self.table),
            hot=self.hot,
            default_limit=default_limit,
            max_limit=max_limit,
            default_order=self.default_order,
        )


class OrjsonResponse(JSONResponse):
    """A JSON answer written by orjson (the errors' and the probes' as well as the resources'). A
    JSONResponse, so FastAPI documents the routes that use it as JSON."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Every JSON answer of the kit: compact, as orjson writes it."""
    return OrjsonResponse(body, status_code=status_code, headers=dict(headers or {}))


def list_response(
    documents: list[str],
    *,
    total: int,
    offset: int,
    paged: bool,
    fields: frozenset[str] | None,
    always: tuple[str, ...] = ("id", "href"),
    compact: bool = False,
) -> Response:
    """A page of stored JSON documents, with X-Total-Count and X-Result-Count. 206 Partial Content
    only when the client asked for a page (``offset`` or ``limit``) and more results remain; a list
    asked for without paging is 200 whatever the table holds (its size is in X-Total-Count).

    ``compact``: the texts are the compact JSON the store wrote (:func:`db.stores_compact_text`) and
    are joined as they are; otherwise (PostgreSQL's print of ``jsonb``, with spaces) each document is
    re-encoded, so the same document reads the same from GET, a list, POST and PATCH."""
    if fields is not None:
        body = orjson.dumps([select_fields(orjson.loads(d), fields, always=always) for d in documents])
    elif compact:
        body = b"[" + ",".join(documents).encode() + b"]"
    else:
        body = orjson.dumps([orjson.loads(d) for d in documents])
    more = offset + len(documents) < total
    return Response(
        body,
        status_code=206 if paged and more else 200,
        headers={"X-Total-Count": str(total), "X-Result-Count": str(len(documents))},
        media_type="application/json",
    )


class _Served:
    """The handlers of one resource in one running service."""

    def __init__(self, resource: Resource, runtime: Any, *, default_limit: int, max_limit: int) -> None:
        self.resource = resource
        self.runtime = runtime
        self.query = resource.compiler(default_limit=default_limit, max_limit=max_limit)
        self.compact = db.stores_compact_text(resource.table)  # stored text is sent as it is

    @property
    def store(self) -> Store:
        store: Store = self.runtime.store
        return store

    def _rows(self, change: Change) -> list[dict[str, Any]]:
        return self.resource.events.rows(change.events, at=change.at)

    def _columns(self, change: Change) -> dict[str, Any]:
        return {**self.resource.columns(change.doc), **change.columns}

    # -- reads ----------------------------------------------------------------------------------

    def _caller(self, request: Request, operation: str) -> auth.Principal:
        caller = auth.require(request, self.resource.allows(operation))
        if caller.only_customer() and (
            self.resource.owner is None
            or self.resource.owner_filter is None
            or caller.party_id is None
            or "," in caller.party_id
        ):
            raise auth.forbidden(f"A customer cannot reach {self.resource.name} resources")
        return caller

    def _owned(self, caller: auth.Principal, doc: dict[str, Any]) -> bool:
        """Whether ``caller`` may see ``doc`` (staff see everything, a customer its own party's)."""
        if not caller.only_customer():
            return True
        assert self.resource.owner is not None
        return caller.party_id in self.resource.owner(doc)

    async def list(self, request: Request) -> Response:
        caller = self._caller(request, "list")
        params = request.query_params.multi_items()
        paged = any(name in ("offset", "limit") for name, _ in params)
        if caller.only_customer():
            assert self.resource.owner_filter is not None
            assert caller.party_id is not None
            params = [*params, (self.resource.owner_filter, caller.party_id)]  # ANDed with the client's
        query = self.query.page(params)  # checked; its SQL is reused per query shape
        docs, total = await self.store.list_page(self.resource.table, query)
        return list_response(
            docs,
            total=total,
            offset=query.offset,
            paged=paged,
            fields=query.fields,
            always=self.resource.always_fields,
            compact=self.compact,
        )

    async def retrieve(self, request: Request) -> Response:
        caller = self._caller(request, "retrieve")
        id = request.path_params["id"]
        fields = request.query_params.get("fields")
        selected = self.query.parse([("fields", fields)]).fields if fields else None
        found = await self.store.get_text(self.resource.table, id)
        if found is None:
            raise self.resource.not_found(id)
        text, version = found
        doc = None
        if not self.compact or selected is not None or caller.only_customer():
            doc = orjson.loads(text)  # (re-encoded compactly when stored as jsonb, see list_response)
            if not self._owned(caller, doc):
                raise self.resource.not_found(id)  # a customer learns nothing of others' resources
        headers = {"ETag": etag(version)}
        if not_modified(request.headers.get("if-none-match"), version):
            return Response(status_code=304, headers=headers)
        if doc is None:
            return Response(text.encode(), headers=headers, media_type="application/json")
        if selected is not None:
            doc = select_fields(doc, selected, always=self.resource.always_fields)
        return json_response(doc, headers=headers)

    # -- writes ---------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        resource = self.resource
        assert resource.create_model is not None
        assert resource.on_create is not None
        caller = self._caller(request, "create")
        raw = await request.body()
        body = parse_body(resource.create_model, raw, request.headers.get("content-type"))
        sent = input_document(body, raw)
        id = new_id()
        # The server's id and href win over anything the client sent (extension attributes).
        doc = {"id": id, "href": resource.href(self.runtime.base_url, id)}
        doc.update((k, v) for k, v in sent.items() if k not in resource.server_owned)
        doc.setdefault("@type", resource.model.__name__)
        if not self._owned(caller, doc):
            raise auth.forbidden(f"A customer can create a {resource.name} only for its own party")
        key = idempotency.idempotency_key(request)
        async with self.store.unit_of_work() as uow:
            if key is not None:
                replay = await idempotency.replay(uow, request, key, raw)
                if replay is not None:
                    return replay
            change = await resource.on_create(uow, doc)
            await uow.insert(
                resource.table, change.doc, columns=self._columns(change), events=self._rows(change)
            )
            headers = {"Location": change.doc["href"], "ETag": etag(1)}
            if key is not None:
                await idempotency.remember(
                    uow, request, key, raw, status_code=201, response_body=change.doc, headers=headers
                )
        return json_response(change.doc, 201, headers)

    async def patch(self, request: Request) -> Response:
        resource = self.resource
        assert resource.on_patch is not None
        caller = self._caller(request, "patch")
        id = request.path_params["id"]
        raw = await request.body()
        async with self.store.unit_of_work() as uow:
            stored = await uow.get(resource.table, id, for_update=True)
            if stored is None or not self._owned(caller, stored.doc):
                raise resource.not_found(id)
            check_if_match(request.headers.get("if-match"), stored.version)
            patched = apply_patch(stored.doc, raw, request.headers.get("content-type"))
            for attr in resource.server_owned:
                if patched.get(attr) != stored.doc.get(attr):
                    raise BadRequest(
                        "Read-only attribute", f"{attr} is set by the server and cannot be changed"
                    )
            try:
                patched = input_document(resource.model.model_validate(patched))
            except ValidationError as exc:
                raise invalid_body(exc) from exc  # what a POST answers for the same fault
            change = await resource.on_patch(uow, stored, patched)
            if change is None or change.doc == stored.doc:
                return json_response(stored.doc, headers={"ETag": etag(stored.version)})
            version = await uow.save(
                resource.table, stored, change.doc, columns=self._columns(change), events=self._rows(change)
            )
        return json_response(change.doc, headers={"ETag": etag(version)})

    async def delete(self, request: Request) -> Response:
        resource = self.resource
        assert resource.on_delete is not None
        caller = self._caller(request, "delete")
        id = request.path_params["id"]
        async with self.store.unit_of_work() as uow:
            stored = await uow.get(resource.table, id, for_update=True)
            if stored is None or not self._owned(caller, stored.doc):
                raise resource.not_found(id)
            check_if_match(request.headers.get("if-match"), stored.version)
            changes = resource.on_delete(stored)
            await uow.delete(resource.table, stored, events=resource.events.rows(changes))
        return Response(status_code=204)


def routes(
    resources: Sequence[Resource], runtime: Any, *, base_path: str, default_limit: int, max_limit: int
) -> list[BaseRoute]:
    """The plain routes that serve ``resources`` under ``base_path`` (GET routes answer HEAD too)."""
    out: list[BaseRoute] = []
    for resource in resources:
        served = _Served(resource, runtime, default_limit=default_limit, max_limit=max_limit)
        collection, item = f"{base_path}{resource.path}", f"{base_path}{resource.path}/{{id}}"
        out.append(Route(collection, served.list, methods=["GET"]))
        if resource.on_create is not None:
            out.append(Route(collection, served.create, methods=["POST"]))
        out.append(Route(item, served.retrieve, methods=["GET"]))
        if resource.on_patch is not None:
            out.append(Route(item, served.patch, methods=["PATCH"]))
        if resource.on_delete is not None:
            out.append(Route(item, served.delete, methods=["DELETE"]))
    return out


def _patch_body(resource: Resource) -> dict[str, Any]:
    update = resource.update_model or resource.model
    merge = {"schema": openapi.ref(update)}
    return {
        "required": True,
        "content": {
            "application/merge-patch+json": merge,
            "application/json": merge,
            "application/json-patch+json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }


def openapi_part(
    resource: Resource, *, base_path: str, default_limit: int, max_limit: int
) -> openapi.OpenApiPart:
    """The OpenAPI operations of the routes :func:`routes` serves for ``resource``."""
    query = resource.compiler(default_limit=default_limit, max_limit=max_limit)
    title, model, tags = resource.title, resource.model, [resource.name]
    text = resource.descriptions.get
    hook = resource.hook_errors.get
    filters = list(dict.fromkeys([*query.hot, *resource.filters]))
    collection: dict[str, Any] = {
        "get": {
            "tags": tags,
            "operationId": f"list{title}",
            "summary": f"Lists or finds {title} objects",
            "description": text(
                "list", f"Lists or finds {title} objects (TMF630 filters, fields, offset/limit, sort)."
            ),
            "parameters": openapi.list_parameters(
                query, sort=resource.sort, filters=filters, always=resource.always_fields
            ),
            "responses": openapi.list_responses(model),
        }
    }
    models: list[tuple[type[BaseModel], str]] = [(model, "serialization")]
    created = {"Location": {"description": "URL of the new resource", "schema": {"type": "string"}}}
    etag_header = {
        "ETag": {"description": "Version of the resource, for If-Match", "schema": {"type": "string"}}
    }
    if resource.on_create is not None and resource.create_model is not None:
        models.append((resource.create_model, "validation"))
        collection["post"] = {
            "tags": tags,
            "operationId": f"create{title}",
            "summary": f"Creates a {title}",
            "description": text("create", f"Creates a {title}."),
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "A retried request with the same key and body gets the first response",
                    "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH},
                }
            ],
            "requestBody": {
                "required": True,
                "content": openapi.json_content(openapi.ref(resource.create_model)),
            },
            "responses": {
                "201": {
                    "description": f"The {title} created",
                    "headers": {**created, **etag_header},
                    "content": openapi.json_content(openapi.ref(model)),
                },
                **openapi.errors(400, 413, 415, 422, *hook("create", ())),
            },
        }
    item: dict[str, Any] = {
        "get": {
            "tags": tags,
            "operationId": f"retrieve{title}",
            "summary": f"Retrieves a {title} by id",
            "description": text("retrieve", f"Retrieves a {title} by id."),
            "parameters": [
                openapi.path_id(title),
                openapi.fields_parameter(resource.always_fields),
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "description": "ETags the client holds: 304 when one is current",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": f"The {title}",
                    "headers": etag_header,
                    "content": openapi.json_content(openapi.ref(model)),
                },
                "304": {
                    "description": "The resource still has the ETag named in If-None-Match",
                    "headers": etag_header,
                },
                **openapi.errors(400, 404),
            },
        }
    }
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "The ETag the change is based on: 412 when the resource has changed since",
        "schema": {"type": "string"},
    }
    if resource.on_patch is not None:
        if resource.update_model is not None:
            models.append((resource.update_model, "validation"))
        item["patch"] = {
            "tags": tags,
            "operationId": f"patch{title}",
            "summary": f"Updates partially a {title}",
            "description": text(
                "patch",
                f"Updates a {title}: merge patch (RFC 7396; plain application/json is treated as one) or "
                "JSON Patch (RFC 6902). Send If-Match with the ETag to guard against lost updates.",
            ),
            "parameters": [openapi.path_id(title), if_match],
            "requestBody": _patch_body(resource),
            "responses": {
                "200": {
                    "description": f"The {title} updated",
                    "headers": etag_header,
                    "content": openapi.json_content(openapi.ref(model)),
                },
                **openapi.errors(400, 404, 409, 412, 413, 415, *hook("patch", ())),
            },
        }
    if resource.on_delete is not None:
        item["delete"] = {
            "tags": tags,
            "operationId": f"delete{title}",
            "summary": f"Deletes a {title}",
            "description": text("delete", f"Deletes a {title}."),
            "parameters": [openapi.path_id(title), if_match],
            "responses": {
                "204": {"description": "Deleted"},
                **openapi.errors(404, 412, *hook("delete", ())),
            },
        }
    for operation, op in (
        ("list", collection["get"]),
        ("create", collection.get("post")),
        ("retrieve", item["get"]),
        ("patch", item.get("patch")),
        ("delete", item.get("delete")),
    ):
        if op is not None:
            roles = sorted(resource.allows(operation))
            op["x-roles"] = roles
            op["description"] += f"\n\nRoles: {', '.join(roles)}."
    paths = {f"{base_path}{resource.path}": collection, f"{base_path}{resource.path}/{{id}}": item}
    return paths, models
