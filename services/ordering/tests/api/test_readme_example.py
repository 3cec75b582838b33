"""The README's "Try it" order works: the curl body posted as it is gets 201 and an order in progress."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from ..conftest import BASE

pytestmark = pytest.mark.asyncio

README = Path(__file__).resolve().parents[4] / "README.md"


def try_it_curl() -> tuple[str, str]:
    """The path and JSON body of the first ``curl`` in the README's "Try it" section."""
    section = README.read_text().split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```sh\n(?:TOKEN=\$\(make -s token ROLE=\w+\)\n)(curl .*?)\n```", section, re.S)
    assert command is not None, "no token and curl in the Try it section"
    assert '-H "Authorization: Bearer $TOKEN"' in command.group(1)
    url = re.search(r"http://localhost:8622(\S+)", command.group(1))
    body = re.search(r"-d '(.*)'", command.group(1), re.S)
    assert url is not None and body is not None
    return url.group(1), body.group(1)


async def test_the_try_it_order_is_accepted(client: httpx.AsyncClient) -> None:
    path, body = try_it_curl()
    assert path == f"{BASE}/productOrder"

    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["state"] == "inProgress"
    assert json.loads(body)["relatedParty"] == order["relatedParty"]
    assert order["orderTotalPrice"][0]["price"]["taxIncludedAmount"] == {"unit": "EUR", "value": 12.1}
