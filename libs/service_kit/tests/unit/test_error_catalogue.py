"""One catalogue of error codes: the same fault reads the same on POST and PATCH (issue #8, section 6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from switchboard_kit.app import install_error_handlers
from switchboard_kit.bodies import parse_body
from switchboard_kit.errors import CATALOGUE, ErrorCode, invalid_body
from switchboard_kit.patch import MERGE_PATCH, apply_patch


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = 0
    ratio: float | None = None


STORED: dict[str, Any] = {"name": "t", "size": 1}


def thing_app() -> FastAPI:
    """POST through FastAPI's own body validation and through the kit's ``parse_body``; PATCH as a
    service does it: ``apply_patch``, then the model, with ``invalid_body`` on a ValidationError."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/thing")
    async def create(body: Thing) -> Thing:
        return body

    @app.post("/parsed")
    async def create_parsed(request: Request) -> JSONResponse:
        thing = parse_body(Thing, await request.body(), request.headers.get("content-type"))
        return JSONResponse(thing.model_dump())

    @app.patch("/thing")
    async def patch(request: Request) -> JSONResponse:
        patched = apply_patch(STORED, await request.body(), request.headers.get("content-type"))
        try:
            thing = Thing.model_validate(patched)
        except ValidationError as exc:
            raise invalid_body(exc) from exc
        return JSONResponse(thing.model_dump())

    return app


@pytest_asyncio.fixture
async def client() -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=thing_app()), base_url="http://t") as c:
        yield c


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["@type"] == "Error"
    assert body["status"] == str(response.status_code)
    return response.status_code, body["code"], body["reason"]


JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": MERGE_PATCH}


@pytest.mark.asyncio
@pytest.mark.parametrize("content", [b'{"name": ', b"not json", b'{"name": "x", "ratio": NaN}', b""])
async def test_malformed_json_reads_the_same_on_post_and_patch(
    client: httpx.AsyncClient, content: bytes
) -> None:
    expected = (400, "malformedJson", "Malformed JSON")
    assert error_of(await client.patch("/thing", content=content, headers=MERGE)) == expected
    assert error_of(await client.post("/parsed", content=content, headers=JSON)) == expected
    # FastAPI's own body reading takes an empty body for a missing one and NaN for a number; the
    # kit's routes read bodies with parse_body, as /parsed does.
    if content and b"NaN" not in content:
        assert error_of(await client.post("/thing", content=content, headers=JSON)) == expected


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("post", "patch"),
    [
        ({"name": 5}, {"name": 5}),  # wrong type
        ({"name": "x", "size": "big"}, {"size": "big"}),
        ({"name": "x", "colour": "red"}, {"colour": "red"}),  # not in the model
        ({}, {"name": None}),  # required attribute missing
    ],
)
async def test_schema_violations_read_the_same_on_post_and_patch(
    client: httpx.AsyncClient, post: dict[str, Any], patch: dict[str, Any]
) -> None:
    expected = (400, "invalidBody", "Invalid body")
    assert error_of(await client.post("/thing", json=post)) == expected
    assert error_of(await client.post("/parsed", json=post)) == expected
    assert error_of(await client.patch("/thing", json=patch, headers=MERGE)) == expected


@pytest.mark.asyncio
async def test_unsupported_media_type_reads_the_same_on_post_and_patch(client: httpx.AsyncClient) -> None:
    text = {"Content-Type": "text/plain"}
    expected = (415, "unsupportedMediaType", "Unsupported media type")
    assert error_of(await client.post("/parsed", content=b"{}", headers=text)) == expected
    assert error_of(await client.patch("/thing", content=b"{}", headers=text)) == expected


@pytest.mark.asyncio
async def test_starlette_errors_use_the_catalogue(client: httpx.AsyncClient) -> None:
    assert error_of(await client.get("/nowhere")) == (404, "notFound", "Not found")
    assert error_of(await client.put("/thing")) == (405, "methodNotAllowed", "Method not allowed")


def test_every_code_has_a_status_and_reason() -> None:
    assert set(CATALOGUE) == set(ErrorCode)
    for code in ErrorCode:
        error = code.error("detail")
        assert (error.status, error.code, error.reason) == (code.status, code.value, code.reason)
        assert 400 <= error.status < 600


def test_hub_registration_errors_use_the_catalogue() -> None:
    from switchboard_kit.errors import BadRequest
    from switchboard_kit.hub import check_callback, parse_query

    with pytest.raises(BadRequest) as caught:
        check_callback("not-a-url")
    assert (caught.value.code, caught.value.reason) == ("invalidCallback", "Invalid callback")
    with pytest.raises(BadRequest) as caught:
        parse_query("no equals sign")
    assert (caught.value.code, caught.value.reason) == ("invalidHubQuery", "Invalid hub query")
