"""Typed API errors and the one catalogue of error codes every service answers with.

A TMF ``Error`` body carries ``code`` (what a client switches on), ``reason`` (a short text) and
``message`` (the details: which attribute, which value). :data:`CATALOGUE` lists every code the kit
and its services use, with its HTTP status and standard reason, so the same fault reads the same on
every endpoint of every service: a body that is not JSON is ``malformedJson`` / "Malformed JSON"
whether it came with a POST, a PATCH or a hub registration.

* Raise a typed error (``BadRequest``, ``NotFound``...) with your own reason for faults that belong
  to one resource; its class gives the generic code (``badRequest``, ``notFound``...).
* For a fault in the catalogue, raise ``ErrorCode.X.error(message)`` (or a helper below such as
  :func:`invalid_body`): code, status and reason come from the catalogue. ``reason=`` may
  specialise the reason (the query compiler names the parameter); the code never changes.

The app's handlers (``app.install_error_handlers``) render FastAPI's and Starlette's own errors
(request validation, unknown path, wrong method) through the same catalogue.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = [
    "CATALOGUE",
    "CODE_BY_STATUS",
    "MAX_MESSAGE_LENGTH",
    "MAX_REASON_LENGTH",
    "ApiError",
    "BadRequest",
    "Conflict",
    "ErrorCode",
    "Fault",
    "NotFound",
    "PreconditionFailed",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "describe_validation_errors",
    "invalid_body",
    "is_malformed_json",
    "malformed_json",
]

# Error texts often quote what the client sent (an id, a header, a filter value); a client that sent
# 20,000 characters does not need them back. Longer texts are cut, with "..." to show it.
MAX_REASON_LENGTH = 200
MAX_MESSAGE_LENGTH = 1000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Fault:
    """One catalogue entry: the HTTP status and the standard reason of an error code."""

    status: int
    reason: str
    description: str


class ErrorCode(enum.StrEnum):
    """Every error code the kit and its services answer with; see :data:`CATALOGUE`."""

    # 400: the request cannot be read or does not fit the model
    MALFORMED_JSON = "malformedJson"
    INVALID_BODY = "invalidBody"
    INVALID_PATCH = "invalidPatch"
    INVALID_CHARACTER = "invalidCharacter"
    INVALID_QUERY = "invalidQuery"
    UNKNOWN_ATTRIBUTE = "unknownAttribute"
    INVALID_FILTER_VALUE = "invalidFilterValue"
    INVALID_HUB_QUERY = "invalidHubQuery"
    INVALID_CALLBACK = "invalidCallback"
    BAD_REQUEST = "badRequest"
    # other 4xx
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "notFound"
    METHOD_NOT_ALLOWED = "methodNotAllowed"
    NOT_ACCEPTABLE = "notAcceptable"
    CONFLICT = "conflict"
    INVALID_TRANSITION = "invalidTransition"
    PRECONDITION_FAILED = "preconditionFailed"
    PAYLOAD_TOO_LARGE = "payloadTooLarge"
    UNSUPPORTED_MEDIA_TYPE = "unsupportedMediaType"
    UNPROCESSABLE_ENTITY = "unprocessableEntity"
    # 5xx
    INTERNAL_ERROR = "internalError"

    @property
    def fault(self) -> Fault:
        return CATALOGUE[self]

    @property
    def status(self) -> int:
        return CATALOGUE[self].status

    @property
    def reason(self) -> str:
        return CATALOGUE[self].reason

    def error(
        self, message: str | None = None, *, reason: str | None = None, headers: dict[str, str] | None = None
    ) -> ApiError:
        """The typed error for this code (a ``BadRequest`` for a 400...), ready to raise."""
        cls = _CLASS_BY_STATUS.get(self.status, ApiError)
        return cls(reason or self.reason, message, status=self.status, code=self.value, headers=headers)


C = ErrorCode
#: code -> (status, standard reason, when it is used)
CATALOGUE: Mapping[ErrorCode, Fault] = {
    C.MALFORMED_JSON: Fault(400, "Malformed JSON", "The body is not JSON (RFC 8259): syntax, NaN, empty."),
    C.INVALID_BODY: Fault(400, "Invalid body", "The body does not validate against the resource's model."),
    C.INVALID_PATCH: Fault(400, "Invalid patch", "A merge or JSON Patch document of the wrong shape."),
    C.INVALID_CHARACTER: Fault(400, "Invalid character", "Text holds a NUL or a lone surrogate."),
    C.INVALID_QUERY: Fault(400, "Invalid query", "offset, limit, sort or fields of the wrong form."),
    C.UNKNOWN_ATTRIBUTE: Fault(400, "Unknown attribute", "A filter, sort or fields name the model lacks."),
    C.INVALID_FILTER_VALUE: Fault(400, "Invalid filter value", "Not of the attribute's type or enum."),
    C.INVALID_HUB_QUERY: Fault(400, "Invalid hub query", "A hub subscription query of the wrong form."),
    C.INVALID_CALLBACK: Fault(400, "Invalid callback", "A hub callback that is not an http(s) URL."),
    C.BAD_REQUEST: Fault(400, "Bad request", "Any other 400, with the resource's own reason."),
    C.UNAUTHORIZED: Fault(401, "Unauthorized", "No valid credentials."),
    C.FORBIDDEN: Fault(403, "Forbidden", "Credentials without the right."),
    C.NOT_FOUND: Fault(404, "Not found", "No resource with that id, or no route at that path."),
    C.METHOD_NOT_ALLOWED: Fault(405, "Method not allowed", "The path exists; Allow lists its methods."),
    C.NOT_ACCEPTABLE: Fault(406, "Not acceptable", "No representation matches Accept."),
    C.CONFLICT: Fault(409, "Conflict", "The request does not fit the resource's current state."),
    C.INVALID_TRANSITION: Fault(409, "Invalid state transition", "The lifecycle forbids that state change."),
    C.PRECONDITION_FAILED: Fault(412, "Precondition failed", "If-Match names another version."),
    C.PAYLOAD_TOO_LARGE: Fault(413, "Payload too large", "The body exceeds the service's limit."),
    C.UNSUPPORTED_MEDIA_TYPE: Fault(
        415, "Unsupported media type", "A body that is not JSON (or a patch type)."
    ),
    C.UNPROCESSABLE_ENTITY: Fault(422, "Unprocessable entity", "Idempotency key reused with another body."),
    C.INTERNAL_ERROR: Fault(500, "Internal error", "A fault of the service; logged, never detailed."),
}
del C

#: HTTP status -> the code Starlette's own errors (unknown path, wrong method...) are answered with.
CODE_BY_STATUS: Mapping[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    409: ErrorCode.CONFLICT,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.UNPROCESSABLE_ENTITY,
    500: ErrorCode.INTERNAL_ERROR,
}


class ApiError(Exception):
    """An error that becomes a TMF ``Error`` body with ``status``."""

    status: int = 500
    code: str = ErrorCode.INTERNAL_ERROR.value

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
    code = ErrorCode.BAD_REQUEST.value


class NotFound(ApiError):
    status = 404
    code = ErrorCode.NOT_FOUND.value


class Conflict(ApiError):
    """A state conflict, such as an illegal state transition."""

    status = 409
    code = ErrorCode.CONFLICT.value


class PreconditionFailed(ApiError):
    status = 412
    code = ErrorCode.PRECONDITION_FAILED.value


class UnsupportedMediaType(ApiError):
    status = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE.value


class UnprocessableEntity(ApiError):
    status = 422
    code = ErrorCode.UNPROCESSABLE_ENTITY.value


_CLASS_BY_STATUS: Mapping[int, type[ApiError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    415: UnsupportedMediaType,
    422: UnprocessableEntity,
}


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """``loc: msg; ...`` for pydantic/FastAPI validation errors (the ``body`` prefix left out)."""
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def is_malformed_json(errors: Iterable[Mapping[str, Any]]) -> bool:
    return any(error.get("type") == "json_invalid" for error in errors)


def invalid_body(exc: ValidationError | Iterable[Mapping[str, Any]]) -> ApiError:
    """The error for a body (or a patched document) that fails its model: what a POST answers.

    ``raise invalid_body(exc) from exc`` in a ``except ValidationError as exc`` block."""
    errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else list(exc)
    code = ErrorCode.MALFORMED_JSON if is_malformed_json(errors) else ErrorCode.INVALID_BODY
    return code.error(describe_validation_errors(errors) or None)


def malformed_json(message: str | None = None) -> ApiError:
    """The error for a body that is not JSON."""
    return ErrorCode.MALFORMED_JSON.error(message)
