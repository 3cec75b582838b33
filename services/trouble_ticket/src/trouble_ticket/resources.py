"""The TMF621 resource, declared once: the kit serves and documents it from here."""

from __future__ import annotations

from datetime import datetime

from switchboard_kit.auth import AGENT, CUSTOMER, INTEGRATION, MANAGER
from switchboard_kit.query import HotColumn
from switchboard_kit.resource import Resource
from tmf_models import tmf621

from . import events
from .models import trouble_ticket
from .service import SERVER_OWNED, TicketService, party_ids, ticket_columns


def declare(service: TicketService) -> list[Resource]:
    ticket = Resource(
        name="troubleTicket",
        model=tmf621.TroubleTicket,
        create_model=tmf621.TroubleTicket_Create,
        update_model=tmf621.TroubleTicket_Update,
        table=trouble_ticket,
        hot={
            "id": HotColumn(trouble_ticket.c.id),
            "status": HotColumn(trouble_ticket.c.status),
            "severity": HotColumn(trouble_ticket.c.severity),
            "ticketType": HotColumn(trouble_ticket.c.ticket_type),
            "creationDate": HotColumn(trouble_ticket.c.creation_date, python_type=datetime),
            "relatedParty.id": HotColumn(trouble_ticket.c.party_ids, many=True),
        },
        columns=ticket_columns,
        sort=("creationDate", "status", "severity", "id"),
        filters=("externalId", "priority", "relatedEntity.id"),
        default_order=(trouble_ticket.c.creation_date.desc(),),
        events=events.TICKET,
        server_owned=SERVER_OWNED,
        on_create=service.create_ticket,
        on_patch=service.patch_ticket,
        on_delete=service.delete_ticket,
        hook_errors={"delete": (409,)},
        # TMF621 (and its conformance kit) answers a `fields` selection with exactly the attributes
        # named, without adding id and href.
        always_fields=(),
        # Agents and managers work tickets; a customer sees and opens only its own party's.
        roles={
            "list": (AGENT, MANAGER, INTEGRATION, CUSTOMER),
            "retrieve": (AGENT, MANAGER, INTEGRATION, CUSTOMER),
            "create": (AGENT, MANAGER, INTEGRATION, CUSTOMER),
            "patch": (AGENT, MANAGER, INTEGRATION),
            "delete": (MANAGER, INTEGRATION),
        },
        owner=party_ids,
        owner_filter="relatedParty.id",
        descriptions={
            "create": "Creates a TroubleTicket. It starts `acknowledged` (a status sent with it is ignored), "
            "and its SLA clocks start from the policy for its ticketType, severity and priority, which set "
            "`expectedResolutionDate`. An unknown severity or ticketType is a 400 and nothing is stored. "
            "`creationDate`, `lastUpdate`, `statusChange`, `statusChangeDate`, `expectedResolutionDate` and "
            "`resolutionDate` are the server's.",
            "patch": "Updates a TroubleTicket: merge patch (RFC 7396; plain application/json is treated as one) "
            "or JSON Patch (RFC 6902); If-Match guards against lost updates. Status changes follow "
            "acknowledged -> inProgress <-> pending / held -> resolved -> closed, with cancelled and rejected "
            "on the way; any other change is a 409. Each change is appended to `statusChange` with its time, "
            "the `statusChangeReason` sent and who made it. Notes can only be appended (409 otherwise). The "
            "SLA clocks pause while pending or held and resume moved by exactly the paused time.",
            "delete": "Deletes a TroubleTicket in a final status (closed, cancelled, rejected).",
        },
    )
    return [ticket]
