"""The OpenAPI operations of the kit's plain routes, built from the same declarations that serve them.

Each :class:`~switchboard_kit.resource.Resource` gives its operations here (clean operationIds,
only the statuses that can occur, the TMF630 list parameters its query compiler accepts), and the
hub gives its own. :func:`install` adds them and their component schemas to the app's document.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tmf_models import common

from .auth import PUBLIC_PREFIXES
from .query import QueryCompiler

BEARER = "bearerAuth"

_REASONS = {
    401: "Unauthorized: no bearer token, or one that is expired or badly signed",
    403: "Forbidden: the token's roles do not allow this operation",
    304: "Not Modified: the resource still has the ETag named in If-None-Match",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
}

_FIELD_LIST = r"^[A-Za-z@][A-Za-z0-9@_]*(\.[A-Za-z@][A-Za-z0-9@_]*)*(,[A-Za-z@][A-Za-z0-9@_]*(\.[A-Za-z@][A-Za-z0-9@_]*)*)*$"
# Non-empty values; a comma separates alternatives, so none may be empty.
_ALTERNATIVES = r"^[^,\u0000]+(,[^,\u0000]+)*$"
_KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "int": {"type": "integer"},
    "decimal": {"type": "number"},
    "bool": {"type": "boolean"},
}
_ORDERED_KINDS = frozenset({"datetime", "date", "int", "decimal"})


def ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def errors(*statuses: int) -> dict[str, Any]:
    """TMF Error answers for ``statuses``."""
    return {
        str(status): {
            "description": _REASONS.get(status, "Error"),
            "content": json_content(ref(common.Error)),
        }
        for status in sorted(set(statuses))
    }


def path_id(what: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": f"Identifier of the {what}",
        "schema": {"type": "string"},
    }


def fields_parameter(always: Sequence[str]) -> dict[str, Any]:
    kept = f" ({' and '.join(always)} are always kept)" if always else ""
    return {
        "name": "fields",
        "in": "query",
        "description": f"Comma-separated attributes to return, dotted for nested ones{kept}",
        "schema": {"type": "string", "pattern": _FIELD_LIST},
    }


def _enum_values(model: type[BaseModel], dotted: str) -> list[str] | None:
    """The values of the enum at ``dotted`` in ``model`` (through lists and optionals), if it is one."""
    tp: Any = model
    for segment in dotted.split("."):
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return None
        annotation = next(
            (f.annotation for name, f in tp.model_fields.items() if segment in (name, f.alias)), None
        )
        if annotation is None:
            return None
        tp = _element(annotation)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(member.value) for member in tp]
    return None


def _element(annotation: Any) -> Any:
    """``list[X] | None`` -> ``X``: the one model or enum an annotation holds, else the annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if not args:
        return annotation
    for arg in args:
        inner = _element(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel | enum.Enum):
            return inner
    return annotation


def filter_parameters(compiler: QueryCompiler, names: Sequence[str]) -> list[dict[str, Any]]:
    """Query parameters for the filters ``names``, typed as the compiler reads them: enums list their
    values, dates and numbers take the comparison operators as suffixes too."""
    params: list[dict[str, Any]] = []
    for name in names:
        path = compiler.resolve(name)
        kind = path.kind if path is not None else "str"
        schema = dict(_KIND_SCHEMAS.get(kind, {"type": "string"}))
        values = _enum_values(compiler.model, name)
        if values is not None:
            schema["enum"] = values
        elif schema == {"type": "string"}:
            schema["pattern"] = _ALTERNATIVES
        suffixes = ("", ".gt", ".gte", ".lt", ".lte") if kind in _ORDERED_KINDS else ("",)
        for suffix in suffixes:
            params.append(
                {
                    "name": name + suffix,
                    "in": "query",
                    "description": f"TMF630 filter on {name}{suffix or ''}; a comma means OR. Any attribute "
                    "path of the resource can be filtered, with the operators .eq .ne .gt .gte .lt .lte",
                    "schema": schema,
                }
            )
    return params


def list_parameters(
    compiler: QueryCompiler, *, sort: Sequence[str], filters: Sequence[str], always: Sequence[str]
) -> list[dict[str, Any]]:
    """Paging, field selection, sort and the documented filters of a TMF630 list operation."""
    return [
        fields_parameter(always),
        {
            "name": "offset",
            "in": "query",
            "description": "Index of the first result",
            "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
        },
        {
            "name": "limit",
            "in": "query",
            "description": "Maximum number of results",
            "schema": {"type": "integer", "minimum": 1, "maximum": compiler.max_limit},
        },
        {
            "name": "sort",
            "in": "query",
            "description": "Attribute to sort on; a leading '-' sorts descending",
            "schema": {"type": "string", "enum": [*sort, *(f"-{f}" for f in sort)]},
        },
        *filter_parameters(compiler, filters),
    ]


def list_responses(item: type[BaseModel]) -> dict[str, Any]:
    count_headers = {
        "X-Total-Count": {"description": "Number of matching resources", "schema": {"type": "integer"}},
        "X-Result-Count": {
            "description": "Number of resources in this answer",
            "schema": {"type": "integer"},
        },
    }
    items = json_content({"type": "array", "items": ref(item)})
    return {
        "200": {"description": "The matching resources", "headers": count_headers, "content": items},
        "206": {
            "description": "One page (the client asked for offset or limit) of the matching resources; more remain",
            "headers": count_headers,
            "content": items,
        },
        **errors(400),
    }


# Each contributor gives (paths, models by JSON Schema mode); see install().
OpenApiPart = tuple[dict[str, dict[str, Any]], list[tuple[type[BaseModel], str]]]


def install(app: FastAPI, parts: Sequence[Callable[[], OpenApiPart]]) -> None:
    """Adds the operations of ``parts`` (and the schemas of their models) to ``app``'s OpenAPI."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            models: list[tuple[type[BaseModel], Any]] = [(common.Error, "serialization")]
            paths = schema.setdefault("paths", {})
            for part in parts:
                part_paths, part_models = part()
                for path, operations in part_paths.items():
                    paths.setdefault(path, {}).update(operations)
                models.extend(part_models)
            _, definitions = models_json_schema(
                list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}"
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(definitions.get("$defs", {}))
            schema["components"]["schemas"] = dict(sorted(components.items()))
            schema["components"]["securitySchemes"] = {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT from the identity provider; its roles claim decides what the caller may do",
                }
            }
            for path, operations in paths.items():
                if path.startswith(PUBLIC_PREFIXES):
                    continue
                for operation in operations.values():
                    operation.setdefault("security", [{BEARER: []}])
                    operation["responses"] = dict(
                        sorted({**operation["responses"], **errors(401, 403)}.items())
                    )
            schema["paths"] = dict(sorted(paths.items()))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
