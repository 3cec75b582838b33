"""Ordering use cases: the domain hooks the kit calls for each resource, and the worker's steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from switchboard_kit.errors import BadRequest, Conflict, NotFound
from switchboard_kit.events import format_datetime, utc_now
from switchboard_kit.resource import Change, EventList
from switchboard_kit.store import Stored, UnitOfWork

from . import domain, events
from .catalog import Catalog
from .domain import CancelState, ItemState, OrderState
from .models import cancel_product_order, product_order
from .provisioning import ProvisioningAdapter

# Attributes the server owns: a POST may not set them (the client's values are dropped) and a PATCH may
# repeat them unchanged but never change them. (cancellationDate is in the v4 ProductOrder_Create, but
# here it is the date the cancellation flow cancelled the order, so it is the server's too.)
SERVER_OWNED = ("id", "href", "orderDate", "completionDate", "cancellationDate", "orderTotalPrice")
# The same for a cancelProductOrder (the attributes the v4 CancelProductOrder_Create leaves out).
CANCEL_SERVER_OWNED = ("id", "href", "state", "effectiveCancellationDate")
# Items may be changed only while the order is stopped.
EDITABLE_ITEM_STATES = frozenset({OrderState.HELD, OrderState.PENDING})


def check_indexed_values(doc: dict[str, Any]) -> None:
    """400 for a value too long for the indexed column it goes into (before anything is stored)."""
    overlong = domain.overlong_indexed_values(doc)
    if overlong:
        raise BadRequest(
            "Identifier too long",
            f"{', '.join(overlong)}: at most {domain.MAX_INDEXED_TEXT_LENGTH} characters",
        )


def party_ids(doc: dict[str, Any]) -> list[str]:
    return sorted({p["id"] for p in doc.get("relatedParty") or [] if isinstance(p, dict) and p.get("id")})


def order_columns(doc: dict[str, Any]) -> dict[str, Any]:
    """The hot columns of an order, from its document."""
    return {"state": doc["state"], "party_ids": party_ids(doc)}


def cancel_columns(doc: dict[str, Any]) -> dict[str, Any]:
    return {"state": doc["state"], "order_id": doc["productOrder"]["id"]}


class OrderService:
    """The domain hooks of productOrder and cancelProductOrder, and the worker's steps. Nothing here
    commits or sees a connection: each method works in the unit of work it is given."""

    def __init__(
        self, catalog: Catalog, *, base_url: str, provisioning_delay: float, cancellation_delay: float
    ) -> None:
        self.catalog = catalog
        self.base_url = base_url
        self.provisioning_delay = timedelta(seconds=provisioning_delay)
        self.cancellation_delay = timedelta(seconds=cancellation_delay)

    def order_href(self, id: str) -> str:
        return f"{self.base_url}/productOrder/{id}"

    async def _save_order(
        self,
        uow: UnitOfWork,
        stored: Stored,
        order: dict[str, Any],
        changes: EventList,
        *,
        next_action_at: datetime | None,
    ) -> None:
        columns = {**order_columns(order), "next_action_at": next_action_at}
        await uow.save(product_order, stored, order, columns=columns, events=events.ORDER.rows(changes))

    async def _save_cancel(
        self,
        uow: UnitOfWork,
        stored: Stored,
        cancel: dict[str, Any],
        changes: EventList,
        *,
        next_action_at: datetime | None,
    ) -> None:
        columns = {**cancel_columns(cancel), "next_action_at": next_action_at}
        await uow.save(
            cancel_product_order, stored, cancel, columns=columns, events=events.CANCEL.rows(changes)
        )

    # ------------------------------------------------------------------ capture

    async def create_order(self, uow: UnitOfWork, doc: dict[str, Any]) -> Change:
        """Captures an order: validated against the catalogue, then accepted (inProgress) or rejected.

        ``doc`` is the client's document with the server's id and href. The hook reads nothing, so the
        order and its events are one statement."""
        now = utc_now()
        # The indexed column holds exactly what the document says (millisecond precision).
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        stamp = format_datetime(now)
        check_indexed_values(doc)
        doc["orderDate"] = stamp
        problems = domain.validate_order(doc, self.catalog)
        if problems:
            doc = domain.apply_rejection(doc, problems, date=stamp)
            return Change(
                doc,
                columns={"order_date": now, "next_action_at": None},
                events=[("ProductOrderCreateEvent", doc)],
                at=now,
            )
        domain.price_order(doc, self.catalog, in_place=True)  # doc is this request's own
        acknowledged = _with_states(doc, OrderState.ACKNOWLEDGED, ItemState.ACKNOWLEDGED)
        _set_states(
            doc, domain.transition(OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS), ItemState.IN_PROGRESS
        )
        return Change(
            doc,
            columns={"order_date": now, "next_action_at": now + self.provisioning_delay},
            events=[("ProductOrderCreateEvent", acknowledged), ("ProductOrderStateChangeEvent", doc)],
            at=now,
        )

    # -------------------------------------------------------------------- PATCH

    async def patch_order(self, uow: UnitOfWork, stored: Stored, patched: dict[str, Any]) -> Change | None:
        """A client's change of an order (already validated as a ProductOrder by the kit)."""
        current = stored.doc
        if "state" not in patched:
            raise BadRequest("Invalid state", "state cannot be removed from an order")
        check_indexed_values(patched)
        old_state = OrderState(current["state"])
        new_state = OrderState(patched["state"])
        items_changed = _items_without_server_fields(patched) != _items_without_server_fields(current)
        if items_changed:
            if old_state not in EDITABLE_ITEM_STATES:
                raise Conflict(
                    "Order items locked",
                    f"productOrderItem can be changed only while the order is held or pending, not {old_state}",
                )
            problems = domain.validate_order(patched, self.catalog)
            if problems:
                raise BadRequest("Invalid order items", "; ".join(p.message for p in problems))
            patched = domain.price_order(patched, self.catalog)
        # Item states follow fulfilment whatever else the patch changes; an item added to a held or
        # pending order starts in the order's state (and is retried with the others).
        domain.check_client_item_states(
            current,
            patched,
            new_item_state=ItemState(old_state.value) if old_state in EDITABLE_ITEM_STATES else None,
        )
        columns: dict[str, Any] = {}
        if new_state != old_state:
            domain.client_transition(old_state, new_state)
            if new_state == OrderState.IN_PROGRESS:
                # Retry: held or pending items go back to provisioning.
                for item in patched.get("productOrderItem", []):
                    if item.get("state") in (ItemState.HELD, ItemState.PENDING):
                        item["state"] = ItemState.IN_PROGRESS.value
                columns["next_action_at"] = utc_now() + self.provisioning_delay
            else:
                columns["next_action_at"] = None
        if patched == current:
            return None
        changes: list[tuple[str, dict[str, Any]]] = []
        if new_state != old_state:
            changes.append(("ProductOrderStateChangeEvent", patched))
            if new_state in domain.WAITING_ON_CUSTOMER_STATES:
                changes.append(("ProductOrderInformationRequiredEvent", patched))
        other = {k: v for k, v in patched.items() if k != "state"}
        if other != {k: v for k, v in current.items() if k != "state"}:
            changes.append(("ProductOrderAttributeValueChangeEvent", patched))
        return Change(patched, columns=columns, events=changes)

    # ------------------------------------------------------------------- DELETE

    def delete_order(self, stored: Stored) -> list[tuple[str, dict[str, Any]]]:
        state = OrderState(stored.doc["state"])
        if state not in domain.TERMINAL_ORDER_STATES:
            raise Conflict(
                "Order still open", f"An order in state {state} cannot be deleted; cancel it first"
            )
        return [("ProductOrderDeleteEvent", stored.doc)]

    # ------------------------------------------------------------- cancellation

    async def create_cancel(self, uow: UnitOfWork, doc: dict[str, Any]) -> Change:
        order_ref = doc.get("productOrder") or {}
        order_id = order_ref.get("id")
        if order_id is None:
            raise BadRequest("Missing productOrder.id", "cancelProductOrder needs productOrder.id")
        order_row = await uow.get(product_order, order_id, for_update=True)
        if order_row is None:
            raise NotFound("ProductOrder not found", f"No productOrder with id {order_id} to cancel")
        doc["productOrder"] = {
            **order_ref,
            "href": self.order_href(order_id),
            "@referredType": "ProductOrder",
        }
        reason = domain.can_cancel(OrderState(order_row.doc["state"]))
        if reason is not None:
            doc["state"] = CancelState.TERMINATED_WITH_ERROR.value
            doc["stateReason"] = reason
            return Change(
                doc, columns={"next_action_at": None}, events=[("CancelProductOrderCreateEvent", doc)]
            )
        doc["state"] = CancelState.ACKNOWLEDGED.value
        acknowledged = _snapshot(doc)
        doc["state"] = CancelState.IN_PROGRESS.value
        order = _snapshot(order_row.doc)
        previous = OrderState(order["state"])
        _set_states(
            order,
            domain.transition(previous, OrderState.ASSESSING_CANCELLATION),
            ItemState.ASSESSING_CANCELLATION,
            only_open=True,
        )
        # The fulfilment worker leaves a cancelling order alone.
        await self._save_order(
            uow, order_row, order, [("ProductOrderStateChangeEvent", order)], next_action_at=None
        )
        return Change(
            doc,
            columns={"next_action_at": utc_now() + self.cancellation_delay},
            events=[
                ("CancelProductOrderCreateEvent", acknowledged),
                ("CancelProductOrderStateChangeEvent", doc),
            ],
        )

    async def advance_cancel(self, uow: UnitOfWork, cancel_row: Stored) -> None:
        """One step of an accepted cancellation: assessing -> pendingCancellation -> cancelled (request done)."""
        order_row = await uow.get(product_order, cancel_row.columns["order_id"], for_update=True)
        cancel = _snapshot(cancel_row.doc)
        changed = [("CancelProductOrderStateChangeEvent", cancel)]
        if order_row is None:
            cancel["state"] = CancelState.TERMINATED_WITH_ERROR.value
            cancel["stateReason"] = "The order no longer exists"
            await self._save_cancel(uow, cancel_row, cancel, changed, next_action_at=None)
            return
        order = _snapshot(order_row.doc)
        state = OrderState(order["state"])
        if state == OrderState.ASSESSING_CANCELLATION:
            _set_states(
                order,
                domain.transition(state, OrderState.PENDING_CANCELLATION),
                ItemState.PENDING_CANCELLATION,
                only_open=True,
            )
            await self._save_order(
                uow, order_row, order, [("ProductOrderStateChangeEvent", order)], next_action_at=None
            )
            await self._save_cancel(
                uow, cancel_row, cancel, [], next_action_at=utc_now() + self.cancellation_delay
            )
            return
        if state == OrderState.PENDING_CANCELLATION:
            now = format_datetime(utc_now())
            _set_states(
                order, domain.transition(state, OrderState.CANCELLED), ItemState.CANCELLED, only_open=True
            )
            order["cancellationDate"] = now
            if cancel.get("cancellationReason"):
                order["cancellationReason"] = cancel["cancellationReason"]
            await self._save_order(
                uow, order_row, order, [("ProductOrderStateChangeEvent", order)], next_action_at=None
            )
            cancel["state"] = CancelState.DONE.value
            cancel["effectiveCancellationDate"] = now
            await self._save_cancel(uow, cancel_row, cancel, changed, next_action_at=None)
            return
        cancel["state"] = CancelState.TERMINATED_WITH_ERROR.value
        cancel["stateReason"] = f"Order moved to {state} during the cancellation"
        await self._save_cancel(uow, cancel_row, cancel, changed, next_action_at=None)

    # ---------------------------------------------------------------- fulfilment

    async def fulfil(self, uow: UnitOfWork, row: Stored, adapter: ProvisioningAdapter) -> None:
        """Provisions the order's in-progress items and derives the order state from theirs."""
        order = _snapshot(row.doc)
        state = OrderState(order["state"])
        if state != OrderState.IN_PROGRESS:
            await uow.set_columns(product_order, row.id, {"next_action_at": None})
            return
        held_notes = []
        for item in order.get("productOrderItem", []):
            if item.get("state") not in (ItemState.IN_PROGRESS, ItemState.ACKNOWLEDGED):
                continue
            result = await adapter.provision(order, item)
            item["state"] = domain.transition(ItemState(item["state"]), ItemState(result.outcome)).value
            if result.reason:
                held_notes.append(
                    {
                        "@type": "Note",
                        "author": "Switchboard fulfilment",
                        "date": format_datetime(utc_now()),
                        "text": f"[item {item.get('id')}] {result.outcome}: {result.reason}",
                    }
                )
        new_state = domain.derive_order_state(
            [ItemState(i["state"]) for i in order.get("productOrderItem", [])]
        )
        if held_notes:
            order["note"] = [*order.get("note", []), *held_notes]
        if new_state in domain.TERMINAL_ORDER_STATES:
            order["completionDate"] = format_datetime(utc_now())
        order["state"] = domain.transition(state, new_state).value if new_state != state else state.value
        next_action: datetime | None = None
        if new_state == OrderState.IN_PROGRESS:
            next_action = utc_now() + self.provisioning_delay
        changes: list[tuple[str, dict[str, Any]]] = []
        if new_state != state:
            changes.append(("ProductOrderStateChangeEvent", order))
            if new_state in domain.WAITING_ON_CUSTOMER_STATES:
                changes.append(("ProductOrderInformationRequiredEvent", order))
        await self._save_order(uow, row, order, changes, next_action_at=next_action)


def _snapshot(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON document (several times faster than copy.deepcopy)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    return copied


def _with_states(order: dict[str, Any], state: OrderState, item_state: ItemState) -> dict[str, Any]:
    """A copy of ``order`` in ``state``, every item in ``item_state``; only the order and its items are
    copied (the rest is shared, so neither copy may be changed below the item level afterwards)."""
    copied = {**order, "state": state.value}
    if "productOrderItem" in order:
        copied["productOrderItem"] = [
            {**item, "state": item_state.value} for item in order["productOrderItem"]
        ]
    return copied


def _set_states(
    order: dict[str, Any], state: OrderState, item_state: ItemState, *, only_open: bool = False
) -> None:
    order["state"] = state.value
    for item in order.get("productOrderItem", []):
        if only_open and item.get("state") in domain.TERMINAL_ITEM_STATES:
            continue
        item["state"] = item_state.value


def _items_without_server_fields(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in item.items() if k not in ("state", "itemPrice", "itemTotalPrice")}
        for item in order.get("productOrderItem", [])
    ]
