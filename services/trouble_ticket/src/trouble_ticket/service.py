"""Trouble ticket use cases: the domain hooks the kit calls for troubleTicket, and the SLA timer step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from switchboard_kit import auth
from switchboard_kit.errors import BadRequest, Conflict
from switchboard_kit.events import utc_now
from switchboard_kit.resource import Change
from switchboard_kit.store import Stored, UnitOfWork
from tmf_models._base import format_datetime  # the models' own form, so a PATCH re-validation keeps it

from . import events, sla
from .models import trouble_ticket
from .states import FINAL_STATUSES, PAUSED_STATUSES, Status, move, start

# Attributes the server owns: a POST may not set them (the client's values are dropped) and a PATCH may
# repeat them unchanged but never change them.
SERVER_OWNED = (
    "id",
    "href",
    "creationDate",
    "lastUpdate",
    "statusChangeDate",
    "statusChange",
    "expectedResolutionDate",
    "resolutionDate",
)
# What a status change touches; any other difference is an attribute change.
_STATUS_ATTRIBUTES = frozenset(
    {"status", "statusChange", "statusChangeDate", "statusChangeReason", "resolutionDate"}
)
_BOOKKEEPING = frozenset({"lastUpdate", "expectedResolutionDate"})
# What every ticket has (a PATCH may not remove it): the SLA policy and the hot columns read them.
REQUIRED = ("status", "description", "severity", "ticketType")
MAX_INDEXED_TEXT_LENGTH = 255


def party_ids(doc: dict[str, Any]) -> list[str]:
    return sorted({p["id"] for p in doc.get("relatedParty") or [] if isinstance(p, dict) and p.get("id")})


def ticket_columns(doc: dict[str, Any]) -> dict[str, Any]:
    """The hot columns of a ticket, from its document."""
    return {
        "status": doc["status"],
        "severity": doc["severity"],
        "ticket_type": doc["ticketType"],
        "party_ids": party_ids(doc),
    }


def _who() -> str:
    caller = auth.current_principal()
    return caller.subject if caller is not None else "system"


def _check_indexed(doc: dict[str, Any]) -> None:
    long = [pid for pid in party_ids(doc) if len(pid) > MAX_INDEXED_TEXT_LENGTH]
    if long:
        raise BadRequest(
            "Identifier too long", f"relatedParty.id: at most {MAX_INDEXED_TEXT_LENGTH} characters"
        )


def _stamp_notes(notes: list[dict[str, Any]], *, first: int, stamp: str, who: str) -> None:
    """Gives new notes (from index ``first`` on) an id, a date and an author where they lack one."""
    for index in range(first, len(notes)):
        note = notes[index]
        note.setdefault("id", str(index + 1))
        note.setdefault("date", stamp)
        note.setdefault("author", who)


def _status_change(status: str, stamp: str, reason: Any, who: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status, "changeDate": stamp, "changedBy": who, "@type": "StatusChange"}
    if isinstance(reason, str) and reason:
        entry["changeReason"] = reason
    return entry


class TicketService:
    """The domain hooks of troubleTicket and the SLA timers' step. Nothing here commits or sees a
    connection: each method works in the unit of work it is given."""

    def __init__(self, policy: sla.Policy, *, clock: Callable[[], datetime] | None = None) -> None:
        self.policy = policy
        # The time the SLA timers read (the scheduler's clock, so tests can move it).
        self.clock = clock or utc_now

    def _now(self) -> tuple[datetime, str]:
        now = self.clock()
        # The indexed column holds exactly what the document says (millisecond precision).
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        return now, format_datetime(now)

    # ------------------------------------------------------------------ create

    async def create_ticket(self, uow: UnitOfWork, doc: dict[str, Any]) -> Change:
        """A new ticket: acknowledged, its SLA clocks started from the policy. Reads nothing, so the
        ticket and its event are one statement."""
        _check_indexed(doc)
        rule = self.policy.rule(doc["ticketType"], doc["severity"], doc.get("priority"))
        now, stamp = self._now()
        who = _who()
        start(doc)
        doc["creationDate"] = stamp
        doc["lastUpdate"] = stamp
        doc["statusChangeDate"] = stamp
        doc["statusChange"] = [_status_change(doc["status"], stamp, doc.get("statusChangeReason"), who)]
        if isinstance(doc.get("note"), list):
            _stamp_notes(doc["note"], first=0, stamp=stamp, who=who)
        clocks = sla.start(rule, now)
        clocks["policy"] = self.policy.version
        doc["expectedResolutionDate"] = format_datetime(sla.due(clocks, sla.RESOLUTION))
        return Change(
            doc,
            columns={"creation_date": now, "sla": clocks, "next_action_at": sla.next_due(clocks)},
            events=[("TroubleTicketCreateEvent", doc)],
            at=now,
        )

    # ------------------------------------------------------------------- PATCH

    async def patch_ticket(self, uow: UnitOfWork, stored: Stored, patched: dict[str, Any]) -> Change | None:
        """A client's change (already validated as a TroubleTicket by the kit): status through the
        lifecycle, notes only appended, SLA clocks paused, resumed, met or re-targeted."""
        current = stored.doc
        if patched == current:
            return None
        removed = [a for a in REQUIRED if not isinstance(patched.get(a), str)]
        if removed:
            raise BadRequest(
                "Required attribute removed", f"{', '.join(removed)} cannot be removed from a ticket"
            )
        _check_indexed(patched)
        now, stamp = self._now()
        who = _who()
        old_notes, new_notes = current.get("note") or [], patched.get("note") or []
        if new_notes[: len(old_notes)] != old_notes:
            raise Conflict("Notes are append-only", "A note cannot be changed or removed; add a new one")
        _stamp_notes(new_notes, first=len(old_notes), stamp=stamp, who=who)

        old, new = Status(current["status"]), Status(patched["status"])
        patched["status"] = current["status"]
        changed_status = move(patched, old, new)
        clocks: dict[str, Any] = orjson.loads(orjson.dumps(stored.columns.get("sla"))) or {}
        retargeted = (
            patched["ticketType"],
            patched["severity"],
            patched.get("priority"),
        ) != (current["ticketType"], current["severity"], current.get("priority"))
        if retargeted:
            rule = self.policy.rule(patched["ticketType"], patched["severity"], patched.get("priority"))
            if clocks:
                sla.retarget(self.policy, clocks, rule, now)
                clocks["policy"] = self.policy.version
        elif clocks:
            self._replan(clocks, patched, now)

        changes: list[tuple[str, dict[str, Any]]] = []
        if changed_status:
            patched["statusChangeDate"] = stamp
            patched["statusChange"] = [
                *(current.get("statusChange") or []),
                _status_change(new, stamp, patched.get("statusChangeReason"), who),
            ]
            if new == Status.RESOLVED:
                patched["resolutionDate"] = stamp
            if clocks:
                self._move_clocks(clocks, old, new, now)
        if clocks and sla.RESOLUTION in clocks.get("targets", {}):
            patched["expectedResolutionDate"] = format_datetime(sla.due(clocks, sla.RESOLUTION))
        if patched == current:
            return None
        patched["lastUpdate"] = stamp

        touched = {k for k in patched.keys() | current.keys() if patched.get(k) != current.get(k)}
        # A new statusChangeReason without a status change is an attribute change like any other.
        status_attributes = (
            _STATUS_ATTRIBUTES if changed_status else _STATUS_ATTRIBUTES - {"statusChangeReason"}
        )
        if touched - status_attributes - _BOOKKEEPING:
            changes.append(("TroubleTicketAttributeValueChangeEvent", patched))
        if changed_status:
            changes.append(("TroubleTicketStatusChangeEvent", patched))
            if new == Status.RESOLVED:
                changes.append(("TroubleTicketResolvedEvent", patched))
            if new == Status.PENDING:
                changes.append(("TroubleTicketInformationRequiredEvent", patched))
        columns: dict[str, Any] = {}
        if clocks:
            columns = {"sla": clocks, "next_action_at": sla.next_due(clocks)}
        return Change(patched, columns=columns, events=changes, at=now)

    def _replan(self, clocks: dict[str, Any], doc: dict[str, Any], now: datetime) -> None:
        """Clocks started under another version of the policy take its current budgets (the time used
        is kept). A ticket the new policy no longer covers keeps the budgets it has."""
        if clocks.get("policy") == self.policy.version:
            return
        try:
            rule = self.policy.rule(doc["ticketType"], doc["severity"], doc.get("priority"))
        except BadRequest:
            return
        sla.retarget(self.policy, clocks, rule, now)
        clocks["policy"] = self.policy.version

    def _move_clocks(self, clocks: dict[str, Any], old: Status, new: Status, now: datetime) -> None:
        if old == Status.ACKNOWLEDGED:
            sla.meet(self.policy, clocks, sla.FIRST_RESPONSE, now)  # the first answer, whatever it is
        if new in PAUSED_STATUSES:
            sla.pause(self.policy, clocks, now)
        elif old in PAUSED_STATUSES:
            sla.resume(self.policy, clocks, now)
        if new == Status.RESOLVED or new in FINAL_STATUSES:
            for name in sla.TARGETS:
                sla.meet(self.policy, clocks, name, now)

    # ------------------------------------------------------------------ DELETE

    def delete_ticket(self, stored: Stored) -> list[tuple[str, dict[str, Any]]]:
        status = Status(stored.doc["status"])
        if status not in FINAL_STATUSES:
            raise Conflict(
                "Ticket still open",
                f"A ticket in status {status} cannot be deleted; close, cancel or reject it first",
            )
        return [("TroubleTicketDeleteEvent", stored.doc)]

    # -------------------------------------------------------------- SLA timers

    async def sla_step(self, uow: UnitOfWork, row: Stored) -> None:
        """Fires the warnings and breaches of one ticket that have come, each once: the flags that say
        so are saved with the events, in one unit of work."""
        clocks: dict[str, Any] = orjson.loads(orjson.dumps(row.columns.get("sla"))) or {}
        if not clocks:
            await uow.set_columns(trouble_ticket, row.id, {"next_action_at": None})
            return
        now = self.clock()
        doc = row.doc
        before = clocks["targets"][sla.RESOLUTION]["due"]
        self._replan(clocks, doc, now)
        replanned = clocks["targets"][sla.RESOLUTION]["due"] != before
        fired = sla.fire(clocks, now)
        rows = [
            events.sla_event(doc, target=name, kind=kind, due=sla.due(clocks, name)) for name, kind in fired
        ]
        columns = {"sla": clocks, "next_action_at": sla.next_due(clocks)}
        if not replanned:
            await uow.set_columns(trouble_ticket, row.id, columns)
            await uow.emit(rows)
            return
        # A new policy moved the resolution target: the document says so too.
        doc = {**doc, "expectedResolutionDate": format_datetime(sla.due(clocks, sla.RESOLUTION))}
        doc["lastUpdate"] = self._now()[1]
        changed = events.TICKET.rows([("TroubleTicketAttributeValueChangeEvent", doc)], at=now)
        await uow.save(
            trouble_ticket, row, doc, columns={**ticket_columns(doc), **columns}, events=changed + rows
        )

    async def replan_all(self, uow: UnitOfWork, tick: datetime) -> None:
        """After a policy change: every running clock of an older policy is due now, so the timers
        re-plan it (a paused one is re-planned when it resumes)."""
        table = trouble_ticket
        await uow.execute(
            table.update()
            .where(table.c.next_action_at.is_not(None))
            .where(table.c.sla["policy"].astext.is_distinct_from(self.policy.version))
            .values(next_action_at=tick)
        )
