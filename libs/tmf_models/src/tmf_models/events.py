"""Event envelopes of the four APIs: one registry and their JSON Schemas."""

from __future__ import annotations

from typing import Any

from tmf_models import tmf621, tmf622, tmf676, tmf678
from tmf_models._base import TMFModel

__all__ = ["EVENT_TYPES", "event_json_schemas"]

#: eventType name -> envelope model, for every event of TMF622, TMF678, TMF621 and TMF676.
EVENT_TYPES: dict[str, type[TMFModel]] = {
    **tmf622.EVENT_TYPES,
    **tmf678.EVENT_TYPES,
    **tmf621.EVENT_TYPES,
    **tmf676.EVENT_TYPES,
}


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """Event name -> JSON Schema (draft 2020-12, wire names) of its envelope, sorted by name."""
    return {name: EVENT_TYPES[name].model_json_schema(by_alias=True) for name in sorted(EVENT_TYPES)}
