"""Ordering use cases: the domain hooks the kit calls for each resource, and the worker's steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from switchboard_kit.errors import BadRequest, Conflict, NotFound
from switchboard_kit.events import format_datetime, utc_now
from switchboard_kit.resource import Change, EventList
from switchboard_kit.store import Stored, UnitOfWork

from . import domain, events
from .catalog import Catalog
from .models import cancel_product_order, product_order
from .provisioning import ProvisioningAdapter
from .states import TERMINAL_ORDER_STATES, CancelState, OrderState
from .validation import MAX_INDEXED_TEXT_LENGTH, overlong_indexed_values

# Attributes the server owns: a POST may not set them (the client's values are dropped) and a PATCH may
# repeat them unchanged but never change them. (cancellationDate is in the v4 ProductOrder_Create, but
# here it is the date the cancellation flow cancelled the order, so it is the server's too.)
SERVER_OWNED = ("id", "href", "orderDate", "completionDate", "cancellationDate", "orderTotalPrice")
# The same for a cancelProductOrder (the attributes the v4 CancelProductOrder_Create leaves out).
CANCEL_SERVER_OWNED = ("id", "href", "state", "effectiveCancellationDate")


def check_indexed_values(doc: dict[str, Any]) -> None:
    """400 for a value too long for the indexed column it goes into (before anything is stored)."""
    overlong = overlong_indexed_values(doc)
    if overlong:
        raise BadRequest(
            "Identifier too long",
            f"{', '.join(overlong)}: at most {MAX_INDEXED_TEXT_LENGTH} characters",
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
        result = domain.capture(doc, self.catalog, date=stamp)  # doc is this request's own
        accepted = result.doc["state"] == OrderState.IN_PROGRESS
        return Change(
            result.doc,
            columns={
                "order_date": now,
                "next_action_at": now + self.provisioning_delay if accepted else None,
            },
            events=result.events,
            at=now,
        )

    # -------------------------------------------------------------------- PATCH

    async def patch_order(self, uow: UnitOfWork, stored: Stored, patched: dict[str, Any]) -> Change | None:
        """A client's change of an order (already validated as a ProductOrder by the kit)."""
        current = stored.doc
        check_indexed_values(patched)
        result = domain.update(current, patched, self.catalog)
        patched = result.doc
        if patched == current:
            return None
        old_state, new_state = OrderState(current["state"]), OrderState(patched["state"])
        columns: dict[str, Any] = {}
        if new_state != old_state:
            retry = new_state == OrderState.IN_PROGRESS
            columns["next_action_at"] = utc_now() + self.provisioning_delay if retry else None
        return Change(patched, columns=columns, events=result.events)

    # ------------------------------------------------------------------- DELETE

    def delete_order(self, stored: Stored) -> list[tuple[str, dict[str, Any]]]:
        state = OrderState(stored.doc["state"])
        if state not in TERMINAL_ORDER_STATES:
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
        cancel, order = domain.start_cancellation(doc, order_row.doc)
        if order is None:
            return Change(cancel.doc, columns={"next_action_at": None}, events=cancel.events)
        # The fulfilment worker leaves a cancelling order alone.
        await self._save_order(uow, order_row, order.doc, order.events, next_action_at=None)
        return Change(
            cancel.doc, columns={"next_action_at": utc_now() + self.cancellation_delay}, events=cancel.events
        )

    async def advance_cancel(self, uow: UnitOfWork, cancel_row: Stored) -> None:
        """One step of an accepted cancellation: assessing -> pendingCancellation -> cancelled (request done)."""
        order_row = await uow.get(product_order, cancel_row.columns["order_id"], for_update=True)
        now = utc_now()
        cancel, order = domain.advance_cancellation(
            cancel_row.doc, None if order_row is None else order_row.doc, now=format_datetime(now)
        )
        if order is not None and order_row is not None:
            await self._save_order(uow, order_row, order.doc, order.events, next_action_at=None)
        # A request still in progress waits for the next step.
        still_running = cancel.doc["state"] == CancelState.IN_PROGRESS
        await self._save_cancel(
            uow,
            cancel_row,
            cancel.doc,
            cancel.events,
            next_action_at=now + self.cancellation_delay if still_running else None,
        )

    # ---------------------------------------------------------------- fulfilment

    async def fulfil(self, uow: UnitOfWork, row: Stored, adapter: ProvisioningAdapter) -> None:
        """Provisions the order's in-progress items and derives the order state from theirs."""
        order = row.doc
        if order.get("state") != OrderState.IN_PROGRESS:
            await uow.set_columns(product_order, row.id, {"next_action_at": None})
            return
        items = order.get("productOrderItem", [])
        results = {
            index: await adapter.provision(order, items[index]) for index in domain.to_provision(order)
        }
        result = domain.fulfil(order, results, now=format_datetime(utc_now()))
        next_action: datetime | None = None
        if result.doc["state"] == OrderState.IN_PROGRESS:
            next_action = utc_now() + self.provisioning_delay
        await self._save_order(uow, row, result.doc, result.events, next_action_at=next_action)
