"""TMF621 events: the topic, event types and envelopes of TroubleTicket."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from switchboard_kit.events import envelope, format_datetime, outbox_row
from switchboard_kit.resource import Events

DOMAIN = "troubleTicket"
TICKET_TOPIC = "tmf621.troubleTicket"
TOPICS = [TICKET_TOPIC]

TICKET_EVENTS = (
    "TroubleTicketCreateEvent",
    "TroubleTicketAttributeValueChangeEvent",
    "TroubleTicketStatusChangeEvent",
    "TroubleTicketResolvedEvent",
    "TroubleTicketDeleteEvent",
    "TroubleTicketInformationRequiredEvent",
)


# The SLA clocks' events (an extension of TMF621: the ticket as it stands, and the target concerned in
# ``event.sla``), on the ticket's topic so they keep its order.
SLA_EVENTS = ("TroubleTicketSlaWarningEvent", "TroubleTicketSlaBreachEvent")
_SLA_EVENT_TYPE = {"warning": SLA_EVENTS[0], "breach": SLA_EVENTS[1]}


def sla_event(ticket: dict[str, Any], *, target: str, kind: str, due: datetime) -> dict[str, Any]:
    """The outbox row of an SLA warning (80 % of a target gone) or breach (the target missed)."""
    event_type = _SLA_EVENT_TYPE[kind]
    body = envelope(
        event_type,
        "troubleTicket",
        ticket,
        domain=DOMAIN,
        description=f"{kind} of the {target} target of troubleTicket {ticket['id']}",
        priority="2" if kind == "breach" else "3",
    )
    body["event"]["sla"] = {"target": target, "kind": kind, "dueDate": format_datetime(due)}
    return outbox_row(TICKET_TOPIC, str(ticket["id"]), body)


TICKET = Events(topic=TICKET_TOPIC, resource="troubleTicket", domain=DOMAIN, types=TICKET_EVENTS)
