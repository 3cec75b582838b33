"""Types shared by the four APIs, the base model, and the wire helpers ``dump``/``dump_json``.

``Money``, ``TimePeriod``, ``RelatedParty``, ``Note``, ``Characteristic``, ``Error``,
``EventSubscription``, ``EventSubscriptionInput``, ``EntityRef`` and ``Quantity`` are
generated from TMF622 and used by every API whose own definition has the same shape
(TMF621 keeps its own ``Note``, whose ``text`` is optional).
"""

from __future__ import annotations

from typing import Any

from tmf_models._base import AwareDatetime, TMFModel, format_datetime
from tmf_models._generated.common import (
    Characteristic,
    EntityRef,
    Error,
    EventSubscription,
    EventSubscriptionInput,
    Money,
    Note,
    Quantity,
    RelatedParty,
    TimePeriod,
)

__all__ = [
    "AwareDatetime",
    "Characteristic",
    "EntityRef",
    "Error",
    "EventSubscription",
    "EventSubscriptionInput",
    "Money",
    "Note",
    "Quantity",
    "RelatedParty",
    "TMFModel",
    "TimePeriod",
    "dump",
    "dump_json",
    "format_datetime",
]


def dump(model: TMFModel, *, exclude_none: bool = False) -> dict[str, Any]:
    """The model as TM Forum JSON (a dict): aliases, only the fields that were set, UTC ``Z`` dates.

    Same as ``model.model_dump(mode="json", by_alias=True, exclude_unset=True)``, without
    the Python-level wrapper.
    """
    data: dict[str, Any] = model.__pydantic_serializer__.to_python(
        model, mode="json", by_alias=True, exclude_unset=True, exclude_none=exclude_none
    )
    return data


def dump_json(model: TMFModel, *, exclude_none: bool = False) -> bytes:
    """The model as TM Forum JSON bytes (compact UTF-8), serialised in Rust by pydantic-core."""
    return model.__pydantic_serializer__.to_json(
        model, by_alias=True, exclude_unset=True, exclude_none=exclude_none
    )
