"""Limits on bad input, checked without a database: RFC 3339 date-time filters within years 1..9999
in UTC, the Idempotency-Key length, the JSON nesting depth of request documents (POST and PATCH),
NaN/Infinity/overflowing numbers in POST bodies, hub callbacks with a host, and error texts cut to
a bounded length."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from starlette.requests import Request

from switchboard_kit import idempotency
from switchboard_kit.bodies import MAX_JSON_DEPTH, json_nesting_exceeds, parse_body
from switchboard_kit.errors import BadRequest, NotFound
from switchboard_kit.hub import check_callback
from switchboard_kit.patch import apply_patch
from switchboard_kit.query import HotColumn, QueryCompiler, convert_value

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def nested(levels: int, leaf: Any = 1) -> Any:
    """``levels`` arrays around ``leaf``: nested(2) == [[1]]."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def ext_nested(levels: int) -> bytes:
    """``{"ext": nested(levels)}`` as JSON text, for depths json.dumps cannot write."""
    return b'{"ext": ' + b"[" * levels + b"1" + b"]" * levels + b"}"


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


# -- date-time filters ---------------------------------------------------------------------------


class Doc(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str | None = None
    order_date: datetime | None = Field(None, alias="orderDate")
    start: datetime | None = Field(None, alias="requestedStartDate")
    due: date | None = None


table = Table(
    "doc",
    MetaData(),
    Column("id", Text, primary_key=True),
    Column("doc", JSONB),
    Column("order_date", DateTime(timezone=True)),
)
COMPILER = QueryCompiler(
    Doc, table.c.doc, hot={"orderDate": HotColumn(table.c.order_date, python_type=datetime)}
)

OUT_OF_RANGE = [
    "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:00:00-01:00",
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "0001-01-01T00:00:00+00:01",
]

NOT_RFC3339 = [
    "2026-W48-1",  # ISO 8601 week date
    "20261201",  # ISO 8601 basic format
    "20261201T100000Z",
    "2026-12-01T10",  # no minutes
    "2026-12-01T10:00",  # no seconds
    "2026-12-01T10:00:00+0200",  # offset without colon
    "2026-12-01T10:00:00+02",
    "2026-335",  # ordinal date
    "2026-12-01T10:00:00.Z",
    "2026-12-01T24:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-12-01T10:00:00+24:00",
    "\uff12\uff10\uff12\uff16-12-01",  # full-width digits
    "yesterday",
]


@pytest.mark.parametrize("raw", OUT_OF_RANGE)
@pytest.mark.parametrize(
    "param", ["orderDate.gt", "orderDate", "requestedStartDate", "requestedStartDate.lte"]
)
def test_date_time_filter_outside_years_1_to_9999_in_utc_is_400(param: str, raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        COMPILER.parse([(param, raw)])
    assert "out of range" in caught.value.reason


@pytest.mark.parametrize("raw", NOT_RFC3339)
@pytest.mark.parametrize("param", ["orderDate.gt", "requestedStartDate"])
def test_date_time_filter_that_is_not_rfc3339_is_400(param: str, raw: str) -> None:
    with pytest.raises(BadRequest):
        COMPILER.parse([(param, raw)])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01t10:00:00z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01 10:00:00+02:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T10:00:00.123456789-01:30", datetime(2026, 12, 1, 11, 30, 0, 123456, tzinfo=UTC)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),  # no offset: UTC
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),  # a bare date: midnight UTC
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("9999-12-31T23:59:59+01:00", datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T10:00:00+09:59", datetime(1, 1, 1, 0, 1, tzinfo=UTC)),
    ],
)
def test_rfc3339_date_times_are_read_as_utc_instants(raw: str, expected: datetime) -> None:
    value = convert_value("datetime", raw)
    assert value == expected
    assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("raw", ["20261201", "2026-W48-1", "2026-335", "2026-12-1"])
def test_date_filter_takes_only_yyyy_mm_dd(raw: str) -> None:
    with pytest.raises(BadRequest):
        COMPILER.parse([("due", raw)])
    assert convert_value("date", "2026-12-01") == date(2026, 12, 1)


# -- Idempotency-Key -----------------------------------------------------------------------------


def request_with(headers: dict[str, str]) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/productOrder",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope)


def test_idempotency_key_up_to_the_limit_is_taken_and_a_longer_one_is_400() -> None:
    limit = idempotency.MAX_KEY_LENGTH
    assert 36 <= limit <= 1000
    assert idempotency.idempotency_key(request_with({"Idempotency-Key": "k" * limit})) == "k" * limit
    assert idempotency.idempotency_key(request_with({})) is None
    with pytest.raises(BadRequest) as caught:
        idempotency.idempotency_key(request_with({"Idempotency-Key": "k" * (limit + 1)}))
    assert str(limit) in (caught.value.message or "")


# -- nesting depth -------------------------------------------------------------------------------


def _random_value(rng: random.Random, levels: int) -> Any:
    def text() -> str:
        return "".join(rng.choice('[]{}"\\an/') for _ in range(rng.randint(0, 5)))

    if levels <= 0 or rng.random() < 0.15:
        return rng.choice([text(), 1, -2.5, None, True])
    if rng.random() < 0.5:
        return [_random_value(rng, levels - 1) for _ in range(rng.randint(0, 3))]
    return {text(): _random_value(rng, levels - 1) for _ in range(rng.randint(0, 3))}


def test_nesting_depth_from_bytes_is_exact_for_valid_json() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        value = _random_value(rng, rng.randint(1, 10))
        depth = depth_of(value)
        for raw in (json.dumps(value).encode(), orjson.dumps(value), json.dumps(value, indent=1).encode()):
            for limit in (0, 1, 2, 3, 5):
                assert json_nesting_exceeds(raw, limit) == (depth > limit), (raw, limit)


def test_brackets_inside_strings_neither_hide_nor_add_depth() -> None:
    # '["]", ["]", ...' looks flat if the closers in the strings count
    hidden = ("".join('["]",' for _ in range(MAX_JSON_DEPTH + 1)) + "1" + "]" * (MAX_JSON_DEPTH + 1)).encode()
    assert depth_of(json.loads(hidden)) == MAX_JSON_DEPTH + 1
    assert json_nesting_exceeds(hidden)
    escaped = json.dumps(nested(MAX_JSON_DEPTH, 'a\\"[[[[\\\\"')).encode()
    assert not json_nesting_exceeds(escaped)
    openers = json.dumps({"text": "[" * 500}).encode()
    assert not json_nesting_exceeds(openers)
    assert not json_nesting_exceeds(json.dumps(nested(MAX_JSON_DEPTH)).encode())
    assert json_nesting_exceeds(json.dumps(nested(MAX_JSON_DEPTH + 1)).encode())


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    amount: float | None = None


def too_deep(call: Any, *args: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        call(*args)
    assert "too deep" in caught.value.reason


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 100, 199, 300, 5000])
def test_post_body_nested_deeper_than_the_limit_is_400(levels: int) -> None:
    raw = ext_nested(levels)  # levels + 1 deep
    too_deep(lambda: parse_body(Body, raw, "application/json"))
    ok = json.dumps({"ext": nested(MAX_JSON_DEPTH - 1)}).encode()
    assert parse_body(Body, ok, "application/json").model_extra == {"ext": nested(MAX_JSON_DEPTH - 1)}


def test_merge_patch_nested_too_deep_is_400() -> None:
    doc = {"id": "1", "state": "acknowledged"}
    for levels in (MAX_JSON_DEPTH, 252, 300, 5000):
        too_deep(apply_patch, doc, ext_nested(levels), MERGE)
    ok = nested(MAX_JSON_DEPTH - 1)
    assert apply_patch(doc, json.dumps({"ext": ok}).encode(), MERGE)["ext"] == ok


def test_json_patch_nested_too_deep_is_400() -> None:
    doc = {"id": "1"}
    for levels in (MAX_JSON_DEPTH, 600, 5000):
        ops = b'[{"op": "add", "path": "/ext", "value": ' + b"[" * levels + b"1" + b"]" * levels + b"}]"
        too_deep(apply_patch, doc, ops, JSON_PATCH)


def test_json_patch_that_builds_a_deep_document_step_by_step_is_400() -> None:
    half = MAX_JSON_DEPTH // 2
    inside = "/ext" + "/0" * (half - 1)
    ops = [
        {"op": "add", "path": "/ext", "value": nested(half - 1, [])},
        {"op": "add", "path": inside + "/-", "value": nested(half)},
    ]
    too_deep(lambda: apply_patch({"id": "1"}, json.dumps(ops).encode(), JSON_PATCH))
    # copy a subtree into itself, doubling the depth each time: no RecursionError, a 400
    doubling = [{"op": "add", "path": "/a", "value": nested(40)}]
    doubling += [{"op": "copy", "from": "/a", "path": "/a" + "/0" * 40} for _ in range(8)]
    too_deep(lambda: apply_patch({"id": "1"}, json.dumps(doubling).encode(), JSON_PATCH))


# -- NaN, Infinity, overflow ----------------------------------------------------------------------

NON_FINITE = [
    b'{"ext": NaN}',
    b'{"ext": Infinity}',
    b'{"ext": -Infinity}',
    b'{"ext": [1, {"x": NaN}]}',
    b'{"amount": NaN}',
    b'{"ext": 1e400}',
    b'{"ext": -1E+400}',
    b'{"ext": 1.5e0400}',
    b'{"amount": 1e309}',
    b'{"ext": ' + b"1" * 400 + b".0}",
    b'{"ext": ' + b"9" * 250 + b"e99}",
    b'{"amount": ' + b"1" * 400 + b"}",
]


@pytest.mark.parametrize("raw", NON_FINITE, ids=lambda raw: raw.decode()[:30])
def test_nan_infinity_and_overflowing_numbers_in_a_post_body_are_malformed_json(raw: bytes) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_body(Body, raw, "application/json")
    assert [e["type"] for e in caught.value.errors()] == ["json_invalid"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "NaN Infinity 1e400", "ext": "1e000"}',
        b'{"ext": 1e-300, "amount": 1.7e308}',
        b'{"ext": 1e99, "amount": -2.5E+30}',
        b'{"ext": 19.9900000000000000000, "amount": 123456789012345}',
        b'{"ext": 1234567890123456789, "amount": 0.000000000000000000000000123456789012345}',
        b'{"ext": 0.30000000000000004, "amount": 3.853530033354279e-257}',  # shortest forms of doubles
        b'{"name": "' + b"1" * 300 + b'"}',
    ],
)
def test_those_words_in_strings_and_finite_numbers_are_fine(raw: bytes) -> None:
    assert parse_body(Body, raw, None).model_dump(exclude_unset=True) == json.loads(raw)


# Numbers no double holds exactly (0.30000000000000001 is read as 0.3; 1e-400 used to be stored
# as 0): they would not come back as sent, so they are refused.
INEXACT = [
    b'{"amount": 0.30000000000000001}',
    b'{"ext": [1, {"x": 12345678901234.567}]}',
    b'{"ext": 1e-400}',
    b'{"ext": 1.0000000000000000000000001}',
]


@pytest.mark.parametrize("raw", INEXACT, ids=lambda raw: raw.decode()[:30])
def test_numbers_that_would_not_come_back_as_sent_are_invalid(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body(Body, raw, "application/json")
    assert (caught.value.code, caught.value.reason) == ("invalidBody", "Number not exact")
    with pytest.raises(BadRequest) as caught:
        apply_patch({"id": "1"}, raw, MERGE)
    assert (caught.value.code, caught.value.reason) == ("invalidBody", "Number not exact")


@pytest.mark.parametrize("raw", [b'{"ext": NaN}', b'{"ext": 1e400}', b'{"ext": -Infinity}'])
def test_nan_infinity_and_overflow_in_a_patch_are_malformed_json(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        apply_patch({"id": "1"}, raw, MERGE)
    assert "Malformed JSON" in caught.value.reason


# -- hub callback, error texts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "callback",
    [
        "http://",
        "https://",
        "http:///listener",
        "http://:8080/",
        "http://user@/x",
        "http:listener",
        "//listener.example/",
        "ftp://listener.example/",
        "http://listener.example:99999/",
        "http://listener.example:port/",
        "http://listener example/",
        "http://listener.example/\x01",
    ],
)
def test_callback_without_a_usable_host_is_400(callback: str) -> None:
    with pytest.raises(BadRequest):
        check_callback(callback)


@pytest.mark.parametrize(
    "callback", ["http://listener.example", "https://l.example:8443/hooks", "HTTP://[::1]:9000/x"]
)
def test_absolute_http_callbacks_are_accepted(callback: str) -> None:
    check_callback(callback)


def test_long_values_in_error_texts_are_cut() -> None:
    error = NotFound("ProductOrder not found", f"No productOrder with id {'x' * 20000}")
    body = error.to_body()
    assert len(body["message"]) <= 1000 and body["message"].endswith("...")
    assert body["message"].startswith("No productOrder with id xxx")
    assert len(BadRequest("r" * 5000).to_body()["reason"]) <= 200
    assert NotFound("short", "kept as is").to_body()["message"] == "kept as is"
