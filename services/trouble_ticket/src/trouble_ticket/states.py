"""Trouble ticket statuses (TMF621 v4 ``TroubleTicketStatusType``) and the only way to change them.

``acknowledged -> inProgress <-> pending / held -> resolved -> closed``, and ``cancelled`` or
``rejected`` on the way; every other change is a 409. A document's status is written only by
``start`` (a new ticket) and ``move`` (every later change, through ``transition()``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from switchboard_kit.errors import Conflict, ErrorCode


class Status(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "inProgress"
    PENDING = "pending"
    HELD = "held"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


_S = Status

ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.ACKNOWLEDGED: frozenset({_S.IN_PROGRESS, _S.REJECTED, _S.CANCELLED}),
    _S.IN_PROGRESS: frozenset({_S.PENDING, _S.HELD, _S.RESOLVED, _S.CANCELLED}),
    _S.PENDING: frozenset({_S.IN_PROGRESS, _S.CANCELLED}),
    _S.HELD: frozenset({_S.IN_PROGRESS, _S.CANCELLED}),
    _S.RESOLVED: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
}

FINAL_STATUSES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if not targets)
# The SLA clocks stand still in these: ``pending`` waits on the customer, ``held`` on the provider.
PAUSED_STATUSES = frozenset({_S.PENDING, _S.HELD})


class InvalidTransition(Conflict):
    """A status change the lifecycle does not allow (HTTP 409, invalidTransition)."""

    code = ErrorCode.INVALID_TRANSITION.value

    def __init__(self, current: Status, target: Status) -> None:
        allowed = sorted(ALLOWED_TRANSITIONS[current])
        detail = (
            f"allowed from {current}: {', '.join(allowed)}" if allowed else f"{current} is a final status"
        )
        super().__init__(f"Cannot change status from {current} to {target}", f"{detail}.")
        self.current = current
        self.target = target


def transition(current: Status, target: Status) -> Status:
    """``target`` if the lifecycle allows ``current -> target`` (staying put is a no-op), else 409."""
    if current != target and target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(current, target)
    return target


def start(doc: dict[str, Any]) -> None:
    """A new ticket is ``acknowledged``, whatever status the client sent (the CTK sends an unknown one)."""
    doc["status"] = Status.ACKNOWLEDGED.value


def move(doc: dict[str, Any], current: Status, target: Status) -> bool:
    """Sets ``doc``'s status to ``target`` if the lifecycle allows it from ``current``; whether it changed."""
    doc["status"] = transition(current, target).value
    return current != target
