"""suite.toml is read strictly: a typo in a key or a type fails with the file and the key named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from switchboard_dev.launcher import SuiteError, service_spec
from switchboard_dev.manifest import MANIFEST, SERVICES, ManifestError, load

VALID = """
[services.billing]
package = "billing"
port = 8678
base_path = "/tmf-api/customerBillManagement/v4"
api = "TMF678 Customer Bill v4"
env_prefix = "BILLING_"
database = "switchboard_billing"
app = "billing.app:create_app"
alembic_ini = "services/billing/alembic.ini"
events = "billing.events"

[services.billing.topics]
"tmf678.customerBill" = ["BILL_EVENTS"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_a_valid_manifest(tmp_path: Path) -> None:
    (spec,) = load(write(tmp_path, VALID))
    assert spec.name == "billing"
    assert spec.port == 8678
    assert spec.base_path == "/tmf-api/customerBillManagement/v4"
    assert dict(spec.topics) == {"tmf678.customerBill": ("BILL_EVENTS",)}
    assert spec.resource is None
    assert spec.seed is None


def test_the_repository_manifest_loads() -> None:
    assert load(MANIFEST) == SERVICES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("port = 8678", 'port = "8678"'), "services.billing.port must be an integer"),
        (lambda t: t.replace('package = "billing"\n', ""), "missing ['package']"),
        (lambda t: t.replace("api = ", "apii = "), "unknown key(s) ['apii']; missing ['api']"),
        (lambda t: t.replace('["BILL_EVENTS"]', '"BILL_EVENTS"'), "maps each topic to a list"),
        (
            lambda t: t.replace("[services.billing]", "[service.billing]"),
            "unknown top-level key(s) ['service']",
        ),
        (lambda t: "", "no [services.<name>] table"),
        (lambda t: t + "\n[services", "suite.toml"),
    ],
)
def test_a_bad_manifest_names_the_problem(tmp_path: Path, change: Callable[[str], str], message: str) -> None:
    path = write(tmp_path, change(VALID))
    with pytest.raises(ManifestError) as info:
        load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no suite manifest"):
        load(tmp_path / "suite.toml")


def test_the_launcher_refuses_an_unknown_service() -> None:
    with pytest.raises(SuiteError, match=r"unknown service 'nope' \(known: .*suite\.toml"):
        service_spec("nope")
