"""Base model and scalar types shared by every generated TM Forum model.

The generated modules import ``TMFModel`` and ``AwareDatetime`` from here (see
``scripts/generate.py``), so the wire rules live in one place:

- field names on the wire are the TM Forum ones (``@type``, camelCase): every field
  has an alias, and models serialise by alias;
- unknown attributes are kept (TMF extension through ``@type``/``@schemaLocation``)
  and round-trip;
- date-times are RFC 3339 with an offset; they are stored in UTC and emitted with a
  ``Z`` suffix;
- ``format: uri`` attributes (``@schemaLocation``, ``Error.referenceError``) are ``AnyUri``:
  the string as sent, which must be an RFC 3986 URI (a scheme, then only URI characters);
- ``type: number`` attributes (``Money.value``, ``taxRate``...) are ``Number``: a JSON number held
  as a ``Decimal``, written back as the same JSON number (see :func:`json_number`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, StringConstraints, WithJsonSchema
from pydantic_core import CoreSchema, core_schema

__all__ = ["URI_PATTERN", "AnyUri", "AwareDatetime", "Number", "TMFModel", "format_datetime", "json_number"]


class TMFModel(BaseModel):
    """Base of every TM Forum model: wire names by alias, extra attributes kept."""

    model_config = ConfigDict(
        # TMF extension: a sub-class named by @type/@schemaLocation may add attributes.
        extra="allow",
        # Services build models from Python (snake_case) names; the wire uses aliases.
        populate_by_name=True,
        serialize_by_alias=True,
        # The shapes come from the spec; a field called ``model_...`` is not ours to veto.
        protected_namespaces=(),
    )


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix.

    Whole seconds print without a fraction, whole milliseconds with three digits and
    anything finer with six, so ``…:00Z``, ``…:00.123Z`` and ``…:00.123456Z`` round-trip
    unchanged. (``.000Z`` comes back as ``Z``, ``.1Z`` as ``.100Z``: same instant.)
    """
    # isoformat() of a UTC datetime: YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00, fixed positions. It is
    # the one call the common case makes (this runs once per date-time written).
    text = value.isoformat()
    if text.endswith("+00:00"):
        if len(text) == 25:  # no fraction
            return text[:19] + "Z"
        if text.endswith("000+00:00"):  # whole milliseconds
            return text[:23] + "Z"
        return text[:26] + "Z"
    if value.utcoffset() is None:
        raise ValueError("naive datetime: TMF date-times need an offset")
    return format_datetime(value.astimezone(UTC))


class _RFC3339DateTime:
    """Core schema of ``AwareDatetime``; the common case (a UTC string) runs without Python code.

    Pydantic's lax datetime reads numbers as Unix timestamps and its strict one refuses
    strings from Python dicts, so the schema spells out what a TMF date-time is: a string
    (or, from Python, a datetime) with an offset. UTC values are kept as parsed; other
    offsets are converted to UTC. Output goes through ``format_datetime``.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        string = core_schema.str_schema(strict=True)

        def parsed(tz: int | Literal["aware"]) -> CoreSchema:
            return core_schema.union_schema(
                [
                    core_schema.chain_schema([string, core_schema.datetime_schema(tz_constraint=tz)]),
                    core_schema.datetime_schema(strict=True, tz_constraint=tz),
                ],
                mode="left_to_right",
            )

        return core_schema.union_schema(
            [parsed(0), core_schema.no_info_after_validator_function(_to_utc, parsed("aware"))],
            mode="left_to_right",
            custom_error_type="tmf_datetime",
            custom_error_message="Input should be an RFC 3339 date-time string with an offset",
            serialization=core_schema.plain_serializer_function_ser_schema(
                format_datetime,
                when_used="json",  # a str, which pydantic-core writes by its type
            ),
        )


#: The type of every ``format: date-time`` attribute. Named like pydantic's
#: ``AwareDatetime`` because the generator writes that name; like it, it requires an
#: offset, and in addition it refuses numbers, stores UTC and emits ``Z``.
AwareDatetime = Annotated[
    datetime,
    _RFC3339DateTime(),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# RFC 3986 section 3 ``URI`` (absolute: a scheme is required; relative references are not URIs),
# spelled for pydantic's Rust regex engine: no look-around, so the grammar is written out. An IP
# literal host is checked in full (IPv6 with its nine forms, or IPvFuture).
_UNRESERVED_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED_SUB}:@]|{_PCT})"
_SEGMENTS = rf"(?:/{_PCHAR}*)*"
_H16 = r"[0-9A-Fa-f]{1,4}"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = rf"(?:{_H16}:{_H16}|{_OCTET}(?:\.{_OCTET}){{3}})"
_IPV6 = "|".join(
    [
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    ]
)
_HOST = rf"(?:\[(?:{_IPV6}|[vV][0-9A-Fa-f]+\.[{_UNRESERVED_SUB}:]+)\]|(?:[{_UNRESERVED_SUB}]|{_PCT})*)"
_AUTHORITY = rf"(?:(?:[{_UNRESERVED_SUB}:]|{_PCT})*@)?{_HOST}(?::[0-9]*)?"
URI_PATTERN = (
    rf"^[A-Za-z][A-Za-z0-9+.\-]*:"
    rf"(?://{_AUTHORITY}{_SEGMENTS}|/(?:{_PCHAR}+{_SEGMENTS})?|{_PCHAR}+{_SEGMENTS})?"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$"
)


#: ``format: uri``. The value is kept exactly as sent (pydantic's ``AnyUrl`` would normalise it: a
#: trailing slash, the case of the host, and the round trip would break); only its syntax is checked,
#: in Rust, so a valid value costs no Python code. ``""`` is not a URI.
AnyUri = Annotated[
    str,
    StringConstraints(strict=True, pattern=URI_PATTERN),
    WithJsonSchema({"type": "string", "format": "uri"}),
]


def json_number(value: Decimal | int | float) -> int | float:
    """``value`` as the JSON number the suite writes: an ``int`` when it is whole, else the ``float``
    whose shortest representation is exactly ``value`` (``Decimal("19.99")`` -> ``19.99``).

    The services write JSON with orjson, whose numbers are integers and doubles. A double holds any
    decimal of at most 15 significant digits exactly and prints it back unchanged; a value that no
    double prints (more digits, or out of range) raises ``ValueError`` rather than become another
    number.
    """
    if not isinstance(value, Decimal):  # a default such as Quantity.amount's 1
        value = _to_decimal(value)
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    text = str(value)
    if len(text) <= 15 and "E" not in text:
        # The common case, cheaply: plain notation in at most 15 characters is at most 15 significant
        # digits below 1e15, which the nearest double prints back exactly (DBL_DIG); such a double
        # is integral exactly when the value is whole.
        number = float(text)
        return int(number) if number.is_integer() else number
    if value == value.to_integral_value():
        whole = int(value)
        if -(2**63) <= whole < 2**64:
            return whole
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ValueError(f"{value} is not a number a double holds exactly (round it first)")
    return number


def _to_decimal(value: int | float | Decimal) -> Decimal:
    # A float is read through its shortest representation: the number the JSON text said.
    result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not result.is_finite():
        raise ValueError("Input should be a finite number")
    return result


class _JsonNumber:
    """Core schema of ``Number``: a JSON number (integer or not) and, from Python, an int, a float
    or a ``Decimal``; never a string or a boolean. Held as ``Decimal``; written as :func:`json_number`."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # Each branch hands its value to pydantic-core's own Decimal, in Rust: an int as it is, a float
        # through its shortest representation (the number the JSON text said), a Decimal when finite.
        decimal = core_schema.decimal_schema(allow_inf_nan=False)
        return core_schema.union_schema(
            [
                core_schema.chain_schema([core_schema.int_schema(strict=True), decimal]),
                core_schema.chain_schema(
                    [core_schema.float_schema(strict=True, allow_inf_nan=False), decimal]
                ),
                core_schema.chain_schema([core_schema.is_instance_schema(Decimal), decimal]),
            ],
            mode="left_to_right",
            custom_error_type="float_type",  # pydantic's own message: "Input should be a valid number"
            serialization=core_schema.plain_serializer_function_ser_schema(
                json_number,
                when_used="json",  # an int or a float, which pydantic-core writes by their type
            ),
        )


#: The type of every ``type: number`` attribute (``Money.value``, ``taxRate``, ``Quantity.amount``):
#: ``Decimal`` in Python, a JSON number on the wire and in the JSON Schema.
Number = Annotated[Decimal, _JsonNumber(), WithJsonSchema({"type": "number"})]
