"""make run tells each service where its siblings are: <PREFIX>SIBLINGS__<NAME>, from the manifest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from switchboard_dev.launcher import Suite, service_spec
from switchboard_kit.settings import ServiceSettings


def two_service_suite(tmp_path: Path) -> Suite:
    ordering = service_spec("ordering")
    billing = dataclasses.replace(
        ordering, name="billing", env_prefix="BILLING_", base_path="/tmf-api/customerBillManagement/v4"
    )
    suite = Suite(tmp_path, ["ordering"], ports={"ordering": 18622})
    suite.specs = [ordering, billing]
    suite.ports = {"ordering": 18622, "billing": 18678}
    suite.database_urls = {"ordering": "postgresql+asyncpg://x/o", "billing": "postgresql+asyncpg://x/b"}
    return suite


def test_each_service_gets_the_api_url_of_every_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERING_SIBLINGS__BILLING", raising=False)
    suite = two_service_suite(tmp_path)
    ordering, billing = suite.specs
    env = suite._env(ordering)
    assert env["ORDERING_SIBLINGS__BILLING"] == "http://127.0.0.1:18678/tmf-api/customerBillManagement/v4"
    assert "ORDERING_SIBLINGS__ORDERING" not in env
    assert suite._env(billing)["BILLING_SIBLINGS__ORDERING"] == (
        "http://127.0.0.1:18622/tmf-api/productOrderingManagement/v4"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Settings(ServiceSettings):
        model_config = ServiceSettings.model_config | {"env_prefix": "ORDERING_"}

    assert Settings().siblings == {"billing": "http://127.0.0.1:18678/tmf-api/customerBillManagement/v4"}


def test_a_url_set_by_hand_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ORDERING_SIBLINGS__BILLING", "https://billing.example/tmf-api/customerBillManagement/v4"
    )
    suite = two_service_suite(tmp_path)
    env = suite._env(suite.specs[0])
    assert env["ORDERING_SIBLINGS__BILLING"] == "https://billing.example/tmf-api/customerBillManagement/v4"
