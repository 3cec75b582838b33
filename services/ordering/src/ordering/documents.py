"""Reading and copying order documents: plain dicts in TMF wire JSON (camelCase keys, ``@type``).

Every ordering module reads client documents through these helpers, which ignore what is not the
expected JSON type (validation reports it), and copies them with ``copy_document``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson


class ItemAction(StrEnum):
    """``OrderItemActionType``."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    NO_CHANGE = "noChange"


def copy_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON document (documents are plain JSON; this is several times faster than
    ``copy.deepcopy``)."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    return copied


def ref_id(ref: Any) -> str | None:
    """The non-empty ``id`` of a reference object, or None."""
    value = ref.get("id") if isinstance(ref, dict) else None
    return value if isinstance(value, str) and value else None


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def objects(value: Any) -> list[dict[str, Any]]:
    """The dict entries of a JSON array (anything else is ignored)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
