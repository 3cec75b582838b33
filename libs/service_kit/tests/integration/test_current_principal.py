"""auth.current_principal(): the verified caller, for domain code that records who did a thing (a
trouble ticket's status change) without being handed the request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchboard_dev import testing
from switchboard_kit import auth

pytestmark = pytest.mark.asyncio


def recording_app(seen: list[auth.Principal | None]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(auth.current_principal())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    settings = testing.auth_settings()
    verifier = auth.Verifier(
        jwks_url=settings["auth_jwks_url"], issuer=settings["auth_issuer"], audience=settings["auth_audience"]
    )
    return auth.AuthMiddleware(app, verifier=verifier)


async def test_the_handler_sees_the_verified_caller_and_nothing_leaks_after() -> None:
    seen: list[auth.Principal | None] = []
    transport = httpx.ASGITransport(app=recording_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = testing.auth_headers("customer", subject="ann", party="P1")
        assert (await client.get("/x", headers=headers)).status_code == 204
        assert (await client.get("/health/live")).status_code == 204  # public: no caller
        assert (await client.get("/x")).status_code == 401  # refused before the app
    assert seen == [auth.Principal(subject="ann", roles=frozenset({"customer"}), party_id="P1"), None]
    assert auth.current_principal() is None
