"""Payment and refund states (TMF676 v4 ``status``) and the only way to change them.

A payment starts ``pendingAuthorization``; the gateway's answer moves it to ``authorized`` and then
``captured``, or to ``denied`` (the gateway said no) or ``failed`` (nothing was or will be charged).
A refund follows the same lifecycle. While the gateway's answer is unknown (a timeout) the document
stays ``pendingAuthorization`` and reconciliation asks again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from switchboard_kit.errors import Conflict, ErrorCode


class Status(StrEnum):
    PENDING_AUTHORIZATION = "pendingAuthorization"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DENIED = "denied"
    FAILED = "failed"


_S = Status
ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.PENDING_AUTHORIZATION: frozenset({_S.AUTHORIZED, _S.DENIED, _S.FAILED}),
    _S.AUTHORIZED: frozenset({_S.CAPTURED, _S.FAILED}),
    _S.CAPTURED: frozenset(),
    _S.DENIED: frozenset(),
    _S.FAILED: frozenset(),
}
FINAL = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if not targets)
# A refund in one of these states takes its amount off what its payment can still refund.
COUNTED_REFUND_STATES = (_S.PENDING_AUTHORIZATION, _S.AUTHORIZED, _S.CAPTURED)


class InvalidTransition(Conflict):
    code = ErrorCode.INVALID_TRANSITION.value

    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"Cannot change status from {current} to {target}")


def transition(current: Status, target: Status) -> Status:
    """``target`` if the lifecycle allows ``current -> target`` (staying put is a no-op)."""
    if current != target and target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(current, target)
    return target


def start(doc: dict[str, Any], stamp: str) -> None:
    """Gives a new payment or refund its first status."""
    doc["status"] = Status.PENDING_AUTHORIZATION.value
    doc["statusDate"] = stamp


def move(doc: dict[str, Any], target: Status, stamp: str) -> bool:
    """Moves ``doc`` to ``target`` through the table; returns whether the status changed."""
    current = Status(doc["status"])
    doc["status"] = transition(current, target).value
    if current != target:
        doc["statusDate"] = stamp
    return current != target
