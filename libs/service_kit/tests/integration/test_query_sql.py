"""TMF630 query compilation against a real PostgreSQL (DATABASE_URL, default local ``test`` db).

Each test creates a uniquely named schema with a resource table (JSONB ``doc`` plus hot columns),
loads 50 documents and compares query results with the same predicate evaluated in Python.
The schema is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, DateTime, Index, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from switchboard_kit.errors import BadRequest
from switchboard_kit.query import HotColumn, QueryCompiler, select_fields

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


class PartyRef(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    role: str | None = None
    referred_type: str | None = Field(None, alias="@referredType")


class OfferingRef(BaseModel):
    id: str
    name: str | None = None


class OrderItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    quantity: int | None = None
    product_offering: OfferingRef | None = Field(None, alias="productOffering")


class Order(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    id: str
    href: str | None = None
    state: str | None = None
    priority: int | None = None
    amount: Decimal | None = None
    urgent: bool | None = None
    order_date: datetime | None = Field(None, alias="orderDate")
    related_party: list[PartyRef] | None = Field(None, alias="relatedParty")
    items: list[OrderItem] | None = Field(None, alias="productOrderItem")
    note: Any = None
    type_: str | None = Field(None, alias="@type")


STATES = ["acknowledged", "inProgress", "completed", "cancelled"]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
HREF = "http://host/tmf-api/productOrderingManagement/v4/productOrder/"


def instant(i: int) -> datetime:
    return BASE + timedelta(hours=7 * i, milliseconds=250 * (i % 2))


def render_instant(i: int) -> str:
    """The same instant in different RFC 3339 spellings."""
    moment = instant(i)
    if i % 3 == 0:
        return moment.isoformat().replace("+00:00", "Z")
    if i % 3 == 1:
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return moment.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat()


def make_doc(i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"o{i:02d}",
        "href": f"{HREF}o{i:02d}",
        "@type": "ProductOrder" if i % 5 else "SpecialOrder",
        "state": STATES[i % 4],
        "priority": i % 10,
        "amount": i * 1.5,
        "urgent": i % 3 == 0,
        "orderDate": render_instant(i),
        "productOrderItem": [
            {
                "id": "1",
                "quantity": i % 4 + 1,
                "productOffering": {"id": f"PO{i % 6}", "name": f"Offer {i % 6}"},
            }
        ],
        "note": i if i % 2 else f"n{i}",
    }
    if i % 10 != 9:
        doc["relatedParty"] = [
            {"id": f"C{i % 5}", "role": "customer", "@referredType": "Individual"},
            {"id": f"S{i % 7}", "role": "seller"},
        ]
    if i % 2 == 0:
        doc["productOrderItem"].append({"id": "2", "quantity": 10, "productOffering": {"id": "PO-extra"}})
    return doc


DOCS = [make_doc(i) for i in range(50)]
BY_ID = {doc["id"]: doc for doc in DOCS}


def party_ids(doc: dict[str, Any]) -> list[str]:
    return [p["id"] for p in doc.get("relatedParty", [])]


def offering_ids(doc: dict[str, Any]) -> list[str]:
    return [item["productOffering"]["id"] for item in doc["productOrderItem"]]


def when(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["orderDate"])


@dataclass
class Env:
    conn: AsyncConnection
    table: Table
    doc_only: QueryCompiler
    with_hot: QueryCompiler

    async def ids(self, compiler: QueryCompiler, *params: tuple[str, str]) -> list[str]:
        q = compiler.parse(
            [*params, ("limit", "1000")] if not any(k == "limit" for k, _ in params) else params
        )
        rows = await self.conn.execute(q.apply(select(self.table.c.id)))
        return [row.id for row in rows]

    async def both(self, *params: tuple[str, str]) -> list[str]:
        """Results with and without hot columns; they must agree."""
        plain = await self.ids(self.doc_only, *params)
        hot = await self.ids(self.with_hot, *params)
        assert plain == hot, params
        return plain


def expected(predicate: Callable[[dict[str, Any]], bool]) -> list[str]:
    return sorted(doc["id"] for doc in DOCS if predicate(doc))


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(DATABASE_URL)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest_asyncio.fixture
async def env(engine: AsyncEngine) -> AsyncIterator[Env]:
    schema = f"sb_query_test_{uuid.uuid4().hex[:12]}"
    metadata = MetaData(schema=schema)
    table = Table(
        "product_order",
        metadata,
        Column("id", Text, primary_key=True),
        Column("doc", JSONB, nullable=False),
        Column("party_ids", ARRAY(Text)),
        Column("state", Text),
        Column("order_date", DateTime(timezone=True)),
        Index(f"{schema}_doc_gin", "doc", postgresql_using="gin", postgresql_ops={"doc": "jsonb_path_ops"}),
        Index(f"{schema}_party_gin", "party_ids", postgresql_using="gin"),
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            table.insert(),
            [
                {
                    "id": doc["id"],
                    "doc": doc,
                    "party_ids": party_ids(doc) or None,
                    "state": doc["state"],
                    "order_date": when(doc),
                }
                for doc in DOCS
            ],
        )
        await conn.execute(text(f'ANALYZE "{schema}".product_order'))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET TIME ZONE 'UTC'"))
            doc_only = QueryCompiler(Order, table.c.doc, default_order=(table.c.id,))
            with_hot = QueryCompiler(
                Order,
                table.c.doc,
                hot={
                    "id": HotColumn(table.c.id),
                    "state": HotColumn(table.c.state),
                    "orderDate": HotColumn(table.c.order_date),
                    "relatedParty.id": HotColumn(table.c.party_ids, many=True),
                },
                default_order=(table.c.id,),
            )
            yield Env(conn, table, doc_only, with_hot)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


# -- equality and containment -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_filter_returns_everything(env: Env) -> None:
    assert await env.both() == sorted(BY_ID)


@pytest.mark.asyncio
async def test_containment_through_arrays(env: Env) -> None:
    assert await env.both(("relatedParty.id", "C1")) == expected(lambda d: "C1" in party_ids(d))
    assert await env.both(("productOrderItem.productOffering.id", "PO2")) == expected(
        lambda d: "PO2" in offering_ids(d)
    )
    assert await env.both(("productOrderItem.productOffering.id", "PO-extra")) == expected(
        lambda d: "PO-extra" in offering_ids(d)
    )
    assert await env.both(("relatedParty.@referredType", "Individual")) == expected(
        lambda d: "relatedParty" in d
    )


@pytest.mark.asyncio
async def test_same_element_is_not_required_across_params(env: Env) -> None:
    # TMF630: each parameter is its own condition; here they may match different elements.
    got = await env.both(("relatedParty.id", "C1"), ("relatedParty.role", "seller"))
    assert got == expected(lambda d: "C1" in party_ids(d))


@pytest.mark.asyncio
async def test_comma_or(env: Env) -> None:
    assert await env.both(("state", "acknowledged,inProgress")) == expected(
        lambda d: d["state"] in ("acknowledged", "inProgress")
    )
    assert await env.both(("relatedParty.id", "C1,S3")) == expected(
        lambda d: bool({"C1", "S3"} & set(party_ids(d)))
    )
    assert await env.both(("productOrderItem.productOffering.id", "PO1,PO3")) == expected(
        lambda d: bool({"PO1", "PO3"} & set(offering_ids(d)))
    )


@pytest.mark.asyncio
async def test_params_are_anded(env: Env) -> None:
    got = await env.both(("state", "completed,cancelled"), ("relatedParty.id", "C2"), ("urgent", "true"))
    assert got == expected(
        lambda d: d["state"] in ("completed", "cancelled") and "C2" in party_ids(d) and d["urgent"]
    )
    assert got  # the data set has matches


@pytest.mark.asyncio
async def test_typed_equality(env: Env) -> None:
    assert await env.both(("priority", "3")) == expected(lambda d: d["priority"] == 3)
    assert await env.both(("amount", "4.50")) == expected(lambda d: d["amount"] == 4.5)
    assert await env.both(("urgent", "false")) == expected(lambda d: not d["urgent"])
    assert await env.both(("@type", "SpecialOrder")) == expected(lambda d: d["@type"] == "SpecialOrder")
    assert await env.both(("note", "7")) == ["o07"]  # stored as number
    assert await env.both(("note", "n8")) == ["o08"]  # stored as string
    assert await env.both(("id", "o05,o06")) == ["o05", "o06"]
    assert await env.both(("href", f"{HREF}o42")) == ["o42"]


# -- comparisons --------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("op", "check"),
    [
        ("gt", lambda a, b: a > b),
        ("gte", lambda a, b: a >= b),
        ("lt", lambda a, b: a < b),
        ("lte", lambda a, b: a <= b),
        ("eq", lambda a, b: a == b),
        ("ne", lambda a, b: a != b),
    ],
)
async def test_datetime_comparisons(env: Env, op: str, check: Callable[[Any, Any], bool]) -> None:
    pivot = instant(20)  # o20's own instant, stored as "-05:30"
    for spelling in ("2024-01-06T20:00:00Z", "2024-01-06T22:00:00+02:00", "2024-01-06T20:00:00"):
        got = await env.both((f"orderDate.{op}", spelling))
        assert got == expected(lambda d: check(when(d), pivot)), spelling
        assert pivot == datetime.fromisoformat("2024-01-06T20:00:00+00:00")
    # a stored fractional second compares exactly
    precise = instant(21).isoformat().replace("+00:00", "Z")
    assert await env.both((f"orderDate.{op}", precise)) == expected(lambda d: check(when(d), instant(21)))


@pytest.mark.asyncio
async def test_datetime_range(env: Env) -> None:
    got = await env.both(("orderDate.gte", "2024-01-03T00:00:00Z"), ("orderDate.lt", "2024-01-05"))
    low, high = datetime(2024, 1, 3, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC)
    assert got == expected(lambda d: low <= when(d) < high)
    assert got


@pytest.mark.asyncio
async def test_number_comparisons(env: Env) -> None:
    assert await env.both(("priority.gt", "5")) == expected(lambda d: d["priority"] > 5)
    assert await env.both(("priority.lte", "2")) == expected(lambda d: d["priority"] <= 2)
    assert await env.both(("priority[lt]", "2")) == expected(lambda d: d["priority"] < 2)
    assert await env.both(("priority>", "8")) == expected(lambda d: d["priority"] >= 8)
    assert await env.both(("amount.gt", "60.75")) == expected(lambda d: d["amount"] > 60.75)
    assert await env.both(("amount.lt", "1e1")) == expected(lambda d: d["amount"] < 10)
    # any element of the array matches
    assert await env.both(("productOrderItem.quantity.gte", "4")) == expected(
        lambda d: any(item["quantity"] >= 4 for item in d["productOrderItem"])
    )
    assert await env.both(("priority.gt", "7"), ("priority.lt", "9")) == expected(
        lambda d: d["priority"] == 8
    )


@pytest.mark.asyncio
async def test_string_comparisons(env: Env) -> None:
    assert await env.both(("state.gt", "completed")) == expected(lambda d: d["state"] > "completed")
    assert await env.both(("relatedParty.id.gte", "S5")) == expected(
        lambda d: any(p >= "S5" for p in party_ids(d))
    )


@pytest.mark.asyncio
async def test_ne(env: Env) -> None:
    assert await env.both(("state.ne", "completed")) == expected(lambda d: d["state"] != "completed")
    assert await env.both(("state.ne", "completed,cancelled")) == expected(
        lambda d: d["state"] not in ("completed", "cancelled")
    )
    # "no element equal": documents without any related party match too
    assert await env.both(("relatedParty.id.ne", "C1")) == expected(lambda d: "C1" not in party_ids(d))
    assert await env.both(("priority!", "0")) == expected(lambda d: d["priority"] != 0)


# -- sort, paging, fields ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sort(env: Env) -> None:
    by_date = sorted(DOCS, key=when)
    assert await env.both(("sort", "orderDate")) == [d["id"] for d in by_date]
    assert await env.both(("sort", "-orderDate")) == [d["id"] for d in reversed(by_date)]
    # numeric, not lexicographic; id (default order) breaks ties
    assert await env.both(("sort", "-amount")) == [d["id"] for d in sorted(DOCS, key=lambda d: -d["amount"])]
    assert await env.both(("sort", "-priority")) == [
        d["id"] for d in sorted(DOCS, key=lambda d: (-d["priority"], d["id"]))
    ]
    assert await env.both(("sort", "state,-priority")) == [
        d["id"] for d in sorted(DOCS, key=lambda d: (d["state"], -d["priority"], d["id"]))
    ]
    # the first related party; documents without one come last
    got = await env.both(("sort", "+relatedParty.id"))
    assert got == [d["id"] for d in sorted(DOCS, key=lambda d: (not party_ids(d), party_ids(d)[:1], d["id"]))]


@pytest.mark.asyncio
async def test_paging_and_fields(env: Env) -> None:
    q = env.with_hot.parse(
        [("sort", "-priority"), ("offset", "5"), ("limit", "7"), ("fields", "state,relatedParty.id")]
    )
    rows = (await env.conn.execute(q.apply(select(env.table.c.doc)))).all()
    ordered = sorted(DOCS, key=lambda d: (-d["priority"], d["id"]))[5:12]
    assert [row.doc["id"] for row in rows] == [d["id"] for d in ordered]
    selected = [select_fields(row.doc, q.fields) for row in rows]
    assert all(set(doc) <= {"id", "href", "state", "relatedParty"} for doc in selected)
    assert selected[0]["state"] == ordered[0]["state"]
    total = await env.conn.scalar(
        q.apply(select(func.count()).select_from(env.table), paginate=False).order_by(None)
    )
    assert total == 50


# -- errors and injection --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unknown_attribute_is_400(env: Env) -> None:
    with pytest.raises(BadRequest) as info:
        await env.ids(env.with_hot, ("colour", "red"))
    assert info.value.status == 400
    assert info.value.reason == "Unknown filter attribute 'colour'"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "param",
    [
        ("relatedParty.id", "' OR 1=1 --"),
        ("relatedParty.id", "C1' OR '1'='1"),
        ("state", "x'); DROP TABLE product_order; --"),
        ("productOrderItem.productOffering.id", "\"}]}' OR 1=1 --"),
        ("note", "1 OR 1=1"),
        ("state.gt", "' OR 1=1 --"),
        ("state.lt", '" || @ != "'),
        ("href.ne", "x') OR true --"),
        ("id", "o01' --"),
    ],
)
async def test_injection_attempts_are_plain_values(env: Env, param: tuple[str, str]) -> None:
    name, value = param
    if name.endswith((".gt", ".lt")):
        # Document strings compare by code point (SQL/JSON), the hot text column by its collation:
        # both must run; the document result must be the code point answer.
        got = await env.ids(env.doc_only, param)
        await env.ids(env.with_hot, param)
        if name.endswith(".gt"):
            assert got == expected(lambda d: d["state"] > value)
        else:
            assert got == expected(lambda d: d["state"] < value)
    elif name.endswith(".ne"):
        assert await env.both(param) == sorted(BY_ID)
    else:
        assert await env.both(param) == []
    assert await env.conn.scalar(select(func.count()).select_from(env.table)) == 50


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "name", ["state'--", 'relatedParty."id"', "relatedParty.id) OR (1=1", "priority.gt;"]
)
async def test_injection_in_names_is_400(env: Env, name: str) -> None:
    with pytest.raises(BadRequest):
        await env.ids(env.with_hot, (name, "x"))


# -- indexes -------------------------------------------------------------------------------------


async def explain(
    conn: AsyncConnection, compiler: QueryCompiler, table: Table, *params: tuple[str, str]
) -> str:
    stmt = select(table.c.id).where(*compiler.parse(list(params)).where)
    compiled = stmt.compile(dialect=conn.dialect)
    args = tuple(compiled.params[name] for name in compiled.positiontup or ())
    result = await conn.exec_driver_sql("EXPLAIN " + compiled.string, args)
    return "\n".join(row[0] for row in result)


@pytest.mark.asyncio
async def test_containment_uses_gin_jsonb_path_ops_index(env: Env) -> None:
    await env.conn.execute(text("SET LOCAL enable_seqscan = off"))
    index = f"{env.table.schema}_doc_gin"
    for params in (
        [("relatedParty.id", "C1")],
        [("productOrderItem.productOffering.id", "PO1,PO3")],
        [("state", "completed"), ("priority", "3")],
    ):
        plan = await explain(env.conn, env.doc_only, env.table, *params)
        assert "Bitmap Index Scan" in plan, plan
        assert index in plan, plan
    plan = await explain(env.conn, env.with_hot, env.table, ("relatedParty.id", "C1,C2"))
    assert f"{env.table.schema}_party_gin" in plan, plan


@pytest.mark.asyncio
async def test_datetime_filter_tolerates_odd_stored_values(env: Env) -> None:
    odd: list[dict[str, Any]] = [
        {"id": "x1", "orderDate": "not a date"},
        {"id": "x2", "orderDate": 1704067200},
        {"id": "x3", "orderDate": "2023-06-01T00:00:00"},  # no offset: read in the session zone (UTC)
        {"id": "x4", "orderDate": "2023-06-01"},
        {"id": "x5", "orderDate": None},
        {"id": "x6"},
    ]
    await env.conn.execute(env.table.insert(), [{"id": d["id"], "doc": d} for d in odd])
    got = await env.ids(env.doc_only, ("orderDate.lt", "2023-12-31T00:00:00Z"))
    assert got == ["x3", "x4"]
    got = await env.ids(env.doc_only, ("orderDate", "2023-06-01T02:00:00+02:00"))
    assert got == ["x3", "x4"]
    got = await env.ids(env.doc_only, ("sort", "orderDate"), ("limit", "3"))
    assert got == ["x3", "x4", "o00"]
    got = await env.ids(env.doc_only, ("sort", "-orderDate"))
    assert got[-7:] == ["o00", "x3", "x4", "x1", "x2", "x5", "x6"]  # no instant: last, by id
