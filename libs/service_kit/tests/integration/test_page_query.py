"""Store.list_page with a QueryCompiler.page query: the page statement is compiled once per query
shape and reused with each query's own values, and every query answers exactly what the same query
compiled on its own (QueryCompiler.parse, SQLAlchemy's statement cache) answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, DateTime, Integer, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from switchboard_dev import testing
from switchboard_kit import db
from switchboard_kit.errors import BadRequest
from switchboard_kit.query import HotColumn, QueryCompiler
from switchboard_kit.store import Store

pytestmark = pytest.mark.asyncio

metadata = db.new_metadata()
kit = db.kit_tables(metadata)
order = Table(
    "page_order",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("state", Text),
    Column("party_ids", ARRAY(Text)),
    Column("order_date", DateTime(timezone=True)),
)


class State(StrEnum):
    acknowledged = "acknowledged"
    completed = "completed"


class PartyRef(BaseModel):
    id: str


class Order(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    state: State | None = None
    priority: int | None = None
    urgent: bool | None = None
    note: Any = None
    due: datetime | None = None
    order_date: datetime | None = Field(None, alias="orderDate")
    related_party: list[PartyRef] | None = Field(None, alias="relatedParty")


BASE = datetime(2024, 1, 1, tzinfo=UTC)


def make_doc(i: int) -> dict[str, Any]:
    return {
        "id": f"o{i:02d}",
        "state": "completed" if i % 3 == 0 else "acknowledged",
        "priority": i % 5,
        "urgent": i % 2 == 0,
        "note": i if i % 2 else f"n{i}",
        "due": (BASE + timedelta(days=i)).isoformat(),
        "orderDate": (BASE + timedelta(hours=i)).isoformat(),
        "relatedParty": [{"id": f"C{i % 4}"}, {"id": f"S{i % 3}"}],
    }


DOCS = [make_doc(i) for i in range(30)]

# Queries in groups of one shape (same names, operators and numbers of values, other values);
# offset, limit and fields are not part of the shape.
SHAPES: list[list[list[tuple[str, str]]]] = [
    [[("relatedParty.id", "C1")], [("relatedParty.id", "S2")], [("relatedParty.id", "nobody")]],
    [[("relatedParty.id", "C1,C2")], [("relatedParty.id", "S0,C3")]],
    [[("relatedParty.id.ne", "C1")], [("relatedParty.id.ne", "C2")]],
    [[("relatedParty.id.gt", "C2")], [("relatedParty.id.gt", "S0")]],
    [[("state", "completed")], [("state", "acknowledged")]],
    [[("state", "completed"), ("limit", "3"), ("offset", "2")], [("state", "acknowledged"), ("limit", "5")]],
    [[("priority.gte", "3")], [("priority.gte", "1")]],
    [[("priority", "1,2")], [("priority", "3,4")]],
    [[("urgent", "true")], [("urgent", "false")]],
    [[("note", "n4")], [("note", "n6")]],  # 'any': a string is one alternative,
    [[("note", "7")], [("note", "true")]],  # a number or a boolean two (or the string)
    [[("note.lt", "9")], [("note.lt", "21")]],
    [[("due.lt", "2024-01-05T00:00:00Z")], [("due.lt", "2024-01-20")]],
    [[("orderDate.gte", "2024-01-01T05:00:00Z"), ("sort", "-priority")]],
    [[("orderDate.gte", "2024-01-01T10:00:00+02:00"), ("sort", "-priority")]],
    [[("sort", "due"), ("limit", "4")], [("sort", "due"), ("offset", "26")]],
    [[("fields", "state"), ("state", "completed")], [("fields", "priority"), ("state", "acknowledged")]],
]


@pytest.fixture(scope="module")
def page_db(pg_server_url: str) -> Any:
    with testing.database_with(pg_server_url, metadata, "sb_page") as url:
        yield url


def _compiler() -> QueryCompiler:
    return QueryCompiler(
        Order,
        order.c.doc,
        hot={
            "state": HotColumn(order.c.state),
            "relatedParty.id": HotColumn(order.c.party_ids, many=True),
            "orderDate": HotColumn(order.c.order_date),
        },
        default_order=(order.c.id,),
    )


async def test_a_query_shape_is_compiled_once_and_answers_as_compiled_alone(page_db: str) -> None:
    engine = db.create_engine(page_db, pool_size=1, max_overflow=0)
    store = Store(engine, kit)
    compiler = _compiler()
    try:
        for doc in DOCS:
            async with store.unit_of_work() as uow:
                columns = {
                    "state": doc["state"],
                    "party_ids": [p["id"] for p in doc["relatedParty"]],
                    "order_date": datetime.fromisoformat(doc["orderDate"]),
                }
                await uow.insert(order, doc, columns=columns)
        shapes = set()
        for group in SHAPES:
            shapes.add(compiler.page(group[0]).shape)
            for params in group:
                page = compiler.page(params)
                assert page.shape == compiler.page(group[0]).shape, params
                got = await store.list_page(order, page)
                alone = await store.list_page(order, compiler.parse(params))  # no shape cache
                assert got == alone, params
                assert page.offset == alone_offset(params) and page.fields == compiler.parse(params).fields
            # One statement per shape, reused for the group (offset and limit are always bound).
            assert len(store._page_templates) == len(shapes)
        # The answers are not vacuous: filters select, and values of one shape select differently.
        c1 = await store.list_page(order, compiler.page([("relatedParty.id", "C1")]))
        s2 = await store.list_page(order, compiler.page([("relatedParty.id", "S2")]))
        assert c1[1] == 8 and s2[1] == 10 and set(c1[0]) != set(s2[0])
        assert (await store.list_page(order, compiler.page([("relatedParty.id", "nobody")]))) == ([], 0)
    finally:
        await engine.dispose()


def alone_offset(params: list[tuple[str, str]]) -> int:
    return int(dict(params).get("offset", "0"))


@pytest.mark.parametrize(
    "params",
    [
        [("state", "nope")],
        [("priority", "x")],
        [("due.lt", "2024-13-01")],
        [("urgent.gt", "true")],
        [("sort", "unknown")],
        [("relatedParty.id", "C1,")],
        [("limit", "0")],
        [("nope", "1")],
    ],
)
async def test_page_rejects_what_parse_rejects(params: list[tuple[str, str]]) -> None:
    compiler = _compiler()
    with pytest.raises(BadRequest) as parsed:
        compiler.parse(params)
    with pytest.raises(BadRequest) as paged:
        compiler.page(params)
    assert (paged.value.status, paged.value.code, paged.value.reason, paged.value.message) == (
        parsed.value.status,
        parsed.value.code,
        parsed.value.reason,
        parsed.value.message,
    )


async def test_an_offset_beyond_32_bits_is_an_empty_page(page_db: str) -> None:
    """The documented offset goes up to 10**18 - 1; bound as a 32-bit integer it was a 500."""
    engine = db.create_engine(page_db, pool_size=1, max_overflow=0)
    store = Store(engine, kit)
    try:
        for offset in ("2147483648", str(10**18 - 1)):
            everything = len(await store.fetch(order.select()))
            for query in (_compiler().page([("offset", offset)]), _compiler().parse([("offset", offset)])):
                assert await store.list_page(order, query) == ([], everything), offset
    finally:
        await engine.dispose()
