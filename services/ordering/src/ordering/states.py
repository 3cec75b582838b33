"""Order, item and cancellation states of TMF622 Product Ordering v4, and the only way to change them.

The transition tables say which state changes the lifecycle allows; ``transition()`` checks one change
against its table. A document's state is written only by ``start`` (the first state of a new order, item
or cancellation request) and ``move`` (every later change, through ``transition()``), so no path can
bypass a table. ``tests/unit/test_state_guard.py`` checks that nothing else in the package writes one.

The rules of what a client may do with PATCH (``CLIENT_ORDER_TRANSITIONS``) are here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from switchboard_kit.errors import Conflict, ErrorCode

from .documents import objects


class OrderState(StrEnum):
    """``ProductOrderStateType`` (TMF622 v4)."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class ItemState(StrEnum):
    """``ProductOrderItemStateType`` (TMF622 v4): the order states without ``partial``."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class CancelState(StrEnum):
    """``TaskStateType``, the state of a ``CancelProductOrder`` request, as in v4.

    v5 adds ``rejected`` and ``cancelled``; in v4 a refused cancellation ends in
    ``terminatedWithError``.
    """

    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "inProgress"
    DONE = "done"
    TERMINATED_WITH_ERROR = "terminatedWithError"


_O = OrderState
_I = ItemState

# From assessingCancellation the order goes on to pendingCancellation when the
# cancellation is accepted, or back to the state it was in when it is refused;
# the caller knows (and must restore) which one that was.
ALLOWED_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _O.ACKNOWLEDGED: frozenset(
        {_O.IN_PROGRESS, _O.REJECTED, _O.PENDING, _O.HELD, _O.ASSESSING_CANCELLATION, _O.CANCELLED}
    ),
    _O.IN_PROGRESS: frozenset(
        {_O.HELD, _O.PENDING, _O.COMPLETED, _O.FAILED, _O.PARTIAL, _O.ASSESSING_CANCELLATION}
    ),
    _O.HELD: frozenset({_O.IN_PROGRESS, _O.PENDING, _O.FAILED, _O.ASSESSING_CANCELLATION}),
    _O.PENDING: frozenset({_O.IN_PROGRESS, _O.HELD, _O.ASSESSING_CANCELLATION}),
    _O.ASSESSING_CANCELLATION: frozenset(
        {_O.PENDING_CANCELLATION, _O.ACKNOWLEDGED, _O.IN_PROGRESS, _O.HELD, _O.PENDING}
    ),
    _O.PENDING_CANCELLATION: frozenset({_O.CANCELLED}),
    _O.COMPLETED: frozenset(),
    _O.FAILED: frozenset(),
    _O.PARTIAL: frozenset(),
    _O.REJECTED: frozenset(),
    _O.CANCELLED: frozenset(),
}

ALLOWED_ITEM_TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    _I.ACKNOWLEDGED: frozenset(
        {_I.IN_PROGRESS, _I.REJECTED, _I.PENDING, _I.HELD, _I.ASSESSING_CANCELLATION, _I.CANCELLED}
    ),
    _I.IN_PROGRESS: frozenset({_I.HELD, _I.PENDING, _I.COMPLETED, _I.FAILED, _I.ASSESSING_CANCELLATION}),
    _I.HELD: frozenset({_I.IN_PROGRESS, _I.PENDING, _I.FAILED, _I.ASSESSING_CANCELLATION}),
    _I.PENDING: frozenset({_I.IN_PROGRESS, _I.HELD, _I.ASSESSING_CANCELLATION}),
    _I.ASSESSING_CANCELLATION: frozenset(
        {_I.PENDING_CANCELLATION, _I.ACKNOWLEDGED, _I.IN_PROGRESS, _I.HELD, _I.PENDING}
    ),
    _I.PENDING_CANCELLATION: frozenset({_I.CANCELLED}),
    _I.COMPLETED: frozenset(),
    _I.FAILED: frozenset(),
    _I.REJECTED: frozenset(),
    _I.CANCELLED: frozenset(),
}

ALLOWED_CANCEL_TRANSITIONS: dict[CancelState, frozenset[CancelState]] = {
    CancelState.ACKNOWLEDGED: frozenset(
        {CancelState.IN_PROGRESS, CancelState.DONE, CancelState.TERMINATED_WITH_ERROR}
    ),
    CancelState.IN_PROGRESS: frozenset({CancelState.DONE, CancelState.TERMINATED_WITH_ERROR}),
    CancelState.DONE: frozenset(),
    CancelState.TERMINATED_WITH_ERROR: frozenset(),
}

TERMINAL_ORDER_STATES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if not targets)
TERMINAL_ITEM_STATES = frozenset(s for s, targets in ALLOWED_ITEM_TRANSITIONS.items() if not targets)
CANCELLING_ORDER_STATES = frozenset({_O.ASSESSING_CANCELLATION, _O.PENDING_CANCELLATION})

# ``pending`` is the TMF state for "waiting for information from the customer";
# ``held`` is a hold on the provider's side.
WAITING_ON_CUSTOMER_STATES: frozenset[OrderState] = frozenset({_O.PENDING})

StateT = TypeVar("StateT", OrderState, ItemState, CancelState)

_TABLES: dict[type[StrEnum], Mapping[Any, frozenset[Any]]] = {
    OrderState: ALLOWED_TRANSITIONS,
    ItemState: ALLOWED_ITEM_TRANSITIONS,
    CancelState: ALLOWED_CANCEL_TRANSITIONS,
}


class InvalidTransition(Conflict):
    """A state change the lifecycle does not allow (HTTP 409, the catalogue's invalidTransition)."""

    code = ErrorCode.INVALID_TRANSITION.value

    def __init__(self, current: StrEnum, target: StrEnum) -> None:
        allowed = sorted(_TABLES[type(current)][current])
        detail = f"allowed from {current}: {', '.join(allowed)}" if allowed else f"{current} is a final state"
        super().__init__(f"Cannot change state from {current} to {target}", f"{detail}.")
        self.current = current
        self.target = target


def transition(current: StateT, target: StateT) -> StateT:
    """Return ``target`` if the lifecycle allows ``current -> target``, else raise ``InvalidTransition``.

    Works for orders (``OrderState``), items (``ItemState``) and cancellation
    requests (``CancelState``). Moving to the state one is already in is a no-op,
    so redelivered events and repeated PATCHes are harmless.
    """
    if type(current) is not type(target):
        raise TypeError(f"cannot mix {type(current).__name__} and {type(target).__name__}")
    if current == target:
        return current
    if target not in _TABLES[type(current)][current]:
        raise InvalidTransition(current, target)
    return target


def start(doc: dict[str, Any], state: OrderState | ItemState | CancelState) -> None:
    """Gives a new order, item or cancellation request its first state (whatever a client put there)."""
    doc["state"] = state.value


def move(doc: dict[str, Any], target: StateT) -> bool:
    """Moves ``doc`` (an order, an item or a cancellation request) to ``target`` if its table allows the
    change from the state it is in (``InvalidTransition`` otherwise); returns whether the state changed."""
    current = type(target)(doc["state"])
    doc["state"] = transition(current, target).value
    return current != target


def move_items(order: dict[str, Any], target: ItemState, *, only: frozenset[ItemState] | None = None) -> None:
    """Moves every item of ``order`` that is not in a final state (and is in ``only``, when given) to
    ``target``, each through its table."""
    for item in objects(order.get("productOrderItem")):
        state = ItemState(item["state"])
        if state not in TERMINAL_ITEM_STATES and (only is None or state in only):
            move(item, target)


def order_item_states(order: Mapping[str, Any]) -> list[ItemState]:
    return [ItemState(item["state"]) for item in objects(order.get("productOrderItem"))]


def information_required(order: Mapping[str, Any]) -> bool:
    """Whether the order, or any of its items, is waiting on the customer (state ``pending``)."""
    states = [order.get("state")]
    states += [item.get("state") for item in objects(order.get("productOrderItem"))]
    return any(isinstance(s, str) and s in WAITING_ON_CUSTOMER_STATES for s in states)


def derive_order_state(item_states: Sequence[ItemState]) -> OrderState:
    """The order state implied by its items' states. First matching rule wins:

    1. all items ``completed`` -> ``completed``
    2. all items ``rejected`` -> ``rejected``
    3. all items final (completed/failed/cancelled/rejected): some ``completed``
       -> ``partial``, none -> ``failed``
    4. any item ``inProgress`` -> ``inProgress``
    5. any item ``held`` -> ``held``
    6. any item ``pending`` -> ``pending``
    7. all items ``acknowledged`` -> ``acknowledged``
    8. otherwise (e.g. some finished and some not yet started) -> ``inProgress``

    Items in a cancellation state count as unfinished. Order-level cancellation is
    driven by the cancel flow, not derived from items.
    """
    if not item_states:
        raise ValueError("an order has at least one item")
    states = set(item_states)
    if states == {_I.COMPLETED}:
        return _O.COMPLETED
    if states == {_I.REJECTED}:
        return _O.REJECTED
    if states <= TERMINAL_ITEM_STATES:
        return _O.PARTIAL if _I.COMPLETED in states else _O.FAILED
    for item_state, order_state in (
        (_I.IN_PROGRESS, _O.IN_PROGRESS),
        (_I.HELD, _O.HELD),
        (_I.PENDING, _O.PENDING),
    ):
        if item_state in states:
            return order_state
    if states == {_I.ACKNOWLEDGED}:
        return _O.ACKNOWLEDGED
    return _O.IN_PROGRESS


def can_cancel(order_state: OrderState) -> str | None:
    """Why an order in this state cannot be cancelled, or None if it can."""
    if order_state in CANCELLING_ORDER_STATES:
        return f"Order cancellation is already under way (state {order_state})."
    if order_state in TERMINAL_ORDER_STATES:
        return f"Order is {order_state}; a final order cannot be cancelled."
    return None


# ------------------------------------------------------------------ client changes

# What a client may do to an order's state with PATCH: stop it (``held``, ``pending``) and resume it
# (``inProgress``, which retries held and pending items). This is not ALLOWED_TRANSITIONS, which
# describes everything the lifecycle can do, server included: completion, failure and rejection
# follow the items, cancellation goes through cancelProductOrder, and an order being cancelled
# (assessingCancellation, pendingCancellation) belongs to its cancellation request until that ends.
CLIENT_ORDER_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _O.ACKNOWLEDGED: frozenset({_O.IN_PROGRESS, _O.HELD, _O.PENDING}),
    _O.IN_PROGRESS: frozenset({_O.HELD, _O.PENDING}),
    _O.HELD: frozenset({_O.IN_PROGRESS, _O.PENDING}),
    _O.PENDING: frozenset({_O.IN_PROGRESS, _O.HELD}),
    _O.ASSESSING_CANCELLATION: frozenset(),
    _O.PENDING_CANCELLATION: frozenset(),
    _O.COMPLETED: frozenset(),
    _O.FAILED: frozenset(),
    _O.PARTIAL: frozenset(),
    _O.REJECTED: frozenset(),
    _O.CANCELLED: frozenset(),
}
# States a client may ask for at all.
CLIENT_STATES: frozenset[OrderState] = frozenset().union(*CLIENT_ORDER_TRANSITIONS.values())


class ClientTransitionRefused(Conflict):
    """An order state change a client may not make with PATCH (HTTP 409, invalidTransition)."""

    code = ErrorCode.INVALID_TRANSITION.value

    def __init__(self, current: OrderState, target: OrderState) -> None:
        if current in CANCELLING_ORDER_STATES:
            reason = "Order is being cancelled"
            detail = f"The order is {current}: its state follows the cancellation request until that ends."
        elif target not in CLIENT_STATES:
            reason = "State managed by the server"
            detail = (
                f"A client cannot set state {target}; it follows fulfilment, and cancelProductOrder "
                "cancels an order."
            )
        elif current in TERMINAL_ORDER_STATES:
            reason = f"Cannot change state from {current} to {target}"
            detail = f"{current} is a final state."
        else:
            reason = f"Cannot change state from {current} to {target}"
            detail = f"A client may change it from {current} to {', '.join(sorted(CLIENT_ORDER_TRANSITIONS[current]))}."
        super().__init__(reason, detail)
        self.current = current
        self.target = target


def client_transition(current: OrderState, target: OrderState) -> OrderState:
    """``target`` if a client may move an order from ``current`` to it (staying put is always allowed),
    else raise ``ClientTransitionRefused``."""
    if current == target or target in CLIENT_ORDER_TRANSITIONS[current]:
        return target
    raise ClientTransitionRefused(current, target)


def client_move(order: dict[str, Any], current: OrderState, target: OrderState) -> bool:
    """Moves ``order`` (which carries the state a client asked for, ``target``) from ``current`` to it, if
    both the client rules and the lifecycle allow it (``ClientTransitionRefused`` or ``InvalidTransition``
    otherwise); returns whether the state changed."""
    order["state"] = transition(current, client_transition(current, target)).value
    return current != target


def check_client_item_states(
    current: Mapping[str, Any], patched: Mapping[str, Any], *, new_item_state: ItemState | None
) -> None:
    """Item states belong to the server: raise ``Conflict`` if ``patched`` changes or removes the state
    of an item of ``current`` (matched by id, so reordering is fine).

    An item that is new (its id is not in ``current``) is given ``new_item_state`` (set in ``patched``);
    it may repeat that state but not choose another. ``None`` means no item may be added.
    """
    before = {item.get("id"): item.get("state") for item in objects(current.get("productOrderItem"))}
    for index, item in enumerate(objects(patched.get("productOrderItem"))):
        item_id = item.get("id")
        if isinstance(item_id, str) and item_id in before:
            expected = before[item_id]
        elif new_item_state is not None:
            expected = new_item_state.value
            if "state" not in item:
                start(item, new_item_state)
        else:
            raise Conflict(
                "Order items locked", f"productOrderItem[{index}] is new; items cannot be added now"
            )
        if item.get("state") != expected:
            raise Conflict(
                "Item state managed by the server",
                f"productOrderItem[{index}].state is {expected!r} and follows fulfilment; "
                "set the order state to inProgress to retry held or pending items",
            )
