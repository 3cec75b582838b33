"""db.StatementCache: one compile per statement shape, each call with its own values."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, Table, Text, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from switchboard_kit.db import StatementCache

t = Table("t", MetaData(), Column("id", Text), Column("tags", ARRAY(Text)), Column("state", Text))
dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]


def page(state: str, tag: str, limit: int) -> object:
    return (
        select(t.c.id, func.count().over()).where(t.c.state == state, t.c.tags.contains([tag])).limit(limit)
    )


def test_same_shape_compiles_once_and_takes_each_calls_values() -> None:
    cache = StatementCache(dialect)
    sql1, args1 = cache.sql(page("held", "C1", 10))
    sql2, args2 = cache.sql(page("completed", "C2", 25))
    assert sql1 == sql2
    assert "$1" in sql1 and "held" not in sql1
    assert args1 == ["held", ["C1"], 10]
    assert args2 == ["completed", ["C2"], 25]
    assert len(cache._compiled) == 1


def test_a_different_shape_is_a_different_statement() -> None:
    cache = StatementCache(dialect)
    sql1, _ = cache.sql(page("held", "C1", 10))
    sql2, _ = cache.sql(select(t.c.id).where(t.c.state == "held"))
    assert sql1 != sql2
    assert len(cache._compiled) == 2


def test_in_lists_are_expanded_for_each_call() -> None:
    cache = StatementCache(dialect)
    sql1, args1 = cache.sql(select(t.c.id).where(t.c.id.in_(["a", "b"])))
    sql2, args2 = cache.sql(select(t.c.id).where(t.c.id.in_(["c", "d", "e"])))
    assert "POSTCOMPILE" not in sql1 + sql2
    assert sql1.endswith("IN ($1::VARCHAR, $2::VARCHAR)") and args1 == ["a", "b"]
    assert sql2.count("$") == 3 and args2 == ["c", "d", "e"]
