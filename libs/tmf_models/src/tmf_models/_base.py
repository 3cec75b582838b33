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
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic import AwareDatetime as _PydanticAwareDatetime
from pydantic_core import PydanticCustomError

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


def _validate_datetime(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    # Pydantic's lax mode reads numbers as Unix timestamps; a TMF date-time is a string.
    if not isinstance(value, str | datetime):
        raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 date-time string")
    parsed: datetime = handler(value)
    if parsed.utcoffset():
        parsed = parsed.astimezone(UTC)
    return parsed


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix.

    Whole seconds print without a fraction, whole milliseconds with three digits and
    anything finer with six, so ``…:00Z``, ``…:00.123Z`` and ``…:00.123456Z`` round-trip
    unchanged. (``.000Z`` comes back as ``Z``, ``.1Z`` as ``.100Z``: same instant.)
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime: TMF date-times need an offset")
    if value.utcoffset():
        value = value.astimezone(UTC)
    micro = value.microsecond
    if micro == 0:
        spec = "seconds"
    elif micro % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


#: The type of every ``format: date-time`` attribute. Named like pydantic's
#: ``AwareDatetime`` because the generator writes that name; it requires an offset
#: like pydantic's, and also refuses numbers, normalises to UTC and emits ``Z``.
AwareDatetime = Annotated[
    _PydanticAwareDatetime,
    WrapValidator(_validate_datetime),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
]
