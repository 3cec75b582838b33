"""Nested ``fields``, unknown ``fields`` names, filter values against their enum or type, and hub
queries checked by the same compiler (issue #8, section 6 and "Done when")."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from switchboard_kit.errors import ApiError, BadRequest
from switchboard_kit.hub import check_hub_query, subscription_matches
from switchboard_kit.query import HotColumn, QueryCompiler, select_fields
from tmf_models import tmf622

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB),
    Column("state", Text),
    Column("order_date", DateTime(timezone=True)),
    Column("party_ids", ARRAY(Text)),
)
cancels = Table("cancels", metadata, Column("id", Text, primary_key=True), Column("doc", JSONB))

ORDERS = QueryCompiler(
    tmf622.ProductOrder,
    orders.c.doc,
    hot={
        "id": HotColumn(orders.c.id),
        "state": HotColumn(orders.c.state),
        "orderDate": HotColumn(orders.c.order_date),
        "relatedParty.id": HotColumn(orders.c.party_ids, many=True),
    },
)
CANCELS = QueryCompiler(tmf622.CancelProductOrder, cancels.c.doc)
ORDER_STATES = {s.value for s in tmf622.ProductOrderStateType}

ORDER: dict[str, Any] = {
    "id": "o1",
    "href": "/productOrder/o1",
    "state": "acknowledged",
    "relatedParty": [{"id": "c1", "role": "customer", "name": "Jane"}],
    "productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": "po-1", "name": "Fibre"}, "quantity": 1},
        {"id": "2", "action": "add", "quantity": 2},
        {"id": "3", "action": "add", "productOffering": {"id": "po-3"}, "productOrderItem": [{"id": "3.1"}]},
    ],
}


def error(params: list[tuple[str, str]], compiler: QueryCompiler = ORDERS) -> ApiError:
    with pytest.raises(BadRequest) as caught:
        compiler.parse(params)
    assert caught.value.status == 400
    return caught.value


# -- fields -------------------------------------------------------------------------------------


def selected(fields: str) -> dict[str, Any]:
    return select_fields(ORDER, ORDERS.parse([("fields", fields)]).fields)


def test_nested_field_selection_keeps_only_the_sub_attribute_through_arrays() -> None:
    assert selected("productOrderItem.productOffering.id") == {
        "id": "o1",
        "href": "/productOrder/o1",
        "productOrderItem": [{"productOffering": {"id": "po-1"}}, {}, {"productOffering": {"id": "po-3"}}],
    }


def test_nested_and_whole_attributes_combine() -> None:
    assert selected("productOrderItem.id,productOrderItem.quantity,relatedParty.role,state") == {
        "id": "o1",
        "href": "/productOrder/o1",
        "state": "acknowledged",
        "relatedParty": [{"role": "customer"}],
        "productOrderItem": [{"id": "1", "quantity": 1}, {"id": "2", "quantity": 2}, {"id": "3"}],
    }
    # naming the object keeps all of it, whatever sub-attribute is named besides
    whole = selected("relatedParty,relatedParty.id")
    assert whole["relatedParty"] == ORDER["relatedParty"]
    assert selected("relatedParty.id,relatedParty")["relatedParty"] == ORDER["relatedParty"]


def test_fields_by_python_name_select_the_wire_attribute() -> None:
    assert ORDERS.parse([("fields", "related_party.id")]).fields == frozenset({"relatedParty.id"})


@pytest.mark.parametrize(
    "fields", ["V", "state,colour", "relatedParty.colour", "state.id", "productOrderItem.x"]
)
def test_unknown_attribute_in_fields_is_400(fields: str) -> None:
    caught = error([("fields", fields)])
    assert caught.code == "unknownAttribute"
    assert "fields" in caught.reason


# -- filter values against enum and type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "compiler"),
    [
        ("state", ORDERS),  # hot column
        ("productOrderItem.state", ORDERS),  # JSON path
        ("state", CANCELS),  # JSON path, another enum (TaskStateType)
    ],
)
def test_a_value_outside_the_enum_is_400_naming_the_allowed_values(
    name: str, compiler: QueryCompiler
) -> None:
    caught = error([(name, "nonsense")], compiler)
    assert caught.code == "invalidFilterValue"
    assert "nonsense" in caught.reason
    assert caught.message is not None and "acknowledged" in caught.message
    # one bad value among alternatives and with an operator too
    assert error([(name, "acknowledged,nonsense")], compiler).code == "invalidFilterValue"
    assert error([(f"{name}.ne", "nonsense")], compiler).code == "invalidFilterValue"


def test_enum_values_are_accepted() -> None:
    assert len(ORDERS.parse([("state", ",".join(sorted(ORDER_STATES)))]).where) == 1
    assert len(ORDERS.parse([("productOrderItem.state", "inProgress")]).where) == 1
    assert len(CANCELS.parse([("state", "done")]).where) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("productOrderItem.quantity", "two"),
        ("productOrderItem.quantity.gt", "1.5x"),
        ("productOrderItem.product.isBundle", "yes"),
        ("orderDate", "yesterday"),
        ("requestedCompletionDate.gte", "2024-13-01"),
        ("productOrderItem.itemPrice.price.taxIncludedAmount.value", "NaN"),
    ],
)
def test_a_value_of_the_wrong_type_is_400(name: str, value: str) -> None:
    assert error([(name, value)]).code == "invalidFilterValue"


# -- hub queries ------------------------------------------------------------------------------------

COMPILERS = {"productOrder": ORDERS, "cancelProductOrder": CANCELS}
EVENTS = tuple(tmf622.EVENT_TYPES)


@pytest.mark.parametrize(
    "query",
    [
        None,
        "",
        "eventType=ProductOrderCreateEvent",
        "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed",
        "eventType=ProductOrderCreateEvent,ProductOrderDeleteEvent&event.productOrder.relatedParty.id=c1",
        "event.cancelProductOrder.state=done&event.cancelProductOrder.productOrder.id=o1",
        "event.productOrder.productOrderItem.quantity=2",
    ],
)
def test_hub_queries_the_service_can_match_are_accepted(query: str | None) -> None:
    check_hub_query(query, COMPILERS, EVENTS)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("bogus=1", "unknownAttribute"),
        ("eventType=NoSuchEvent", "invalidFilterValue"),
        ("eventType=ProductOrderCreateEvent,NoSuchEvent", "invalidFilterValue"),
        ("event.productOrder.colour=red", "unknownAttribute"),
        ("event.productOrder=x", "unknownAttribute"),
        ("event.thing.id=1", "unknownAttribute"),
        ("event.productOrder.state=nonsense", "invalidFilterValue"),
        ("event.productOrder.productOrderItem.quantity=two", "invalidFilterValue"),
        ("event.productOrder.state.ne=completed", "unknownAttribute"),
        ("no equals sign", "invalidHubQuery"),
        ("eventType=\ud800", "invalidCharacter"),  # a lone surrogate cannot even be answered back
        ("event.productOrder.id=a\x00b", "invalidCharacter"),
    ],
)
def test_hub_queries_that_never_or_always_fire_are_400(query: str, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_hub_query(query, COMPILERS, EVENTS)
    assert caught.value.code == code


def test_an_accepted_hub_query_matches_its_event() -> None:
    query = "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed"
    check_hub_query(query, COMPILERS, EVENTS)
    event = {"eventType": "ProductOrderStateChangeEvent", "event": {"productOrder": {"state": "completed"}}}
    assert subscription_matches(query, event)
    assert not subscription_matches(query, {**event, "eventType": "ProductOrderCreateEvent"})


def test_the_name_caches_stay_bounded_whatever_clients_send() -> None:
    compiler = QueryCompiler(tmf622.ProductOrder, orders.c.doc)
    for n in range(3000):
        with pytest.raises(BadRequest):
            compiler.parse([("fields", f"unknown{n}")])
        with pytest.raises(BadRequest):
            compiler.parse([(f"unknown{n}", "x")])
    assert len(compiler._fields) <= 1024
    assert len(compiler._paths) <= 1024
    assert compiler.parse([("fields", "state")]).fields == frozenset({"state"})
