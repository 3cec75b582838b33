"""Every ``format`` the official specs declare on an input attribute is checked by the models:
``date-time`` (RFC 3339 with an offset, see test_wire.py), ``uri`` (RFC 3986) and ``float``
(a JSON number). ``"@schemaLocation": ""`` used to be stored and echoed (issue #8, "Done when")."""

from __future__ import annotations

import inspect
import json
import typing
from types import UnionType
from typing import Any, Union

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError, WithJsonSchema

from tmf_models import _generated, common, tmf621, tmf622, tmf676, tmf678
from tmf_models._base import AnyUri

MODULES = (common, tmf621, tmf622, tmf676, tmf678)

VALID_URIS = [
    "https://api.switchboard.example/schemas/ProductOrder.schema.json",
    "http://example.org/a/b?c=d&e=f#g",
    "urn:tmf:schema:ProductOrder",
    "file:///schemas/order.json",
    "http://[2001:db8::7]:8080/s.json",
    "http://[::ffff:192.0.2.1]/s.json",
    "mailto:ops@example.org",
    "https://example.org/%7Euser/s.json",
]
INVALID_URIS = [
    "",
    " ",
    "ProductOrder.schema.json",  # a relative reference is not a URI
    "/schemas/order.json",
    "//example.org/s.json",
    "https://example.org/a b",
    "https://example.org/%zz",
    "https://example.org/#a#b",
    "https://exa mple.org/",
    "1http://example.org/",
    "http://[1]/x",
    "http://a:port/",
    "http://a@b@c/",
    "https://example.org/é",
    "https://example.org/\n",
]


def uri_fields() -> list[tuple[type[BaseModel], str, str]]:
    """(model, python name, wire name) of every attribute whose JSON schema says ``format: uri``."""
    found = []
    for module in MODULES:
        for _, model in inspect.getmembers(module, inspect.isclass):
            if not issubclass(model, BaseModel) or not model.__module__.startswith(_generated.__name__):
                continue
            for name, field in model.model_fields.items():
                if _format_of(field.annotation) == "uri":
                    found.append((model, name, field.alias or name))
    return sorted(set(found), key=lambda f: (f[0].__module__, f[0].__name__, f[1]))


def _format_of(annotation: Any) -> Any:
    """The ``format`` an annotation's JSON schema declares (through Optional and Annotated)."""
    for arg in (
        typing.get_args(annotation) if typing.get_origin(annotation) in (Union, UnionType) else [annotation]
    ):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, WithJsonSchema) and meta.json_schema:
                return meta.json_schema.get("format")
    return None


def _schema_format(model: type[BaseModel], key: str) -> Any:
    prop = model.model_json_schema().get("properties", {}).get(key, {})
    options = prop.get("anyOf", [prop])
    return next((o.get("format") for o in options if o.get("format")), None)


URI_FIELDS = uri_fields()
ADAPTERS: list[TypeAdapter[Any]] = [
    TypeAdapter(model.model_fields[name].annotation) for model, name, _ in URI_FIELDS
]


def test_the_uri_attributes_of_the_specs_are_found() -> None:
    wire = {(model.__name__, alias) for model, _, alias in URI_FIELDS}
    assert ("ProductOrder_Create", "@schemaLocation") in wire
    assert ("RelatedParty", "@schemaLocation") in wire
    assert ("Error", "referenceError") in wire
    assert {alias for _, _, alias in URI_FIELDS} == {"@schemaLocation", "referenceError"}
    assert len(URI_FIELDS) > 50


@pytest.mark.parametrize("value", VALID_URIS)
def test_valid_uris_are_kept_as_sent(value: str) -> None:
    body = {"productOrderItem": [{"id": "1", "action": "add"}], "@schemaLocation": value}
    order = tmf622.ProductOrder_Create.model_validate(body)
    assert common.dump(order)["@schemaLocation"] == value
    assert common.dump(tmf622.ProductOrder_Create.model_validate_json(common.dump_json(order))) == body


@pytest.mark.parametrize("value", INVALID_URIS)
def test_invalid_uris_are_refused_everywhere(value: str) -> None:
    for adapter in ADAPTERS:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
    body = {"productOrderItem": [{"id": "1", "action": "add"}], "@schemaLocation": value}
    with pytest.raises(ValidationError) as err:
        tmf622.ProductOrder_Create.model_validate(body)
    assert err.value.errors()[0]["loc"] == ("@schemaLocation",)
    nested = {
        "productOrderItem": [
            {"id": "1", "action": "add", "productOffering": {"id": "x", "@schemaLocation": value}}
        ]
    }
    with pytest.raises(ValidationError):
        tmf622.ProductOrder_Create.model_validate(nested)
    with pytest.raises(ValidationError):
        tmf622.ProductOrder_Create.model_validate_json(
            b'{"productOrderItem": [{"id": "1", "action": "add"}], "@schemaLocation": '
            + json.dumps(value).encode()
            + b"}"
        )


def test_a_uri_is_a_string_not_a_number() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(AnyUri).validate_python(5)


def test_the_json_schema_says_format_uri() -> None:
    assert _schema_format(tmf622.ProductOrder_Create, "@schemaLocation") == "uri"
    assert "pattern" not in str(
        tmf622.ProductOrder_Create.model_json_schema()["properties"]["@schemaLocation"]
    )
