from __future__ import annotations

import pytest

from payment.states import FINAL, InvalidTransition, Status, move, start


def test_the_lifecycle() -> None:
    doc: dict[str, str] = {}
    start(doc, "t0")
    assert doc == {"status": "pendingAuthorization", "statusDate": "t0"}
    assert move(doc, Status.AUTHORIZED, "t1") and doc["statusDate"] == "t1"
    assert not move(doc, Status.AUTHORIZED, "t2") and doc["statusDate"] == "t1"  # staying put is a no-op
    assert move(doc, Status.CAPTURED, "t3")
    assert {Status.CAPTURED, Status.DENIED, Status.FAILED} == FINAL


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.PENDING_AUTHORIZATION, Status.CAPTURED),  # never captured without an authorization
        (Status.CAPTURED, Status.FAILED),
        (Status.DENIED, Status.AUTHORIZED),
        (Status.AUTHORIZED, Status.DENIED),
    ],
)
def test_what_the_lifecycle_refuses(current: Status, target: Status) -> None:
    doc = {"status": current.value}
    with pytest.raises(InvalidTransition):
        move(doc, target, "t")
    assert doc["status"] == current.value
