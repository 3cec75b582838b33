"""TMF621 events: the topic, event types and envelopes of TroubleTicket."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from switchboard_kit.events import envelope, format_datetime, outbox_row
from switchboard_kit.resource import Events
from tmf_models import tmf621
from tmf_models._base import AwareDatetime, TMFModel

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


class SlaTarget(TMFModel):
    """Which SLA target of the ticket the event is about."""

    target: Annotated[Literal["firstResponse", "resolution"], Field(description="The target concerned")]
    kind: Annotated[
        Literal["warning", "breach"], Field(description="warning: 80 % of it gone; breach: missed")
    ]
    due_date: Annotated[AwareDatetime, Field(alias="dueDate", description="When the target falls due")]


class TroubleTicketSlaEventPayload(TMFModel):
    trouble_ticket: Annotated[tmf621.TroubleTicket | None, Field(alias="troubleTicket")] = None
    sla: SlaTarget


class TroubleTicketSlaWarningEvent(tmf621.TroubleTicketStatusChangeEvent):
    """80 % of an SLA target of the ticket has gone by (an extension of TMF621; fired once per target)."""

    event: TroubleTicketSlaEventPayload | None = None  # type: ignore[assignment]


class TroubleTicketSlaBreachEvent(tmf621.TroubleTicketStatusChangeEvent):
    """An SLA target of the ticket was missed (an extension of TMF621; fired once per target)."""

    event: TroubleTicketSlaEventPayload | None = None  # type: ignore[assignment]


# The events the TMF models lack, for contracts/ (make openapi) and the manifest test.
EXTENSION_EVENT_TYPES: dict[str, type[BaseModel]] = {
    "TroubleTicketSlaWarningEvent": TroubleTicketSlaWarningEvent,
    "TroubleTicketSlaBreachEvent": TroubleTicketSlaBreachEvent,
}


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


# The SLA events are the ticket's too: a hub subscription may ask for them by eventType.
TICKET = Events(topic=TICKET_TOPIC, resource="troubleTicket", domain=DOMAIN, types=TICKET_EVENTS + SLA_EVENTS)
