"""The ordering commands: every change to an order's or a cancellation request's state happens here.

Each command takes a document (and what the command needs: a catalogue, a client's patch, provisioning
results) and returns a ``CommandResult``: the new document and the events to emit, each with the
document as it was when the event happened (cosmicpython's aggregates collect their events the same way). Nothing
here does I/O: ``service.py`` loads the documents, calls a command and stores what it returns.

The rules the commands apply live beside them: states and their transition tables in ``states``,
capture validation in ``validation``, prices in ``pricing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard_kit.errors import BadRequest, Conflict

from .catalog import Catalog
from .documents import copy_document, objects
from .pricing import price_order
from .provisioning import ProvisioningResult
from .states import (
    TERMINAL_ORDER_STATES,
    CancelState,
    ItemState,
    OrderState,
    can_cancel,
    check_client_item_states,
    client_move,
    derive_order_state,
    information_required,
    move,
    move_items,
    order_item_states,
    start,
)
from .validation import MAX_INDEXED_TEXT_LENGTH, apply_rejection, require_customer, validate_order

# Names other modules of the service import from here.
__all__ = [
    "MAX_INDEXED_TEXT_LENGTH",
    "CancelState",
    "CommandResult",
    "ItemState",
    "OrderState",
    "advance_cancellation",
    "capture",
    "fulfil",
    "start_cancellation",
    "to_provision",
    "update",
]

Event = tuple[str, dict[str, Any]]

# Items may be changed only while the order is stopped.
EDITABLE_ITEM_STATES = frozenset({OrderState.HELD, OrderState.PENDING})
FULFILMENT_NOTE_AUTHOR = "Switchboard fulfilment"


@dataclass(frozen=True)
class CommandResult:
    """A command's result: the new document and its events as ``(eventType, document then)``, in order."""

    doc: dict[str, Any]
    events: list[Event] = field(default_factory=list)


def _state_change(order: dict[str, Any]) -> list[Event]:
    """The events of an order state change: a ``ProductOrderStateChangeEvent``, and a
    ``ProductOrderInformationRequiredEvent`` when the order or one of its items now waits on the customer."""
    changed: list[Event] = [("ProductOrderStateChangeEvent", order)]
    if information_required(order):
        changed.append(("ProductOrderInformationRequiredEvent", order))
    return changed


# ---------------------------------------------------------------------- capture


def capture(doc: dict[str, Any], catalog: Catalog, *, date: str) -> CommandResult:
    """A new order, validated against ``catalog``: priced and moved acknowledged -> inProgress, or
    rejected with one note per problem (stamped ``date``). ``doc`` is the caller's own; it may be changed.

    Raises ``CustomerRequired`` (400) when the order names no customer: such an order is not stored.
    """
    require_customer(doc)
    problems = validate_order(doc, catalog)
    if problems:
        rejected = apply_rejection(doc, problems, date=date)
        return CommandResult(rejected, [("ProductOrderCreateEvent", rejected)])
    price_order(doc, catalog, in_place=True)
    start(doc, OrderState.ACKNOWLEDGED)
    items = objects(doc.get("productOrderItem"))
    for item in items:
        start(item, ItemState.ACKNOWLEDGED)
    # The order as it was created: only the order and its items are copied (the rest is shared, and
    # nothing below the item level changes from here on).
    acknowledged = {**doc, "productOrderItem": [{**item} for item in items]}
    move(doc, OrderState.IN_PROGRESS)
    move_items(doc, ItemState.IN_PROGRESS)
    return CommandResult(
        doc, [("ProductOrderCreateEvent", acknowledged), ("ProductOrderStateChangeEvent", doc)]
    )


# ------------------------------------------------------------------ client PATCH


def update(current: Mapping[str, Any], patched: dict[str, Any], catalog: Catalog) -> CommandResult:
    """A client's change to an order: ``patched`` is ``current`` with the client's patch applied (a valid
    ``ProductOrder`` whose server-owned attributes are unchanged); it becomes the new order.

    Items may change only while the order is held or pending, and are then validated and priced again;
    item states stay the server's. The order state may change only as ``CLIENT_ORDER_TRANSITIONS``
    allows; moving to ``inProgress`` retries held and pending items. An order keeps a customer.
    """
    if "state" not in patched:
        raise BadRequest("Invalid state", "state cannot be removed from an order")
    old_state = OrderState(current["state"])
    if patched.get("relatedParty") != current.get("relatedParty"):
        require_customer(patched)
    if _items_without_server_fields(patched) != _items_without_server_fields(current):
        if old_state not in EDITABLE_ITEM_STATES:
            raise Conflict(
                "Order items locked",
                f"productOrderItem can be changed only while the order is held or pending, not {old_state}",
            )
        problems = validate_order(patched, catalog)
        if problems:
            raise BadRequest("Invalid order items", "; ".join(p.message for p in problems))
        patched = price_order(patched, catalog)
    # Item states follow fulfilment whatever else the patch changes; an item added to a held or
    # pending order starts in the order's state (and is retried with the others).
    check_client_item_states(
        current,
        patched,
        new_item_state=ItemState(old_state.value) if old_state in EDITABLE_ITEM_STATES else None,
    )
    changes: list[Event] = []
    if client_move(patched, old_state, OrderState(patched["state"])):
        if patched["state"] == OrderState.IN_PROGRESS:
            # Retry: held or pending items go back to provisioning.
            move_items(patched, ItemState.IN_PROGRESS, only=frozenset({ItemState.HELD, ItemState.PENDING}))
        changes += _state_change(patched)
    if _without_state(patched) != _without_state(current):
        changes.append(("ProductOrderAttributeValueChangeEvent", patched))
    return CommandResult(patched, changes)


def _without_state(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "state"}


def _items_without_server_fields(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in item.items() if k not in ("state", "itemPrice", "itemTotalPrice")}
        for item in objects(order.get("productOrderItem"))
    ]


# ------------------------------------------------------------------ cancellation


def start_cancellation(
    request: dict[str, Any], order: Mapping[str, Any]
) -> tuple[CommandResult, CommandResult | None]:
    """A new ``cancelProductOrder`` for ``order``: the request's change, and the order's (None when the
    order cannot be cancelled: the request then ends ``terminatedWithError`` with its reason).

    An accepted request goes acknowledged -> inProgress, and the order and its open items go to
    ``assessingCancellation``. ``request`` is the caller's own; it may be changed.
    """
    start(request, CancelState.ACKNOWLEDGED)
    reason = can_cancel(OrderState(order["state"]))
    if reason is not None:
        move(request, CancelState.TERMINATED_WITH_ERROR)
        request["stateReason"] = reason
        return CommandResult(request, [("CancelProductOrderCreateEvent", request)]), None
    acknowledged = dict(request)
    move(request, CancelState.IN_PROGRESS)
    cancelling = copy_document(order)
    move(cancelling, OrderState.ASSESSING_CANCELLATION)
    move_items(cancelling, ItemState.ASSESSING_CANCELLATION)
    return (
        CommandResult(
            request,
            [
                ("CancelProductOrderCreateEvent", acknowledged),
                ("CancelProductOrderStateChangeEvent", request),
            ],
        ),
        CommandResult(cancelling, _state_change(cancelling)),
    )


def advance_cancellation(
    request: Mapping[str, Any], order: Mapping[str, Any] | None, *, now: str
) -> tuple[CommandResult, CommandResult | None]:
    """One step of an accepted cancellation: the order goes assessingCancellation -> pendingCancellation,
    then -> cancelled with the request ``done``. The request ends ``terminatedWithError`` if the order is
    gone or has left the cancellation. Returns the request's change and the order's (None if unchanged).
    """
    cancel = copy_document(request)
    if order is None:
        return _terminate(cancel, "The order no longer exists"), None
    state = OrderState(order["state"])
    if state == OrderState.ASSESSING_CANCELLATION:
        pending = copy_document(order)
        move(pending, OrderState.PENDING_CANCELLATION)
        move_items(pending, ItemState.PENDING_CANCELLATION)
        return CommandResult(cancel), CommandResult(pending, _state_change(pending))
    if state == OrderState.PENDING_CANCELLATION:
        cancelled = copy_document(order)
        move(cancelled, OrderState.CANCELLED)
        move_items(cancelled, ItemState.CANCELLED)
        cancelled["cancellationDate"] = now
        if cancel.get("cancellationReason"):
            cancelled["cancellationReason"] = cancel["cancellationReason"]
        move(cancel, CancelState.DONE)
        cancel["effectiveCancellationDate"] = now
        return CommandResult(cancel, [("CancelProductOrderStateChangeEvent", cancel)]), CommandResult(
            cancelled, _state_change(cancelled)
        )
    return _terminate(cancel, f"Order moved to {state} during the cancellation"), None


def _terminate(cancel: dict[str, Any], reason: str) -> CommandResult:
    move(cancel, CancelState.TERMINATED_WITH_ERROR)
    cancel["stateReason"] = reason
    return CommandResult(cancel, [("CancelProductOrderStateChangeEvent", cancel)])


# -------------------------------------------------------------------- fulfilment

_PROVISIONABLE = frozenset({ItemState.IN_PROGRESS, ItemState.ACKNOWLEDGED})


def to_provision(order: Mapping[str, Any]) -> list[int]:
    """The indexes of the items of ``order`` that fulfilment provisions now (none unless it is inProgress)."""
    if order.get("state") != OrderState.IN_PROGRESS:
        return []
    return [
        index
        for index, item in enumerate(objects(order.get("productOrderItem")))
        if item.get("state") in _PROVISIONABLE
    ]


def fulfil(order: Mapping[str, Any], results: Mapping[int, ProvisioningResult], *, now: str) -> CommandResult:
    """The order after provisioning: each item at an index of ``results`` (see ``to_provision``) moves to
    its outcome, with a note for each reason given, and the order to the state its items imply
    (``derive_order_state``), stamped ``completionDate`` ``now`` when that is final. An order that is not
    inProgress is returned unchanged.
    """
    fulfilled = copy_document(order)
    if OrderState(fulfilled["state"]) != OrderState.IN_PROGRESS:
        return CommandResult(fulfilled)
    items = objects(fulfilled.get("productOrderItem"))
    notes = []
    for index, result in results.items():
        item = items[index]
        if item["state"] == ItemState.ACKNOWLEDGED:
            move(item, ItemState.IN_PROGRESS)
        move(item, ItemState(result.outcome))
        if result.reason:
            notes.append(
                {
                    "@type": "Note",
                    "author": FULFILMENT_NOTE_AUTHOR,
                    "date": now,
                    "text": f"[item {item.get('id')}] {result.outcome}: {result.reason}",
                }
            )
    new_state = derive_order_state(order_item_states(fulfilled))
    if notes:
        fulfilled["note"] = [*fulfilled.get("note", []), *notes]
    if new_state in TERMINAL_ORDER_STATES:
        fulfilled["completionDate"] = now
    if not move(fulfilled, new_state):
        return CommandResult(fulfilled)
    return CommandResult(fulfilled, _state_change(fulfilled))
