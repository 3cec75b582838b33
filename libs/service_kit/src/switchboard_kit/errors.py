"""Typed API errors. One handler (see ``app.py``) renders them as TMF Error bodies."""

from __future__ import annotations

from typing import Any

# Error texts often quote what the client sent (an id, a header, a filter value); a client that sent
# 20,000 characters does not need them back. Longer texts are cut, with "..." to show it.
MAX_REASON_LENGTH = 200
MAX_MESSAGE_LENGTH = 1000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ApiError(Exception):
    """An error that becomes a TMF ``Error`` body with ``status``."""

    status: int = 500
    code: str = "internalError"

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        reason = _cut(reason, MAX_REASON_LENGTH)
        super().__init__(reason)
        self.reason = reason
        self.message = None if message is None else _cut(message, MAX_MESSAGE_LENGTH)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "reason": self.reason,
            "status": str(self.status),
            "@type": "Error",
        }
        if self.message:
            body["message"] = self.message
        return body


class BadRequest(ApiError):
    status = 400
    code = "badRequest"


class NotFound(ApiError):
    status = 404
    code = "notFound"


class Conflict(ApiError):
    """A state conflict, such as an illegal state transition."""

    status = 409
    code = "conflict"


class PreconditionFailed(ApiError):
    status = 412
    code = "preconditionFailed"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupportedMediaType"


class UnprocessableEntity(ApiError):
    status = 422
    code = "unprocessableEntity"
