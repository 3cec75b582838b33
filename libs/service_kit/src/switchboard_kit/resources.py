"""Helpers for TMF resource endpoints: ETags, conditional writes, JSON responses and list paging."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

from .errors import BadRequest, PreconditionFailed


def etag(version: int) -> str:
    return f'W/"{version}"'


def ensure_storable(doc: Any) -> None:
    """400 for values the JSONB serializer cannot write: integers beyond 64 bits and unpaired UTF-16
    surrogates, both of which Python's JSON parser accepts. (A NUL character is refused by PostgreSQL
    itself; the app's error handler turns that into a 400.)"""
    try:
        orjson.dumps(doc)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise BadRequest("Invalid JSON value", str(exc)) from exc


def check_if_match(header: str | None, version: int) -> None:
    """412 when an ``If-Match`` header is given and names none of the current version's tags."""
    if header is None:
        return
    tags = [t.strip() for t in header.split(",")]
    if "*" in tags:
        return
    current = {etag(version), f'"{version}"'}
    if not any(t in current for t in tags):
        raise PreconditionFailed(
            "Precondition failed",
            f"If-Match {header} does not match the current ETag {etag(version)}",
            headers={"ETag": etag(version)},
        )


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json"
    )


def list_response(items: list[dict[str, Any]], *, total: int, offset: int) -> Response:
    """200, or 206 Partial Content when more results remain, with X-Total-Count and X-Result-Count."""
    more = offset + len(items) < total
    return json_response(
        items,
        status_code=206 if more else 200,
        headers={"X-Total-Count": str(total), "X-Result-Count": str(len(items))},
    )
