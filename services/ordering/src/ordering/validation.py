"""Validation of an order at capture against the catalogue (TMF622 Product Ordering v4).

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
rejected order. One problem is not a rejection but a 400: an order that names no
customer (``require_customer``) is refused and not stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from switchboard_kit.errors import BadRequest

from .catalog import Catalog, CharacteristicSpec, ProductOffering
from .documents import ItemAction, as_list, copy_document, objects, ref_id
from .states import ItemState, OrderState, move, start

_ACTION_VALUES = frozenset(a.value for a in ItemAction)

# The longest text the service stores in an indexed column from a client document (relatedParty ids,
# in ``product_order.party_ids``). A B-tree or GIN entry must fit in a third of a page (about 2700
# bytes); 255 characters are at most 1020 bytes of UTF-8, and more than any real identifier needs.
MAX_INDEXED_TEXT_LENGTH = 255


def overlong_indexed_values(order: Mapping[str, Any]) -> list[str]:
    """The JSON paths of the values of ``order`` that go into an indexed column and are longer than
    ``MAX_INDEXED_TEXT_LENGTH`` (see ``service.party_ids``)."""
    return [
        f"relatedParty[{index}].id"
        for index, party in enumerate(as_list(order.get("relatedParty")))
        if isinstance(party, dict)
        and isinstance(party.get("id"), str)
        and len(party["id"]) > MAX_INDEXED_TEXT_LENGTH
    ]


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


class CustomerRequired(BadRequest):
    """An order that names no customer (HTTP 400): nothing can be done with it, so it is not stored."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("Customer required", "; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = list(problems)


def require_customer(order: Mapping[str, Any]) -> None:
    """Raise ``CustomerRequired`` unless ``order`` names its customer: a ``relatedParty`` with role
    ``customer`` (or, without a role, a person or an organisation) and an id.

    Every other problem leaves a stored, ``rejected`` order whose notes list them; this one does not,
    because a client (and the TMF622 conformance kit) expects every listed order to have a customer.
    """
    problems: list[Problem] = []
    _check_customer(order, None, problems)
    missing = [p for p in problems if p.code == ProblemCode.MISSING_CUSTOMER]
    if missing:
        raise CustomerRequired(missing)


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
    order_has_billing_account = bool(ref_id(order.get("billingAccount")))
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
        for index, party in enumerate(as_list(order.get("relatedParty")))
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
    if action in (ItemAction.MODIFY, ItemAction.DELETE, ItemAction.NO_CHANGE) and not ref_id(ctx.product):
        problems.append(
            ctx.problem(
                ProblemCode.MISSING_PRODUCT_REF,
                f"A {action} item must name the existing product in product.id.",
                "product.id",
            )
        )
    _check_relationships(ctx, problems)

    offering_id = ref_id(ctx.item.get("productOffering"))
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
            or ref_id(ctx.item.get("billingAccount"))
            or ref_id(ctx.product.get("billingAccount"))
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
    for index, relationship in enumerate(as_list(ctx.item.get("productOrderItemRelationship"))):
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
    for index, characteristic in enumerate(as_list(ctx.product.get("productCharacteristic"))):
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
        for index, place in enumerate(as_list(ctx.product.get("place")))
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
        if not ref_id(place):
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
    for other in objects(ctx.order.get("productOrderItem")):
        if (
            other is not ctx.item
            and other.get("action") != ItemAction.DELETE
            and ref_id(other.get("productOffering")) in offering.requires_one_of
        ):
            return
    for relationship in objects(ctx.product.get("productRelationship")):
        if relationship.get("relationshipType") == RELIES_ON and ref_id(relationship.get("product")):
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
    """A copy of ``order`` rejected at capture for ``problems``: order and every item go from
    ``acknowledged`` to ``rejected``, with one note per problem.

    Notes already on the order are kept, and notes from an earlier validation are replaced.
    """
    rejected = copy_document(order)
    start(rejected, OrderState.ACKNOWLEDGED)
    move(rejected, OrderState.REJECTED)
    for item in objects(rejected.get("productOrderItem")):
        start(item, ItemState.ACKNOWLEDGED)
        move(item, ItemState.REJECTED)
    kept = [n for n in objects(rejected.get("note")) if n.get("author") != NOTE_AUTHOR]
    rejected["note"] = kept + problems_to_notes(problems, date=date)
    return rejected
