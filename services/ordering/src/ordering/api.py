"""TMF622 routes: thin handlers, TMF models in and out."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_kit import idempotency
from switchboard_kit.db import SessionDep, read_connection, write_connection
from switchboard_kit.query import HotColumn, QueryCompiler, select_fields
from switchboard_kit.resources import (
    add_hot_route,
    etag,
    json_response,
    list_openapi,
    list_response,
    parse_body,
    request_session,
)
from tmf_models import common, tmf622

from .domain import CancelState, OrderState
from .models import cancel_product_order, kit, product_order
from .repository import CancelRepository, document_text, list_documents
from .service import OrderService, order_not_found

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": common.Error, "description": desc}
    for status, desc in (
        (400, "Bad Request"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (409, "Conflict"),
        (412, "Precondition Failed"),
        (413, "Payload Too Large"),
        (415, "Unsupported Media Type"),
        (422, "Unprocessable Entity"),
        (500, "Internal Server Error"),
    )
}


def order_query(settings_limit: int, max_limit: int) -> QueryCompiler:
    from datetime import datetime

    return QueryCompiler(
        tmf622.ProductOrder,
        product_order.c.doc,
        hot={
            "id": HotColumn(product_order.c.id),
            "state": HotColumn(product_order.c.state),
            "orderDate": HotColumn(product_order.c.order_date, python_type=datetime),
            "relatedParty.id": HotColumn(product_order.c.party_ids, many=True),
        },
        default_limit=settings_limit,
        max_limit=max_limit,
        default_order=(product_order.c.order_date.desc(),),
    )


def cancel_query(settings_limit: int, max_limit: int) -> QueryCompiler:
    return QueryCompiler(
        tmf622.CancelProductOrder,
        cancel_product_order.c.doc,
        hot={
            "id": HotColumn(cancel_product_order.c.id),
            "state": HotColumn(cancel_product_order.c.state),
            "productOrder.id": HotColumn(cancel_product_order.c.order_id),
        },
        default_limit=settings_limit,
        max_limit=max_limit,
        default_order=(cancel_product_order.c.created_at.desc(),),
    )


def build_router(service: OrderService, *, default_limit: int, max_limit: int) -> APIRouter:
    router = APIRouter()
    orders_q = order_query(default_limit, max_limit)
    cancels_q = cancel_query(default_limit, max_limit)

    async def created(request: Request, session: SessionDep, doc: dict[str, Any], version: int) -> Response:
        headers = {"Location": doc["href"], "ETag": etag(version)}
        await idempotency.remember(
            session,
            kit.idempotency_key,
            request,
            await request.body(),
            status_code=201,
            response_body=doc,
            headers=headers,
        )
        return json_response(doc, 201, headers)

    async def list_orders(request: Request) -> Response:
        query = orders_q.parse(request.query_params.multi_items())
        async with read_connection(request) as conn:  # one statement: no transaction needed
            docs, total = await list_documents(request, conn, product_order, query)
        return list_response(docs, total=total, offset=query.offset, fields=query.fields)

    async def retrieve_order(request: Request, id: str, fields: str | None) -> Response:
        selected = orders_q.parse([("fields", fields)]).fields if fields else None
        async with read_connection(request) as conn:
            found = await document_text(conn, product_order, id)
        if found is None:
            raise order_not_found(id)
        text, version = found
        headers = {"ETag": etag(version)}
        if selected is None:  # the stored JSON as it is: nothing to decode or encode
            return Response(text.encode(), media_type="application/json", headers=headers)
        return json_response(select_fields(orjson.loads(text), selected), headers=headers)

    async def serve_retrieve_product_order(request: Request) -> Response:
        return await retrieve_order(request, request.path_params["id"], request.query_params.get("fields"))

    # The reads agents hit most are served by plain routes too; the FastAPI routes below document them.
    add_hot_route(router, "/productOrder", "GET", list_orders)
    add_hot_route(router, "/productOrder/{id}", "GET", serve_retrieve_product_order)

    @router.get(
        "/productOrder",
        response_model=list[tmf622.ProductOrder],
        responses=ERRORS,
        tags=["productOrder"],
        operation_id="listProductOrder",
        openapi_extra=list_openapi(
            item_schema="ProductOrder",
            max_limit=max_limit,
            sort_fields=["orderDate", "state", "id"],
            filters={
                "id": {"type": "string"},
                "state": {"type": "string", "enum": [s.value for s in OrderState]},
                "relatedParty.id": {"type": "string"},
                "orderDate": {"type": "string", "format": "date-time"},
                "orderDate.gt": {"type": "string", "format": "date-time"},
                "orderDate.lt": {"type": "string", "format": "date-time"},
                "productOrderItem.productOffering.id": {"type": "string"},
                "billingAccount.id": {"type": "string"},
                "externalId": {"type": "string"},
            },
        ),
    )
    async def list_product_order(request: Request) -> Response:
        """Lists or finds ProductOrder objects (TMF630 filters, fields, offset/limit, sort)."""
        return await list_orders(request)

    async def create_order(request: Request, body: tmf622.ProductOrder_Create) -> Response:
        raw = await request.body()
        async with write_connection(request) as conn:
            if idempotency.idempotency_key(request) is None:
                # The common case: the order and its events are one statement, one round trip.
                doc, version = await service.create_order(conn, body, raw)
                headers = {"Location": doc["href"], "ETag": etag(version)}
            else:
                async with conn.transaction():
                    replay = await idempotency.replay_on(conn, kit.idempotency_key, request, raw)
                    if replay is not None:
                        return replay
                    doc, version = await service.create_order(conn, body, raw)
                    headers = {"Location": doc["href"], "ETag": etag(version)}
                    await idempotency.remember_on(
                        conn,
                        kit.idempotency_key,
                        request,
                        raw,
                        status_code=201,
                        response_body=doc,
                        headers=headers,
                    )
        return json_response(doc, 201, headers)

    async def serve_create_product_order(request: Request) -> Response:
        body = parse_body(
            tmf622.ProductOrder_Create, await request.body(), request.headers.get("content-type")
        )
        return await create_order(request, body)

    # POST productOrder is the hot path: served by a plain route; the FastAPI route below documents it.
    add_hot_route(router, "/productOrder", "POST", serve_create_product_order)

    @router.post(
        "/productOrder",
        status_code=201,
        response_model=tmf622.ProductOrder,
        responses=ERRORS,
        tags=["productOrder"],
        operation_id="createProductOrder",
    )
    async def create_product_order(body: tmf622.ProductOrder_Create, request: Request) -> Response:
        """Creates a ProductOrder. Every order is validated against the catalogue before acceptance:
        a valid one is priced and goes acknowledged -> inProgress; an invalid one is stored as
        `rejected` with every problem listed in `note`."""
        return await create_order(request, body)

    @router.get(
        "/productOrder/{id}",
        response_model=tmf622.ProductOrder,
        responses=ERRORS,
        tags=["productOrder"],
        operation_id="retrieveProductOrder",
    )
    async def retrieve_product_order(id: str, request: Request, fields: str | None = None) -> Response:
        """Retrieves a ProductOrder by id."""
        return await retrieve_order(request, id, fields)

    @router.patch(
        "/productOrder/{id}",
        response_model=tmf622.ProductOrder,
        responses=ERRORS,
        tags=["productOrder"],
        operation_id="patchProductOrder",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    ct: {"schema": {"$ref": "#/components/schemas/ProductOrder_Update"}}
                    for ct in ("application/merge-patch+json", "application/json")
                }
                | {"application/json-patch+json": {"schema": {"type": "array", "items": {"type": "object"}}}},
            }
        },
    )
    async def patch_product_order(id: str, request: Request, session: SessionDep) -> Response:
        """Updates a ProductOrder: merge patch (RFC 7396; plain application/json is treated as one) or
        JSON Patch (RFC 6902). Send If-Match with the ETag to guard against lost updates (412 on a mismatch).
        Setting `state` to `inProgress` retries a held or pending order."""
        doc, version = await service.patch_order(
            session,
            id,
            await request.body(),
            request.headers.get("content-type"),
            request.headers.get("if-match"),
        )
        return json_response(doc, headers={"ETag": etag(version)})

    @router.delete(
        "/productOrder/{id}",
        status_code=204,
        responses=ERRORS,
        tags=["productOrder"],
        operation_id="deleteProductOrder",
    )
    async def delete_product_order(id: str, request: Request, session: SessionDep) -> Response:
        """Deletes a ProductOrder in a final state (completed, failed, partial, rejected, cancelled)."""
        await service.delete_order(session, id, request.headers.get("if-match"))
        return Response(status_code=204)

    @router.get(
        "/cancelProductOrder",
        response_model=list[tmf622.CancelProductOrder],
        responses=ERRORS,
        tags=["cancelProductOrder"],
        operation_id="listCancelProductOrder",
        openapi_extra=list_openapi(
            item_schema="CancelProductOrder",
            max_limit=max_limit,
            sort_fields=["id", "state"],
            filters={
                "id": {"type": "string"},
                "state": {"type": "string", "enum": [s.value for s in CancelState]},
                "productOrder.id": {"type": "string"},
            },
        ),
    )
    async def list_cancel_product_order(request: Request, session: SessionDep) -> Response:
        """Lists or finds CancelProductOrder objects."""
        query = cancels_q.parse(request.query_params.multi_items())
        docs, total = await CancelRepository(session).list(query)
        return list_response(docs, total=total, offset=query.offset, fields=query.fields)

    async def create_cancel(
        request: Request, session: AsyncSession, body: tmf622.CancelProductOrder_Create
    ) -> Response:
        replay = await idempotency.replay(session, kit.idempotency_key, request, await request.body())
        if replay is not None:
            return replay
        doc, version = await service.create_cancel(session, body)
        return await created(request, session, doc, version)

    async def serve_create_cancel_product_order(request: Request) -> Response:
        # Read like POST productOrder's body (415 for a non-JSON media type, JSON when the header is
        # missing, the same limits); the FastAPI route below documents the operation.
        body = parse_body(
            tmf622.CancelProductOrder_Create, await request.body(), request.headers.get("content-type")
        )
        async with request_session(request) as session:
            return await create_cancel(request, session, body)

    add_hot_route(router, "/cancelProductOrder", "POST", serve_create_cancel_product_order)

    @router.post(
        "/cancelProductOrder",
        status_code=201,
        response_model=tmf622.CancelProductOrder,
        responses=ERRORS,
        tags=["cancelProductOrder"],
        operation_id="createCancelProductOrder",
    )
    async def create_cancel_product_order(
        body: tmf622.CancelProductOrder_Create, request: Request, session: SessionDep
    ) -> Response:
        """Requests the cancellation of a ProductOrder. The order goes assessingCancellation ->
        pendingCancellation -> cancelled and the request ends `done`. A request for an order that is
        already final ends `terminatedWithError` with the reason in `stateReason`."""
        return await create_cancel(request, session, body)

    @router.get(
        "/cancelProductOrder/{id}",
        response_model=tmf622.CancelProductOrder,
        responses=ERRORS,
        tags=["cancelProductOrder"],
        operation_id="retrieveCancelProductOrder",
    )
    async def retrieve_cancel_product_order(
        id: str, session: SessionDep, fields: str | None = None
    ) -> Response:
        """Retrieves a CancelProductOrder by id."""
        row = await service.get_cancel(session, id)
        selected = cancels_q.parse([("fields", fields)]).fields if fields else None
        return json_response(select_fields(row.doc, selected), headers={"ETag": etag(row.version)})

    return router
