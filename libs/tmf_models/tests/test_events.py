"""Every event each API names has an envelope model, a registry entry and a JSON Schema."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import yaml

from tmf_models import common, events, tmf621, tmf622, tmf676, tmf678

ENVELOPE = {
    "eventId",
    "eventTime",
    "eventType",
    "correlationId",
    "domain",
    "title",
    "description",
    "priority",
    "timeOcurred",
    "event",
}
RESOURCE = {
    "ProductOrder": "productOrder",
    "CancelProductOrder": "cancelProductOrder",
    "CustomerBillOnDemand": "customerBillOnDemand",
    "CustomerBill": "customerBill",
    "TroubleTicket": "troubleTicket",
    "Payment": "payment",
    "Refund": "refund",
}


def listener_events(paths: dict[str, object]) -> set[str]:
    return {
        p.removeprefix("/listener/")[0].upper() + p.removeprefix("/listener/")[1:]
        for p in paths
        if p.startswith("/listener/")
    }


def test_registries_cover_every_listener_of_the_specs(specs_dir: Path) -> None:
    def v4(rel: str) -> set[str]:
        return listener_events(json.loads((specs_dir / rel).read_text(encoding="utf-8"))["paths"])

    assert set(tmf622.EVENT_TYPES) == v4("TMF622/TMF622_Product_Ordering_Management_API_v4.0.0_swagger.json")
    assert set(tmf621.EVENT_TYPES) == v4("TMF621/TMF621_Trouble_Ticket_Management_API_v4.0.0_swagger.json")
    assert set(tmf676.EVENT_TYPES) == v4("TMF676/TMF676-Payment-v4.0.0.swagger.json")
    assert v4("TMF678/TMF678_Customer_Bill_Management_API_v4.0.0_swagger.json") == set()
    v5 = yaml.safe_load(
        (specs_dir / "TMF678/TMF678-CustomerBill-v5.0.0.oas.yaml").read_text(encoding="utf-8")
    )
    assert set(tmf678.EVENT_TYPES) == listener_events(v5["paths"])


def test_known_event_names() -> None:
    assert set(tmf678.EVENT_TYPES) == {
        "CustomerBillCreateEvent",
        "CustomerBillStateChangeEvent",
        "CustomerBillOnDemandCreateEvent",
        "CustomerBillOnDemandStateChangeEvent",
    }
    assert len(events.EVENT_TYPES) == 8 + 4 + 6 + 8


def test_every_envelope_has_the_tmf_fields_and_its_resource() -> None:
    for name, model in events.EVENT_TYPES.items():
        assert {f.alias or n for n, f in model.model_fields.items()} >= ENVELOPE, name
        (payload,) = [
            t for t in typing.get_args(model.model_fields["event"].annotation) if t is not type(None)
        ]
        resource = max((r for r in RESOURCE if name.startswith(r)), key=len)
        assert [f.alias or n for n, f in payload.model_fields.items()] == [RESOURCE[resource]], name


def test_event_json_schemas() -> None:
    schemas = events.event_json_schemas()
    assert list(schemas) == sorted(events.EVENT_TYPES)
    for name, schema in schemas.items():
        assert schema["type"] == "object", name
        assert set(schema["properties"]) >= ENVELOPE, name
        json.dumps(schema)  # plain JSON
    order_event = schemas["ProductOrderStateChangeEvent"]
    assert order_event["properties"]["eventTime"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert "@type" in json.dumps(order_event["$defs"]["ProductOrder"])


def test_customer_bill_event_round_trips() -> None:
    body = {
        "eventId": "e-1",
        "eventTime": "2026-12-01T00:00:05Z",
        "eventType": "CustomerBillStateChangeEvent",
        "event": {"customerBill": {"id": "CB-1", "state": "sent", "billDocument": [{"id": "D-1"}]}},
    }
    model = tmf678.EVENT_TYPES["CustomerBillStateChangeEvent"]
    assert common.dump(model.model_validate(body)) == body
