"""Base model and scalar types shared by every generated TM Forum model.

The generated modules import ``TMFModel`` and ``AwareDatetime`` from here (see
``scripts/generate.py``), so the wire rules live in one place:

- field names on the wire are the TM Forum ones (``@type``, camelCase): every field
  has an alias, and models serialise by alias;
- unknown attributes are kept (TMF extension through ``@type``/``@schemaLocation``)
  and round-trip;
- date-times are RFC 3339 with an offset; they are stored in UTC and emitted with a
  ``Z`` suffix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, WithJsonSchema
from pydantic_core import CoreSchema, core_schema

__all__ = ["AwareDatetime", "TMFModel", "format_datetime"]


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
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: TMF date-times need an offset")
    if offset:
        value = value.astimezone(UTC)
    # isoformat() of an aware datetime: YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00 (fixed positions).
    text = value.isoformat()
    micro = value.microsecond
    if micro == 0:
        return text[:19] + "Z"
    if micro % 1000 == 0:
        return text[:23] + "Z"
    return text[:26] + "Z"


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
                format_datetime, return_schema=core_schema.str_schema(), when_used="json"
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
