"""Shared test plumbing: where the TM Forum reference data lives, and the CTK payloads.

Tests that read ``../shared`` skip with a clear message when it is absent, unless
``REQUIRE_TMF_REFERENCE=1`` (CI), where absence is a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def reference_dir() -> Path:
    env = os.environ.get("TMF_REFERENCE_DIR")
    return Path(env).resolve() if env else (REPO_ROOT.parent / "shared").resolve()


def require_reference(sub: str) -> Path:
    """``<reference>/<sub>``, or skip (fail under REQUIRE_TMF_REFERENCE=1) when it is missing."""
    path = reference_dir() / sub
    if not path.is_dir():
        msg = (
            f"TM Forum reference data not found at {path}: set TMF_REFERENCE_DIR to the folder holding "
            "tmf-specs/ and tmf-ctk/ (default <repo root>/../shared)"
        )
        if os.environ.get("REQUIRE_TMF_REFERENCE") == "1":
            pytest.fail(msg + " (REQUIRE_TMF_REFERENCE=1)")
        pytest.skip(msg)
    return path


@pytest.fixture
def specs_dir() -> Path:
    return require_reference("tmf-specs")


@pytest.fixture
def ctk_dir() -> Path:
    return require_reference("tmf-ctk")


@dataclass(frozen=True)
class CtkPayload:
    """A request body from a conformance kit, and what the kit expects of it."""

    api: str  # tmf622, tmf678, ...
    resource: str  # path segment: productOrder, troubleTicket, ...
    method: str
    body: Any
    expect_valid: bool
    source: str

    @property
    def id(self) -> str:
        return f"{self.api}-{self.method}-{self.resource}-{self.source}"


def _collection_requests(
    items: list[dict[str, Any]], folder: str = ""
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for item in items:
        if "item" in item:
            yield from _collection_requests(item["item"], f"{folder}/{item['name']}")
        else:
            yield folder, item["name"], item["request"]


def ctk_payloads(ctk: Path) -> list[CtkPayload]:
    """Every request body in the kits: config.json payloads, schemas/*.example.json and the collections."""
    cases: list[CtkPayload] = []
    resources = {  # kit resource name -> (api, path segment)
        "ProductOrder": ("tmf622", "productOrder"),
        "Payment": ("tmf676", "payment"),
        "CustomerBillOnDemand": ("tmf678", "customerBillOnDemand"),
    }
    for kit in sorted(ctk.iterdir()):
        if not kit.is_dir():
            continue
        api = kit.name.lower()
        config = kit / "config.json"
        if config.is_file():
            for name, methods in json.loads(config.read_text(encoding="utf-8")).get("payloads", {}).items():
                for method, spec in methods.items():
                    cases.append(
                        CtkPayload(api, resources[name][1], method, spec["payload"], True, f"config-{name}")
                    )
        for example in sorted((kit / "schemas").glob("*.example.json")) if (kit / "schemas").is_dir() else []:
            name = example.name.removesuffix(".example.json")
            body = json.loads(example.read_text(encoding="utf-8"))
            cases.append(CtkPayload(api, resources[name][1], "POST", body, True, f"example-{name}"))
        for collection in sorted(kit.glob("*.json")):
            if "environment" in collection.name or collection.name == "config.json":
                continue
            data = json.loads(collection.read_text(encoding="utf-8"))
            for n, (folder, _name, request) in enumerate(_collection_requests(data["item"])):
                raw = (request.get("body") or {}).get("raw")
                if not raw:
                    continue
                url = request["url"] if isinstance(request["url"], str) else request["url"]["raw"]
                resource = url.split("}}", 1)[1].strip("/").split("/")[0].split("?")[0]
                # The kits' E-cases ("Invalid Request ...") send bodies that must be refused.
                expect_valid = "Invalid Request" not in folder
                cases.append(
                    CtkPayload(
                        api,
                        resource,
                        request["method"],
                        json.loads(raw),
                        expect_valid,
                        f"{collection.stem[:12]}-{n}",
                    )
                )
    return cases


@pytest.fixture
def all_ctk_payloads(ctk_dir: Path) -> list[CtkPayload]:
    return ctk_payloads(ctk_dir)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ctk_payload" in metafunc.fixturenames:
        ctk = reference_dir() / "tmf-ctk"
        if ctk.is_dir():
            cases = ctk_payloads(ctk)
            metafunc.parametrize("ctk_payload", cases, ids=[c.id for c in cases])
        else:
            # One placeholder case, which skips (or fails under REQUIRE_TMF_REFERENCE=1).
            metafunc.parametrize("ctk_payload", [None], ids=["reference-missing"])
