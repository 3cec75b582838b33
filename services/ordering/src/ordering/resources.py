"""The TMF622 resources, each declared once: the kit serves and documents them from here."""

from __future__ import annotations

from datetime import datetime

from switchboard_kit.auth import AGENT, CUSTOMER, INTEGRATION, MANAGER
from switchboard_kit.query import HotColumn
from switchboard_kit.resource import Resource
from tmf_models import tmf622

from . import events
from .models import cancel_product_order, product_order
from .service import CANCEL_SERVER_OWNED, SERVER_OWNED, OrderService, cancel_columns, order_columns, party_ids


def declare(service: OrderService) -> list[Resource]:
    product_order_resource = Resource(
        name="productOrder",
        model=tmf622.ProductOrder,
        create_model=tmf622.ProductOrder_Create,
        update_model=tmf622.ProductOrder_Update,
        table=product_order,
        hot={
            "id": HotColumn(product_order.c.id),
            "state": HotColumn(product_order.c.state),
            "orderDate": HotColumn(product_order.c.order_date, python_type=datetime),
            "relatedParty.id": HotColumn(product_order.c.party_ids, many=True),
        },
        columns=order_columns,
        sort=("orderDate", "state", "id"),
        filters=("productOrderItem.productOffering.id", "billingAccount.id", "externalId"),
        default_order=(product_order.c.order_date.desc(),),
        events=events.ORDER,
        server_owned=SERVER_OWNED,
        on_create=service.create_order,
        on_patch=service.patch_order,
        on_delete=service.delete_order,
        hook_errors={"delete": (409,)},
        # Who may do what: the kit's defaults (staff and customers read and order, staff change, a
        # manager or a system deletes), spelled out here; a customer reaches only its own orders.
        roles={
            "list": (AGENT, MANAGER, INTEGRATION, CUSTOMER),
            "retrieve": (AGENT, MANAGER, INTEGRATION, CUSTOMER),
            "create": (AGENT, MANAGER, INTEGRATION, CUSTOMER),
            "patch": (AGENT, MANAGER, INTEGRATION),
            "delete": (MANAGER, INTEGRATION),
        },
        owner=party_ids,
        owner_filter="relatedParty.id",
        descriptions={
            "create": "Creates a ProductOrder. An order that names no customer (a relatedParty with role "
            "`customer`) is a 400 and is not stored. Every other order is validated against the catalogue "
            "before acceptance: a valid one is priced and goes acknowledged -> inProgress; an invalid one is "
            "stored as `rejected` with every problem listed in `note`.",
            "patch": "Updates a ProductOrder: merge patch (RFC 7396; plain application/json is treated as one) or "
            "JSON Patch (RFC 6902). Send If-Match with the ETag to guard against lost updates (412 on a "
            "mismatch). Setting `state` to `inProgress` retries a held or pending order.",
            "delete": "Deletes a ProductOrder in a final state (completed, failed, partial, rejected, cancelled).",
        },
    )
    cancel_resource = Resource(
        name="cancelProductOrder",
        model=tmf622.CancelProductOrder,
        create_model=tmf622.CancelProductOrder_Create,
        table=cancel_product_order,
        hot={
            "id": HotColumn(cancel_product_order.c.id),
            "state": HotColumn(cancel_product_order.c.state),
            "productOrder.id": HotColumn(cancel_product_order.c.order_id),
        },
        columns=cancel_columns,
        sort=("id", "state"),
        default_order=(cancel_product_order.c.created_at.desc(),),
        events=events.CANCEL,
        server_owned=CANCEL_SERVER_OWNED,
        on_create=service.create_cancel,
        hook_errors={"create": (404,)},
        # Cancelling is the care desk's or another system's; a customer calls the care desk.
        roles={
            "list": (AGENT, MANAGER, INTEGRATION),
            "retrieve": (AGENT, MANAGER, INTEGRATION),
            "create": (AGENT, MANAGER, INTEGRATION),
        },
        descriptions={
            "create": "Requests the cancellation of a ProductOrder. The order goes assessingCancellation -> "
            "pendingCancellation -> cancelled and the request ends `done`. A request for an order that is "
            "already final ends `terminatedWithError` with the reason in `stateReason`.",
        },
    )
    return [product_order_resource, cancel_resource]
