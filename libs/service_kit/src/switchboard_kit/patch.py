"""PATCH bodies: JSON Merge Patch (RFC 7396) and JSON Patch (RFC 6902).

:func:`apply_patch` picks the format from the ``Content-Type`` header (parameters such as
``charset`` are ignored):

* ``application/merge-patch+json``, ``application/json`` or no content type: merge patch. The
  body must be a JSON object, since it patches a resource.
* ``application/json-patch+json``: JSON Patch, applied with the ``jsonpatch`` library.
* anything else (including TMF630's ``application/json-patch-query+json``): ``415``.

Errors use the kit's catalogue (:mod:`switchboard_kit.errors`), so they read as a POST's do:
malformed JSON (including an empty body, NaN, Infinity and numbers beyond a double) is
``malformedJson`` / "Malformed JSON"; a body of the wrong shape, an invalid operation or a path
that does not exist in the document is ``invalidPatch``; objects and arrays nested deeper than
:data:`~switchboard_kit.bodies.MAX_JSON_DEPTH` (in the patch or in the patched document) get the
POST's "JSON nesting too deep"; all are ``400 Bad Request``; another media type is a ``415``. A failed ``test`` operation gives ``409 Conflict``:
the request is well-formed but does not fit the current state of the resource (RFC 5789 section
2.2, "Conflicting state"). Validating the patched document against the resource model and protecting read-only attributes
is the caller's job: ``raise errors.invalid_body(exc)`` on a ``ValidationError`` answers what a POST
with that document would.

The input document is never mutated; the result shares no structure with the input or the patch.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from switchboard_kit.bodies import (
    MAX_JSON_DEPTH,
    InexactNumber,
    json_nesting_exceeds,
    strict_json_loads,
    too_deep,
)
from switchboard_kit.errors import Conflict, ErrorCode, UnsupportedMediaType, malformed_json

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "PATCH_MEDIA_TYPES",
    "apply_json_patch",
    "apply_patch",
    "merge_patch",
]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_PLAIN_JSON = "application/json"
_INVALID_PATCH = ErrorCode.INVALID_PATCH
PATCH_MEDIA_TYPES = (MERGE_PATCH, JSON_PATCH, _PLAIN_JSON)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 ``MergePatch(Target, Patch)`` as a pure function of two JSON values.

    Neither argument is mutated and the result shares no mutable structure with them.
    """
    return _merge_into(copy.deepcopy(target), patch)


def _merge_into(target: Any, patch: Any) -> Any:
    """RFC 7396 on a ``target`` owned by the caller (may be updated in place)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_into(target.get(key), value)
    return target


def apply_json_patch(doc: dict[str, Any], operations: Any) -> dict[str, Any]:
    """Apply RFC 6902 ``operations`` (already decoded JSON) to a copy of ``doc``."""
    if not isinstance(operations, list):
        raise _INVALID_PATCH.error(
            reason="Invalid JSON Patch", message="A JSON Patch document must be an array of operations."
        )
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise _INVALID_PATCH.error(
                reason="Invalid JSON Patch", message=f"Operation {index} is not an object."
            )
        if not isinstance(operation.get("path"), str):
            raise _INVALID_PATCH.error(
                reason="Invalid JSON Patch", message=f"Operation {index} has no string 'path'."
            )
        if "from" in operation and not isinstance(operation["from"], str):
            raise _INVALID_PATCH.error(
                reason="Invalid JSON Patch", message=f"Operation {index} has a non-string 'from'."
            )
    try:
        patch = jsonpatch.JsonPatch(operations)
        result = patch.apply(doc, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise Conflict("JSON Patch test failed", str(exc)) from None
    except RecursionError:  # copy/move operations can nest the document deeper on each step
        raise too_deep() from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise _INVALID_PATCH.error(reason="JSON Patch cannot be applied", message=str(exc)) from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise _INVALID_PATCH.error(
            reason="JSON Patch cannot be applied", message=str(exc) or type(exc).__name__
        ) from None
    if not isinstance(result, dict):
        raise _INVALID_PATCH.error(
            reason="JSON Patch cannot be applied", message="The patched document is not an object."
        )
    if result is doc:  # pragma: no cover - in_place=False always copies
        result = copy.deepcopy(result)
    return result


def _media_type(content_type: str | None) -> str:
    if content_type is None:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _decode(body: bytes) -> Any:
    if not body.strip():
        raise malformed_json("The body is empty")
    if json_nesting_exceeds(body):
        raise too_deep()
    try:
        return strict_json_loads(body)
    except InexactNumber as exc:
        raise ErrorCode.INVALID_BODY.error(str(exc), reason="Number not exact") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed_json(str(exc)) from None
    except RecursionError:  # pragma: no cover - the nesting test comes first
        raise too_deep() from None


def _nesting_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a decoded JSON value nests objects and arrays deeper than ``limit`` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    # A JSON Patch can build a deeper document than any one of its values (add into a value added
    # before, copy a subtree into itself); the stored resource and its events must stay writable.
    if _nesting_exceeds(result):
        raise too_deep()
    return result


def apply_patch(doc: dict[str, Any], body: bytes, content_type: str | None) -> dict[str, Any]:
    """Apply a PATCH ``body`` to a copy of ``doc`` according to ``content_type``."""
    media_type = _media_type(content_type)
    if media_type in ("", _PLAIN_JSON, MERGE_PATCH):
        patch = _decode(body)
        if not isinstance(patch, dict):
            raise _INVALID_PATCH.error(
                reason="Invalid merge patch", message="A merge patch for a resource must be a JSON object."
            )
        result = merge_patch(doc, patch)
        assert isinstance(result, dict)
        return _checked(result)
    if media_type == JSON_PATCH:
        return _checked(apply_json_patch(doc, _decode(body)))
    raise UnsupportedMediaType(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE.reason,
        f"Send a PATCH body as {MERGE_PATCH} or {JSON_PATCH}, not {media_type[:100]}",
        headers={"Accept-Patch": f"{MERGE_PATCH}, {JSON_PATCH}"},
    )
