"""Unit tests for TMF630 query parsing (no database): parsed structure, generated SQL, errors."""

from __future__ import annotations

import enum
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from switchboard_kit.errors import BadRequest
from switchboard_kit.query import HotColumn, ListQuery, QueryCompiler, resolve_path, select_fields


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class PartyRef(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    role: str | None = None
    referred_type: str | None = Field(None, alias="@referredType")


class OfferingRef(BaseModel):
    id: str
    name: str | None = None


class Price(BaseModel):
    value: Decimal | None = None
    unit: str | None = None


class OrderItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    quantity: int | None = None
    product_offering: OfferingRef | None = Field(None, alias="productOffering")
    price: Price | None = None
    tags: list[str] | None = None


class Order(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    id: str
    href: str | None = None
    state: str | None = None
    priority: int | None = None
    amount: float | None = None
    urgent: bool | None = None
    color: Color | None = None
    kind: Literal["a", "b"] | None = None
    due: date | None = None
    order_date: datetime | None = Field(None, alias="orderDate")
    related_party: list[PartyRef] | None = Field(None, alias="relatedParty")
    items: list[OrderItem] | None = Field(None, alias="productOrderItem")
    note: Any = None
    extra_map: dict[str, str] | None = Field(None, alias="extraMap")
    type_: str | None = Field(None, alias="@type")


PG = postgresql.dialect()  # type: ignore[no-untyped-call]

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB),
    Column("party_ids", ARRAY(Text)),
    Column("state", Text),
    Column("order_date", DateTime(timezone=True)),
    Column("prio", Integer),
)


def compiler(**kwargs: Any) -> QueryCompiler:
    return QueryCompiler(
        Order,
        orders.c.doc,
        hot={
            "id": HotColumn(orders.c.id),
            "state": HotColumn(orders.c.state),
            "orderDate": HotColumn(orders.c.order_date),
            "relatedParty.id": HotColumn(orders.c.party_ids, many=True),
            "prioCol": HotColumn(orders.c.prio, python_type=int),
        },
        default_order=(orders.c.id,),
        **kwargs,
    )


def sql(q: ListQuery) -> tuple[str, dict[str, Any]]:
    compiled = q.apply(select(orders.c.id)).compile(dialect=PG)
    return str(compiled), dict(compiled.params)


def parse(*params: tuple[str, str], **kwargs: Any) -> ListQuery:
    return compiler(**kwargs).parse(list(params))


def params_of(*params: tuple[str, str]) -> tuple[str, list[Any]]:
    """WHERE-only SQL and its bound values in order of appearance."""
    compiled = select(orders.c.id).where(*parse(*params).where).compile(dialect=PG)
    names = sorted(compiled.params, key=lambda name: int(name.rsplit("_", 1)[1]))
    return str(compiled), [compiled.params[name] for name in names]


# -- reserved parameters ----------------------------------------------------------------------


def test_defaults() -> None:
    q = parse()
    assert q.where == []
    assert q.offset == 0
    assert q.limit == 100
    assert q.fields is None
    assert len(q.order_by) == 1  # default order only


def test_offset_limit_fields() -> None:
    q = parse(("offset", "20"), ("limit", "5"), ("fields", "state,relatedParty.id, orderDate"))
    assert (q.offset, q.limit) == (20, 5)
    assert q.fields == frozenset({"state", "relatedParty.id", "orderDate"})  # nested selection
    assert q.where == []


def test_repeated_fields_are_merged() -> None:
    assert parse(("fields", "state"), ("fields", "note")).fields == frozenset({"state", "note"})


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1001", "", "1.5", " 5", "+5", "1_0", "9" * 30])
def test_invalid_limit(value: str) -> None:
    with pytest.raises(BadRequest):
        parse(("limit", value))


def test_limit_bounds() -> None:
    assert parse(("limit", "1000")).limit == 1000
    assert parse(("limit", "1")).limit == 1
    assert parse(("limit", "50"), max_limit=50, default_limit=10).limit == 50
    with pytest.raises(BadRequest):
        parse(("limit", "51"), max_limit=50, default_limit=10)
    assert parse(default_limit=10).limit == 10


@pytest.mark.parametrize("value", ["-1", "x", "", "1e3", "9" * 30])
def test_invalid_offset(value: str) -> None:
    with pytest.raises(BadRequest):
        parse(("offset", value))


@pytest.mark.parametrize("name", ["offset", "limit"])
def test_repeated_paging_param(name: str) -> None:
    with pytest.raises(BadRequest):
        parse((name, "1"), (name, "2"))


def test_empty_fields_is_rejected() -> None:
    with pytest.raises(BadRequest):
        parse(("fields", ", ,"))


def test_paginate_false_omits_offset_limit() -> None:
    q = parse(("limit", "5"), ("offset", "3"))
    text = str(q.apply(select(orders.c.id), paginate=False).compile(dialect=PG))
    assert "LIMIT" not in text
    assert "OFFSET" not in text
    assert "LIMIT" in sql(q)[0]


# -- select_fields ----------------------------------------------------------------------------


def test_select_fields() -> None:
    doc = {"id": "1", "href": "/x/1", "state": "s", "relatedParty": [{"id": "p"}], "note": 1}
    assert select_fields(doc, None) is doc
    assert select_fields(doc, frozenset({"state"})) == {"id": "1", "href": "/x/1", "state": "s"}
    assert select_fields(doc, frozenset({"state"}), always=()) == {"state": "s"}
    assert select_fields(doc, frozenset({"relatedParty.id", "missing"}), always=()) == {
        "relatedParty": [{"id": "p"}]
    }
    assert list(select_fields(doc, frozenset({"note", "id"}))) == ["id", "href", "note"]


# -- path resolution ---------------------------------------------------------------------------


def test_resolve_by_alias_and_name() -> None:
    by_alias = resolve_path(Order, "relatedParty.id")
    by_name = resolve_path(Order, "related_party.id")
    assert by_alias is not None
    assert by_alias == by_name
    assert by_alias.segments == (("relatedParty", 1), ("id", 0))
    assert by_alias.dotted == "relatedParty.id"
    assert by_alias.kind == "str"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("priority", "int"),
        ("amount", "decimal"),
        ("productOrderItem.price.value", "decimal"),
        ("urgent", "bool"),
        ("orderDate", "datetime"),
        ("due", "date"),
        ("color", "str"),
        ("kind", "str"),
        ("note", "any"),
        ("@type", "str"),
        ("productOrderItem.tags", "str"),
        ("relatedParty.@referredType", "str"),
    ],
)
def test_resolve_kinds(path: str, kind: str) -> None:
    resolved = resolve_path(Order, path)
    assert resolved is not None
    assert resolved.kind == kind


@pytest.mark.parametrize("path", ["nope", "relatedParty.nope", "state.x", "", "a..b", ".id", "id."])
def test_unknown_paths(path: str) -> None:
    assert resolve_path(Order, path) is None


@pytest.mark.parametrize("path", ["relatedParty", "productOrderItem.productOffering", "extraMap"])
def test_object_paths_are_rejected(path: str) -> None:
    with pytest.raises(BadRequest):
        resolve_path(Order, path)


# -- filters on the document -------------------------------------------------------------------


def test_equality_through_arrays_uses_containment() -> None:
    text, values = params_of(("productOrderItem.productOffering.id", "X"))
    assert "orders.doc @> CAST(" in text
    assert [json.loads(v) for v in values] == [{"productOrderItem": [{"productOffering": {"id": "X"}}]}]


def test_comma_means_or() -> None:
    text, values = params_of(("productOrderItem.id", "a,b"))
    assert " OR " in text
    assert [json.loads(v) for v in values] == [
        {"productOrderItem": [{"id": "a"}]},
        {"productOrderItem": [{"id": "b"}]},
    ]


def test_list_of_scalars_containment() -> None:
    _, values = params_of(("productOrderItem.tags", "t1"))
    assert json.loads(values[0]) == {"productOrderItem": [{"tags": ["t1"]}]}


def test_typed_equality_values() -> None:
    assert json.loads(params_of(("priority", "7"))[1][0]) == {"priority": 7}
    assert json.loads(params_of(("urgent", "TRUE"))[1][0]) == {"urgent": True}
    assert params_of(("amount", "1.50"))[1][0] == '{"amount":1.50}'  # exact digits kept
    assert json.loads(params_of(("due", "2024-02-03"))[1][0]) == {"due": "2024-02-03"}
    assert json.loads(params_of(("@type", "X"))[1][0]) == {"@type": "X"}


def test_any_typed_attribute_tries_string_and_number() -> None:
    _, values = params_of(("note", "5"))
    assert [json.loads(v) for v in values] == [{"note": "5"}, {"note": 5}]
    _, values = params_of(("note", "true"))
    assert [json.loads(v) for v in values] == [{"note": "true"}, {"note": True}]


def test_ne_is_not_containment() -> None:
    text, _ = params_of(("productOrderItem.id.ne", "a,b"))
    assert text.count("@>") == 2
    assert "NOT (" in text


def test_comparison_uses_jsonpath_with_vars() -> None:
    text, values = params_of(("productOrderItem.quantity.gte", "2,5"))
    assert "jsonb_path_exists(orders.doc, CAST(" in text
    assert values[0] == '$."productOrderItem"[*]."quantity" ? (@ >= $v0 || @ >= $v1)'
    assert json.loads(values[1]) == {"v0": 2, "v1": 5}


@pytest.mark.parametrize(
    ("param", "op"),
    [("priority.gt", ">"), ("priority[lt]", "<"), ("priority>", ">="), ("priority<", "<=")],
)
def test_operator_spellings(param: str, op: str) -> None:
    _, values = params_of((param, "3"))
    assert values[0] == f'$."priority" ? (@ {op} $v0)'


def test_bang_equals_and_eq_suffix() -> None:
    assert params_of(("priority!", "3"))[0] == params_of(("priority.ne", "3"))[0]
    assert params_of(("priority.eq", "3")) == params_of(("priority", "3"))


def test_datetime_on_document_compares_instants() -> None:
    q = QueryCompiler(Order, orders.c.doc)  # no hot columns
    text, bound = sql(q.parse([("orderDate.gt", "2024-01-01T10:00:00+02:00")]))
    assert "EXISTS (SELECT 1" in text
    assert "jsonb_path_query_array(orders.doc" in text
    assert "AS TIMESTAMP WITH TIME ZONE) >" in text
    assert datetime(2024, 1, 1, 8, tzinfo=UTC) in bound.values()


def test_naive_datetime_is_utc() -> None:
    q = QueryCompiler(Order, orders.c.doc)
    _, bound = sql(q.parse([("orderDate", "2024-01-01T10:00:00")]))
    assert datetime(2024, 1, 1, 10, tzinfo=UTC) in bound.values()


def test_repeated_attribute_is_anded() -> None:
    q = parse(("priority.gt", "1"), ("priority.lt", "9"))
    assert len(q.where) == 2


def test_injection_values_are_bound_not_inlined() -> None:
    evil = "' OR 1=1 --"
    text, values = params_of(("productOrderItem.id", evil), ("priority.gt", "1"))
    assert evil not in text
    assert json.loads(values[0]) == {"productOrderItem": [{"id": evil}]}


# -- hot columns -------------------------------------------------------------------------------


def test_hot_many_equality_and_or() -> None:
    text, values = params_of(("relatedParty.id", "C1"))
    assert "orders.party_ids @> " in text
    assert values == [["C1"]]
    text, values = params_of(("related_party.id", "C1,C2"))
    assert "orders.party_ids && " in text
    assert values == [["C1", "C2"]]


def test_hot_many_ne_and_comparison() -> None:
    text, _ = params_of(("relatedParty.id.ne", "C1"))
    assert "orders.party_ids IS NULL OR NOT (orders.party_ids && " in text
    text, values = params_of(("relatedParty.id.gt", "C5"))
    assert "< ANY (orders.party_ids)" in text
    assert values == ["C5"]


def test_hot_scalar() -> None:
    text, values = params_of(("state", "a,b"))
    assert "orders.state IN (" in text
    assert values == ["a", "b"]
    text, _ = params_of(("state.ne", "a"))
    assert "IS DISTINCT FROM" in text
    text, values = params_of(("orderDate.lt", "2024-05-01T00:00:00Z"))
    assert "orders.order_date < " in text
    assert values == [datetime(2024, 5, 1, tzinfo=UTC)]


def test_hot_column_not_in_model() -> None:
    text, values = params_of(("prioCol.gte", "4"))
    assert "orders.prio >= " in text
    assert values == [4]
    with pytest.raises(BadRequest):
        parse(("prioCol", "four"))


# -- sort --------------------------------------------------------------------------------------


def test_sort() -> None:
    text, _ = sql(parse(("sort", "-orderDate,+state,priority,productOrderItem.id,due")))
    order = text.split("ORDER BY", 1)[1]
    assert order.index("orders.order_date DESC NULLS LAST") < order.index("orders.state ASC NULLS LAST")
    assert "orders.doc #> " in order  # priority: numeric jsonb order
    assert "orders.doc #>> " in order
    assert "NULLS LAST, orders.id \n LIMIT" in order  # default order is the tie-breaker


def test_sort_paths() -> None:
    compiled = (
        parse(("sort", "productOrderItem.productOffering.name"))
        .apply(select(orders.c.id))
        .compile(dialect=PG)
    )
    assert ["productOrderItem", "0", "productOffering", "name"] in compiled.params.values()


def test_sort_on_document_datetime_is_guarded_cast() -> None:
    q = QueryCompiler(Order, orders.c.doc).parse([("sort", "-orderDate")])
    text = str(q.apply(select(orders.c.id)).compile(dialect=PG))
    assert "CASE WHEN" in text
    assert "AS TIMESTAMP WITH TIME ZONE) END DESC NULLS LAST" in text


@pytest.mark.parametrize("spec", ["nope", "-", "relatedParty", "a,,b"])
def test_bad_sort(spec: str) -> None:
    with pytest.raises(BadRequest):
        parse(("sort", spec))


# -- errors ------------------------------------------------------------------------------------


def test_unknown_attribute_message() -> None:
    with pytest.raises(BadRequest) as info:
        parse(("x", "1"))
    assert info.value.reason == "Unknown filter attribute 'x'"
    assert info.value.status == 400


@pytest.mark.parametrize(
    "param",
    [
        ("nope", "1"),
        ("relatedParty", "x"),  # object
        ("extraMap.k", "x"),  # no declared keys
        ("state", ""),  # empty value
        ("state", "a,,b"),  # empty OR member
        ("priority", "x"),
        ("priority", "1.5"),
        ("amount", "1e99999"),
        ("amount", "NaN"),
        ("urgent", "yes"),
        ("urgent.gt", "true"),
        ("orderDate", "yesterday"),
        ("due", "2024-13-01"),
        ("priority[foo]", "1"),
        ("priority.like", "1"),  # 'like' is not an operator, so 'priority.like' is unknown
        (".gt", "1"),
        ("[gt]", "1"),
        ("prioCol", "9" * 30),  # out of bigint range
    ],
)
def test_bad_filters(param: tuple[str, str]) -> None:
    with pytest.raises(BadRequest):
        parse(param)


def test_unknown_operator_message() -> None:
    with pytest.raises(BadRequest) as info:
        parse(("priority.like", "1"))
    assert info.value.reason == "Unknown filter operator 'like'"
    with pytest.raises(BadRequest) as info:
        parse(("relatedParty.nope", "1"))
    assert info.value.reason == "Unknown filter attribute 'relatedParty.nope'"


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", ",".join(["x"] * 101)])
def test_values_postgres_cannot_take_are_400(value: str) -> None:
    with pytest.raises(BadRequest):
        parse(("productOrderItem.id", value))
    with pytest.raises(BadRequest):
        parse(("state", value))


def test_hot_keys_by_python_name() -> None:
    qc = QueryCompiler(
        Order, orders.c.doc, hot={"related_party.id": HotColumn(orders.c.party_ids, many=True)}
    )
    compiled = select(orders.c.id).where(*qc.parse([("relatedParty.id", "C1")]).where).compile(dialect=PG)
    assert "orders.party_ids @>" in str(compiled)
    with pytest.raises(ValueError, match="Hot column"):
        QueryCompiler(Order, orders.c.doc, hot={"relatedParty": HotColumn(orders.c.party_ids, many=True)})


class Early(BaseModel):
    # "Late" is defined below: pydantic leaves Early incomplete until it is rebuilt.
    late: Annotated[Late | None, Field(alias="lateThing")] = None


class Late(BaseModel):
    when: Annotated[AwareDatetime | None, Field(alias="whenItHappened")] = None
    url: HttpUrl | None = None


def test_incomplete_models_are_rebuilt() -> None:
    resolved = resolve_path(Early, "lateThing.whenItHappened")
    assert resolved is not None
    assert resolved.segments == (("lateThing", 0), ("whenItHappened", 0))
    assert resolved.kind == "datetime"  # pydantic's AwareDatetime is not a datetime subclass
    url = resolve_path(Early, "lateThing.url")
    assert url is not None
    assert url.kind == "str"


def test_extra_attributes_are_unknown() -> None:
    with pytest.raises(BadRequest):
        parse(("someExtra", "1"))


def test_default_limit_must_fit() -> None:
    with pytest.raises(ValueError, match="default_limit"):
        QueryCompiler(Order, orders.c.doc, default_limit=0)
