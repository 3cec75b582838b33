"""TMF630 list querying, compiled to SQLAlchemy Core expressions.

A resource table stores the TMF resource as a JSONB document (the ``doc`` column) next to a few
indexed "hot" columns. :class:`QueryCompiler` turns the query parameters of a ``GET /resource``
request into ``WHERE`` and ``ORDER BY`` expressions plus paging and attribute selection::

    compiler = QueryCompiler(
        ProductOrder,
        orders.c.doc,
        hot={
            "id": HotColumn(orders.c.id),
            "state": HotColumn(orders.c.state),
            "orderDate": HotColumn(orders.c.order_date),
            "relatedParty.id": HotColumn(orders.c.party_ids, many=True),
        },
        default_order=(orders.c.order_date.desc(), orders.c.id),
    )
    q = compiler.parse(request.query_params.multi_items())
    rows = await conn.execute(q.apply(select(orders.c.doc)))
    body = [select_fields(row.doc, q.fields) for row in rows]

Query syntax
------------
* Reserved parameters: ``fields``, ``offset``, ``limit`` and ``sort``. Every other parameter is a
  filter.
* ``attr=value`` (equality) and ``attr.op=value`` with ``op`` one of ``eq``, ``ne``, ``gt``,
  ``gte``, ``lt``, ``lte``. Also accepted: ``attr[op]=value``, ``attr>=value`` (gte),
  ``attr<=value`` (lte) and ``attr!=value`` (ne).
* Dotted paths walk into sub-objects and arrays: ``relatedParty.id=C1``.
* A comma inside one value means OR: ``state=acknowledged,inProgress``. For ``ne`` it means
  "equal to none of them". Separate parameters, including repeats of one attribute, are ANDed.

* ``fields=a,b.c`` selects attributes (TMF630): a dotted name keeps only that sub-attribute,
  through arrays (``productOrderItem.productOffering.id`` leaves each item with just its
  offering's id); ``id`` and ``href`` are always kept. Every name must be declared by the model.

Attribute paths are resolved against the pydantic model (by alias or by field name). Errors are
``400`` TMF Errors with a code from :mod:`switchboard_kit.errors`: an unknown attribute in a filter,
``sort`` or ``fields`` is ``unknownAttribute``; a value that does not convert to the attribute's type
(integer, number, boolean, date, date-time) or is not one of its enum's values (the pydantic
``StrEnum`` or ``Literal``, for hot columns and document paths alike) is ``invalidFilterValue``,
and the message names the allowed values; a malformed parameter is ``invalidQuery``.

Hub subscription queries (``eventType=...&event.productOrder.state=completed``) are checked by
:func:`check_event_query` against the same compilers (see ``hub.check_hub_query``).

SQL
---
No user value is ever interpolated into SQL; values travel as bound parameters. Attribute paths
come from the model, and the strings built from them (JSON containment documents, SQL/JSON paths,
``#>>`` path arrays) are bound parameters as well.

* Equality on the document is JSONB containment, ``doc @> '{"relatedParty":[{"id":"C1"}]}'``,
  which a GIN index (``jsonb_path_ops`` or the default ``jsonb_ops``) can serve. Comma-OR is an OR
  of containments, ``ne`` is ``NOT`` of it (so documents without the attribute match ``ne``).
* ``gt``/``gte``/``lt``/``lte`` on the document use
  ``jsonb_path_exists(doc, '$."a"[*]."b" ? (@ > $v0)', '{"v0": ...}')``; the value is a jsonpath
  variable. A document matches when *any* element at the path satisfies the comparison. Not
  indexable: register a hot column for attributes that are range-filtered often.
* Date-time attributes on the document are compared as instants, not as strings, because the
  stored text may use any offset (``Z``, ``+02:00``) and precision. PostgreSQL's jsonpath
  ``.datetime()`` rejects the common ``Z`` suffix, so the strings at the path are selected by a
  jsonpath filter that only lets RFC 3339-shaped strings through and are then cast to
  ``timestamptz`` in SQL: ``EXISTS (SELECT 1 FROM jsonb_array_elements_text(
  jsonb_path_query_array(doc, <path> ? (@ like_regex <rfc3339>))) AS t WHERE t::timestamptz > $1)``.
  This holds for ``eq``/``ne`` too (``2024-01-01T10:00:00Z`` equals ``2024-01-01T12:00:00+02:00``).
  A string without offset is read in the session time zone (run sessions in UTC).
* Hot columns (keyed by the dotted path in alias form, e.g. ``relatedParty.id``) replace the
  document expression for filtering and sorting. ``many=True`` marks an ``ARRAY`` column:
  equality is ``col @> ARRAY[v]``, comma-OR ``col && ARRAY[...]`` (both GIN-indexable), ``ne`` is
  ``NOT (col && ARRAY[...])`` and comparisons are ``v < ANY(col)`` and so on.
* Sorting on the document: numbers and booleans sort on the JSONB value (``doc #> path``, numeric
  order), date-times on the instant (cast guarded by the same RFC 3339 pattern), everything else
  on the text (``doc #>> path``). A path through an array sorts on the first element. Missing
  values sort last in both directions. ``default_order`` is appended as a tie-breaker, so paging
  stays stable.
"""

from __future__ import annotations

import enum
import functools
import json
import operator
import re
import types
import typing
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar, Union

import pydantic
from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, JSONPATH

from switchboard_kit.errors import ApiError, BadRequest, ErrorCode

__all__ = [
    "MAX_OR_VALUES",
    "OPERATORS",
    "PAGE_PARAM",
    "RESERVED_PARAMS",
    "AttributePath",
    "HotColumn",
    "ListQuery",
    "PageQuery",
    "QueryCompiler",
    "check_choice",
    "check_event_query",
    "convert_value",
    "resolve_field",
    "resolve_path",
    "select_fields",
]

RESERVED_PARAMS = frozenset({"fields", "offset", "limit", "sort"})
OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte"})
_JSONPATH_OPS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_SQL_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
# ``v < ANY(col)`` means "some element of col is greater than v": the operator is mirrored.
_MIRRORED = {"eq": "eq", "ne": "ne", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}

_BRACKET_OP = re.compile(r"^(?P<attr>.+)\[(?P<op>[A-Za-z]+)\]$")
_SUFFIX_OPS = {">": "gte", "<": "lte", "!": "ne"}
_DIGITS = re.compile(r"^[0-9]{1,18}$")
_FIELD_NAME = re.compile(r"^[A-Za-z@][A-Za-z0-9@_]*(\.[A-Za-z@][A-Za-z0-9@_]*)*$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,1000}$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
_MAX_BIGINT = 2**63 - 1
MAX_OR_VALUES = 100  # comma-separated alternatives in one filter value
_MAX_CACHED = 1024  # resolved attribute names kept per compiler

# RFC 3339 date-time (or a bare date), tight enough that PostgreSQL's ``timestamptz`` input
# accepts every match, except impossible calendar days (Feb 30) which model-validated documents
# cannot hold. Guards the text -> timestamptz casts; only used as a constant (bound) parameter.
_RFC3339_RE = (
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,9})?)?"
    "([Zz]|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?)?$"
)

Kind = Literal["str", "int", "decimal", "bool", "datetime", "date", "any"]


@dataclass(frozen=True)
class HotColumn:
    """A real column that mirrors an attribute of the document.

    ``many=True`` marks an ``ARRAY`` column (e.g. the ids of all related parties).
    ``python_type`` converts the query value before binding (``str``, ``int``, ``Decimal``,
    ``float``, ``bool``, ``datetime``, ``date``); ``None`` takes it from the model (``str`` for
    a hot attribute that the model does not declare).
    """

    column: ColumnElement[Any]
    many: bool = False
    python_type: type | None = None


_SelectT = TypeVar("_SelectT", bound=Select[Any])


@dataclass(frozen=True)
class ListQuery:
    """The parsed list query; ``fields`` is ``None`` when all attributes are wanted."""

    where: list[ColumnElement[bool]]
    order_by: list[ColumnElement[Any]]
    offset: int
    limit: int
    fields: frozenset[str] | None = None

    def apply(self, stmt: _SelectT, *, paginate: bool = True) -> _SelectT:
        """Add the filters, the order and (unless ``paginate=False``) offset/limit to ``stmt``."""
        stmt = stmt.where(*self.where).order_by(*self.order_by)
        if paginate:
            stmt = stmt.offset(self.offset).limit(self.limit)
        return stmt


PAGE_PARAM = "sb_v"  # key prefix of the bind parameters that PageQuery.query(keyed=True) makes


@dataclass(frozen=True)
class PageQuery:
    """A checked list query (from :meth:`QueryCompiler.page`): its values and the shape of its SQL.

    Two queries with equal ``shape`` compile to the same SQL; ``values`` are what they bind, in
    the order of the keys ``sb_v0``, ``sb_v1``... that :meth:`query` gives them with ``keyed=True``.
    Every other bind parameter of that SQL is the same for every query of the shape.
    """

    shape: tuple[Any, ...]
    values: tuple[Any, ...]
    offset: int
    limit: int
    fields: frozenset[str] | None
    compiler: QueryCompiler
    filters: tuple[tuple[list[Any], _Builder], ...]
    sort: tuple[str, ...]

    def query(self, *, keyed: bool = False) -> ListQuery:
        """The SQLAlchemy expressions. ``keyed``: the values are bound as ``sb_v<n>``."""
        where: list[ColumnElement[bool]] = []
        first = 0
        for values, build in self.filters:
            if keyed:
                where.append(build(_keyed(values, first)))
            else:
                where.append(build(_anonymous(values)))
            first += len(values)
        order_by = [self.compiler.sort_expression(spec) for spec in self.sort]
        order_by.extend(self.compiler.default_order)
        return ListQuery(
            where=where, order_by=order_by, offset=self.offset, limit=self.limit, fields=self.fields
        )


def _keyed(values: Sequence[Any], first: int) -> _ParamMaker:
    return lambda i, type_: bindparam(f"{PAGE_PARAM}{first + i}", values[i], type_=type_)


@dataclass(frozen=True)
class AttributePath:
    """An attribute path resolved against the model.

    ``segments`` are ``(json_key, array_depth)`` pairs: ``array_depth`` is how many list levels the
    value under ``json_key`` has (``relatedParty`` -> 1).
    """

    segments: tuple[tuple[str, int], ...]
    kind: Kind
    choices: frozenset[str] | None = None  # the values an enum (or Literal) attribute allows

    @property
    def dotted(self) -> str:
        return ".".join(key for key, _ in self.segments)

    @property
    def through_array(self) -> bool:
        return any(depth for _, depth in self.segments)

    def containment(self, value_json: str) -> str:
        """JSON text of the containment document that holds ``value_json`` at this path."""
        out = value_json
        for key, depth in reversed(self.segments):
            out = "[" * depth + out + "]" * depth
            out = "{" + json.dumps(key) + ":" + out + "}"
        return out

    def jsonpath(self) -> str:
        """SQL/JSON path selecting every value at this path (array levels unwrapped)."""
        return "$" + "".join("." + json.dumps(key) + "[*]" * depth for key, depth in self.segments)

    def text_path(self) -> list[str]:
        """Path array for ``#>``/``#>>``; array levels take their first element."""
        out: list[str] = []
        for key, depth in self.segments:
            out.append(key)
            out.extend(["0"] * depth)
        return out


def _error(code: ErrorCode, reason: str, message: str | None = None) -> ApiError:
    """A catalogue error whose reason names the parameter at fault (``code`` says which fault)."""
    return code.error(message, reason=reason)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_text(text: str) -> None:
    """Reject what PostgreSQL text/jsonb cannot hold (NUL, lone surrogates): 400, not 500."""
    if "\x00" in text:
        raise _error(ErrorCode.INVALID_CHARACTER, "Query parameters must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _error(ErrorCode.INVALID_CHARACTER, "Query parameters must be valid Unicode") from None


# --------------------------------------------------------------------------------------------
# Model introspection
# --------------------------------------------------------------------------------------------

_Unwrapped = tuple[int, list[Any]]


def _unwrap(tp: Any, depth: int = 0) -> _Unwrapped:
    """Strip Optional/Union/Annotated/list wrappers: (array depth, candidate inner types)."""
    if depth > 8:  # pathological nesting
        return 0, [Any]
    type_alias = getattr(typing, "TypeAliasType", None)
    if type_alias is not None and isinstance(tp, type_alias):
        return _unwrap(tp.__value__, depth + 1)
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0], depth + 1)
    if origin is Union or origin is types.UnionType:
        arrays = 0
        candidates: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            arg_arrays, arg_candidates = _unwrap(arg, depth + 1)
            # list[X] | X: the stored value may be either; the array shape wins.
            arrays = max(arrays, arg_arrays)
            candidates.extend(arg_candidates)
        return arrays, candidates
    if origin in (list, set, frozenset, Sequence, Iterable, typing.List, typing.Set):  # noqa: UP006
        args = typing.get_args(tp)
        inner_arrays, inner = _unwrap(args[0] if args else Any, depth + 1)
        return inner_arrays + 1, inner
    if origin is tuple:
        args = typing.get_args(tp)
        inner_arrays, inner = _unwrap(args[0] if args else Any, depth + 1)
        return inner_arrays + 1, inner
    return 0, [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _scalar_kind(tp: Any) -> Kind | None:
    """Kind of a scalar type, ``None`` when ``tp`` is not a scalar (a model, a mapping...)."""
    if tp is Any or tp is object:
        return "any"
    origin = typing.get_origin(tp)
    if origin is Literal:
        values = typing.get_args(tp)
        if values and all(isinstance(v, bool) for v in values):
            return "bool"
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int"
        return "str"
    if origin is not None:
        return None  # dict[...] and other generics
    if not isinstance(tp, type):
        return "str"
    if issubclass(tp, pydantic.BaseModel):
        return None
    if issubclass(tp, enum.Enum):
        members = [m.value for m in tp]
        if members and all(isinstance(v, int) and not isinstance(v, bool) for v in members):
            return "int"
        return "str"
    if issubclass(tp, bool):
        return "bool"
    if issubclass(tp, int):
        return "int"
    if issubclass(tp, float | Decimal):
        return "decimal"
    if issubclass(tp, datetime):
        return "datetime"
    if issubclass(tp, date):
        return "date"
    if issubclass(tp, str | uuid.UUID):
        return "str"
    if issubclass(tp, dict | list | tuple | set | frozenset | bytes):
        return None
    return _kind_from_json_schema(tp)


_JSON_SCHEMA_KINDS: dict[tuple[str, str | None], Kind] = {
    ("string", "date-time"): "datetime",
    ("string", "date"): "date",
    ("integer", None): "int",
    ("number", None): "decimal",
    ("boolean", None): "bool",
}


def _kind_from_json_schema(tp: type) -> Kind:
    """Kind of a custom scalar (``pydantic.AwareDatetime``, URLs...) from its JSON schema."""
    try:
        schema = pydantic.TypeAdapter(tp).json_schema()
    except Exception:  # not describable: compare as the JSON text
        return "str"
    json_type, json_format = str(schema.get("type")), schema.get("format")
    fmt = json_format if isinstance(json_format, str) else None
    return _JSON_SCHEMA_KINDS.get((json_type, fmt)) or _JSON_SCHEMA_KINDS.get((json_type, None)) or "str"


def _field_keys(name: str, info: pydantic.fields.FieldInfo) -> tuple[str, set[str]]:
    """(key used in the stored JSON, names accepted in a query) of a model field."""
    json_key = info.serialization_alias or info.alias or name
    accepted = {name, json_key}
    if info.alias:
        accepted.add(info.alias)
    if isinstance(info.validation_alias, str):
        accepted.add(info.validation_alias)
    return json_key, accepted


def _lookup(model: type[pydantic.BaseModel], segment: str) -> tuple[str, Any] | None:
    if not model.__pydantic_complete__:
        # Forward references are resolved lazily by pydantic; until then fields lack aliases.
        model.model_rebuild(raise_errors=False)
    for name, info in model.model_fields.items():
        json_key, accepted = _field_keys(name, info)
        if segment in accepted:
            return json_key, info.annotation
    return None


def _walk(model: type[pydantic.BaseModel], dotted: str) -> tuple[list[tuple[str, int]], list[Any]] | None:
    """Segments of ``a.b.c`` in ``model`` and the candidate types at its end; ``None`` if unknown."""
    parts = dotted.split(".")
    if any(not p for p in parts):
        return None
    candidates: list[Any] = [model]
    segments: list[tuple[str, int]] = []
    for part in parts:
        found: tuple[str, Any] | None = None
        for candidate in candidates:
            if _is_model(candidate):
                found = _lookup(candidate, part)
                if found is not None:
                    break
        if found is None:
            return None
        json_key, annotation = found
        arrays, candidates = _unwrap(annotation)
        segments.append((json_key, arrays))
    return segments, candidates


def resolve_path(model: type[pydantic.BaseModel], dotted: str) -> AttributePath | None:
    """Resolve ``a.b.c`` against ``model``; ``None`` if unknown, ``BadRequest`` if not a scalar."""
    walked = _walk(model, dotted)
    if walked is None:
        return None
    segments, candidates = walked
    kinds = [k for k in (_scalar_kind(c) for c in candidates) if k is not None]
    if not kinds:
        raise ErrorCode.INVALID_QUERY.error(
            "Filter and sort on a scalar sub-attribute, e.g. 'relatedParty.id'.",
            reason=f"Attribute '{_short(dotted)}' is not a simple value",
        )
    kind: Kind = kinds[0] if all(k == kinds[0] for k in kinds) else "any"
    return AttributePath(tuple(segments), kind, _choices(candidates))


def resolve_field(model: type[pydantic.BaseModel], dotted: str) -> str | None:
    """``a.b.c`` in wire (alias) form if ``model`` declares it, scalar or not; ``None`` if unknown.
    What ``fields=`` may name: any attribute, including objects and arrays of objects."""
    walked = _walk(model, dotted)
    return None if walked is None else ".".join(key for key, _ in walked[0])


def _choices(candidates: list[Any]) -> frozenset[str] | None:
    """The values an attribute may take when every candidate type is an enum or a Literal of
    strings (``ProductOrderStateType``); ``None`` when any value of its kind is allowed."""
    values: set[str] = set()
    for tp in candidates:
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            members = [m.value for m in tp]
        elif typing.get_origin(tp) is Literal:
            members = list(typing.get_args(tp))
        else:
            return None
        if not all(isinstance(v, str) for v in members):
            return None
        values.update(members)
    return frozenset(values) if values else None


def check_choice(name: str, choices: frozenset[str] | None, raw: str) -> None:
    """``invalidFilterValue`` naming the allowed values, unless ``raw`` is one of ``choices``."""
    if choices is not None and raw not in choices:
        raise ErrorCode.INVALID_FILTER_VALUE.error(
            f"Allowed values: {', '.join(sorted(choices))}",
            reason=f"Invalid value '{_short(raw)}' for '{_short(name)}'",
        )


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def _kind_of_python_type(tp: type) -> Kind:
    return _scalar_kind(tp) or "str"


# What a date-time filter value may look like: an RFC 3339 date-time (``T``, ``t`` or, as RFC 3339
# allows, a space between date and time; ``Z`` or a ``+hh:mm`` offset), the same without offset
# (read as UTC) or a bare ``YYYY-MM-DD`` (midnight UTC). Python's ``fromisoformat`` alone would
# also take ISO 8601 forms such as ``2026-W48-1``, ``20261201`` or ``2026-12-01T10``.
_DATETIME_VALUE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
_DATE_VALUE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _invalid_datetime(raw: str) -> ApiError:
    return _error(
        ErrorCode.INVALID_FILTER_VALUE,
        f"Invalid date-time value '{_short(raw)}'",
        "Use RFC 3339, e.g. 2024-05-01T10:00:00Z or 2024-05-01.",
    )


def _parse_datetime(raw: str) -> datetime:
    """An RFC 3339 date-time (or bare date) as an aware UTC datetime; ``BadRequest`` otherwise.

    The instant must fall in years 1..9999 in UTC, which PostgreSQL and Python can both hold
    (``9999-12-31T23:59:59-01:00`` is a valid RFC 3339 text but not such an instant)."""
    match = _DATETIME_VALUE.fullmatch(raw)
    if match is None:
        raise _invalid_datetime(raw)
    text = match["date"]
    if match["time"]:
        text += "T" + match["time"]
        if match["fraction"]:
            text += "." + match["fraction"][:6].ljust(6, "0")  # Python keeps microseconds
        offset = match["offset"]
        if offset:
            text += "+00:00" if offset in "Zz" else offset
    try:
        value = datetime.fromisoformat(text)  # checks the calendar, hour and offset ranges
    except ValueError:
        raise _invalid_datetime(raw) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _error(
            ErrorCode.INVALID_FILTER_VALUE,
            f"Date-time value '{_short(raw)}' is out of range",
            "The instant must fall within the years 0001 to 9999 in UTC.",
        ) from None


def _parse_date(raw: str) -> date:
    try:
        if _DATE_VALUE.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise _error(ErrorCode.INVALID_FILTER_VALUE, f"Invalid date value '{_short(raw)}'", "Use YYYY-MM-DD.")


def _parse_decimal(raw: str) -> Decimal:
    if len(raw) > 100 or not _NUMBER.match(raw):
        raise _error(ErrorCode.INVALID_FILTER_VALUE, f"Invalid number value '{_short(raw)}'")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern excludes it
        raise _error(ErrorCode.INVALID_FILTER_VALUE, f"Invalid number value '{_short(raw)}'") from None


def _parse_int(raw: str) -> int:
    if not _INTEGER.match(raw):
        raise _error(ErrorCode.INVALID_FILTER_VALUE, f"Invalid integer value '{_short(raw)}'")
    return int(raw)


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _error(
        ErrorCode.INVALID_FILTER_VALUE, f"Invalid boolean value '{_short(raw)}'", "Use 'true' or 'false'."
    )


def convert_value(kind: Kind, raw: str) -> Any:
    """Convert one query value to the Python value for ``kind``; ``BadRequest`` if invalid."""
    if kind in ("str", "any"):
        return raw
    if kind == "int":
        return _parse_int(raw)
    if kind == "decimal":
        return _parse_decimal(raw)
    if kind == "bool":
        return _parse_bool(raw)
    if kind == "datetime":
        return _parse_datetime(raw)
    if kind == "date":
        return _parse_date(raw)
    raise AssertionError(kind)  # pragma: no cover


def _json_scalar(value: Any) -> str:
    """JSON text of a converted value (Decimal keeps its exact digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)  # finite by construction; "1.5E+3" is valid JSON
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    return json.dumps(value)


def _json_alternatives(kind: Kind, raw: str) -> list[str]:
    """JSON texts to test for equality. ``any`` attributes try string, number and boolean."""
    if kind != "any":
        return [_json_scalar(convert_value(kind, raw))]
    out = [json.dumps(raw)]
    if _NUMBER.match(raw) and len(raw) <= 100:
        out.append(str(Decimal(raw)))
    if raw in ("true", "false"):
        out.append(raw)
    return out


def _hot_value(kind: Kind, python_type: type | None, raw: str) -> Any:
    value = convert_value(kind, raw)
    if kind == "int" and abs(value) > _MAX_BIGINT:
        raise _error(ErrorCode.INVALID_FILTER_VALUE, f"Integer value '{_short(raw)}' is out of range")
    if kind == "decimal" and python_type is float:
        return float(value)
    if kind == "any":
        return raw
    return value


# --------------------------------------------------------------------------------------------
# Compiler
# --------------------------------------------------------------------------------------------


_ParamMaker = Callable[[int, Any], ColumnElement[Any]]  # (index of the value, SQL type) -> bind parameter
_Builder = Callable[[_ParamMaker], ColumnElement[bool]]


def _anonymous(values: Sequence[Any]) -> _ParamMaker:
    """Bind parameters of their own (anonymous, unique) for ``values``."""
    return lambda i, type_: bindparam(None, values[i], type_=type_, unique=True)


def _hot_filter(hot: HotColumn, op: str, n: int, param: _ParamMaker) -> ColumnElement[bool]:
    col = hot.column
    if hot.many:
        if op in ("eq", "ne"):
            array = param(0, col.type)
            if op == "ne":
                return or_(col.is_(None), not_(col.op("&&", is_comparison=True)(array)))
            return col.op("@>" if n == 1 else "&&", is_comparison=True)(array)
        item_type = getattr(col.type, "item_type", None)
        mirrored = _SQL_OPS[_MIRRORED[op]]
        return or_(*(mirrored(param(i, item_type), any_(col)) for i in range(n)))
    params = [param(i, col.type) for i in range(n)]
    if op == "eq":
        return col == params[0] if n == 1 else col.in_(params)
    if op == "ne":
        return and_(*(col.is_distinct_from(p) for p in params))
    compare = _SQL_OPS[op]
    return or_(*(compare(col, p) for p in params))


def _text_param(value: str) -> ColumnElement[Any]:
    return bindparam(None, value, type_=Text, unique=True)


def _jsonb_param(json_text: str) -> ColumnElement[Any]:
    return cast(_text_param(json_text), JSONB)


def _jsonpath_param(path: str) -> ColumnElement[Any]:
    return cast(_text_param(path), JSONPATH)


@dataclass(frozen=True)
class _Filter:
    name: str  # attribute as written (without operator), for messages
    op: str
    raw: str


class QueryCompiler:
    """Parses TMF630 list query parameters into SQLAlchemy expressions for one resource table."""

    def __init__(
        self,
        model: type[pydantic.BaseModel],
        doc: ColumnElement[Any],
        *,
        hot: Mapping[str, HotColumn] | None = None,
        default_limit: int = 100,
        max_limit: int = 1000,
        default_order: Sequence[ColumnElement[Any]] = (),
    ) -> None:
        if not 1 <= default_limit <= max_limit:
            raise ValueError("default_limit must be within 1..max_limit")
        self.model = model
        self.doc = doc
        self.hot: dict[str, HotColumn] = {}
        for key, column in (hot or {}).items():
            # Accept python names too ("related_party.id"): index hot columns by the alias path.
            try:
                resolved = resolve_path(model, key) if key else None
            except BadRequest as exc:
                raise ValueError(f"Hot column {key!r}: {exc.reason}") from None
            self.hot[resolved.dotted if resolved is not None else key] = column
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.default_order = list(default_order)
        self._paths: dict[str, AttributePath | None] = {}
        self._fields: dict[str, str | None] = {}  # fields= names -> wire paths (None: unknown)

    # -- public ---------------------------------------------------------------------------------

    def parse(self, params: Sequence[tuple[str, str]] | Iterable[tuple[str, str]]) -> ListQuery:
        """Parse ``request.query_params.multi_items()``; raises :class:`BadRequest`."""
        return self.page(params).query()

    def page(self, params: Sequence[tuple[str, str]] | Iterable[tuple[str, str]]) -> PageQuery:
        """Check and convert the query as :meth:`parse` does (the same 400s) without building SQL:
        the query's shape and values, for :meth:`Store.list_page` to reuse the statement of an
        earlier query of the same shape."""
        filters: list[tuple[list[Any], _Builder]] = []
        shape: list[tuple[str, str, int, int]] = []
        sort_specs: list[str] = []
        fields: set[str] | None = None
        offset: int | None = None
        limit: int | None = None
        for name, value in params:
            if name == "fields":
                fields = (fields or set()) | self._parse_fields(value)
            elif name == "offset":
                if offset is not None:
                    raise _error(ErrorCode.INVALID_QUERY, "Parameter 'offset' is repeated")
                offset = self._parse_offset(value)
            elif name == "limit":
                if limit is not None:
                    raise _error(ErrorCode.INVALID_QUERY, "Parameter 'limit' is repeated")
                limit = self._parse_limit(value)
            elif name == "sort":
                sort_specs.extend(self._split_sort(value))
            else:
                flt = self._split_filter(name, value)
                values, build = self._filter_plan(flt)
                filters.append((values, build))
                # What the SQL depends on: the attribute, the operator and the number of values
                # (alternatives and values to bind: one array for an ARRAY column's eq/ne).
                shape.append((flt.name, flt.op, flt.raw.count(",") + 1, len(values)))
        for spec in sort_specs:
            self._sort_target(spec)
        return PageQuery(
            shape=(tuple(shape), tuple(sort_specs)),
            values=tuple(value for values, _ in filters for value in values),
            offset=offset if offset is not None else 0,
            limit=limit if limit is not None else self.default_limit,
            fields=frozenset(fields) if fields is not None else None,
            compiler=self,
            filters=tuple(filters),
            sort=tuple(sort_specs),
        )

    def resolve(self, dotted: str) -> AttributePath | None:
        """The model path for ``dotted`` (cached); ``None`` if the model does not declare it."""
        if dotted in self._paths:
            return self._paths[dotted]
        path = resolve_path(self.model, dotted)
        if len(self._paths) < _MAX_CACHED:  # names come from clients: bounded
            self._paths[dotted] = path
        return path

    def _is_scalar(self, dotted: str) -> bool:
        try:
            return self.resolve(dotted) is not None
        except BadRequest:
            return False

    # -- reserved parameters ---------------------------------------------------------------------

    def _parse_fields(self, value: str) -> set[str]:
        """The attributes ``fields`` names, as wire paths (``productOrderItem.productOffering.id``).
        Each must be declared by the model (objects and arrays too); an unknown one is a 400."""
        parts = [part.strip() for part in value.split(",")]
        names: set[str] = set()
        for part in parts:
            if not part:
                continue
            if not _FIELD_NAME.match(part):
                raise _error(
                    ErrorCode.INVALID_QUERY,
                    f"Invalid fields '{_short(value)}'",
                    "fields lists attribute names, e.g. fields=id,state",
                )
            if part in self._fields:
                resolved = self._fields[part]
            else:
                resolved = resolve_field(self.model, part)
                if len(self._fields) < _MAX_CACHED:  # names come from clients: bounded
                    self._fields[part] = resolved
            if resolved is None:
                raise _error(
                    ErrorCode.UNKNOWN_ATTRIBUTE,
                    f"Unknown attribute '{_short(part)}' in fields",
                    f"{self.model.__name__} has no attribute '{_short(part)}'",
                )
            names.add(resolved)
        if not names:
            raise _error(ErrorCode.INVALID_QUERY, "Parameter 'fields' is empty")
        return names

    @staticmethod
    def _parse_offset(value: str) -> int:
        if not _DIGITS.match(value):
            raise _error(
                ErrorCode.INVALID_QUERY,
                f"Invalid offset '{_short(value)}'",
                "offset must be an integer >= 0.",
            )
        return int(value)

    def _parse_limit(self, value: str) -> int:
        number = int(value) if _DIGITS.match(value) else 0
        if not 1 <= number <= self.max_limit:
            raise _error(
                ErrorCode.INVALID_QUERY,
                f"Invalid limit '{_short(value)}'",
                f"limit must be an integer between 1 and {self.max_limit}.",
            )
        return number

    @staticmethod
    def _split_sort(value: str) -> list[str]:
        specs = [part.strip() for part in value.split(",")]
        if not all(specs):
            raise _error(ErrorCode.INVALID_QUERY, f"Invalid sort '{_short(value)}'")
        return specs

    # -- filters ---------------------------------------------------------------------------------

    @staticmethod
    def _split_filter(name: str, value: str) -> _Filter:
        op = "eq"
        attr = name
        if attr and attr[-1] in _SUFFIX_OPS:  # attr>=v, attr<=v, attr!=v
            op = _SUFFIX_OPS[attr[-1]]
            attr = attr[:-1]
        elif match := _BRACKET_OP.match(attr):  # attr[gt]=v
            attr, op = match["attr"], match["op"]
            if op not in OPERATORS:
                raise _error(
                    ErrorCode.INVALID_QUERY, f"Unknown filter operator '{_short(op)}' in '{_short(name)}'"
                )
        elif "." in attr:  # attr.gt=v
            head, last = attr.rsplit(".", 1)
            if last in OPERATORS:
                attr, op = head, last
        if not attr:
            raise _error(ErrorCode.INVALID_QUERY, f"Invalid filter parameter '{_short(name)}'")
        if value == "":
            raise _error(ErrorCode.INVALID_QUERY, f"Empty value for filter '{_short(attr)}'")
        _check_text(name)
        _check_text(value)
        return _Filter(attr, op, value)

    def compile_filter(self, flt: _Filter) -> ColumnElement[bool]:
        values, build = self._filter_plan(flt)
        return build(_anonymous(values))

    def _filter_plan(self, flt: _Filter) -> tuple[list[Any], _Builder]:
        """Check ``flt`` (every 400 is raised here) and convert its values: the values to bind, in
        order, and how to build its expression given a bind-parameter maker for them. The SQL the
        builder makes depends only on the filter's name, operator and number of values."""
        raws = flt.raw.split(",")
        if any(raw == "" for raw in raws):
            raise _error(ErrorCode.INVALID_QUERY, f"Empty value in filter '{_short(flt.name)}'")
        if len(raws) > MAX_OR_VALUES:
            raise _error(
                ErrorCode.INVALID_QUERY,
                f"Too many values in filter '{_short(flt.name)}' (at most {MAX_OR_VALUES})",
            )
        path = self.resolve(flt.name)
        hot = self.hot.get(path.dotted if path is not None else flt.name)
        if path is None and hot is None:
            head, _, last = flt.name.rpartition(".")
            if head and flt.op == "eq" and self._is_scalar(head):
                raise _error(
                    ErrorCode.INVALID_QUERY,
                    f"Unknown filter operator '{_short(last)}'",
                    f"Use one of {', '.join(sorted(OPERATORS))}.",
                )
            raise _error(ErrorCode.UNKNOWN_ATTRIBUTE, f"Unknown filter attribute '{_short(flt.name)}'")
        if path is not None:
            for raw in raws:
                check_choice(flt.name, path.choices, raw)
        op = flt.op
        if hot is not None:
            if hot.python_type is not None:
                kind = _kind_of_python_type(hot.python_type)
            else:
                kind = path.kind if path is not None else "str"
            converted = [_hot_value(kind, hot.python_type, raw) for raw in raws]
            if hot.many and op in ("eq", "ne"):
                return [converted], functools.partial(_hot_filter, hot, op, len(converted))
            return converted, functools.partial(_hot_filter, hot, op, len(converted))
        assert path is not None
        if path.kind == "bool" and op not in ("eq", "ne"):
            raise _error(
                ErrorCode.INVALID_QUERY, f"Operator '{op}' does not apply to boolean '{_short(flt.name)}'"
            )
        if path.kind == "datetime":
            instants = [_parse_datetime(raw) for raw in raws]
            return instants, functools.partial(self._datetime_filter, path, op, len(instants))
        if op in ("eq", "ne"):
            documents = [path.containment(alt) for raw in raws for alt in _json_alternatives(path.kind, raw)]
            return documents, functools.partial(self._containment_filter, op, len(documents))
        variables: list[str] = []
        conditions: list[str] = []
        for raw in raws:
            if path.kind == "any":
                value_json = str(Decimal(raw)) if _NUMBER.match(raw) and len(raw) <= 100 else json.dumps(raw)
            else:
                value_json = _json_scalar(convert_value(path.kind, raw))
            name = f"v{len(variables)}"
            variables.append(f'"{name}":{value_json}')
            conditions.append(f"@ {_JSONPATH_OPS[op]} ${name}")
        jsonpath = f"{path.jsonpath()} ? ({' || '.join(conditions)})"
        return [jsonpath, "{" + ",".join(variables) + "}"], self._jsonpath_filter

    def _containment_filter(self, op: str, n: int, param: _ParamMaker) -> ColumnElement[bool]:
        matches = [self.doc.op("@>", is_comparison=True)(cast(param(i, Text()), JSONB)) for i in range(n)]
        any_match = matches[0] if len(matches) == 1 else or_(*matches)
        return any_match if op == "eq" else not_(any_match)

    def _jsonpath_filter(self, param: _ParamMaker) -> ColumnElement[bool]:
        return func.jsonb_path_exists(
            self.doc,
            cast(param(0, Text()), JSONPATH),
            cast(param(1, Text()), JSONB),
            type_=Boolean,
        )

    def _datetime_filter(
        self, path: AttributePath, op: str, n: int, param: _ParamMaker
    ) -> ColumnElement[bool]:
        jsonpath = f'{path.jsonpath()} ? (@.type() == "string" && @ like_regex {json.dumps(_RFC3339_RE)})'
        element = func.jsonb_array_elements_text(
            func.jsonb_path_query_array(self.doc, _jsonpath_param(jsonpath)), type_=Text
        ).column_valued("sb_value")
        instant = cast(element, DateTime(timezone=True))
        compare = _SQL_OPS["eq" if op == "ne" else op]
        params = [param(i, DateTime(timezone=True)) for i in range(n)]
        found = exists(select(literal_column("1")).where(or_(*(compare(instant, p) for p in params))))
        return not_(found) if op == "ne" else found

    # -- sorting ---------------------------------------------------------------------------------

    def _sort_target(self, spec: str) -> tuple[bool, str, AttributePath | None, HotColumn | None]:
        """Check one ``sort`` item (a 400 if it names no sortable attribute)."""
        descending = spec.startswith("-")
        name = spec[1:] if spec[:1] in ("-", "+") else spec
        if not name:
            raise _error(ErrorCode.INVALID_QUERY, f"Invalid sort '{_short(spec)}'")
        path = self.resolve(name)
        hot = self.hot.get(path.dotted if path is not None else name)
        if (hot is None or hot.many) and path is None:
            raise _error(ErrorCode.UNKNOWN_ATTRIBUTE, f"Unknown sort attribute '{_short(name)}'")
        return descending, name, path, hot

    def sort_expression(self, spec: str) -> ColumnElement[Any]:
        descending, _, path, hot = self._sort_target(spec)
        expr: ColumnElement[Any]
        if hot is not None and not hot.many:
            expr = hot.column
        else:
            assert path is not None
            text_path = bindparam(None, path.text_path(), type_=ARRAY(Text), unique=True)
            as_text = self.doc.op("#>>", return_type=Text)(text_path)
            if path.kind in ("int", "decimal", "bool", "any"):
                expr = self.doc.op("#>", return_type=JSONB)(text_path)
            elif path.kind == "datetime":
                pattern = bindparam(None, _RFC3339_RE, type_=Text, unique=True)
                expr = case(
                    (as_text.op("~", is_comparison=True)(pattern), cast(as_text, DateTime(timezone=True)))
                )
            else:
                expr = as_text
        return expr.desc().nulls_last() if descending else expr.asc().nulls_last()


_Selection = dict[str, "_Selection | None"]  # attribute -> what to keep of it (None: all of it)


def _selection(fields: Iterable[str], always: Iterable[str]) -> _Selection:
    tree: _Selection = dict.fromkeys(always)
    for dotted in fields:
        node: _Selection | None = tree
        parts = dotted.split(".")
        for index, part in enumerate(parts):
            assert node is not None
            last = index == len(parts) - 1
            if part in node and node[part] is None:
                break  # the whole attribute is kept already
            if last:
                node[part] = None
            else:
                node = node.setdefault(part, {})
    return tree


def _select(value: Any, keep: _Selection | None) -> Any:
    if keep is None:
        return value
    if isinstance(value, list):
        return [_select(item, keep) for item in value]
    if isinstance(value, dict):
        return {key: _select(item, keep[key]) for key, item in value.items() if key in keep}
    return value  # a scalar where the model has an object: nothing below it to select


def select_fields(
    doc: dict[str, Any],
    fields: frozenset[str] | None,
    *,
    always: tuple[str, ...] = ("id", "href"),
) -> dict[str, Any]:
    """Keep the attributes named in ``fields`` (plus the top-level ``always``); all if ``None``.

    TMF630 attribute selection: a dotted name keeps only that sub-attribute, through arrays, so
    ``productOrderItem.productOffering.id`` leaves each item with just ``{"productOffering":
    {"id": ...}}``. Naming an object keeps all of it. Key order follows ``doc``. TMF621 wants exactly
    the selected attributes: pass ``always=()``.
    """
    if fields is None:
        return doc
    selected: dict[str, Any] = _select(doc, _selection(fields, always))
    return selected


# --------------------------------------------------------------------------------------------
# Event-subscription (hub) queries
# --------------------------------------------------------------------------------------------

EVENT_TYPE = "eventType"


def check_event_query(
    clauses: Iterable[tuple[str, Sequence[str]]],
    compilers: Mapping[str, QueryCompiler],
    event_types: Collection[str],
) -> None:
    """Check the clauses of a TMF630 hub query against the service's resources, as a list query is.

    A clause is ``(attribute, values)``; values are alternatives (``eventType=A,B``). ``eventType``
    must name events of ``event_types``; ``event.<resource>.<path>`` must name a scalar attribute of
    the resource whose compiler is ``compilers[<resource>]`` (keyed by the name the event payload
    uses, e.g. ``productOrder``), and each value must fit its type and enum. Anything else is a
    400: the subscription would never fire, or fire on everything.
    """
    for name, values in clauses:
        _check_text(name)
        for value in values:
            _check_text(value)
        if name == EVENT_TYPE:
            for value in values:
                check_choice(EVENT_TYPE, frozenset(event_types), value)
            continue
        head, _, rest = name.partition(".")
        resource, _, dotted = rest.partition(".")
        compiler = compilers.get(resource) if head == "event" else None
        if compiler is None or not dotted:
            raise _error(
                ErrorCode.UNKNOWN_ATTRIBUTE,
                f"Unknown attribute '{_short(name)}' in hub query",
                f"A hub query filters on {EVENT_TYPE} and on event.<resource>.<attribute> with <resource> "
                f"one of {', '.join(sorted(compilers)) or 'none'}, e.g. event.{next(iter(sorted(compilers)), 'x')}.id",
            )
        path = compiler.resolve(dotted)
        if path is None:
            raise _error(
                ErrorCode.UNKNOWN_ATTRIBUTE,
                f"Unknown attribute '{_short(name)}' in hub query",
                f"{compiler.model.__name__} has no attribute '{_short(dotted)}'",
            )
        for value in values:
            check_choice(name, path.choices, value)
            convert_value(path.kind, value)
