"""Pure ordering rules for TMF622 Product Ordering v4: states, validation, pricing.

Everything here works on plain dicts in TMF wire JSON (camelCase keys, ``@type``),
so it does not depend on the generated ``tmf622`` models, and nothing here does I/O.

Where validation problems show up for a client
----------------------------------------------
The v4 ``ProductOrder`` has no ``stateReason`` and no ``productOrderErrorMessage``
(both arrive in v5), and ``ProductOrderItem`` has nothing but ``state``. So a
rejected order carries:

* ``state: "rejected"`` on the order and on every item (an order is accepted or
  rejected as a whole), and
* one ``note`` per problem (``Note`` is in v4), authored by
  ``"Switchboard order validation"``, whose text starts with ``[item <id>]`` or
  ``[order]`` and ends with the problem code and the JSON path at fault.

``problems_to_notes`` builds the notes; ``apply_rejection`` builds the whole
rejected order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from ordering.catalog import Catalog, CharacteristicSpec, OfferingPrice, ProductOffering
from switchboard_kit.errors import Conflict

# --------------------------------------------------------------------------- states


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


class ItemAction(StrEnum):
    """``OrderItemActionType``."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    NO_CHANGE = "noChange"


_ACTION_VALUES = frozenset(a.value for a in ItemAction)

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
    """A state change the lifecycle does not allow (HTTP 409)."""

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
    """An order state change a client may not make with PATCH (HTTP 409)."""

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


def check_client_item_states(
    current: Mapping[str, Any], patched: Mapping[str, Any], *, new_item_state: ItemState | None
) -> None:
    """Item states belong to the server: raise ``Conflict`` if ``patched`` changes or removes the state
    of an item of ``current`` (matched by id, so reordering is fine).

    An item that is new (its id is not in ``current``) is given ``new_item_state`` (set in ``patched``);
    it may repeat that state but not choose another. ``None`` means no item may be added.
    """
    before = {item.get("id"): item.get("state") for item in _objects(current.get("productOrderItem"))}
    for index, item in enumerate(_objects(patched.get("productOrderItem"))):
        item_id = item.get("id")
        if isinstance(item_id, str) and item_id in before:
            expected = before[item_id]
        elif new_item_state is not None:
            expected = new_item_state.value
            item.setdefault("state", expected)
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


# ------------------------------------------------------------------ indexed values

# The longest text the service stores in an indexed column from a client document (relatedParty ids,
# in ``product_order.party_ids``). A B-tree or GIN entry must fit in a third of a page (about 2700
# bytes); 255 characters are at most 1020 bytes of UTF-8, and more than any real identifier needs.
MAX_INDEXED_TEXT_LENGTH = 255


def overlong_indexed_values(order: Mapping[str, Any]) -> list[str]:
    """The JSON paths of the values of ``order`` that go into an indexed column and are longer than
    ``MAX_INDEXED_TEXT_LENGTH`` (see ``repository.party_ids``)."""
    return [
        f"relatedParty[{index}].id"
        for index, party in enumerate(_list(order.get("relatedParty")))
        if isinstance(party, dict)
        and isinstance(party.get("id"), str)
        and len(party["id"]) > MAX_INDEXED_TEXT_LENGTH
    ]


def information_required(order: Mapping[str, Any]) -> bool:
    """Whether the order, or any of its items, is waiting on the customer (state ``pending``)."""
    states = [order.get("state")]
    states += [item.get("state") for item in _objects(order.get("productOrderItem"))]
    return any(isinstance(s, str) and s in WAITING_ON_CUSTOMER_STATES for s in states)


# ----------------------------------------------------------------------- validation

NOTE_AUTHOR = "Switchboard order validation"
INSTALLATION_PLACE_ROLE = "installationAddress"
CUSTOMER_ROLE = "customer"
# A relationshipType on product.productRelationship that points at an installed product.
RELIES_ON = "reliesOn"
_PARTY_TYPES = frozenset({"Individual", "Organization"})
_INTEGER = re.compile(r"^-?[0-9]+$")


class ProblemCode(StrEnum):
    MISSING_ITEMS = "missingItems"
    MISSING_CUSTOMER = "missingCustomer"
    UNKNOWN_CUSTOMER = "unknownCustomer"
    MISSING_BILLING_ACCOUNT = "missingBillingAccount"
    MISSING_ITEM_ID = "missingItemId"
    DUPLICATE_ITEM_ID = "duplicateItemId"
    INVALID_ACTION = "invalidAction"
    INVALID_QUANTITY = "invalidQuantity"
    MISSING_PRODUCT_OFFERING = "missingProductOffering"
    UNKNOWN_PRODUCT_OFFERING = "unknownProductOffering"
    OFFERING_NOT_ORDERABLE = "offeringNotOrderable"
    ACTION_NOT_ALLOWED = "actionNotAllowed"
    MISSING_PRODUCT_REF = "missingProductRef"
    MISSING_CHARACTERISTIC = "missingCharacteristic"
    UNKNOWN_CHARACTERISTIC = "unknownCharacteristic"
    DUPLICATE_CHARACTERISTIC = "duplicateCharacteristic"
    INVALID_CHARACTERISTIC_VALUE = "invalidCharacteristicValue"
    MISSING_PLACE = "missingPlace"
    INVALID_PLACE = "invalidPlace"
    UNSUPPORTED_COUNTRY = "unsupportedCountry"
    INVALID_POSTCODE = "invalidPostcode"
    MISSING_REQUIRED_PRODUCT = "missingRequiredProduct"
    INVALID_ITEM_RELATIONSHIP = "invalidItemRelationship"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submitted order.

    ``item_id`` is the ``productOrderItem.id`` at fault (None for order-level
    problems and for items without an id); ``field`` is the JSON path from the
    order root, e.g. ``productOrderItem[0].productOffering.id``.
    """

    code: ProblemCode
    message: str
    item_id: str | None = None
    field: str | None = None


def validate_order(
    order: Mapping[str, Any],
    catalog: Catalog,
    *,
    known_customer: Callable[[str], bool] | None = None,
) -> list[Problem]:
    """Every problem with an order at capture (an empty list means it is valid).

    Checks the customer party, the billing account (needed when a new item has a
    recurring price, on the order, the item or its product), and for every item:
    id (present, unique), action, quantity (>= 1), product offering (present, in
    the catalogue, sellable for ``add``, action allowed), product reference for
    ``modify``/``delete``/``noChange``, characteristics (all required ones on
    ``add``; known names and valid values on ``add`` and ``modify``), installation
    place and postcode, add-on prerequisites and item relationships.

    A place with an ``id`` and no address fields is accepted as a reference to a
    stored address; resolving it is the service's job. ``country`` is an ISO
    3166-1 alpha-2 code. Nested ``productOrderItem`` (bundles) are not examined.
    """
    problems: list[Problem] = []
    _check_customer(order, known_customer, problems)
    items = order.get("productOrderItem")
    if not isinstance(items, list) or not items:
        problems.append(
            Problem(ProblemCode.MISSING_ITEMS, "The order has no productOrderItem.", field="productOrderItem")
        )
        return problems
    item_ids = _check_item_ids(items, problems)
    order_has_billing_account = bool(_ref_id(order.get("billingAccount")))
    for index, raw in enumerate(items):
        item = raw if isinstance(raw, dict) else {}
        _check_item(
            _ItemContext(order, item, index, catalog, item_ids),
            order_has_billing_account,
            problems,
        )
    return problems


@dataclass(frozen=True)
class _ItemContext:
    order: Mapping[str, Any]
    item: Mapping[str, Any]
    index: int
    catalog: Catalog
    item_ids: frozenset[str]

    @property
    def item_id(self) -> str | None:
        value = self.item.get("id")
        return value if isinstance(value, str) and value else None

    @property
    def product(self) -> Mapping[str, Any]:
        value = self.item.get("product")
        return value if isinstance(value, dict) else {}

    def path(self, suffix: str = "") -> str:
        base = f"productOrderItem[{self.index}]"
        return f"{base}.{suffix}" if suffix else base

    def problem(self, code: ProblemCode, message: str, suffix: str = "") -> Problem:
        return Problem(code, message, self.item_id, self.path(suffix))


def _check_customer(
    order: Mapping[str, Any], known_customer: Callable[[str], bool] | None, problems: list[Problem]
) -> None:
    customers = [
        (index, party)
        for index, party in enumerate(_list(order.get("relatedParty")))
        if isinstance(party, dict) and _is_customer(party)
    ]
    if not customers:
        problems.append(
            Problem(
                ProblemCode.MISSING_CUSTOMER,
                f"The order needs a relatedParty with role {CUSTOMER_ROLE!r}.",
                field="relatedParty",
            )
        )
        return
    for index, party in customers:
        party_id = party.get("id")
        if not isinstance(party_id, str) or not party_id:
            problems.append(
                Problem(
                    ProblemCode.MISSING_CUSTOMER,
                    "The customer party has no id.",
                    field=f"relatedParty[{index}].id",
                )
            )
        elif known_customer is not None and not known_customer(party_id):
            problems.append(
                Problem(
                    ProblemCode.UNKNOWN_CUSTOMER,
                    f"Customer {party_id!r} does not exist.",
                    field=f"relatedParty[{index}].id",
                )
            )


def _is_customer(party: Mapping[str, Any]) -> bool:
    role = party.get("role")
    if isinstance(role, str) and role:
        return role.casefold() == CUSTOMER_ROLE
    # A party without a role is taken to be the customer when it is a person or
    # an organisation (rather than, say, a channel or a reseller system).
    return party.get("@referredType") in _PARTY_TYPES


def _check_item_ids(items: list[Any], problems: list[Problem]) -> frozenset[str]:
    seen: set[str] = set()
    for index, raw in enumerate(items):
        item_id = raw.get("id") if isinstance(raw, dict) else None
        path = f"productOrderItem[{index}].id"
        if not isinstance(item_id, str) or not item_id:
            problems.append(Problem(ProblemCode.MISSING_ITEM_ID, "The item has no id.", field=path))
        elif item_id in seen:
            problems.append(
                Problem(
                    ProblemCode.DUPLICATE_ITEM_ID,
                    f"Item id {item_id!r} is used by more than one item.",
                    item_id,
                    path,
                )
            )
        else:
            seen.add(item_id)
    return frozenset(seen)


def _check_item(ctx: _ItemContext, order_has_billing_account: bool, problems: list[Problem]) -> None:
    action = _action(ctx.item)
    if action is None:
        problems.append(
            ctx.problem(
                ProblemCode.INVALID_ACTION,
                f"action must be one of {', '.join(ItemAction)}; got {ctx.item.get('action')!r}.",
                "action",
            )
        )
    quantity = ctx.item.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        problems.append(
            ctx.problem(
                ProblemCode.INVALID_QUANTITY,
                f"quantity must be a whole number >= 1; got {quantity!r}.",
                "quantity",
            )
        )
    if action in (ItemAction.MODIFY, ItemAction.DELETE, ItemAction.NO_CHANGE) and not _ref_id(ctx.product):
        problems.append(
            ctx.problem(
                ProblemCode.MISSING_PRODUCT_REF,
                f"A {action} item must name the existing product in product.id.",
                "product.id",
            )
        )
    _check_relationships(ctx, problems)

    offering_id = _ref_id(ctx.item.get("productOffering"))
    if offering_id is None:
        problems.append(
            ctx.problem(
                ProblemCode.MISSING_PRODUCT_OFFERING,
                "The item has no productOffering.id.",
                "productOffering.id",
            )
        )
        return
    offering = ctx.catalog.find(offering_id)
    if offering is None:
        problems.append(
            ctx.problem(
                ProblemCode.UNKNOWN_PRODUCT_OFFERING,
                f"Product offering {offering_id!r} is not in catalogue {ctx.catalog.version}.",
                "productOffering.id",
            )
        )
        return
    if action is None:
        return
    if action == ItemAction.ADD and not offering.is_orderable:
        problems.append(
            ctx.problem(
                ProblemCode.OFFERING_NOT_ORDERABLE,
                f"Product offering {offering.id!r} is {offering.lifecycle_status} and can no longer be sold.",
                "productOffering.id",
            )
        )
    if action not in offering.allowed_actions:
        problems.append(
            ctx.problem(
                ProblemCode.ACTION_NOT_ALLOWED,
                f"Action {action} is not allowed for {offering.id!r} "
                f"(allowed: {', '.join(sorted(offering.allowed_actions))}).",
                "action",
            )
        )
    if action in (ItemAction.ADD, ItemAction.MODIFY):
        _check_characteristics(ctx, offering, require_all=action == ItemAction.ADD, problems=problems)
    if action == ItemAction.ADD:
        if offering.requires_place:
            _check_place(ctx, problems)
        if offering.requires_one_of:
            _check_prerequisite(ctx, offering, problems)
        if offering.has_recurring_price and not (
            order_has_billing_account
            or _ref_id(ctx.item.get("billingAccount"))
            or _ref_id(ctx.product.get("billingAccount"))
        ):
            problems.append(
                ctx.problem(
                    ProblemCode.MISSING_BILLING_ACCOUNT,
                    f"{offering.name} has a recurring charge, so the order or the item needs a billingAccount.",
                    "billingAccount",
                )
            )


def _action(item: Mapping[str, Any]) -> ItemAction | None:
    action = item.get("action")
    return ItemAction(action) if isinstance(action, str) and action in _ACTION_VALUES else None


def _check_relationships(ctx: _ItemContext, problems: list[Problem]) -> None:
    for index, relationship in enumerate(_list(ctx.item.get("productOrderItemRelationship"))):
        related = relationship.get("id") if isinstance(relationship, dict) else None
        path = f"productOrderItemRelationship[{index}].id"
        if isinstance(related, str) and related == ctx.item_id:
            problems.append(
                ctx.problem(ProblemCode.INVALID_ITEM_RELATIONSHIP, "An item cannot relate to itself.", path)
            )
        elif not isinstance(related, str) or related not in ctx.item_ids:
            problems.append(
                ctx.problem(
                    ProblemCode.INVALID_ITEM_RELATIONSHIP,
                    f"Related item {related!r} is not an item of this order.",
                    path,
                )
            )


def _check_characteristics(
    ctx: _ItemContext, offering: ProductOffering, *, require_all: bool, problems: list[Problem]
) -> None:
    given: set[str] = set()
    for index, characteristic in enumerate(_list(ctx.product.get("productCharacteristic"))):
        path = f"product.productCharacteristic[{index}]"
        name = characteristic.get("name") if isinstance(characteristic, dict) else None
        spec = offering.characteristic(name) if isinstance(name, str) else None
        if spec is None:
            problems.append(
                ctx.problem(
                    ProblemCode.UNKNOWN_CHARACTERISTIC,
                    f"{offering.id!r} has no characteristic {name!r}.",
                    f"{path}.name",
                )
            )
            continue
        if spec.name in given:
            problems.append(
                ctx.problem(
                    ProblemCode.DUPLICATE_CHARACTERISTIC,
                    f"Characteristic {spec.name!r} is given more than once.",
                    f"{path}.name",
                )
            )
        given.add(spec.name)
        error = characteristic_value_error(spec, characteristic.get("value"))
        if error is not None:
            problems.append(ctx.problem(ProblemCode.INVALID_CHARACTERISTIC_VALUE, error, f"{path}.value"))
    if require_all:
        for spec in offering.characteristics:
            if spec.required and spec.name not in given:
                problems.append(
                    ctx.problem(
                        ProblemCode.MISSING_CHARACTERISTIC,
                        f"{offering.name} needs characteristic {spec.name!r}{_choices(spec)}.",
                        "product.productCharacteristic",
                    )
                )


def characteristic_value_error(spec: CharacteristicSpec, value: Any) -> str | None:
    """Why ``value`` is not valid for ``spec``, or None if it is.

    Booleans and numbers may also arrive as strings ("true", "2"), since many
    clients send every characteristic value as a string.
    """
    name = spec.name
    if value is None:
        return f"Characteristic {name!r} has no value."
    if spec.value_type == "boolean":
        if isinstance(value, bool) or value in ("true", "false"):
            return None
        return f"Characteristic {name!r} must be true or false; got {value!r}."
    if spec.value_type in ("integer", "number"):
        integer = spec.value_type == "integer"
        number = _number(value, integer=integer)
        if number is None:
            kind = "a whole number" if integer else "a number"
            return f"Characteristic {name!r} must be {kind}; got {value!r}."
        if spec.minimum is not None and number < spec.minimum:
            return f"Characteristic {name!r} must be at least {spec.minimum}; got {value!r}."
        if spec.maximum is not None and number > spec.maximum:
            return f"Characteristic {name!r} must be at most {spec.maximum}; got {value!r}."
        return None
    if not isinstance(value, str):
        return f"Characteristic {name!r} must be a string; got {value!r}."
    if spec.allowed_values is not None and value not in spec.allowed_values:
        return f"Characteristic {name!r} must be one of {', '.join(spec.allowed_values)}; got {value!r}."
    if spec.pattern is not None and not spec.pattern.fullmatch(value):
        return f"Characteristic {name!r} has an invalid format: {value!r}."
    return None


def _number(value: Any, *, integer: bool) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if integer:
        return Decimal(value) if isinstance(value, str) and _INTEGER.match(value) else None
    if isinstance(value, float | Decimal | str):
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            return None
        return number if number.is_finite() else None
    return None


def _choices(spec: CharacteristicSpec) -> str:
    return f" (one of {', '.join(spec.allowed_values)})" if spec.allowed_values else ""


def _check_place(ctx: _ItemContext, problems: list[Problem]) -> None:
    matches = [
        (index, place)
        for index, place in enumerate(_list(ctx.product.get("place")))
        if isinstance(place, dict) and place.get("role") == INSTALLATION_PLACE_ROLE
    ]
    if not matches:
        problems.append(
            ctx.problem(
                ProblemCode.MISSING_PLACE,
                f"The item needs a product.place with role {INSTALLATION_PLACE_ROLE!r}.",
                "product.place",
            )
        )
        return
    if len(matches) > 1:
        problems.append(
            ctx.problem(
                ProblemCode.INVALID_PLACE,
                f"Only one place with role {INSTALLATION_PLACE_ROLE!r} is allowed.",
                f"product.place[{matches[1][0]}]",
            )
        )
    index, place = matches[0]
    path = f"product.place[{index}]"
    country, postcode = place.get("country"), place.get("postcode")
    if country is None and postcode is None:
        if not _ref_id(place):
            problems.append(
                ctx.problem(
                    ProblemCode.INVALID_PLACE,
                    "The installation place needs either an id or an address with postcode and country.",
                    path,
                )
            )
        return
    if not isinstance(country, str) or not country:
        problems.append(
            ctx.problem(
                ProblemCode.INVALID_PLACE, "The installation address has no country.", f"{path}.country"
            )
        )
    else:
        pattern = ctx.catalog.postcode_pattern(country)
        if pattern is None:
            served = ", ".join(sorted(ctx.catalog.postcode_formats))
            problems.append(
                ctx.problem(
                    ProblemCode.UNSUPPORTED_COUNTRY,
                    f"We do not install in country {country!r} (we serve {served}).",
                    f"{path}.country",
                )
            )
        elif not isinstance(postcode, str) or not postcode:
            problems.append(
                ctx.problem(
                    ProblemCode.INVALID_PLACE, "The installation address has no postcode.", f"{path}.postcode"
                )
            )
        elif not pattern.fullmatch(postcode.strip().upper()):
            problems.append(
                ctx.problem(
                    ProblemCode.INVALID_POSTCODE,
                    f"{postcode!r} is not a valid postcode for {country}.",
                    f"{path}.postcode",
                )
            )


def _check_prerequisite(ctx: _ItemContext, offering: ProductOffering, problems: list[Problem]) -> None:
    for other in _objects(ctx.order.get("productOrderItem")):
        if (
            other is not ctx.item
            and other.get("action") != ItemAction.DELETE
            and _ref_id(other.get("productOffering")) in offering.requires_one_of
        ):
            return
    for relationship in _objects(ctx.product.get("productRelationship")):
        if relationship.get("relationshipType") == RELIES_ON and _ref_id(relationship.get("product")):
            return
    problems.append(
        ctx.problem(
            ProblemCode.MISSING_REQUIRED_PRODUCT,
            f"{offering.name} needs one of {', '.join(sorted(offering.requires_one_of))} in the same order, "
            f"or a product.productRelationship of type {RELIES_ON!r} to an existing one.",
            "productOffering.id",
        )
    )


def problems_to_notes(problems: Iterable[Problem], *, date: str | None = None) -> list[dict[str, Any]]:
    """TMF ``Note`` entries, one per problem, for ``ProductOrder.note``.

    Text looks like ``[item 1] Product offering 'X' is not in catalogue 2026.11.1
    (unknownProductOffering at productOrderItem[0].productOffering.id)``. Ids are
    ``validation-1``, ``validation-2``...; pass ``date`` (ISO 8601) to stamp them.
    """
    notes: list[dict[str, Any]] = []
    for number, problem in enumerate(problems, start=1):
        scope = f"item {problem.item_id}" if problem.item_id is not None else "order"
        where = f" at {problem.field}" if problem.field else ""
        note: dict[str, Any] = {
            "@type": "Note",
            "id": f"validation-{number}",
            "author": NOTE_AUTHOR,
            "text": f"[{scope}] {problem.message} ({problem.code}{where})",
        }
        if date is not None:
            note["date"] = date
        notes.append(note)
    return notes


def apply_rejection(
    order: Mapping[str, Any], problems: Iterable[Problem], *, date: str | None = None
) -> dict[str, Any]:
    """A copy of ``order`` rejected for ``problems``: order and every item ``rejected``, one note per problem.

    Notes already on the order are kept, and notes from an earlier validation are replaced.
    """
    rejected = _json_copy(order)
    rejected["state"] = OrderState.REJECTED.value
    for item in _objects(rejected.get("productOrderItem")):
        item["state"] = ItemState.REJECTED.value
    kept = [n for n in _objects(rejected.get("note")) if n.get("author") != NOTE_AUTHOR]
    rejected["note"] = kept + problems_to_notes(problems, date=date)
    return rejected


# -------------------------------------------------------------------------- pricing

_CENT = Decimal("0.01")
_PRICE_TYPE_ORDER = {"recurring": 0, "oneTime": 1}


def price_order(order: Mapping[str, Any], catalog: Catalog, *, in_place: bool = False) -> dict[str, Any]:
    """A copy of ``order`` (or ``order`` itself, with ``in_place``) with ``itemPrice`` on every item and
    ``orderTotalPrice``.

    Each catalogue price becomes one ``OrderPrice`` in ``itemPrice``, multiplied
    by the item's quantity. Which prices apply depends on the action: ``add``
    pays all of them; ``modify`` pays the recurring ones (the charge going
    forward; one-off charges such as installation apply to new products only);
    ``delete`` and ``noChange`` pay nothing (``itemPrice: []``).

    ``orderTotalPrice`` sums the items per priceType, recurringChargePeriod and
    currency (recurring first). ``taxRate`` is kept on a total only when every
    price in it has the same rate. Amounts are ``Decimal`` internally and JSON
    numbers rounded half-up to cents on the way out.

    Call ``validate_order`` first: an unknown offering raises ``UnknownOffering``
    and an invalid quantity raises ``ValueError``.
    """
    priced = order if in_place and isinstance(order, dict) else _json_copy(order)
    lines: list[tuple[str, str | None, int]] = []
    for item in _objects(priced.get("productOrderItem")):
        offering_id = _ref_id(item.get("productOffering")) or ""
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"item {item.get('id')!r}: invalid quantity {quantity!r}")
        action = item.get("action")
        line = (offering_id, action if isinstance(action, str) else None, quantity)
        item["itemPrice"] = orjson.loads(_priced(catalog, line, _item_prices))
        lines.append(line)
    priced["orderTotalPrice"] = orjson.loads(_priced(catalog, tuple(lines), _order_totals))
    return priced


# The catalogue does not change while the service runs, so the price of an item (offering, action,
# quantity) and the totals of a list of items are computed once and kept as JSON; each order gets
# fresh copies (orjson.loads). The cache lives on the catalogue and is bounded.
_PRICED_CACHE_SIZE = 10_000


def _priced(catalog: Catalog, key: Any, build: Callable[[Catalog, Any], Any]) -> bytes:
    cache = catalog.computed
    found: bytes | None = cache.get(key)
    if found is None:
        found = orjson.dumps(build(catalog, key))
        if len(cache) >= _PRICED_CACHE_SIZE:
            cache.clear()
        cache[key] = found
    return found


def _item_prices(catalog: Catalog, line: tuple[str, str | None, int]) -> list[dict[str, Any]]:
    offering_id, action, quantity = line
    return [_build_order_price(p, quantity) for p in _chargeable(catalog.offering(offering_id), action)]


def _order_totals(catalog: Catalog, lines: tuple[tuple[str, str | None, int], ...]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str | None, str], _Total] = {}
    for offering_id, action, quantity in lines:
        for price in _chargeable(catalog.offering(offering_id), action):
            key = (price.price_type, price.recurring_charge_period, price.currency)
            totals.setdefault(key, _Total()).add(price, quantity)
    ordered = sorted(totals.items(), key=lambda kv: (_PRICE_TYPE_ORDER[kv[0][0]], kv[0][1] or "", kv[0][2]))
    return [total.to_tmf(*key) for key, total in ordered]


def _chargeable(offering: ProductOffering, action: Any) -> tuple[OfferingPrice, ...]:
    if action == ItemAction.ADD:
        return offering.prices
    if action == ItemAction.MODIFY:
        return tuple(p for p in offering.prices if p.price_type == "recurring")
    return ()


@dataclass
class _Total:
    tax_included: Decimal = Decimal(0)
    duty_free: Decimal = Decimal(0)
    tax_rates: frozenset[Decimal] = frozenset()

    def add(self, price: OfferingPrice, quantity: int) -> None:
        self.tax_included += price.tax_included_amount * quantity
        self.duty_free += price.duty_free_amount * quantity
        self.tax_rates |= {price.tax_rate}

    def to_tmf(self, price_type: str, period: str | None, currency: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "@type": "OrderPrice",
            "name": f"Total recurring charges per {period}" if period else "Total one-time charges",
            "priceType": price_type,
        }
        if period is not None:
            result["recurringChargePeriod"] = period
        rate = next(iter(self.tax_rates)) if len(self.tax_rates) == 1 else None
        result["price"] = _price(self.tax_included, self.duty_free, currency, rate)
        return result


def _build_order_price(price: OfferingPrice, quantity: int) -> dict[str, Any]:
    result: dict[str, Any] = {"@type": "OrderPrice", "name": price.name}
    if quantity != 1:
        result["description"] = f"{quantity} x {_money(price.tax_included_amount)} {price.currency}"
    result["priceType"] = price.price_type
    if price.recurring_charge_period is not None:
        result["recurringChargePeriod"] = price.recurring_charge_period
    result["price"] = _price(
        price.tax_included_amount * quantity,
        price.duty_free_amount * quantity,
        price.currency,
        price.tax_rate,
    )
    result["productOfferingPrice"] = {
        "id": price.id,
        "name": price.name,
        "@referredType": "ProductOfferingPrice",
    }
    return result


def _price(
    tax_included: Decimal, duty_free: Decimal, currency: str, tax_rate: Decimal | None
) -> dict[str, Any]:
    price: dict[str, Any] = {
        "@type": "Price",
        "taxIncludedAmount": {"unit": currency, "value": _money(tax_included)},
        "dutyFreeAmount": {"unit": currency, "value": _money(duty_free)},
    }
    if tax_rate is not None:
        price["taxRate"] = float(tax_rate)
    return price


def _money(amount: Decimal) -> float:
    return float(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


# -------------------------------------------------------------------------- helpers


def _ref_id(ref: Any) -> str | None:
    value = ref.get("id") if isinstance(ref, dict) else None
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _objects(value: Any) -> list[dict[str, Any]]:
    """The dict entries of a JSON array (anything else is ignored)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _json_copy(order: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON document (orders are plain JSON; this is much faster than deepcopy)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(order))
    return copied
