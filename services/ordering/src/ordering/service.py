"""Ordering use cases. Nothing here commits: ``get_session`` (requests) or the worker's own transaction does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
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
from .domain import CancelState, ItemState, OrderState
from .provisioning import ProvisioningAdapter
from .repository import CancelRepository, OrderRepository, insert_order

# Attributes the server owns: a POST may not set them (the client's values are dropped) and a PATCH may
# repeat them unchanged but never change them. (cancellationDate is in the v4 ProductOrder_Create, but
# here it is the date the cancellation flow cancelled the order, so it is the server's too.)
SERVER_OWNED = ("id", "href", "orderDate", "completionDate", "cancellationDate", "orderTotalPrice")
# The same for a cancelProductOrder (the attributes the v4 CancelProductOrder_Create leaves out).
CANCEL_SERVER_OWNED = ("id", "href", "state", "effectiveCancellationDate")
# Items may be changed only while the order is stopped.
EDITABLE_ITEM_STATES = frozenset({OrderState.HELD, OrderState.PENDING})


def _dump(model: Any) -> dict[str, Any]:
    return input_document(model)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


def _without(doc: dict[str, Any], owned: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in owned}


def check_indexed_values(doc: dict[str, Any]) -> None:
    """400 for a value too long for the indexed column it goes into (before anything is stored)."""
    overlong = domain.overlong_indexed_values(doc)
    if overlong:
        raise BadRequest(
            "Identifier too long",
            f"{', '.join(overlong)}: at most {domain.MAX_INDEXED_TEXT_LENGTH} characters",
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
        problems = domain.validate_order(doc, self.catalog)
        if problems:
            doc = domain.apply_rejection(doc, problems, date=stamp)
            await insert_order(
                conn,
                doc,
                order_date=now,
                next_action_at=None,
                events=events.order_rows([("ProductOrderCreateEvent", doc)], at=now),
            )
            return doc, 1
        domain.price_order(doc, self.catalog, in_place=True)  # doc is this request's own
        acknowledged = _with_states(doc, OrderState.ACKNOWLEDGED, ItemState.ACKNOWLEDGED)
        _set_states(
            doc, domain.transition(OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS), ItemState.IN_PROGRESS
        )
        await insert_order(
            conn,
            doc,
            order_date=now,
            next_action_at=now + self.provisioning_delay,
            events=events.order_rows(
                [("ProductOrderCreateEvent", acknowledged), ("ProductOrderStateChangeEvent", doc)], at=now
            ),
        )
        return doc, 1

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
        next_action: Any = ...
        if new_state != old_state:
            domain.client_transition(old_state, new_state)
            if new_state == OrderState.IN_PROGRESS:
                # Retry: held or pending items go back to provisioning.
                for item in patched.get("productOrderItem", []):
                    if item.get("state") in (ItemState.HELD, ItemState.PENDING):
                        item["state"] = ItemState.IN_PROGRESS.value
                next_action = utc_now() + self.provisioning_delay
            else:
                next_action = None
        if patched == current:
            return current, row.version
        version = await repo.save(patched, row.version, next_action_at=next_action)
        if new_state != old_state:
            await events.order_event(session, "ProductOrderStateChangeEvent", patched)
            if new_state in domain.WAITING_ON_CUSTOMER_STATES:
                await events.order_event(session, "ProductOrderInformationRequiredEvent", patched)
        other = {k: v for k, v in patched.items() if k != "state"}
        if other != {k: v for k, v in current.items() if k != "state"}:
            await events.order_event(session, "ProductOrderAttributeValueChangeEvent", patched)
        return patched, version

    # ------------------------------------------------------------------- DELETE

    async def delete_order(self, session: AsyncSession, id: str, if_match: Any) -> None:
        row = await self.get_order(session, id, for_update=True)
        check_if_match(if_match, row.version)
        state = OrderState(row.state)
        if state not in domain.TERMINAL_ORDER_STATES:
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
        reason = domain.can_cancel(OrderState(order_row.state))
        if reason is not None:
            doc["state"] = CancelState.TERMINATED_WITH_ERROR.value
            doc["stateReason"] = reason
            await cancels.add(doc, next_action_at=None)
            await events.cancel_event(session, "CancelProductOrderCreateEvent", doc)
            return doc, 1
        doc["state"] = CancelState.ACKNOWLEDGED.value
        await events.cancel_event(session, "CancelProductOrderCreateEvent", _snapshot(doc))
        doc["state"] = CancelState.IN_PROGRESS.value
        await cancels.add(doc, next_action_at=utc_now() + self.cancellation_delay)
        await events.cancel_event(session, "CancelProductOrderStateChangeEvent", doc)
        order = _snapshot(order_row.doc)
        previous = OrderState(order["state"])
        _set_states(
            order,
            domain.transition(previous, OrderState.ASSESSING_CANCELLATION),
            ItemState.ASSESSING_CANCELLATION,
            only_open=True,
        )
        # The fulfilment worker leaves a cancelling order alone.
        await OrderRepository(session).save(order, order_row.version, next_action_at=None)
        await events.order_event(session, "ProductOrderStateChangeEvent", order)
        return doc, 1

    async def advance_cancel(self, session: AsyncSession, cancel_row: Any) -> None:
        """One step of an accepted cancellation: assessing -> pendingCancellation -> cancelled (request done)."""
        cancels, orders = CancelRepository(session), OrderRepository(session)
        order_row = await orders.get(cancel_row.order_id, for_update=True)
        cancel = _snapshot(cancel_row.doc)
        if order_row is None:
            cancel["state"] = CancelState.TERMINATED_WITH_ERROR.value
            cancel["stateReason"] = "The order no longer exists"
            await cancels.save(cancel, cancel_row.version, next_action_at=None)
            await events.cancel_event(session, "CancelProductOrderStateChangeEvent", cancel)
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
            await orders.save(order, order_row.version, next_action_at=None)
            await events.order_event(session, "ProductOrderStateChangeEvent", order)
            await cancels.save(cancel, cancel_row.version, next_action_at=utc_now() + self.cancellation_delay)
            return
        if state == OrderState.PENDING_CANCELLATION:
            now = format_datetime(utc_now())
            _set_states(
                order, domain.transition(state, OrderState.CANCELLED), ItemState.CANCELLED, only_open=True
            )
            order["cancellationDate"] = now
            if cancel.get("cancellationReason"):
                order["cancellationReason"] = cancel["cancellationReason"]
            await orders.save(order, order_row.version, next_action_at=None)
            await events.order_event(session, "ProductOrderStateChangeEvent", order)
            cancel["state"] = CancelState.DONE.value
            cancel["effectiveCancellationDate"] = now
            await cancels.save(cancel, cancel_row.version, next_action_at=None)
            await events.cancel_event(session, "CancelProductOrderStateChangeEvent", cancel)
            return
        cancel["state"] = CancelState.TERMINATED_WITH_ERROR.value
        cancel["stateReason"] = f"Order moved to {state} during the cancellation"
        await cancels.save(cancel, cancel_row.version, next_action_at=None)
        await events.cancel_event(session, "CancelProductOrderStateChangeEvent", cancel)

    # ---------------------------------------------------------------- fulfilment

    async def fulfil(self, session: AsyncSession, row: Any, adapter: ProvisioningAdapter) -> None:
        """Provisions the order's in-progress items and derives the order state from theirs."""
        order = _snapshot(row.doc)
        state = OrderState(order["state"])
        if state != OrderState.IN_PROGRESS:
            await OrderRepository(session).save(order, row.version, next_action_at=None)
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
        await OrderRepository(session).save(order, row.version, next_action_at=next_action)
        if new_state != state:
            await events.order_event(session, "ProductOrderStateChangeEvent", order)
            if new_state in domain.WAITING_ON_CUSTOMER_STATES:
                await events.order_event(session, "ProductOrderInformationRequiredEvent", order)


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
