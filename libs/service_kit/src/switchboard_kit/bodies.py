"""Request bodies: JSON read strictly (media type, nesting depth, finite numbers) and validated from its bytes,
and the client's document as stored (nulls dropped)."""

from __future__ import annotations

import functools
import json
import math
import re
import typing
from decimal import Decimal
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from .errors import ApiError, BadRequest, ErrorCode, UnsupportedMediaType

ModelT = typing.TypeVar("ModelT", bound=BaseModel)


def ensure_storable(doc: Any) -> None:
    """400 for values the JSONB serializer cannot write: integers beyond 64 bits and unpaired UTF-16
    surrogates, both of which Python's JSON parser accepts. (A NUL character is refused by PostgreSQL
    itself; the app's error handler turns that into a 400.)"""
    try:
        orjson.dumps(doc)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise BadRequest("Invalid JSON value", str(exc)) from exc


def input_document(model: BaseModel, raw: bytes | None = None) -> dict[str, Any]:
    """The JSON document a client sent, validated: only the attributes it set, and no nulls.

    TMF v4 schemas allow null nowhere except in untyped values (``Characteristic.value``), while the
    models accept ``None`` for every optional attribute; a null therefore means "absent" and is dropped,
    so it is never echoed back. Extension attributes the models do not describe are kept as sent.
    ``raw``, the bytes ``model`` was validated from, saves the walk for nulls when it has none.
    """
    doc: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if raw is None or b"null" in raw:
        _drop_nulls(type(model), doc)
    ensure_storable(doc)
    return doc


def _drop_nulls(cls: type[BaseModel], doc: dict[str, Any]) -> None:
    plan = _null_plan(cls)
    for key in list(doc):
        entry = plan.get(key)
        if entry is None:
            continue
        required, model = entry
        value = doc[key]
        if value is None:
            if not required:
                del doc[key]
            continue
        if model is None:  # untyped, or an ambiguous union: leave as sent
            continue
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _drop_nulls(model, item)
        elif isinstance(value, dict):
            _drop_nulls(model, value)


@functools.cache
def _null_plan(cls: type[BaseModel]) -> dict[str, tuple[bool, type[BaseModel] | None]]:
    """Per wire name: whether the attribute is required, and the one model class it nests (if any)."""
    plan: dict[str, tuple[bool, type[BaseModel] | None]] = {}
    for name, field in cls.model_fields.items():
        models = _model_classes(field.annotation)
        plan[field.alias or name] = (field.is_required(), models[0] if len(models) == 1 else None)
    return plan


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _model_classes(arg)]


# How deep objects and arrays may nest in a request document (POST bodies and PATCH documents, and
# the document a PATCH produces). TMF622 resources need about ten levels (bundled items with
# characteristics); 64 leaves room for any real client. It must stay well below the limits that
# would otherwise answer for us with an error or a 500: pydantic's JSON parser stops at about 200
# levels, and orjson, which writes events and hub deliveries, at 254. An event wraps the resource
# two levels deeper ({"event": {"productOrder": ...}}), so 64 keeps every document we store
# serialisable wherever it goes, and recursion in the merge and copy code stays shallow.
MAX_JSON_DEPTH = 64

_OPENERS, _CLOSERS = b"[{", b"]}"
# Brackets become "(" and ")", quotes stay, every other byte is deleted.
_SKELETON = bytes.maketrans(_OPENERS + _CLOSERS, b"((" + b"))")
_NOT_SKELETON = bytes(b for b in range(256) if b not in b'[]{}"')
_SKELETON_STRING = re.compile(rb'"[^"]*"')


def too_deep() -> ApiError:
    return ErrorCode.INVALID_BODY.error(
        f"Objects and arrays may be nested at most {MAX_JSON_DEPTH} levels deep",
        reason="JSON nesting too deep",
    )


def json_nesting_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests objects and arrays deeper than ``limit`` (the top-level
    value is level 1), computed from the bytes without parsing them. Exact for valid JSON; for
    malformed JSON it may answer either way, and the parser rejects that body anyway.

    Costs about a microsecond for a body with at most ``limit`` brackets (a typical order); above
    that, a few C-level passes over the body and over its brackets.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:  # drop escapes (pairs of backslashes first), so every quote left delimits a string
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(_SKELETON, _NOT_SKELETON)
    # A string without brackets is now '""'. Removing those pairs removes every quote exactly when no
    # string holds a bracket; otherwise drop each string with its brackets (the skeleton is short).
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _SKELETON_STRING.sub(b"", skeleton)
    # Each pass removes the innermost level: a "()" left after ``limit`` passes is deeper than that.
    for _ in range(limit):
        if b"()" not in skeleton:
            return False
        skeleton = skeleton.replace(b"()", b"")
    return b"()" in skeleton


class NonFiniteNumber(ValueError):
    """NaN, Infinity or a number beyond the range of a double: not JSON (RFC 8259 section 6)."""


def _reject_constant(name: str) -> Any:
    raise NonFiniteNumber(f"{name} is not valid JSON")


def _out_of_range(text: str) -> NonFiniteNumber:
    shown = text if len(text) <= 40 else text[:40] + "..."
    return NonFiniteNumber(f"The number {shown} is beyond the range of a double")


class InexactNumber(ValueError):
    """A number with a fraction or exponent that would not come back as sent (see :func:`check_exact`)."""


# A double holds every decimal of at most 15 significant digits exactly (DBL_DIG): shorter plain
# numbers need no check.
SAFE_SIGNIFICANT_DIGITS = 15


def check_exact(text: str) -> None:
    """Raise :class:`InexactNumber` unless the JSON number ``text`` (one with a fraction or an
    exponent) is exactly the number a double holds and prints: ``float(text)`` written back
    (shortest representation, as orjson and ``repr`` write it) is the same number.

    The suite's JSON (orjson, pydantic's parser, the JSONB codec, Kafka consumers) carries such
    numbers as IEEE doubles. Refusing the others at the door is what makes every amount exact end to
    end: what the models read as ``Decimal``, what PostgreSQL stores (JSONB numbers are ``numeric``)
    and what GET, lists, PATCH and events write are the number the client sent. Every number of at
    most 15 significant digits in a double's range passes (``19.99``, ``0.1``), and so does the
    shortest representation of any double (``0.30000000000000004``); ``0.30000000000000001`` (read
    as 0.3), ``12345678901234.567`` and ``1e-400`` (read as 0) do not."""
    try:
        number = Decimal(text)
        same = Decimal(repr(float(text))) == number
    except (ArithmeticError, ValueError):  # pragma: no cover - the parser only hands over number tokens
        same = False
    if not same:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InexactNumber(
            f"The number {shown} cannot be kept exactly (it is not a value a double holds); "
            f"numbers of at most {SAFE_SIGNIFICANT_DIGITS} significant digits always can"
        )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _out_of_range(text)
    if len(text) > SAFE_SIGNIFICANT_DIGITS + 1 or "e" in text or "E" in text:
        check_exact(text)  # a shorter plain number has at most 15 digits
    return value


def _finite_int(text: str) -> int:
    if len(text.lstrip("-")) > 309:  # beyond any double: a float attribute would read it as infinity
        raise _out_of_range(text)
    return int(text)


def strict_json_loads(body: bytes | str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers that overflow a double with
    :class:`NonFiniteNumber` (the stdlib parser accepts the first two and reads 1e400 as infinity)."""
    return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_finite_int)


# Digits become "0" and "E" becomes "e", so a few substring tests find exponents of three or more
# digits, and a regular expression finds 16 digits in a row or with a decimal point among them (the
# least that check_exact refuses; it also covers the 210 digits or more that can overflow a double).
_NUMBER_SHAPE = bytes.maketrans(b"123456789E", b"000000000e")
_SIXTEEN_DIGITS = re.compile(rb"0(?:\.?0){15}")


def _may_be_non_finite(body: bytes) -> bool:
    """Cheap test: False when ``body`` surely has no NaN, Infinity, overflowing number token, or number
    that :func:`check_exact` refuses (16 digits or more, or a three-digit exponent)."""
    if b"NaN" in body or b"Infinity" in body:
        return True
    shape = body.translate(_NUMBER_SHAPE)
    return b"e000" in shape or b"e+000" in shape or b"e-000" in shape or bool(_SIXTEEN_DIGITS.search(shape))


def parse_body(model: type[ModelT], body: bytes, content_type: str | None) -> ModelT:
    """The request body validated as ``model`` straight from its bytes (pydantic's own JSON parser).

    Errors are FastAPI's: a ``RequestValidationError`` listing every problem, which the app answers
    with a TMF Error and 400 ("Malformed JSON" when the body is not JSON). A media type other than
    JSON (``application/json`` or ``…+json``) is a 415; a body sent without one is read as JSON.
    Objects and arrays nested deeper than :data:`MAX_JSON_DEPTH` are a 400, and so are NaN,
    Infinity and numbers beyond a double, which pydantic's parser would accept (and which would be
    stored as null): RFC 8259 JSON has none of them. A number that would not come back as sent (more
    digits than a double holds, :func:`check_exact`) is a 400 too.
    """
    if content_type is not None:
        media = content_type.partition(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType(
                "Unsupported media type", f"Send the body as application/json, not {media[:100]}"
            )
    if json_nesting_exceeds(body):
        raise too_deep()
    try:
        model_value = model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    if _may_be_non_finite(body):
        # A token test only: "NaN" may be inside a string. The strict parser decides.
        try:
            strict_json_loads(body)
        except InexactNumber as exc:
            raise ErrorCode.INVALID_BODY.error(str(exc), reason="Number not exact") from None
        except NonFiniteNumber as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": f"Invalid JSON: {exc}", "input": None}]
            ) from None
        except (ValueError, RecursionError):  # stricter than pydantic elsewhere (Python's digit limit)
            pass  # not this check's business: pydantic accepted the body
    return model_value
