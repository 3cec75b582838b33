"""Ordering use cases. Nothing here commits: ``get_session`` (requests) or the worker's own transaction does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_kit.errors import BadRequest, Conflict, NotFound
from switchboard_kit.events import format_datetime, utc_now
from switchboard_kit.ids import new_id
from switchboard_kit.patch import apply_patch
from switchboard_kit.resources import check_if_match, input_document
from tmf_models import tmf622

from . import domain, events
from .catalog import Catalog
from .provisioning import ProvisioningAdapter
from .repository import CancelRepository, OrderRepository, insert_order
from .states import TERMINAL_ORDER_STATES, CancelState, OrderState
from .validation import MAX_INDEXED_TEXT_LENGTH, overlong_indexed_values

# Attributes the server owns: a POST may not set them (the client's values are dropped) and a PATCH may
# repeat them unchanged but never change them. (cancellationDate is in the v4 ProductOrder_Create, but
# here it is the date the cancellation flow cancelled the order, so it is the server's too.)
SERVER_OWNED = ("id", "href", "orderDate", "completionDate", "cancellationDate", "orderTotalPrice")
# The same for a cancelProductOrder (the attributes the v4 CancelProductOrder_Create leaves out).
CANCEL_SERVER_OWNED = ("id", "href", "state", "effectiveCancellationDate")


def _dump(model: Any) -> dict[str, Any]:
    return input_document(model)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def _without(doc: dict[str, Any], owned: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in owned}


def check_indexed_values(doc: dict[str, Any]) -> None:
    """400 for a value too long for the indexed column it goes into (before anything is stored)."""
    overlong = overlong_indexed_values(doc)
    if overlong:
        raise BadRequest(
            "Identifier too long",
            f"{', '.join(overlong)}: at most {MAX_INDEXED_TEXT_LENGTH} characters",
        )


def order_not_found(id: str) -> NotFound:
    return NotFound("ProductOrder not found", f"No productOrder with id {id}")


class OrderService:
    def __init__(
        self, catalog: Catalog, *, base_url: str, provisioning_delay: float, cancellation_delay: float
    ) -> None:
        self.catalog = catalog
        self.base_url = base_url
        self.provisioning_delay = timedelta(seconds=provisioning_delay)
        self.cancellation_delay = timedelta(seconds=cancellation_delay)

    def order_href(self, id: str) -> str:
        return f"{self.base_url}/productOrder/{id}"

    def cancel_href(self, id: str) -> str:
        return f"{self.base_url}/cancelProductOrder/{id}"

    # ------------------------------------------------------------------ capture

    async def create_order(
        self, conn: Any, body: tmf622.ProductOrder_Create, raw: bytes | None = None
    ) -> tuple[dict[str, Any], int]:
        """Captures an order: validated against the catalogue, then accepted (inProgress) or rejected.
        An order that names no customer is a 400 and is not stored.

        ``conn`` is a :func:`switchboard_kit.db.write_connection`: the order and its events are one
        statement. ``raw`` is the request body ``body`` was validated from, when there is one."""
        now = utc_now()
        # The indexed column holds exactly what the document says (millisecond precision).
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        stamp = format_datetime(now)
        doc = input_document(body, raw)
        check_indexed_values(doc)
        order_id = new_id()
        # The server's id, href and dates win over anything the client sent (extension attributes).
        doc = {
            "id": order_id,
            "href": self.order_href(order_id),
            **_without(doc, SERVER_OWNED),
            "orderDate": stamp,
        }
        doc.setdefault("@type", "ProductOrder")
        change = domain.capture(doc, self.catalog, date=stamp)  # doc is this request's own
        accepted = change.doc["state"] == OrderState.IN_PROGRESS
        await insert_order(
            conn,
            change.doc,
            order_date=now,
            next_action_at=now + self.provisioning_delay if accepted else None,
            events=events.order_rows(change.events, at=now),
        )
        return change.doc, 1

    # -------------------------------------------------------------------- reads

    async def get_order(self, session: AsyncSession, id: str, *, for_update: bool = False) -> Any:
        row = await OrderRepository(session).get(id, for_update=for_update)
        if row is None:
            raise order_not_found(id)
        return row

    async def get_cancel(self, session: AsyncSession, id: str) -> Any:
        row = await CancelRepository(session).get(id)
        if row is None:
            raise NotFound("CancelProductOrder not found", f"No cancelProductOrder with id {id}")
        return row

    # -------------------------------------------------------------------- PATCH

    async def patch_order(
        self, session: AsyncSession, id: str, body: bytes, content_type: str | None, if_match: Any
    ) -> tuple[dict[str, Any], int]:
        repo = OrderRepository(session)
        row = await self.get_order(session, id, for_update=True)
        check_if_match(if_match, row.version)
        current: dict[str, Any] = row.doc
        patched = apply_patch(current, body, content_type)
        for attr in SERVER_OWNED:
            if patched.get(attr) != current.get(attr):
                raise BadRequest("Read-only attribute", f"{attr} is set by the server and cannot be changed")
        try:
            patched = _dump(tmf622.ProductOrder.model_validate(patched))
        except ValidationError as exc:
            raise BadRequest("Invalid ProductOrder", _validation_message(exc)) from exc

        check_indexed_values(patched)
        change = domain.update(current, patched, self.catalog)
        patched = change.doc
        old_state, new_state = OrderState(current["state"]), OrderState(patched["state"])
        next_action: Any = ...
        if new_state != old_state:
            next_action = utc_now() + self.provisioning_delay if new_state == OrderState.IN_PROGRESS else None
        if patched == current:
            return current, row.version
        version = await repo.save(patched, row.version, next_action_at=next_action)
        for event_type, snapshot in change.events:
            await events.order_event(session, event_type, snapshot)
        return patched, version

    # ------------------------------------------------------------------- DELETE

    async def delete_order(self, session: AsyncSession, id: str, if_match: Any) -> None:
        row = await self.get_order(session, id, for_update=True)
        check_if_match(if_match, row.version)
        state = OrderState(row.state)
        if state not in TERMINAL_ORDER_STATES:
            raise Conflict(
                "Order still open", f"An order in state {state} cannot be deleted; cancel it first"
            )
        await OrderRepository(session).delete(id)
        await events.order_event(session, "ProductOrderDeleteEvent", row.doc)

    # ------------------------------------------------------------- cancellation

    async def create_cancel(
        self, session: AsyncSession, body: tmf622.CancelProductOrder_Create
    ) -> tuple[dict[str, Any], int]:
        doc = _dump(body)
        order_ref = doc.get("productOrder") or {}
        order_id = order_ref.get("id")
        if order_id is None:
            raise BadRequest("Missing productOrder.id", "cancelProductOrder needs productOrder.id")
        order_row = await OrderRepository(session).get(order_id, for_update=True)
        if order_row is None:
            raise NotFound("ProductOrder not found", f"No productOrder with id {order_id} to cancel")
        cancel_id = new_id()
        doc = {"id": cancel_id, "href": self.cancel_href(cancel_id), **_without(doc, CANCEL_SERVER_OWNED)}
        doc["productOrder"] = {
            **order_ref,
            "href": self.order_href(order_id),
            "@referredType": "ProductOrder",
        }
        doc.setdefault("@type", "CancelProductOrder")
        cancels = CancelRepository(session)
        cancel, order = domain.start_cancellation(doc, order_row.doc)
        accepted = cancel.doc["state"] == CancelState.IN_PROGRESS
        await cancels.add(
            cancel.doc, next_action_at=utc_now() + self.cancellation_delay if accepted else None
        )
        for event_type, snapshot in cancel.events:
            await events.cancel_event(session, event_type, snapshot)
        if order is not None:
            # The fulfilment worker leaves a cancelling order alone.
            await OrderRepository(session).save(order.doc, order_row.version, next_action_at=None)
            for event_type, snapshot in order.events:
                await events.order_event(session, event_type, snapshot)
        return cancel.doc, 1

    async def advance_cancel(self, session: AsyncSession, cancel_row: Any) -> None:
        """One step of an accepted cancellation: assessing -> pendingCancellation -> cancelled (request done)."""
        cancels, orders = CancelRepository(session), OrderRepository(session)
        order_row = await orders.get(cancel_row.order_id, for_update=True)
        now = utc_now()
        cancel, order = domain.advance_cancellation(
            cancel_row.doc, None if order_row is None else order_row.doc, now=format_datetime(now)
        )
        if order is not None:
            await orders.save(order.doc, order_row.version, next_action_at=None)
            for event_type, snapshot in order.events:
                await events.order_event(session, event_type, snapshot)
        # A request still in progress waits for the next step.
        still_running = cancel.doc["state"] == CancelState.IN_PROGRESS
        await cancels.save(
            cancel.doc,
            cancel_row.version,
            next_action_at=now + self.cancellation_delay if still_running else None,
        )
        for event_type, snapshot in cancel.events:
            await events.cancel_event(session, event_type, snapshot)

    # ---------------------------------------------------------------- fulfilment

    async def fulfil(self, session: AsyncSession, row: Any, adapter: ProvisioningAdapter) -> None:
        """Provisions the order's in-progress items and derives the order state from theirs."""
        order: dict[str, Any] = row.doc
        items = order.get("productOrderItem", [])
        results = {
            index: await adapter.provision(order, items[index]) for index in domain.to_provision(order)
        }
        change = domain.fulfil(order, results, now=format_datetime(utc_now()))
        next_action: datetime | None = None
        if change.doc["state"] == OrderState.IN_PROGRESS:
            next_action = utc_now() + self.provisioning_delay
        await OrderRepository(session).save(change.doc, row.version, next_action_at=next_action)
        for event_type, snapshot in change.events:
            await events.order_event(session, event_type, snapshot)
